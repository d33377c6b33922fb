//! Integration tests of the instant-messaging features over real sockets:
//! subscriptions in every roster state (RFC 6121 section 3), roster
//! versioning and pushes, account and server disco, version, time, last
//! activity, contact addresses, external services, vCards, private XML,
//! blocking, carbons and the offline storage bound.

mod support;

use std::time::Duration;

use base64::Engine;
use minidom::Element;
use support::{error_condition, mutual_subscription, server_with, Client, TestServer, STREAMS};

const ROSTER: &str = "jabber:iq:roster";
const CLIENT: &str = "jabber:client";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const BLOCKING: &str = "urn:xmpp:blocking";
const CARBONS: &str = "urn:xmpp:carbons:2";
const FORWARD: &str = "urn:xmpp:forward:0";

/// Logs in, requests the roster (to get pushes) and sends initial presence.
async fn online(s: &TestServer, user: &str, resource: &str) -> Client {
    let mut c = s.login(user, Some(resource)).await;
    c.iq(
        "<iq type='get' id='roster0'><query xmlns='jabber:iq:roster'/></iq>",
        "roster0",
    )
    .await;
    c.available().await;
    c
}

fn is_presence(e: &Element, from: &str, type_: Option<&str>) -> bool {
    e.name() == "presence" && e.attr("from") == Some(from) && e.attr("type") == type_
}

/// `(subscription, ask)` of a contact in the user's roster, `None` when absent.
async fn sub_state(c: &mut Client, contact: &str) -> Option<(String, bool)> {
    let r = c
        .iq(
            "<iq type='get' id='state'><query xmlns='jabber:iq:roster'/></iq>",
            "state",
        )
        .await;
    r.get_child("query", ROSTER)?
        .children()
        .find(|i| i.attr("jid") == Some(contact))
        .map(|i| {
            (
                i.attr("subscription").unwrap_or("none").to_owned(),
                i.attr("ask") == Some("subscribe"),
            )
        })
}

// --- subscriptions (RFC 6121 section 3) -----------------------------------

#[tokio::test]
async fn subscription_states_follow_rfc6121_in_every_direction() {
    let s = server_with("substates", &["alice", "bob"]).await;
    let mut a = online(&s, "alice", "a").await;
    let mut b = online(&s, "bob", "b").await;
    let (ab, bb) = ("alice@localhost", "bob@localhost");

    // Outbound subscribe: None -> None + Pending Out.
    a.send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    b.expect("request", |e| is_presence(e, ab, Some("subscribe")))
        .await;
    assert_eq!(sub_state(&mut a, bb).await, Some(("none".into(), true)));
    // Contact approves: alice To, bob From.
    b.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    a.expect("subscribed", |e| is_presence(e, bb, Some("subscribed")))
        .await;
    // Approval brings bob's current presence.
    a.expect("bob online", |e| is_presence(e, "bob@localhost/b", None))
        .await;
    assert_eq!(sub_state(&mut a, bb).await, Some(("to".into(), false)));
    assert_eq!(sub_state(&mut b, ab).await, Some(("from".into(), false)));
    // A second 'subscribed' with nothing pending changes nothing.
    b.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    // bob's session routes what his stanza causes before answering his
    // ping; alice's barrier then comes after it in her queue.
    b.sync().await;
    a.nothing("second subscribed", |e| {
        e.attr("type") == Some("subscribed")
    })
    .await;
    // bob subscribes back: Both.
    b.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    a.expect("request", |e| is_presence(e, bb, Some("subscribe")))
        .await;
    a.send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    b.expect("subscribed", |e| is_presence(e, ab, Some("subscribed")))
        .await;
    assert_eq!(sub_state(&mut a, bb).await, Some(("both".into(), false)));
    assert_eq!(sub_state(&mut b, ab).await, Some(("both".into(), false)));
    // A subscribe while already subscribed: bob's server answers for him
    // (RFC 6121 3.1.3) and alice's, in state Both, ignores the answer
    // (3.1.6); bob is not asked and nothing changes.
    a.send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    // alice's barrier first: her session has then handled the request and
    // bob's server's answer, so bob's barrier comes after their effects.
    a.nothing("ignored answer", |e| e.attr("type") == Some("subscribed"))
        .await;
    b.nothing("repeated request", |e| e.attr("type") == Some("subscribe"))
        .await;
    assert_eq!(sub_state(&mut a, bb).await, Some(("both".into(), false)));
    // alice unsubscribes: alice From, bob To; alice gets bob's unavailable.
    a.send("<presence to='bob@localhost' type='unsubscribe'/>")
        .await;
    b.expect("unsubscribe", |e| is_presence(e, ab, Some("unsubscribe")))
        .await;
    a.expect("bob unavailable", |e| {
        is_presence(e, "bob@localhost/b", Some("unavailable"))
    })
    .await;
    assert_eq!(sub_state(&mut a, bb).await, Some(("from".into(), false)));
    assert_eq!(sub_state(&mut b, ab).await, Some(("to".into(), false)));
    // alice cancels bob's subscription: None both ways, bob gets unavailable.
    a.send("<presence to='bob@localhost' type='unsubscribed'/>")
        .await;
    b.expect("unsubscribed", |e| is_presence(e, ab, Some("unsubscribed")))
        .await;
    b.expect("alice unavailable", |e| {
        is_presence(e, "alice@localhost/a", Some("unavailable"))
    })
    .await;
    assert_eq!(sub_state(&mut a, bb).await, Some(("none".into(), false)));
    assert_eq!(sub_state(&mut b, ab).await, Some(("none".into(), false)));
    // Presence changes now reach nobody.
    a.send("<presence><show>dnd</show></presence>").await;
    a.sync().await;
    b.nothing("presence after cancel", |e| {
        is_presence(e, "alice@localhost/a", None)
    })
    .await;
    // Refusing a request: bob asks, alice refuses; bob's ask is cleared.
    b.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    a.expect("request", |e| is_presence(e, bb, Some("subscribe")))
        .await;
    assert_eq!(sub_state(&mut b, ab).await, Some(("none".into(), true)));
    a.send("<presence to='bob@localhost' type='unsubscribed'/>")
        .await;
    b.expect("refusal", |e| is_presence(e, ab, Some("unsubscribed")))
        .await;
    assert_eq!(sub_state(&mut b, ab).await, Some(("none".into(), false)));
    s.stop().await;
}

