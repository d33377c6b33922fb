//! The server on PostgreSQL, selected by a `postgres://` storage URL:
//! accounts, rosters and offline messages survive a restart with a new
//! data directory.
//!
//! Runs when `CONCLAVE_TEST_POSTGRES_URL` is set (`scripts/test` starts a
//! throwaway PostgreSQL server when Debian's package is installed);
//! otherwise prints that it is skipped, unless `CI` is set or
//! `CONCLAVE_REQUIRE_POSTGRES=1`, which make that a failure.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::TestServer;

const ROSTER: &str = "jabber:iq:roster";
const DELAY: &str = "urn:xmpp:delay";

fn postgres_url() -> Option<String> {
    match std::env::var("CONCLAVE_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            if std::env::var("CONCLAVE_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("CONCLAVE_REQUIRE_POSTGRES=1 but CONCLAVE_TEST_POSTGRES_URL is not set");
            }
            support::skip("PostgreSQL is not available (CONCLAVE_TEST_POSTGRES_URL is not set)");
            None
        }
    }
}

#[tokio::test]
async fn accounts_rosters_and_offline_messages_survive_a_restart_on_postgres() {
    let Some(url) = postgres_url() else { return };
    // The database is shared with other test runs: unique account names.
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let alice = format!("pgalice{stamp}");
    let bob = format!("pgbob{stamp}");

    let mut config = support::test_config("postgres");
    config.storage.url = Some(url.clone());
    let data_dir = config.server.data_dir.clone();

    let server = TestServer::start_with(config.clone()).await;
    server.add_user(&alice, "secret").await;
    server.add_user(&bob, "secret").await;

    let mut a = server.login(&alice, Some("desk")).await;
    let set = format!(
        "<iq type='set' id='r1'><query xmlns='{ROSTER}'><item jid='{bob}@localhost' name='Bob'><group>Friends</group></item></query></iq>"
    );
    let answer = a.iq(&set, "r1").await;
    assert_eq!(
        answer.attr("type"),
        Some("result"),
        "roster set: {answer:?}"
    );
    a.send(&format!(
        "<message to='{bob}@localhost' type='chat' id='m1'><body>while you were away</body></message>"
    ))
    .await;
    // A round trip, so that the message was handled before the restart.
    let ping = a
        .iq(
            "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
            "p1",
        )
        .await;
    assert_eq!(ping.attr("type"), Some("result"));
    a.close().await;
    server.handle.shutdown().await;

    // Same database, new process state, and a new data directory: only
    // PostgreSQL can carry the state over.
    config.server.data_dir = support::temp_dir("postgres-again");
    let second_data_dir = config.server.data_dir.clone();
    let server = TestServer::start_with(config).await;
    let mut a = server.login(&alice, Some("desk")).await;
    let roster = a
        .iq(
            &format!("<iq type='get' id='r2'><query xmlns='{ROSTER}'/></iq>"),
            "r2",
        )
        .await;
    let query = roster.get_child("query", ROSTER).expect("roster query");
    let item = query
        .children()
        .find(|i| i.attr("jid") == Some(format!("{bob}@localhost").as_str()))
        .expect("Bob is still on Alice's roster");
    assert_eq!(item.attr("name"), Some("Bob"));
    assert_eq!(
        item.children().map(|g| g.text()).collect::<Vec<_>>(),
        vec!["Friends".to_owned()]
    );

    let mut b = server.login(&bob, Some("phone")).await;
    b.send("<presence/>").await;
    let msg = b
        .expect("the offline message", |e| {
            e.name() == "message" && e.attr("id") == Some("m1")
        })
        .await;
    assert_eq!(
        msg.get_child("body", "jabber:client").map(|b| b.text()),
        Some("while you were away".to_owned())
    );
    assert!(
        msg.get_child("delay", DELAY).is_some(),
        "delay stamp: {msg:?}"
    );

    a.close().await;
    b.close().await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
    let _ = std::fs::remove_dir_all(second_data_dir);
}
