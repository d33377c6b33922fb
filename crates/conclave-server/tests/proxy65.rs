//! The SOCKS5 bytestreams proxy (XEP-0065) through the server: the
//! component's discovery and streamhost, a 5 MB transfer that arrives
//! byte-identical, activation by anyone but the initiator refused, a
//! connection that is never activated closed at its timeout, a third
//! connection for one session refused, the ACL and the per-user limit.

mod support;

use std::time::Duration;

use conclave_server::config::Config;
use conclave_server::services::proxy65::session_hash;
use minidom::Element;
use sha1::{Digest, Sha1};
use support::{error_condition, Client, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NS: &str = "http://jabber.org/protocol/bytestreams";
const PROXY: &str = "proxy.localhost";

fn config(tag: &str) -> Config {
    support::test_config(tag)
}

async fn server(c: Config) -> TestServer {
    let s = TestServer::start_with(c).await;
    for u in ["alice", "bob", "carol", "admin"] {
        s.add_user(u, "secret").await;
    }
    s
}

/// Asks the proxy for its streamhost: (host, port).
async fn streamhost(c: &mut Client) -> Result<(String, u16), String> {
    let r = c
        .iq(
            &format!("<iq type='get' id='sh' to='{PROXY}'><query xmlns='{NS}' sid='s1'/></iq>"),
            "sh",
        )
        .await;
    if r.attr("type") != Some("result") {
        return Err(error_condition(&r).unwrap_or_default());
    }
    let q = r.get_child("query", NS).expect("query");
    assert_eq!(q.attr("sid"), Some("s1"));
    let h = q.get_child("streamhost", NS).expect("streamhost");
    assert_eq!(h.attr("jid"), Some(PROXY));
    Ok((
        h.attr("host").expect("host").to_owned(),
        h.attr("port").and_then(|p| p.parse().ok()).expect("port"),
    ))
}

/// Connects to the proxy and names the session `hash`; returns the
/// socket and the proxy's reply to the CONNECT request.
async fn socks(addr: (String, u16), hash: &str) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect((addr.0.as_str(), addr.1))
        .await
        .expect("proxy reachable");
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut greeting = [0u8; 2];
    s.read_exact(&mut greeting).await.unwrap();
    assert_eq!(greeting, [5, 0]);
    let mut req = vec![5, 1, 0, 3, 40];
    req.extend_from_slice(hash.as_bytes());
    req.extend_from_slice(&[0, 0]);
    s.write_all(&req).await.unwrap();
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.unwrap();
    let mut reply = head.to_vec();
    if head[1] == 0 {
        let mut rest = [0u8; 45];
        s.read_exact(&mut rest).await.unwrap();
        reply.extend_from_slice(&rest);
    } else {
        let mut rest = [0u8; 5];
        s.read_exact(&mut rest).await.unwrap();
        reply.extend_from_slice(&rest);
    }
    (s, reply)
}

async fn activate(c: &mut Client, target: &str) -> Element {
    c.iq(
        &format!(
            "<iq type='set' id='act' to='{PROXY}'><query xmlns='{NS}' sid='s1'><activate>{target}</activate></query></iq>"
        ),
        "act",
    )
    .await
}

/// Reads until the proxy closes the connection (or 20 s pass, which fails).
async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("the proxy closes the connection")
        .expect("read");
    out
}