#[tokio::test]
async fn subscription_request_is_kept_whole_and_redelivered_until_answered() {
    let s = server_with("subkeep", &["alice", "bob"]).await;
    let mut a = online(&s, "alice", "a").await;
    a.send(
        "<presence to='bob@localhost' type='subscribe'><nick xmlns='http://jabber.org/protocol/nick'>Ally</nick><status>Hi, it is Alice</status></presence>",
    )
    .await;
    let check = |e: &Element| {
        assert_eq!(e.attr("from"), Some("alice@localhost"));
        let nick = e
            .get_child("nick", "http://jabber.org/protocol/nick")
            .expect("nick kept");
        assert_eq!(nick.text(), "Ally");
        assert_eq!(
            e.get_child("status", CLIENT).map(|s| s.text()).as_deref(),
            Some("Hi, it is Alice")
        );
    };
    // Two logins without an answer: the request each time.
    for _ in 0..2 {
        let mut b = online(&s, "bob", "b").await;
        let req = b
            .expect("request", |e| e.attr("type") == Some("subscribe"))
            .await;
        check(&req);
        b.close().await;
    }
    let mut b = online(&s, "bob", "b").await;
    b.expect("request", |e| e.attr("type") == Some("subscribe"))
        .await;
    b.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    a.expect("approved", |e| e.attr("type") == Some("subscribed"))
        .await;
    b.close().await;
    let mut b = online(&s, "bob", "b").await;
    b.nothing("answered request", |e| e.attr("type") == Some("subscribe"))
        .await;
    s.stop().await;
}

#[tokio::test]
async fn withdrawn_request_is_announced_and_not_redelivered() {
    let s = server_with("subwithdraw", &["alice", "bob"]).await;
    let mut a = online(&s, "alice", "a").await;
    let mut b = online(&s, "bob", "b").await;
    a.send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    b.expect("request", |e| e.attr("type") == Some("subscribe"))
        .await;
    // None + Pending In -> None: the contact is told of the withdrawal.
    a.send("<presence to='bob@localhost' type='unsubscribe'/>")
        .await;
    b.expect("withdrawal", |e| {
        is_presence(e, "alice@localhost", Some("unsubscribe"))
    })
    .await;
    b.close().await;
    let mut b = online(&s, "bob", "b").await;
    b.nothing("withdrawn request", |e| e.attr("type") == Some("subscribe"))
        .await;
    s.stop().await;
}

#[tokio::test]
async fn removed_contact_gets_unsubscribe_unsubscribed_and_unavailable() {
    let s = server_with("subremove", &["alice", "bob"]).await;
    let mut a = online(&s, "alice", "a").await;
    let mut b = online(&s, "bob", "b").await;
    mutual_subscription(&mut a, &mut b, "alice@localhost", "bob@localhost").await;
    b.expect("alice online", |e| {
        is_presence(e, "alice@localhost/a", None)
    })
    .await;
    let r = a
        .iq(
            "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>",
            "rm",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    for t in ["unsubscribe", "unsubscribed"] {
        b.expect(t, |e| is_presence(e, "alice@localhost", Some(t)))
            .await;
    }
    b.expect("unavailable", |e| {
        is_presence(e, "alice@localhost/a", Some("unavailable"))
    })
    .await;
    assert_eq!(
        sub_state(&mut b, "alice@localhost").await,
        Some(("none".into(), false))
    );
    assert_eq!(sub_state(&mut a, "bob@localhost").await, None);
    s.stop().await;
}

#[tokio::test]
async fn pre_approval_is_advertised_as_a_stream_feature() {
    let s = server_with("preapfeature", &["alice"]).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&support::header("localhost")).await;
    c.expect("features", |e| e.is("features", STREAMS)).await;
    let creds = base64::engine::general_purpose::STANDARD.encode("\0alice\0secret");
    c.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
    ))
    .await;
    assert_eq!(c.next().await.unwrap().name(), "success");
    c.restart();
    c.send(&support::header("localhost")).await;
    let f = c.expect("features", |e| e.is("features", STREAMS)).await;
    assert!(f.has_child("sub", "urn:xmpp:features:pre-approval"));
    assert!(f.has_child("ver", "urn:xmpp:features:rosterver"));
    s.stop().await;
}

