//! Integration tests of the server core over real sockets: binding,
//! routing, offline messages, rosters, subscriptions, presence, disco,
//! ping and the limits, each against an in-process server on a free port.

mod support;

use std::time::Duration;

use support::muc::{has_status, MUC_USER};
use support::{error_condition, mutual_subscription, server_with, Client, TestServer, STREAMS};

const ROSTER: &str = "jabber:iq:roster";

#[tokio::test]
async fn bind_chooses_resource_and_honours_request() {
    let s = server_with("bind", &["alice"]).await;
    let a = s.login("alice", None).await;
    assert!(a.jid.starts_with("alice@localhost/"), "{}", a.jid);
    assert!(a.jid.len() > "alice@localhost/".len());
    let b = s.login("alice", Some("phone")).await;
    assert_eq!(b.jid, "alice@localhost/phone");
    a.close().await;
    b.close().await;
    s.stop().await;
}

#[tokio::test]
async fn same_resource_replaces_old_session_with_conflict() {
    let s = server_with("conflict", &["alice"]).await;
    let mut old = s.login("alice", Some("desk")).await;
    let mut new = s.login("alice", Some("desk")).await;
    assert_eq!(old.expect_stream_error().await.as_deref(), Some("conflict"));
    // The new session works.
    let r = new
        .iq(
            "<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
            "p",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    s.stop().await;
}

#[tokio::test]
async fn stanza_before_bind_is_not_authorized() {
    let s = server_with("prebind", &["alice"]).await;
    let mut c = Client::authenticate(s.addr, "alice", "secret").await;
    c.send("<message to='alice@localhost'><body>hi</body></message>")
        .await;
    assert_eq!(
        c.expect_stream_error().await.as_deref(),
        Some("not-authorized")
    );
    s.stop().await;
}

#[tokio::test]
async fn stanza_before_auth_is_refused() {
    let s = server_with("preauth", &["alice"]).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&support::header("localhost")).await;
    c.expect("features", |e| e.is("features", STREAMS)).await;
    c.send("<message to='alice@localhost'><body>hi</body></message>")
        .await;
    let cond = c.expect_stream_error().await;
    assert_eq!(cond.as_deref(), Some("not-authorized"));
    s.stop().await;
}