#[tokio::test]
async fn a_file_goes_through_the_proxy_byte_for_byte() {
    let s = server(config("p65-file")).await;
    let mut alice = s.login("alice", Some("send")).await;
    let bob = s.login("bob", Some("recv")).await;

    // The server lists the proxy; the proxy says what it is.
    let items = alice
        .iq("<iq type='get' id='it' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "it")
        .await;
    let listed: Vec<_> = items
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .unwrap()
        .children()
        .filter_map(|i| i.attr("jid").map(str::to_owned))
        .collect();
    assert!(listed.contains(&PROXY.to_owned()), "{listed:?}");
    let info = alice
        .iq(&format!("<iq type='get' id='in' to='{PROXY}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"), "in")
        .await;
    let q = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    let id = q.children().find(|c| c.name() == "identity").unwrap();
    assert_eq!(id.attr("category"), Some("proxy"));
    assert_eq!(id.attr("type"), Some("bytestreams"));
    assert!(q.children().any(|f| f.attr("var") == Some(NS)));

    let host = streamhost(&mut alice).await.expect("streamhost");
    let hash = session_hash("s1", &alice.jid, &bob.jid);
    let (mut target, reply) = socks(host.clone(), &hash).await;
    assert_eq!(&reply[..5], &[5, 0, 0, 3, 40]);
    assert_eq!(&reply[5..45], hash.as_bytes());
    let (mut initiator, reply) = socks(host, &hash).await;
    assert_eq!(reply[1], 0);
    let r = activate(&mut alice, &bob.jid).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));

    let file: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let sender = tokio::spawn(async move {
        initiator.write_all(&file).await.unwrap();
        initiator.shutdown().await.unwrap();
        // The target's close reaches the initiator too.
        let rest = read_to_end(&mut initiator).await;
        (file, rest)
    });
    let received = read_to_end(&mut target).await;
    drop(target);
    let (file, back) = sender.await.unwrap();
    assert_eq!(received.len(), file.len());
    assert_eq!(Sha1::digest(&received), Sha1::digest(&file));
    assert!(back.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn only_the_initiator_activates_and_only_a_pair() {
    let s = server(config("p65-activate")).await;
    let mut alice = s.login("alice", Some("send")).await;
    let bob = s.login("bob", Some("recv")).await;
    let mut carol = s.login("carol", Some("c")).await;
    let host = streamhost(&mut alice).await.expect("streamhost");
    let hash = session_hash("s1", &alice.jid, &bob.jid);

    // Nobody connected yet: no such session.
    let r = activate(&mut alice, &bob.jid).await;
    assert_eq!(error_condition(&r).as_deref(), Some("item-not-found"));
    let (_target, _) = socks(host.clone(), &hash).await;
    // Only one side connected.
    let r = activate(&mut alice, &bob.jid).await;
    assert_eq!(error_condition(&r).as_deref(), Some("not-allowed"));
    let (_initiator, _) = socks(host.clone(), &hash).await;
    // A third connection for the same session is refused.
    let (mut third, reply) = socks(host, &hash).await;
    assert_eq!(reply[1], 1, "general failure");
    assert!(read_to_end(&mut third).await.is_empty());
    // Someone else cannot activate it: their JID is in the hash.
    let r = activate(&mut carol, &bob.jid).await;
    assert_eq!(error_condition(&r).as_deref(), Some("item-not-found"));
    // A malformed target.
    let r = activate(&mut alice, "@@").await;
    assert_eq!(error_condition(&r).as_deref(), Some("jid-malformed"));
    let r = activate(&mut alice, &bob.jid).await;
    assert_eq!(r.attr("type"), Some("result"));
    s.stop().await;
}

#[tokio::test]
async fn a_connection_never_activated_is_closed_at_its_timeout() {
    let mut c = config("p65-timeout");
    c.proxy65.activation_timeout = 1;
    let s = server(c).await;
    let mut alice = s.login("alice", None).await;
    let host = streamhost(&mut alice).await.expect("streamhost");
    let (mut lonely, reply) =
        socks(host, &session_hash("x", "a@localhost/1", "b@localhost/2")).await;
    assert_eq!(reply[1], 0);
    assert!(read_to_end(&mut lonely).await.is_empty());
    assert_eq!(s.handle.proxy65().expect("proxy").waiting(), 0);
    s.stop().await;
}

#[tokio::test]
async fn the_acl_and_the_per_user_limit_hold() {
    let mut c = config("p65-acl");
    c.proxy65.acl = vec!["admin@localhost".into()];
    c.proxy65.max_transfers_per_user = 1;
    let s = server(c).await;
    let mut alice = s.login("alice", None).await;
    assert_eq!(streamhost(&mut alice).await, Err("forbidden".into()));
    let mut admin = s.login("admin", Some("a")).await;
    let bob = s.login("bob", Some("b")).await;
    let host = streamhost(&mut admin).await.expect("the admin may");
    let mut held = Vec::new();
    for (sid, expect) in [("s1", "result"), ("s2", "error")] {
        let hash = session_hash(sid, &admin.jid, &bob.jid);
        held.push(socks(host.clone(), &hash).await.0);
        held.push(socks(host.clone(), &hash).await.0);
        let r = admin
            .iq(
                &format!(
                    "<iq type='set' id='act' to='{PROXY}'><query xmlns='{NS}' sid='{sid}'><activate>{}</activate></query></iq>",
                    bob.jid
                ),
                "act",
            )
            .await;
        assert_eq!(r.attr("type"), Some(expect), "{}", String::from(&r));
        if expect == "error" {
            assert_eq!(error_condition(&r).as_deref(), Some("resource-constraint"));
        }
    }
    s.stop().await;
}

/// Sets up an activated transfer from alice to bob: (initiator, target).
async fn activated(s: &TestServer) -> (TcpStream, TcpStream, Client) {
    let mut alice = s.login("alice", Some("send")).await;
    let bob = s.login("bob", Some("recv")).await;
    let host = streamhost(&mut alice).await.expect("streamhost");
    let hash = session_hash("s1", &alice.jid, &bob.jid);
    let (target, _) = socks(host.clone(), &hash).await;
    let (initiator, _) = socks(host, &hash).await;
    let r = activate(&mut alice, &bob.jid).await;
    assert_eq!(r.attr("type"), Some("result"));
    (initiator, target, alice)
}

#[tokio::test]
async fn the_rate_limit_holds_a_transfer_back() {
    let mut c = config("p65-rate");
    c.proxy65.max_bytes_per_second = 256 * 1024;
    let s = server(c).await;
    let (mut initiator, mut target, _alice) = activated(&s).await;
    let started = std::time::Instant::now();
    let writer = tokio::spawn(async move {
        initiator.write_all(&vec![7u8; 512 * 1024]).await.unwrap();
        initiator.shutdown().await.unwrap();
        initiator
    });
    let got = read_to_end(&mut target).await;
    assert_eq!(got.len(), 512 * 1024);
    // 512 KiB at 256 KiB/s cannot take less than two seconds (a lower
    // bound only: a slow machine makes it longer, never shorter).
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    drop(writer.await.unwrap());
    s.stop().await;
}

#[tokio::test]
async fn an_idle_transfer_is_closed() {
    let mut c = config("p65-idle");
    c.proxy65.idle_timeout = 1;
    let s = server(c).await;
    let (mut initiator, mut target, _alice) = activated(&s).await;
    // Nothing is sent either way: the proxy closes both.
    assert!(read_to_end(&mut target).await.is_empty());
    assert!(read_to_end(&mut initiator).await.is_empty());
    s.stop().await;
}