#[tokio::test]
async fn roster_pushes_reach_every_resource_and_versions_advance() {
    let s = server_with("rosterpush", &["alice"]).await;
    let mut a1 = online(&s, "alice", "one").await;
    let mut a2 = online(&s, "alice", "two").await;
    let first = a1
        .iq(
            "<iq type='get' id='v0'><query xmlns='jabber:iq:roster'/></iq>",
            "v0",
        )
        .await;
    let v0 = first
        .get_child("query", ROSTER)
        .unwrap()
        .attr("ver")
        .unwrap()
        .to_owned();
    a1.iq(
        "<iq type='set' id='add'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' name='Carol'/></query></iq>",
        "add",
    )
    .await;
    let mut vers = Vec::new();
    for c in [&mut a1, &mut a2] {
        let push = c
            .expect("push", |e| {
                e.name() == "iq" && e.attr("type") == Some("set")
            })
            .await;
        let q = push.get_child("query", ROSTER).unwrap();
        assert_eq!(
            q.get_child("item", ROSTER).unwrap().attr("name"),
            Some("Carol")
        );
        vers.push(q.attr("ver").unwrap().to_owned());
        let id = push.attr("id").unwrap().to_owned();
        c.send(&format!("<iq type='result' id='{id}'/>")).await;
    }
    assert_eq!(vers[0], vers[1]);
    assert_ne!(vers[0], v0);
    // Up to date: an empty result. Older: the full roster.
    let r = a2
        .iq(
            &format!(
                "<iq type='get' id='v1'><query xmlns='jabber:iq:roster' ver='{}'/></iq>",
                vers[0]
            ),
            "v1",
        )
        .await;
    assert!(r.get_child("query", ROSTER).is_none());
    let r = a2
        .iq(
            &format!("<iq type='get' id='v2'><query xmlns='jabber:iq:roster' ver='{v0}'/></iq>"),
            "v2",
        )
        .await;
    assert_eq!(r.get_child("query", ROSTER).unwrap().children().count(), 1);
    s.stop().await;
}

// --- discovery, version, time, last activity, contact, external services ----

fn im_config(tag: &str) -> conclave_server::config::Config {
    let mut c = support::test_config(tag);
    c.contact.abuse = vec!["mailto:abuse@localhost".into()];
    c.contact.support = vec!["xmpp:support@localhost".into()];
    c.external_service = vec![conclave_server::config::ExternalServiceSection {
        type_: "turn".into(),
        host: "turn.localhost".into(),
        port: Some(3478),
        transport: Some("udp".into()),
        username: Some("turnuser".into()),
        password: Some("turnpass".into()),
        ..Default::default()
    }];
    c
}

#[tokio::test]
async fn server_disco_lists_every_feature_and_the_contact_form() {
    let s = TestServer::start_with(im_config("srvdisco")).await;
    s.add_user("alice", "secret").await;
    let mut a = s.login("alice", None).await;
    let r = a
        .iq(
            "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            "d",
        )
        .await;
    let q = r.get_child("query", DISCO_INFO).unwrap().clone();
    let info = xmpp_parsers::disco::DiscoInfoResult::try_from(q).unwrap();
    for f in [
        "jabber:iq:version",
        "urn:xmpp:time",
        "jabber:iq:last",
        "vcard-temp",
        "jabber:iq:private",
        "urn:xmpp:blocking",
        "urn:xmpp:carbons:2",
        "urn:xmpp:extdisco:2",
        "urn:xmpp:ping",
        "msgoffline",
        "urn:xmpp:features:pre-approval",
        "urn:xmpp:features:rosterver",
    ] {
        assert!(info.features.iter().any(|x| x == f), "missing feature {f}");
    }
    let form = info
        .extensions
        .into_iter()
        .find(|f| f.form_type() == Some("http://jabber.org/network/serverinfo"))
        .expect("serverinfo form");
    let si = xmpp_parsers::server_info::ServerInfo::try_from(form).unwrap();
    assert_eq!(si.abuse, vec!["mailto:abuse@localhost"]);
    assert_eq!(si.support, vec!["xmpp:support@localhost"]);

    // External services: listed without secrets, credentials on request.
    let r = a
        .iq(
            "<iq type='get' id='x' to='localhost'><services xmlns='urn:xmpp:extdisco:2'/></iq>",
            "x",
        )
        .await;
    let svc = r
        .get_child("services", "urn:xmpp:extdisco:2")
        .and_then(|l| l.get_child("service", "urn:xmpp:extdisco:2"))
        .unwrap();
    assert_eq!(svc.attr("host"), Some("turn.localhost"));
    assert_eq!(svc.attr("restricted"), Some("true"));
    assert_eq!(svc.attr("password"), None);
    let r = a
        .iq(
            "<iq type='get' id='c' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'><service type='turn' host='turn.localhost'/></credentials></iq>",
            "c",
        )
        .await;
    let svc = r
        .get_child("credentials", "urn:xmpp:extdisco:2")
        .and_then(|l| l.get_child("service", "urn:xmpp:extdisco:2"))
        .unwrap();
    assert_eq!(svc.attr("password"), Some("turnpass"));
    s.stop().await;
}

