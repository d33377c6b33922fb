//! What a session's end sends, with the modules' state as it was: a
//! contact the user blocks does not learn that a session went offline.

mod support;

use minidom::Element;
use support::{mutual_subscription, server_with, Client, TestServer};

const BLOCKING: &str = "urn:xmpp:blocking";

async fn online(s: &TestServer, user: &str, resource: &str) -> Client {
    let mut c = s.login(user, Some(resource)).await;
    c.iq(
        "<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>",
        "r0",
    )
    .await;
    c.available().await;
    c
}

fn presence_from(e: &Element, from: &str, type_: Option<&str>) -> bool {
    e.name() == "presence" && e.attr("from") == Some(from) && e.attr("type") == type_
}

#[tokio::test]
async fn a_blocked_contact_is_not_told_of_the_last_session_ending() {
    let s = server_with("session-end-blocked", &["alice", "bob", "carol"]).await;
    let mut a = online(&s, "alice", "one").await;
    let mut b = online(&s, "bob", "b").await;
    let mut c = online(&s, "carol", "c").await;
    mutual_subscription(&mut a, &mut b, "alice@localhost", "bob@localhost").await;
    mutual_subscription(&mut a, &mut c, "alice@localhost", "carol@localhost").await;

    let r = a
        .iq(
            &format!("<iq type='set' id='blk'><block xmlns='{BLOCKING}'><item jid='bob@localhost'/></block></iq>"),
            "blk",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    b.expect("alice offline on the block", |e| {
        presence_from(e, "alice@localhost/one", Some("unavailable"))
    })
    .await;

    // Alice's only session ends. Carol, who is not blocked, is told; what
    // the end sent bob (nothing, if the block list is still applied) was
    // queued in the same go, before bob's barrier below.
    a.close().await;
    c.expect("alice offline for carol", |e| {
        presence_from(e, "alice@localhost/one", Some("unavailable"))
    })
    .await;
    b.nothing("alice's unavailable presence after the block", |e| {
        presence_from(e, "alice@localhost/one", Some("unavailable"))
    })
    .await;
    s.stop().await;
}
