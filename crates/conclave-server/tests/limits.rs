//! Per-account limits through the server: sessions per account.

mod support;

use support::{error_condition, Client, TestServer};

#[tokio::test]
async fn an_account_binds_at_most_its_sessions() {
    let mut config = support::test_config("limit-sessions");
    config.limits.max_sessions_per_account = 2;
    let s = TestServer::start_with(config).await;
    s.add_user("alice", "secret").await;
    let one = s.login("alice", Some("one")).await;
    let _two = s.login("alice", Some("two")).await;

    // A third resource is refused (RFC 6120 7.6.2.1), and the stream stays.
    let mut three = Client::authenticate(s.addr, "alice", "secret").await;
    three
        .send("<iq type='set' id='b3'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>three</resource></bind></iq>")
        .await;
    let r = three
        .expect("bind answer", |e| e.attr("id") == Some("b3"))
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("resource-constraint"));

    // Taking over an existing resource is not one more session.
    let _again = s.login("alice", Some("two")).await;

    // Once a session ends, the same stream may bind.
    one.close().await;
    let mut bound = false;
    for i in 0..200 {
        let id = format!("retry{i}");
        three
            .send(&format!("<iq type='set' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>three</resource></bind></iq>"))
            .await;
        let r = three
            .expect("bind answer", |e| e.attr("id") == Some(id.as_str()))
            .await;
        if r.attr("type") == Some("result") {
            bound = true;
            break;
        }
        assert_eq!(error_condition(&r).as_deref(), Some("resource-constraint"));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        bound,
        "the freed slot was never given to the waiting stream"
    );
    s.stop().await;
}