#[tokio::test]
async fn legacy_session_is_answered() {
    let s = server_with("legacy", &["alice"]).await;
    let mut a = s.login("alice", None).await;
    let r = a
        .iq(
            "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
            "s1",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    s.stop().await;
}

#[tokio::test]
async fn messages_to_full_and_bare_jids() {
    let s = server_with("msg", &["alice", "bob"]).await;
    let mut a = s.login("alice", Some("a")).await;
    let mut b1 = s.login("bob", Some("low")).await;
    let mut b2 = s.login("bob", Some("high")).await;
    b1.send("<presence><priority>1</priority></presence>").await;
    b2.send("<presence><priority>5</priority></presence>").await;
    // Wait until both presences are registered (each sees its own).
    b1.expect("own presence", |e| {
        e.name() == "presence" && e.attr("from") == Some("bob@localhost/low")
    })
    .await;
    b2.expect("own presence", |e| {
        e.name() == "presence" && e.attr("from") == Some("bob@localhost/high")
    })
    .await;

    // Full JID: exactly that resource.
    a.send("<message to='bob@localhost/low' type='chat' id='m1'><body>to low</body></message>")
        .await;
    let m = b1.expect("message", |e| e.name() == "message").await;
    assert_eq!(m.attr("from"), Some("alice@localhost/a"));
    assert_eq!(
        m.get_child("body", "jabber:client").unwrap().text(),
        "to low"
    );

    // Bare JID: the highest-priority resource.
    a.send("<message to='bob@localhost' type='chat' id='m2'><body>to bare</body></message>")
        .await;
    let m = b2.expect("message", |e| e.name() == "message").await;
    assert_eq!(m.attr("id"), Some("m2"));
    // alice's session routed m2 before answering her ping; b1's barrier
    // then comes after anything m2 put in b1's queue.
    a.sync().await;
    b1.nothing("stanza on the lower-priority resource", |_| true)
        .await;

    // Unknown resource: treated as the bare JID.
    a.send("<message to='bob@localhost/gone' type='chat' id='m3'><body>x</body></message>")
        .await;
    let m = b2.expect("message", |e| e.name() == "message").await;
    assert_eq!(m.attr("id"), Some("m3"));
    s.stop().await;
}

#[tokio::test]
async fn offline_messages_are_stored_and_delivered_with_delay() {
    let s = server_with("offline", &["alice", "bob"]).await;
    let mut a = s.login("alice", None).await;
    a.send("<message to='bob@localhost' type='chat' id='o1'><body>first</body></message>")
        .await;
    a.send("<message to='bob@localhost' id='o2'><body>second</body></message>")
        .await;
    // Nothing bounced.
    a.nothing("stanza after storing offline messages", |_| true)
        .await;

    let mut b = s.login("bob", None).await;
    // Not before initial presence.
    b.nothing("stanza before initial presence", |_| true).await;
    b.send("<presence/>").await;
    let m1 = b.expect("offline 1", |e| e.name() == "message").await;
    let m2 = b.expect("offline 2", |e| e.name() == "message").await;
    assert_eq!(m1.attr("id"), Some("o1"));
    assert_eq!(m2.attr("id"), Some("o2"));
    assert_eq!(m1.attr("from"), Some(a.jid.as_str()));
    let delay = m1
        .get_child("delay", "urn:xmpp:delay")
        .expect("delay stamp");
    assert_eq!(delay.attr("from"), Some("localhost"));
    let stamp = chrono::DateTime::parse_from_rfc3339(delay.attr("stamp").unwrap()).unwrap();
    assert!((chrono::Utc::now() - stamp.with_timezone(&chrono::Utc)).num_seconds() < 60);
    b.close().await;

    // Delivered once only.
    let mut b = s.login("bob", None).await;
    b.send("<presence/>").await;
    b.nothing("offline message delivered twice", |e| e.name() == "message")
        .await;
    s.stop().await;
}

#[tokio::test]
async fn offline_storage_limit_gives_an_error() {
    let mut config = support::test_config("offlimit");
    config.limits.max_offline_messages = 2;
    let s = TestServer::start_with(config).await;
    s.add_user("alice", "secret").await;
    s.add_user("bob", "secret").await;
    let mut a = s.login("alice", None).await;
    for i in 0..3 {
        a.send(&format!(
            "<message to='bob@localhost' id='l{i}'><body>{i}</body></message>"
        ))
        .await;
    }
    let e = a.expect("error", |e| e.name() == "message").await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(e.attr("id"), Some("l2"));
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));
    s.stop().await;
}

#[tokio::test]
async fn message_to_unknown_user_and_remote_domain_bounce() {
    let s = server_with("bounce", &["alice"]).await;
    let mut a = s.login("alice", None).await;
    a.send("<message to='nobody@localhost' id='u1'><body>x</body></message>")
        .await;
    let e = a.expect("error", |e| e.attr("id") == Some("u1")).await;
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));
    a.send("<message to='someone@elsewhere.example' id='r1'><body>x</body></message>")
        .await;
    let e = a.expect("error", |e| e.attr("id") == Some("r1")).await;
    assert_eq!(
        error_condition(&e).as_deref(),
        Some("remote-server-not-found")
    );
    s.stop().await;
}