#[tokio::test]
async fn version_time_and_uptime_of_the_server() {
    let s = server_with("version", &["alice"]).await;
    let mut a = s.login("alice", None).await;
    let r = a
        .iq(
            "<iq type='get' id='v' to='localhost'><query xmlns='jabber:iq:version'/></iq>",
            "v",
        )
        .await;
    let v = xmpp_parsers::version::VersionResult::try_from(
        r.get_child("query", "jabber:iq:version").unwrap().clone(),
    )
    .unwrap();
    assert_eq!(v.name, "Conclave");
    assert!(!v.version.is_empty());
    assert_eq!(v.os, None, "the OS is not disclosed by default");
    let r = a
        .iq(
            "<iq type='get' id='t' to='localhost'><time xmlns='urn:xmpp:time'/></iq>",
            "t",
        )
        .await;
    let t = xmpp_parsers::time::TimeResult::try_from(
        r.get_child("time", "urn:xmpp:time").unwrap().clone(),
    )
    .unwrap();
    assert!((t.utc - chrono::Utc::now()).num_seconds().abs() < 5);
    let r = a
        .iq(
            "<iq type='get' id='l' to='localhost'><query xmlns='jabber:iq:last'/></iq>",
            "l",
        )
        .await;
    let secs: u64 = r
        .get_child("query", "jabber:iq:last")
        .unwrap()
        .attr("seconds")
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs < 60);
    s.stop().await;

    let mut config = support::test_config("version-os");
    config.im.version_show_os = true;
    let s = TestServer::start_with(config).await;
    s.add_user("alice", "secret").await;
    let mut a = s.login("alice", None).await;
    let r = a
        .iq(
            "<iq type='get' id='v' to='localhost'><query xmlns='jabber:iq:version'/></iq>",
            "v",
        )
        .await;
    let os = r
        .get_child("query", "jabber:iq:version")
        .and_then(|q| q.get_child("os", "jabber:iq:version"))
        .map(|o| o.text());
    assert_eq!(os.as_deref(), Some(std::env::consts::OS));
    s.stop().await;
}