#[tokio::test]
async fn roster_get_set_push_and_versioning() {
    let s = server_with("roster", &["alice", "bob"]).await;
    let mut a1 = s.login("alice", Some("one")).await;
    let mut a2 = s.login("alice", Some("two")).await;
    let r = a1
        .iq(
            "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
            "r1",
        )
        .await;
    let q = r.get_child("query", ROSTER).unwrap();
    assert_eq!(q.children().count(), 0);
    let ver0 = q.attr("ver").unwrap().to_owned();
    // a2 asks for the roster too, so both get pushes.
    a2.iq(
        "<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>",
        "r2",
    )
    .await;

    let r = a1
        .iq(
            "<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>Friends</group></item></query></iq>",
            "s1",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    for c in [&mut a1, &mut a2] {
        let push = c
            .expect("push", |e| {
                e.name() == "iq" && e.attr("type") == Some("set")
            })
            .await;
        let item = push
            .get_child("query", ROSTER)
            .unwrap()
            .get_child("item", ROSTER)
            .unwrap();
        assert_eq!(item.attr("jid"), Some("bob@localhost"));
        assert_eq!(item.attr("name"), Some("Bob"));
        assert_eq!(item.attr("subscription"), Some("none"));
        let id = push.attr("id").unwrap().to_owned();
        c.send(&format!("<iq type='result' id='{id}'/>")).await;
    }

    // A full get returns the item and a new version.
    let r = a1
        .iq(
            "<iq type='get' id='r3'><query xmlns='jabber:iq:roster'/></iq>",
            "r3",
        )
        .await;
    let q = r.get_child("query", ROSTER).unwrap();
    let ver1 = q.attr("ver").unwrap().to_owned();
    assert_ne!(ver0, ver1);
    let item = q.get_child("item", ROSTER).unwrap();
    assert_eq!(item.get_child("group", ROSTER).unwrap().text(), "Friends");
    // The current version: empty result.
    let r = a1
        .iq(
            &format!("<iq type='get' id='r4'><query xmlns='jabber:iq:roster' ver='{ver1}'/></iq>"),
            "r4",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    assert!(r.get_child("query", ROSTER).is_none());
    // An old version: the full roster.
    let r = a1
        .iq(
            &format!("<iq type='get' id='r5'><query xmlns='jabber:iq:roster' ver='{ver0}'/></iq>"),
            "r5",
        )
        .await;
    assert_eq!(r.get_child("query", ROSTER).unwrap().children().count(), 1);

    // Invalid set: two items.
    let r = a1
        .iq(
            "<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='x@localhost'/><item jid='y@localhost'/></query></iq>",
            "s2",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("bad-request"));

    // Remove.
    let r = a1
        .iq(
            "<iq type='set' id='s3'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>",
            "s3",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    let push = a2
        .expect("removal push", |e| {
            e.name() == "iq"
                && e.attr("type") == Some("set")
                && e.get_child("query", ROSTER)
                    .and_then(|q| q.get_child("item", ROSTER))
                    .and_then(|i| i.attr("subscription"))
                    == Some("remove")
        })
        .await;
    assert!(push.attr("id").is_some());
    s.stop().await;
}

#[tokio::test]
async fn subscription_handshake_presence_probe_and_unavailable() {
    let s = server_with("subs", &["alice", "bob"]).await;
    let mut a = s.login("alice", Some("a")).await;
    let mut b = s.login("bob", Some("b")).await;
    a.iq(
        "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
        "r",
    )
    .await;
    b.iq(
        "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
        "r",
    )
    .await;
    a.available().await;
    b.available().await;
    mutual_subscription(&mut a, &mut b, "alice@localhost", "bob@localhost").await;

    // Both rosters say 'both'.
    for (c, other) in [(&mut a, "bob@localhost"), (&mut b, "alice@localhost")] {
        let r = c
            .iq(
                "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>",
                "g",
            )
            .await;
        let item = r
            .get_child("query", ROSTER)
            .unwrap()
            .get_child("item", ROSTER)
            .unwrap();
        assert_eq!(item.attr("jid"), Some(other));
        assert_eq!(item.attr("subscription"), Some("both"));
        assert_eq!(item.attr("ask"), None);
    }

    // Presence broadcast: a's new status reaches b.
    a.send("<presence><show>away</show></presence>").await;
    let p = b
        .expect("a's presence", |e| {
            e.name() == "presence"
                && e.attr("from") == Some("alice@localhost/a")
                && e.has_child("show", "jabber:client")
        })
        .await;
    assert_eq!(p.get_child("show", "jabber:client").unwrap().text(), "away");

    // Probe at login: a second resource of bob learns a is online.
    let mut b2 = s.login("bob", Some("b2")).await;
    b2.send("<presence/>").await;
    b2.expect("probe answer", |e| {
        e.name() == "presence" && e.attr("from") == Some("alice@localhost/a")
    })
    .await;

    // Disconnecting sends unavailable to contacts.
    drop(a);
    let p = b
        .expect("unavailable", |e| {
            e.name() == "presence"
                && e.attr("from") == Some("alice@localhost/a")
                && e.attr("type") == Some("unavailable")
        })
        .await;
    assert!(p.attr("to").unwrap().starts_with("bob@localhost"));
    s.stop().await;
}

#[tokio::test]
async fn subscription_request_to_offline_user_is_kept_and_unsubscribe_works() {
    let s = server_with("subsoff", &["alice", "bob"]).await;
    let mut a = s.login("alice", None).await;
    a.iq(
        "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
        "r",
    )
    .await;
    a.send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    // The roster push shows the pending request.
    let push = a
        .expect("ask push", |e| {
            e.name() == "iq" && e.attr("type") == Some("set")
        })
        .await;
    let item = push
        .get_child("query", ROSTER)
        .unwrap()
        .get_child("item", ROSTER)
        .unwrap();
    assert_eq!(item.attr("ask"), Some("subscribe"));

    // bob logs in later and gets the request.
    let mut b = s.login("bob", None).await;
    b.send("<presence/>").await;
    let req = b
        .expect("stored request", |e| {
            e.name() == "presence" && e.attr("type") == Some("subscribe")
        })
        .await;
    assert_eq!(req.attr("from"), Some("alice@localhost"));
    b.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    let push = a
        .expect("to push", |e| {
            e.name() == "iq"
                && e.get_child("query", ROSTER)
                    .and_then(|q| q.get_child("item", ROSTER))
                    .and_then(|i| i.attr("subscription"))
                    == Some("to")
        })
        .await;
    assert!(push.attr("id").is_some());

    // alice unsubscribes: her item goes back to none, bob's to none.
    a.send("<presence to='bob@localhost' type='unsubscribe'/>")
        .await;
    b.expect("unsubscribe", |e| {
        e.name() == "presence" && e.attr("type") == Some("unsubscribe")
    })
    .await;
    let r = b
        .iq(
            "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>",
            "g",
        )
        .await;
    let item = r
        .get_child("query", ROSTER)
        .unwrap()
        .get_child("item", ROSTER)
        .unwrap();
    assert_eq!(item.attr("subscription"), Some("none"));
    s.stop().await;
}

#[tokio::test]
async fn directed_presence_gets_unavailable_on_disconnect() {
    let s = server_with("directed", &["alice", "bob"]).await;
    let a = s.login("alice", Some("a")).await;
    let mut b = s.login("bob", Some("b")).await;
    let mut a = a;
    a.send("<presence to='bob@localhost/b'/>").await;
    b.expect("directed", |e| {
        e.name() == "presence" && e.attr("from") == Some("alice@localhost/a")
    })
    .await;
    a.close().await;
    b.expect("unavailable", |e| {
        e.name() == "presence"
            && e.attr("from") == Some("alice@localhost/a")
            && e.attr("type") == Some("unavailable")
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn a_from_that_is_not_the_session_is_rewritten() {
    let s = server_with("forged", &["alice", "bob"]).await;
    let mut a = s.login("alice", Some("a")).await;
    let mut b = s.login("bob", Some("b")).await;
    // Another account, then a room nickname (as a client puts on a room
    // private message): each arrives from the sender's full JID.
    for (forged, body) in [
        ("bob@localhost/x", "one"),
        ("room@conference.localhost/Nick", "two"),
    ] {
        a.send(&format!(
            "<message type='chat' from='{forged}' to='bob@localhost/b'><body>{body}</body></message>"
        ))
        .await;
        let m = b
            .expect("the message", |e| {
                e.name() == "message"
                    && e.get_child("body", "jabber:client").map(|b| b.text()) == Some(body.into())
            })
            .await;
        assert_eq!(m.attr("from"), Some("alice@localhost/a"));
    }
    // The stream is still open: a round trip still works.
    a.sync().await;
    s.stop().await;
}

#[tokio::test]
async fn server_iq_handling_disco_ping_and_unknown_payloads() {
    let s = server_with("disco", &["alice"]).await;
    let mut a = s.login("alice", None).await;
    let r = a
        .iq("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d1")
        .await;
    assert_eq!(r.attr("from"), Some("localhost"));
    let q = r
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert!(q.children().any(|c| c.name() == "identity"
        && c.attr("category") == Some("server")
        && c.attr("type") == Some("im")));
    assert!(q
        .children()
        .any(|c| c.name() == "feature" && c.attr("var") == Some("urn:xmpp:ping")));

    let r = a
        .iq("<iq type='get' id='d2' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "d2")
        .await;
    let q = r
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .unwrap();
    assert!(q
        .children()
        .any(|c| c.attr("jid") == Some("conference.localhost")));

    let r = a
        .iq(
            "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
            "p1",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));

    let r = a
        .iq(
            "<iq type='get' id='u1' to='localhost'><query xmlns='urn:example:unknown'/></iq>",
            "u1",
        )
        .await;
    assert_eq!(r.attr("type"), Some("error"));
    assert_eq!(error_condition(&r).as_deref(), Some("service-unavailable"));

    // Malformed IQs.
    let r = a.iq("<iq type='get' id='e1' to='localhost'/>", "e1").await;
    assert_eq!(error_condition(&r).as_deref(), Some("bad-request"));
    let r = a
        .iq(
            "<iq type='fetch' id='e2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
            "e2",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("bad-request"));

    // An unknown payload to one's own bare JID is answered by the server too.
    let r = a
        .iq(
            "<iq type='get' id='u2'><query xmlns='urn:example:unknown'/></iq>",
            "u2",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("service-unavailable"));
    s.stop().await;
}

#[tokio::test]
async fn oversize_stanza_ends_the_stream() {
    let mut config = support::test_config("oversize");
    config.limits.max_stanza_bytes = 4096;
    let s = TestServer::start_with(config).await;
    s.add_user("alice", "secret").await;
    let mut a = s.login("alice", None).await;
    let big = "x".repeat(10_000);
    let _ = a
        .try_send(&format!(
            "<message to='alice@localhost'><body>{big}</body></message>"
        ))
        .await;
    assert_eq!(
        a.expect_stream_error().await.as_deref(),
        Some("policy-violation")
    );
    s.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_with_system_shutdown() {
    let s = server_with("shutdown", &["alice"]).await;
    let mut a = s.login("alice", None).await;
    let stop = tokio::spawn(s.stop());
    assert_eq!(
        a.expect_stream_error().await.as_deref(),
        Some("system-shutdown")
    );
    stop.await.unwrap();
}

#[tokio::test]
async fn group_chat_rooms_are_routed_and_left_on_disconnect() {
    let s = server_with("muc", &["alice", "bob"]).await;
    let mut a = s.login("alice", Some("a")).await;
    let mut b = s.login("bob", Some("b")).await;

    // alice creates the room (status 201) and accepts the default configuration.
    a.send("<presence to='room@conference.localhost/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    let p = a
        .expect("self presence", |e| {
            e.name() == "presence" && e.attr("from") == Some("room@conference.localhost/Alice")
        })
        .await;
    assert!(has_status(&p, "110"), "{}", String::from(&p));
    assert!(has_status(&p, "201"), "{}", String::from(&p));
    let r = a
        .iq(
            "<iq type='set' id='cfg' to='room@conference.localhost'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>",
            "cfg",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));

    // bob joins and sees alice; alice sees bob.
    b.send("<presence to='room@conference.localhost/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    b.expect("alice in room", |e| {
        e.name() == "presence" && e.attr("from") == Some("room@conference.localhost/Alice")
    })
    .await;
    b.expect("own join", |e| {
        e.name() == "presence" && e.attr("from") == Some("room@conference.localhost/Bob")
    })
    .await;
    a.expect("bob joined", |e| {
        e.name() == "presence" && e.attr("from") == Some("room@conference.localhost/Bob")
    })
    .await;

    // A groupchat message reaches both occupants from the sender's nick.
    a.send("<message to='room@conference.localhost' type='groupchat' id='g1'><body>hello room</body></message>")
        .await;
    for c in [&mut a, &mut b] {
        let m = c
            .expect("groupchat", |e| {
                e.name() == "message"
                    && e.attr("type") == Some("groupchat")
                    && e.has_child("body", "jabber:client")
            })
            .await;
        assert_eq!(m.attr("from"), Some("room@conference.localhost/Alice"));
    }

    // The service answers disco on its domain.
    let r = a
        .iq(
            "<iq type='get' id='sd' to='conference.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            "sd",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));

    // Disconnecting without leaving: the room is told (directed presence).
    drop(a);
    let p = b
        .expect("alice left", |e| {
            e.name() == "presence"
                && e.attr("from") == Some("room@conference.localhost/Alice")
                && e.attr("type") == Some("unavailable")
        })
        .await;
    assert!(p.get_child("x", MUC_USER).is_some());
    s.stop().await;
}

#[tokio::test]
async fn a_session_that_does_not_read_is_disconnected_not_buffered() {
    let mut config = support::test_config("slow");
    config.limits.session_queue = 16;
    // The sender floods on purpose: no read-rate limit holds it back here.
    config.limits.max_bytes_per_second = 0;
    let s = TestServer::start_with(config).await;
    s.add_user("alice", "secret").await;
    s.add_user("bob", "secret").await;
    let mut a = s.login("alice", None).await;
    let b = s.login("bob", Some("slow")).await; // never reads from now on
    let bob = jid::BareJid::new("bob@localhost").unwrap();
    let router = s.handle.router();
    assert!(router.sessions().is_online(&bob));
    let body = "y".repeat(50_000);
    let mut gone = false;
    for i in 0..1000 {
        a.send(&format!(
            "<message to='bob@localhost/slow' type='headline' id='h{i}'><body>{body}</body></message>"
        ))
        .await;
        if i % 20 == 0 && !router.sessions().is_online(&bob) {
            gone = true;
            break;
        }
    }
    for _ in 0..100 {
        if gone || !router.sessions().is_online(&bob) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the slow session is still registered");
    let r = a
        .iq(
            "<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
            "p",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    drop(b);
    s.stop().await;
}

#[tokio::test]
async fn pre_approved_subscription_is_granted_automatically() {
    let s = server_with("preapproval", &["alice", "bob"]).await;
    let mut a = s.login("alice", None).await;
    a.iq(
        "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
        "r",
    )
    .await;
    a.available().await;
    // No request pending: this is a pre-approval (RFC 6121 3.4).
    a.send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    let push = a
        .expect("approved push", |e| {
            e.name() == "iq" && e.attr("type") == Some("set")
        })
        .await;
    let item = push
        .get_child("query", ROSTER)
        .unwrap()
        .get_child("item", ROSTER)
        .unwrap();
    assert_eq!(item.attr("approved"), Some("true"));
    assert_eq!(item.attr("subscription"), Some("none"));

    let mut b = s.login("bob", None).await;
    b.available().await;
    b.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    let ok = b
        .expect("subscribed", |e| {
            e.name() == "presence" && e.attr("type") == Some("subscribed")
        })
        .await;
    assert_eq!(ok.attr("from"), Some("alice@localhost"));
    // alice was never asked: bob's session delivers a request to her
    // resources while handling it, before answering bob's ping.
    b.sync().await;
    a.nothing("subscription request (alice was asked)", |e| {
        e.attr("type") == Some("subscribe")
    })
    .await;
    let r = a
        .iq(
            "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>",
            "g",
        )
        .await;
    let item = r
        .get_child("query", ROSTER)
        .unwrap()
        .get_child("item", ROSTER)
        .unwrap();
    assert_eq!(item.attr("subscription"), Some("from"));
    s.stop().await;
}