#[tokio::test]
async fn account_disco_is_answered_on_the_accounts_behalf() {
    let s = server_with("acctdisco", &["alice", "bob"]).await;
    let mut b = s.login("bob", None).await;
    let r = b
        .iq(
            "<iq type='get' id='d' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            "d",
        )
        .await;
    assert_eq!(r.attr("from"), Some("alice@localhost"));
    let info = xmpp_parsers::disco::DiscoInfoResult::try_from(
        r.get_child("query", DISCO_INFO).unwrap().clone(),
    )
    .unwrap();
    assert!(info
        .identities
        .iter()
        .any(|i| i.category == "account" && i.type_ == "registered"));
    assert!(info.features.iter().any(|f| f == "vcard-temp"));
    let r = b
        .iq(
            "<iq type='get' id='n' to='nobody@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            "n",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("service-unavailable"));
    s.stop().await;
}

fn last_seconds(r: &Element) -> (u64, String) {
    let q = r.get_child("query", "jabber:iq:last").expect("last query");
    (q.attr("seconds").unwrap().parse().unwrap(), q.text())
}

#[tokio::test]
async fn last_activity_of_contacts_only() {
    let s = server_with("lastact", &["alice", "bob", "carol"]).await;
    let mut a = online(&s, "alice", "a").await;
    let mut b = online(&s, "bob", "b").await;
    mutual_subscription(&mut a, &mut b, "alice@localhost", "bob@localhost").await;
    let ask = "<iq type='get' id='la' to='alice@localhost'><query xmlns='jabber:iq:last'/></iq>";
    let r = b.iq(ask, "la").await;
    assert_eq!(last_seconds(&r).0, 0, "online: 0 seconds");
    a.send("<presence type='unavailable'><status>Gone fishing</status></presence>")
        .await;
    a.close().await;
    b.expect("alice offline", |e| {
        is_presence(e, "alice@localhost/a", Some("unavailable"))
    })
    .await;
    // The logout is recorded once the session is over.
    let mut found = None;
    for _ in 0..20 {
        let r = b.iq(ask, "la").await;
        if r.attr("type") == Some("result") && !last_seconds(&r).1.is_empty() {
            found = Some(last_seconds(&r));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (secs, status) = found.expect("recorded logout");
    assert!(secs < 60);
    assert_eq!(status, "Gone fishing");
    let mut c = s.login("carol", None).await;
    let r = c.iq(ask, "la").await;
    assert_eq!(error_condition(&r).as_deref(), Some("forbidden"));
    s.stop().await;
}

// --- vCard and private XML --------------------------------------------------

#[tokio::test]
async fn vcard_is_readable_by_anyone_and_writable_by_its_owner() {
    let mut config = support::test_config("vcard");
    config.im.max_vcard_bytes = 2048;
    let s = TestServer::start_with(config).await;
    s.add_user("alice", "secret").await;
    s.add_user("bob", "secret").await;
    let mut a = s.login("alice", None).await;
    let mut b = s.login("bob", None).await;
    let get = "<iq type='get' id='g' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>";
    let r = b.iq(get, "g").await;
    let card = r.get_child("vCard", "vcard-temp").expect("empty vCard");
    assert_eq!(card.children().count(), 0);
    let r = a
        .iq(
            "<iq type='set' id='s'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>ally</NICKNAME></vCard></iq>",
            "s",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    let r = b.iq(get, "g").await;
    let card = r.get_child("vCard", "vcard-temp").unwrap();
    assert_eq!(
        card.get_child("FN", "vcard-temp").unwrap().text(),
        "Alice Liddell"
    );
    // Own vCard without 'to'.
    let r = a
        .iq(
            "<iq type='get' id='own'><vCard xmlns='vcard-temp'/></iq>",
            "own",
        )
        .await;
    assert!(r
        .get_child("vCard", "vcard-temp")
        .unwrap()
        .has_child("NICKNAME", "vcard-temp"));
    // Someone else's: forbidden.
    let r = b
        .iq(
            "<iq type='set' id='x' to='alice@localhost'><vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard></iq>",
            "x",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("forbidden"));
    // Too large.
    let big = "x".repeat(4096);
    let r = a
        .iq(
            &format!(
                "<iq type='set' id='big'><vCard xmlns='vcard-temp'><DESC>{big}</DESC></vCard></iq>"
            ),
            "big",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("not-acceptable"));
    let r = b.iq(get, "g").await;
    assert_eq!(
        r.get_child("vCard", "vcard-temp")
            .unwrap()
            .get_child("FN", "vcard-temp")
            .unwrap()
            .text(),
        "Alice Liddell"
    );
    // Unknown account.
    let r = b
        .iq(
            "<iq type='get' id='u' to='nobody@localhost'><vCard xmlns='vcard-temp'/></iq>",
            "u",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("service-unavailable"));
    s.stop().await;
}

#[tokio::test]
async fn private_xml_is_for_its_owner_only() {
    let s = server_with("private", &["alice", "bob"]).await;
    let mut a = s.login("alice", None).await;
    let mut b = s.login("bob", None).await;
    let r = a
        .iq(
            "<iq type='set' id='s'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='room@conference.localhost' autojoin='true'/></storage></query></iq>",
            "s",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    let r = a
        .iq(
            "<iq type='get' id='g'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>",
            "g",
        )
        .await;
    let st = r
        .get_child("query", "jabber:iq:private")
        .and_then(|q| q.get_child("storage", "storage:bookmarks"))
        .unwrap();
    assert_eq!(
        st.get_child("conference", "storage:bookmarks")
            .unwrap()
            .attr("jid"),
        Some("room@conference.localhost")
    );
    // Nothing stored: the empty element back.
    let r = a
        .iq(
            "<iq type='get' id='e'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>",
            "e",
        )
        .await;
    let p = r
        .get_child("query", "jabber:iq:private")
        .and_then(|q| q.get_child("prefs", "urn:example:prefs"))
        .unwrap();
    assert_eq!(p.children().count(), 0);
    // Reserved namespaces.
    for ns in ["jabber:client", "jabber:server", "jabber:iq:private"] {
        let r = a
            .iq(
                &format!("<iq type='set' id='r'><query xmlns='jabber:iq:private'><x xmlns='{ns}'/></query></iq>"),
                "r",
            )
            .await;
        assert_eq!(
            error_condition(&r).as_deref(),
            Some("not-acceptable"),
            "{ns}"
        );
    }
    // Another user's storage.
    let r = b
        .iq(
            "<iq type='get' id='o' to='alice@localhost'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>",
            "o",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("forbidden"));
    s.stop().await;
}

// --- blocking (XEP-0191) ----------------------------------------------------

fn blocked_error(e: &Element) -> bool {
    e.attr("type") == Some("error")
        && error_condition(e).as_deref() == Some("not-acceptable")
        && e.get_child("error", CLIENT)
            .is_some_and(|x| x.has_child("blocked", "urn:xmpp:blocking:errors"))
}

#[tokio::test]
async fn blocking_pushes_hides_presence_and_bounces_stanzas() {
    let s = server_with("blocking", &["alice", "bob"]).await;
    let mut a1 = online(&s, "alice", "one").await;
    let mut a2 = online(&s, "alice", "two").await;
    let mut b = online(&s, "bob", "b").await;
    mutual_subscription(&mut a1, &mut b, "alice@localhost", "bob@localhost").await;
    b.expect("alice online", |e| {
        is_presence(e, "alice@localhost/two", None)
    })
    .await;
    for c in [&mut a1, &mut a2] {
        let r = c
            .iq(
                "<iq type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>",
                "bl",
            )
            .await;
        assert_eq!(
            r.get_child("blocklist", BLOCKING)
                .unwrap()
                .children()
                .count(),
            0
        );
    }
    let r = a1
        .iq(
            "<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block></iq>",
            "blk",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    for c in [&mut a1, &mut a2] {
        let push = c
            .expect("block push", |e| {
                e.name() == "iq" && e.has_child("block", BLOCKING)
            })
            .await;
        let item = push
            .get_child("block", BLOCKING)
            .unwrap()
            .get_child("item", BLOCKING)
            .unwrap();
        assert_eq!(item.attr("jid"), Some("bob@localhost"));
    }
    // bob sees alice go offline, from both resources.
    for r in ["alice@localhost/one", "alice@localhost/two"] {
        b.expect("unavailable", |e| is_presence(e, r, Some("unavailable")))
            .await;
    }
    // bob's message bounces; his iq gets service-unavailable.
    b.send("<message to='alice@localhost' type='chat' id='m1'><body>hello?</body></message>")
        .await;
    let e = b.expect("bounce", |e| e.name() == "message").await;
    assert!(blocked_error(&e), "{}", String::from(&e));
    let r = b
        .iq(
            "<iq type='get' id='v' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>",
            "v",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("service-unavailable"));
    // alice's own stanzas to bob are refused.
    a1.send("<message to='bob@localhost' type='chat' id='m2'><body>psst</body></message>")
        .await;
    let e = a1.expect("refusal", |e| e.name() == "message").await;
    assert!(blocked_error(&e), "{}", String::from(&e));
    // No presence either way.
    a1.send("<presence><show>away</show></presence>").await;
    b.send("<presence><show>chat</show></presence>").await;
    // a1 is synced so that bob's barrier comes after whatever her presence
    // caused; bob's own barrier does the same for his presence and a2's.
    a1.sync().await;
    b.nothing("alice's presence", |e| {
        e.name() == "presence" && e.attr("from").is_some_and(|f| f.starts_with("alice@"))
    })
    .await;
    a2.nothing("bob's presence", |e| {
        e.name() == "presence" && e.attr("from").is_some_and(|f| f.starts_with("bob@"))
    })
    .await;
    // While alice is offline, bob's messages still bounce.
    a1.close().await;
    a2.close().await;
    b.send("<message to='alice@localhost' type='chat' id='m3'><body>offline?</body></message>")
        .await;
    let e = b
        .expect("offline bounce", |e| {
            e.name() == "message" && e.attr("id") == Some("m3")
        })
        .await;
    assert!(blocked_error(&e), "{}", String::from(&e));
    // The list survives; unblocking restores presence and delivery.
    let mut a1 = online(&s, "alice", "one").await;
    let r = a1
        .iq(
            "<iq type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>",
            "bl",
        )
        .await;
    let items: Vec<_> = r
        .get_child("blocklist", BLOCKING)
        .unwrap()
        .children()
        .map(|i| i.attr("jid").unwrap().to_owned())
        .collect();
    assert_eq!(items, vec!["bob@localhost"]);
    let r = a1
        .iq(
            "<iq type='set' id='ub'><unblock xmlns='urn:xmpp:blocking'/></iq>",
            "ub",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    a1.expect("unblock push", |e| {
        e.name() == "iq" && e.has_child("unblock", BLOCKING)
    })
    .await;
    b.expect("alice back", |e| {
        is_presence(e, "alice@localhost/one", None)
    })
    .await;
    b.send("<message to='alice@localhost/one' type='chat' id='m4'><body>hi again</body></message>")
        .await;
    let m = a1.expect("message", |e| e.name() == "message").await;
    assert_eq!(m.attr("id"), Some("m4"));
    s.stop().await;
}

#[tokio::test]
async fn block_requests_are_validated() {
    let s = server_with("blockval", &["alice"]).await;
    let mut a = s.login("alice", None).await;
    let r = a
        .iq(
            "<iq type='set' id='e'><block xmlns='urn:xmpp:blocking'/></iq>",
            "e",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("bad-request"));
    let r = a
        .iq(
            "<iq type='set' id='j'><block xmlns='urn:xmpp:blocking'><item jid='@@bad'/></block></iq>",
            "j",
        )
        .await;
    assert_eq!(error_condition(&r).as_deref(), Some("jid-malformed"));
    // A domain block covers every account there.
    let r = a
        .iq(
            "<iq type='set' id='d'><block xmlns='urn:xmpp:blocking'><item jid='spam.example'/></block></iq>",
            "d",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    a.send("<message to='x@spam.example' id='sp'><body>x</body></message>")
        .await;
    let e = a.expect("refusal", |e| e.name() == "message").await;
    assert!(blocked_error(&e));
    s.stop().await;
}

// --- carbons (XEP-0280) -----------------------------------------------------

fn carbon_of<'a>(e: &'a Element, dir: &str) -> Option<&'a Element> {
    e.get_child(dir, CARBONS)?
        .get_child("forwarded", FORWARD)?
        .get_child("message", CLIENT)
}

async fn enable_carbons(c: &mut Client) {
    let r = c
        .iq(
            "<iq type='set' id='cc'><enable xmlns='urn:xmpp:carbons:2'/></iq>",
            "cc",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
}

#[tokio::test]
async fn carbons_copy_sent_and_received_chats_to_enabled_resources() {
    let s = server_with("carbons", &["alice", "bob"]).await;
    let mut a1 = online(&s, "alice", "one").await;
    let mut a2 = online(&s, "alice", "two").await;
    let mut a3 = online(&s, "alice", "three").await;
    let mut b = online(&s, "bob", "b").await;
    enable_carbons(&mut a1).await;
    enable_carbons(&mut a2).await;

    // Received: to alice/one; two gets a carbon, three (not enabled) none.
    b.send("<message to='alice@localhost/one' type='chat' id='r1'><body>for one</body></message>")
        .await;
    let m = a1.expect("original", |e| e.name() == "message").await;
    assert!(m.get_child("received", CARBONS).is_none());
    let c = a2.expect("carbon", |e| e.name() == "message").await;
    assert_eq!(c.attr("from"), Some("alice@localhost"));
    let inner = carbon_of(&c, "received").expect("received carbon");
    assert_eq!(inner.attr("from"), Some("bob@localhost/b"));
    assert_eq!(inner.attr("id"), Some("r1"));
    // Received copies are made while bob's session routes r1.
    b.sync().await;
    a3.nothing("carbon to a non-enabled resource", |e| {
        e.name() == "message"
    })
    .await;

    // Sent: from alice/one; two gets a sent carbon.
    a1.send("<message to='bob@localhost' type='chat' id='s1'><body>from one</body></message>")
        .await;
    b.expect("message", |e| {
        e.name() == "message" && e.attr("id") == Some("s1")
    })
    .await;
    let c = a2.expect("sent carbon", |e| e.name() == "message").await;
    let inner = carbon_of(&c, "sent").expect("sent carbon");
    assert_eq!(inner.attr("to"), Some("bob@localhost"));
    assert_eq!(inner.attr("from"), Some("alice@localhost/one"));
    a1.nothing("own carbon", |e| e.get_child("sent", CARBONS).is_some())
        .await;

    // Hints and ineligible types: no copies.
    for m in [
        "<message to='alice@localhost/one' type='chat' id='p'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>",
        "<message to='alice@localhost/one' type='chat' id='n'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>",
        "<message to='alice@localhost/one' type='headline' id='h'><body>x</body></message>",
        "<message to='alice@localhost/one' id='e'/>",
    ] {
        b.send(m).await;
    }
    a1.send("<message to='bob@localhost' type='chat' id='ps'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>")
        .await;
    // Copies are made while the sender's session routes the message:
    // both senders are synced before a2's barrier.
    b.sync().await;
    a1.sync().await;
    a2.nothing("copy of an ineligible message", |e| e.name() == "message")
        .await;

    // A normal message with a body is copied.
    b.send("<message to='alice@localhost/one' id='nb'><body>normal</body></message>")
        .await;
    let c = a2.expect("normal carbon", |e| e.name() == "message").await;
    assert_eq!(carbon_of(&c, "received").unwrap().attr("id"), Some("nb"));

    // Disabled: no more copies.
    let r = a2
        .iq(
            "<iq type='set' id='cd'><disable xmlns='urn:xmpp:carbons:2'/></iq>",
            "cd",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    b.send("<message to='alice@localhost/one' type='chat' id='r2'><body>again</body></message>")
        .await;
    // As above: a received copy of r2 would be made in bob's session.
    b.sync().await;
    a2.nothing("carbon after disable", |e| e.name() == "message")
        .await;

    // To the bare JID: the highest-priority resources get the original,
    // the other enabled ones a carbon.
    enable_carbons(&mut a2).await;
    a2.send("<presence><priority>-1</priority></presence>")
        .await;
    a2.expect("own presence", |e| {
        is_presence(e, "alice@localhost/two", None)
    })
    .await;
    b.send("<message to='alice@localhost' type='chat' id='bare'><body>bare</body></message>")
        .await;
    a1.expect("original", |e| {
        e.name() == "message" && e.attr("id") == Some("bare")
    })
    .await;
    a3.expect("original", |e| {
        e.name() == "message" && e.attr("id") == Some("bare")
    })
    .await;
    let c = a2.expect("carbon", |e| e.name() == "message").await;
    assert_eq!(carbon_of(&c, "received").unwrap().attr("id"), Some("bare"));
    s.stop().await;
}

#[tokio::test]
async fn carbons_of_group_chat_private_messages_need_the_muc_marker() {
    let s = server_with("carbonsmuc", &["alice"]).await;
    let mut a1 = online(&s, "alice", "one").await;
    let mut a2 = online(&s, "alice", "two").await;
    enable_carbons(&mut a1).await;
    enable_carbons(&mut a2).await;
    // Without the marker: no sent carbon (the other resource is not in the room).
    a1.send("<message to='room@conference.localhost/nick' type='chat' id='pm1'><body>x</body></message>")
        .await;
    // Sent copies are made in the sender's session, before routing.
    a1.sync().await;
    a2.nothing("carbon of an unmarked room PM", |e| {
        e.get_child("sent", CARBONS).is_some()
    })
    .await;
    a1.send("<message to='room@conference.localhost/nick' type='chat' id='pm2'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>")
        .await;
    let c = a2
        .expect("carbon", |e| e.get_child("sent", CARBONS).is_some())
        .await;
    assert_eq!(carbon_of(&c, "sent").unwrap().attr("id"), Some("pm2"));
    s.stop().await;
}

// --- offline messages (XEP-0160) ---------------------------------------------

#[tokio::test]
async fn offline_messages_are_bounded_with_a_clear_error_and_stamped() {
    let mut config = support::test_config("offbound");
    config.limits.max_offline_messages = 1;
    let s = TestServer::start_with(config).await;
    s.add_user("alice", "secret").await;
    s.add_user("bob", "secret").await;
    let mut a = s.login("alice", None).await;
    a.send("<message to='bob@localhost' id='o1'><body>kept</body></message>")
        .await;
    a.send("<message to='bob@localhost' id='o2'><body>refused</body></message>")
        .await;
    let e = a.expect("error", |e| e.name() == "message").await;
    assert_eq!(e.attr("id"), Some("o2"));
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));
    let text = e
        .get_child("error", CLIENT)
        .and_then(|x| x.get_child("text", support::STANZAS))
        .map(|t| t.text())
        .unwrap_or_default();
    assert!(text.contains("full"), "unclear error text: {text:?}");
    let mut b = online(&s, "bob", "b").await;
    let m = b.expect("offline", |e| e.name() == "message").await;
    assert_eq!(m.attr("id"), Some("o1"));
    assert!(m.has_child("delay", "urn:xmpp:delay"));
    s.stop().await;
}

/// A session that never sent broadcast presence, ending: only the entities
/// that got its directed presence and are not subscribed contacts are told
/// it went offline, as Prosody tracks directed presence.
#[tokio::test]
async fn a_session_never_available_ends_with_unavailable_only_to_directed_non_contacts() {
    let s = server_with("directed-end", &["alice", "bob", "carol"]).await;
    let mut a = online(&s, "alice", "a").await;
    let mut b = online(&s, "bob", "b").await;
    mutual_subscription(&mut a, &mut b, "alice@localhost", "bob@localhost").await;
    let mut c = online(&s, "carol", "c").await;
    // A second session of alice's, never available, sends directed
    // presence to bob (a contact) and to carol (not one).
    let mut a2 = s.login("alice", Some("a2")).await;
    a2.send("<presence to='bob@localhost/b'/>").await;
    a2.send("<presence to='carol@localhost/c'/>").await;
    b.expect("directed presence", |e| {
        e.name() == "presence" && e.attr("from") == Some("alice@localhost/a2")
    })
    .await;
    c.expect("directed presence", |e| {
        e.name() == "presence" && e.attr("from") == Some("alice@localhost/a2")
    })
    .await;
    a2.close().await;
    c.expect("unavailable", |e| {
        e.name() == "presence"
            && e.attr("from") == Some("alice@localhost/a2")
            && e.attr("type") == Some("unavailable")
    })
    .await;
    let from_a2 = |e: &Element| e.attr("from") == Some("alice@localhost/a2");
    b.nothing("presence from the ended session", from_a2).await;
    a.nothing("presence from the ended session", from_a2).await;
    s.stop().await;
}

/// A session's unavailable presence comes back to it, with its status,
/// before its other resources and its contacts get it.
#[tokio::test]
async fn unavailable_presence_is_reflected_to_its_session() {
    let s = server_with("reflect-unavailable", &["alice"]).await;
    let mut a = online(&s, "alice", "a").await;
    a.send("<presence type='unavailable'><status>Gone</status></presence>")
        .await;
    let p = a
        .expect("own unavailable presence", |e| {
            e.name() == "presence" && e.attr("type") == Some("unavailable")
        })
        .await;
    assert_eq!(p.attr("from"), Some("alice@localhost/a"));
    assert_eq!(
        p.get_child("status", CLIENT).map(|s| s.text()),
        Some("Gone".into())
    );
    s.stop().await;
}

/// An out-of-range priority counts as the nearest in range: 999 is 127,
/// and wins over 5 for a message to the bare JID.
#[tokio::test]
async fn out_of_range_priority_is_held_to_the_range() {
    let s = server_with("priority-clamp", &["alice", "bob"]).await;
    let mut high = s.login("alice", Some("high")).await;
    high.send("<presence><priority>999</priority></presence>")
        .await;
    high.expect("own presence", |e| e.name() == "presence")
        .await;
    let mut low = s.login("alice", Some("low")).await;
    low.send("<presence><priority>5</priority></presence>")
        .await;
    low.expect("own presence", |e| {
        e.name() == "presence" && e.attr("from") == Some("alice@localhost/low")
    })
    .await;
    let mut b = s.login("bob", Some("b")).await;
    b.send("<message type='chat' to='alice@localhost'><body>hi</body></message>")
        .await;
    high.expect("the message", |e| e.name() == "message").await;
    let is_message = |e: &Element| e.name() == "message";
    low.nothing("the message", is_message).await;
    s.stop().await;
}
