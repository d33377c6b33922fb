//! Test support: an in-process server on a free port with a throwaway data
//! directory, and a small raw-XML client (rxml + minidom) that speaks
//! plaintext SASL PLAIN on loopback, binds and exchanges stanzas; the
//! helpers several test files share (accounts, mutual subscription, group
//! chat in [`muc`], barriers proving that nothing arrives, skipping a test
//! whose dependency is missing).
#![allow(dead_code)]

pub mod muc;

use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use conclave_server::config::{Config, ListenerSection};
use conclave_server::server::{add_user, start, ServerHandle};
use minidom::tree_builder::TreeBuilder;
use minidom::Element;
use rxml::{Parse, RawParser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const STREAMS: &str = "http://etherx.jabber.org/streams";
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const TIMEOUT: Duration = Duration::from_secs(10);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty data directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("conclave-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The test configuration: host `localhost`, port 0, plaintext PLAIN on loopback.
pub fn test_config(tag: &str) -> Config {
    let mut c = Config::default();
    c.server.data_dir = temp_dir(tag);
    c.server.require_encryption = false;
    c.server.allow_plaintext_auth = true;
    c.server.admins = vec!["admin@localhost".into()];
    c.listener = vec![ListenerSection {
        addr: "127.0.0.1:0".into(),
        direct_tls: false,
    }];
    // Test servers run side by side: the bytestreams proxy takes any port.
    c.proxy65.addr = "127.0.0.1:0".into();
    c
}

pub struct TestServer {
    pub handle: ServerHandle,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
}

impl TestServer {
    pub async fn start(tag: &str) -> TestServer {
        Self::start_with(test_config(tag)).await
    }

    pub async fn start_with(config: Config) -> TestServer {
        let data_dir = config.server.data_dir.clone();
        let handle = start(config).await.expect("server starts");
        let addr = handle.c2s_addrs()[0];
        TestServer {
            handle,
            addr,
            data_dir,
        }
    }

    /// Shuts the server down and removes its data directory.
    pub async fn stop(self) {
        self.handle.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }

    pub async fn add_user(&self, user: &str, password: &str) {
        let jid = jid::BareJid::new(&format!("{user}@localhost")).unwrap();
        add_user(self.handle.store().as_ref(), &jid, password)
            .await
            .unwrap();
    }

    pub async fn login(&self, user: &str, resource: Option<&str>) -> Client {
        Client::login(self.addr, user, "secret", resource).await
    }
}

/// A server on the test configuration with these accounts (password `secret`).
pub async fn server_with(tag: &str, users: &[&str]) -> TestServer {
    server_with_config(test_config(tag), users).await
}

/// A server on `config` with these accounts (password `secret`).
pub async fn server_with_config(config: Config, users: &[&str]) -> TestServer {
    let s = TestServer::start_with(config).await;
    for u in users {
        s.add_user(u, "secret").await;
    }
    s
}

/// Subscribes `a` to `b`'s presence and `b` to `a`'s, as clients do: each
/// request is answered by the other side.
pub async fn mutual_subscription(a: &mut Client, b: &mut Client, a_bare: &str, b_bare: &str) {
    one_way_subscription(a, b, a_bare, b_bare).await;
    one_way_subscription(b, a, b_bare, a_bare).await;
}

/// `x` asks for `y`'s presence and `y` approves.
async fn one_way_subscription(x: &mut Client, y: &mut Client, x_bare: &str, y_bare: &str) {
    x.send(&format!("<presence to='{y_bare}' type='subscribe'/>"))
        .await;
    let req = y
        .expect("subscribe", |e| {
            e.name() == "presence" && e.attr("type") == Some("subscribe")
        })
        .await;
    assert_eq!(req.attr("from"), Some(x_bare));
    y.send(&format!("<presence to='{x_bare}' type='subscribed'/>"))
        .await;
    x.expect("subscribed", |e| {
        e.name() == "presence" && e.attr("type") == Some("subscribed")
    })
    .await;
}

/// Skips a test whose dependency is missing: says so on the test
/// harness's own stderr (not captured, so the line shows in every run),
/// and fails instead when the environment variable `CI` is set.
pub fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{reason}, and CI is set: the dependency is required");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// A raw XMPP client.
pub struct Client {
    socket: TcpStream,
    parser: RawParser,
    tree: TreeBuilder,
    buf: Vec<u8>,
    pending: VecDeque<Element>,
    stash: VecDeque<Element>,
    closed: bool,
    /// Barrier pings sent so far (their ids).
    pings: usize,
    /// The bound full JID.
    pub jid: String,
}

pub fn header(to: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='{STREAMS}' to='{to}' version='1.0'>"
    )
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let socket = TcpStream::connect(addr).await.unwrap();
        Client {
            socket,
            parser: RawParser::new(),
            tree: TreeBuilder::new(),
            buf: Vec::new(),
            pending: VecDeque::new(),
            stash: VecDeque::new(),
            closed: false,
            pings: 0,
            jid: String::new(),
        }
    }

    /// Resets the parser (after a stream restart).
    pub fn restart(&mut self) {
        self.parser = RawParser::new();
        self.tree = TreeBuilder::new();
        self.buf.clear();
    }

    pub async fn send(&mut self, xml: &str) {
        self.socket.write_all(xml.as_bytes()).await.unwrap();
        self.socket.flush().await.unwrap();
    }

    /// Sends without failing on a closed socket.
    pub async fn try_send(&mut self, xml: &str) -> bool {
        self.socket.write_all(xml.as_bytes()).await.is_ok()
    }

    /// The next top-level element; `None` when the stream or socket closed.
    pub async fn next(&mut self) -> Option<Element> {
        tokio::time::timeout(TIMEOUT, self.next_inner())
            .await
            .expect("timed out waiting for a stanza")
    }

    /// The next top-level element within `d`, or `None` (nothing came or closed).
    pub async fn next_within(&mut self, d: Duration) -> Option<Element> {
        tokio::time::timeout(d, self.next_inner())
            .await
            .ok()
            .flatten()
    }

    async fn next_inner(&mut self) -> Option<Element> {
        loop {
            if let Some(el) = self.pending.pop_front() {
                return Some(el);
            }
            if self.closed {
                return None;
            }
            let mut chunk = [0u8; 8192];
            let n = self.socket.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                self.closed = true;
                continue;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let mut slice: &[u8] = &self.buf;
            loop {
                match self.parser.parse(&mut slice, false) {
                    Ok(Some(ev)) => {
                        let foot = matches!(ev, rxml::RawEvent::ElementFoot(_));
                        self.tree.process_event(ev).unwrap();
                        if foot {
                            if self.tree.depth() == 1 {
                                if let Some(el) = self.tree.unshift_child() {
                                    self.pending.push_back(el);
                                }
                            } else if self.tree.depth() == 0 {
                                self.closed = true;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(rxml::error::EndOrError::NeedMoreData) => break,
                    Err(e) => panic!("client parse error: {e:?}"),
                }
            }
            let consumed = self.buf.len() - slice.len();
            self.buf.drain(..consumed);
        }
    }

    /// The first element (set aside earlier, or read now) satisfying
    /// `pred`; the others read meanwhile are set aside for later `expect`s.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        if let Some(i) = self.stash.iter().position(&pred) {
            return self.stash.remove(i).unwrap();
        }
        loop {
            match self.next().await {
                Some(el) if pred(&el) => return el,
                Some(el) => self.stash.push_back(el),
                None => panic!("stream closed while waiting for {what}"),
            }
        }
    }

    /// A fresh barrier ping to `to`: the request and its id.
    fn barrier_ping(&mut self, to: &str) -> (String, String) {
        self.pings += 1;
        let id = format!("barrier-{}", self.pings);
        let iq = format!("<iq type='get' id='{id}' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>");
        (iq, id)
    }

    /// A round trip through this session: a ping to the server and its
    /// result. Elements read meanwhile are set aside for later `expect`s.
    ///
    /// The session handles its client's stanzas one at a time, and routing
    /// one (to another session's queue, to storage...) is done before the
    /// next is read. So once the result is here, everything this client sent
    /// before has had its effects on every other session's queue: a
    /// [`Client::nothing`] on the other session then covers them.
    pub async fn sync(&mut self) {
        self.sync_via("localhost").await;
    }

    /// A round trip through `to` (which answers pings, e.g. a room):
    /// everything this client sent to `to` before has been handled there
    /// once the answer (result or error) is here. Elements read meanwhile
    /// are set aside for later `expect`s.
    pub async fn sync_via(&mut self, to: &str) {
        let (iq, id) = self.barrier_ping(to);
        self.iq(&iq, &id).await;
    }

    /// Asserts that nothing matching `pred` arrives, with a barrier rather
    /// than a wait: a ping to the server, then reading up to its result;
    /// anything matching before it fails the test. Other elements read
    /// meanwhile are dropped.
    ///
    /// Sound because the session's queue is ordered and the result is
    /// queued only when the ping is handled, after every stanza this client
    /// sent before: whatever those (or anything queued for the session
    /// earlier) produced for this client comes first. Effects of another
    /// session's stanzas are covered once that session was synced first
    /// ([`Client::sync`], or [`Client::sync_via`] for a room's effects).
    pub async fn nothing(&mut self, what: &str, pred: impl Fn(&Element) -> bool) {
        let (iq, id) = self.barrier_ping("localhost");
        self.send(&iq).await;
        loop {
            let Some(e) = self.next().await else {
                panic!("stream closed while checking that no {what} arrives");
            };
            if e.name() == "iq"
                && e.attr("id") == Some(id.as_str())
                && matches!(e.attr("type"), Some("result" | "error"))
            {
                assert_eq!(
                    e.attr("type"),
                    Some("result"),
                    "barrier ping: {}",
                    String::from(&e)
                );
                return;
            }
            assert!(!pred(&e), "unexpected {what}: {}", String::from(&e));
        }
    }

    /// Reads until the stream closes; returns the stream error condition seen, if any.
    pub async fn expect_stream_error(&mut self) -> Option<String> {
        let mut cond = None;
        while let Some(el) = self.next().await {
            if el.is("error", STREAMS) {
                cond = el
                    .children()
                    .find(|c| c.ns() == STREAM_ERRORS && c.name() != "text")
                    .map(|c| c.name().to_owned());
            }
        }
        cond
    }

    /// Opens the stream and authenticates with PLAIN; returns the client
    /// before binding.
    pub async fn authenticate(addr: SocketAddr, user: &str, password: &str) -> Client {
        let mut c = Client::connect(addr).await;
        c.send(&header("localhost")).await;
        c.expect("features", |e| e.is("features", STREAMS)).await;
        let creds =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        c.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
        ))
        .await;
        let r = c.next().await.expect("SASL answer");
        assert_eq!(
            r.name(),
            "success",
            "authentication failed: {}",
            String::from(&r)
        );
        c.restart();
        c.send(&header("localhost")).await;
        c.expect("post-auth features", |e| e.is("features", STREAMS))
            .await;
        c
    }

    /// Binds a resource (server-chosen when `None`); returns the bound JID.
    pub async fn bind(&mut self, resource: Option<&str>) -> String {
        let res = resource
            .map(|r| format!("<resource>{r}</resource>"))
            .unwrap_or_default();
        self.send(&format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{res}</bind></iq>"
        ))
        .await;
        let r = self
            .expect("bind result", |e| {
                e.name() == "iq" && e.attr("id") == Some("bind1")
            })
            .await;
        assert_eq!(
            r.attr("type"),
            Some("result"),
            "bind failed: {}",
            String::from(&r)
        );
        let jid = r
            .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .and_then(|b| b.get_child("jid", "urn:ietf:params:xml:ns:xmpp-bind"))
            .map(|j| j.text())
            .expect("bound jid");
        self.jid = jid.clone();
        jid
    }

    pub async fn login(
        addr: SocketAddr,
        user: &str,
        password: &str,
        resource: Option<&str>,
    ) -> Client {
        let mut c = Client::authenticate(addr, user, password).await;
        c.bind(resource).await;
        c
    }

    /// Sends an iq and waits for its answer.
    pub async fn iq(&mut self, xml: &str, id: &str) -> Element {
        self.send(xml).await;
        self.expect("iq answer", |e| {
            e.name() == "iq"
                && e.attr("id") == Some(id)
                && matches!(e.attr("type"), Some("result" | "error"))
        })
        .await
    }

    /// Sends initial presence and waits for its reflection.
    pub async fn available(&mut self) {
        self.send("<presence/>").await;
        let me = self.jid.clone();
        self.expect("own presence", |e| {
            e.name() == "presence"
                && e.attr("from") == Some(me.as_str())
                && e.attr("type").is_none()
        })
        .await;
    }

    pub async fn close(mut self) {
        let _ = self.try_send("</stream:stream>").await;
        while self.next_within(Duration::from_secs(2)).await.is_some() {}
    }
}

/// The defined condition of a stanza error.
pub fn error_condition(el: &Element) -> Option<String> {
    let err = el.get_child("error", "jabber:client")?;
    err.children()
        .find(|c| c.ns() == STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

/// Runs a slixmpp scenario from `tests/interop/` against a fresh server
/// that requires STARTTLS (no plaintext authentication), with the accounts
/// `alice` and `bob` (password `secret`), and checks that its output has
/// every expected step. Skipped with a message when slixmpp is not
/// installed, unless the environment variable `CI` is set.
pub async fn run_slixmpp_scenario(tag: &str, script: &str, steps: &[&str]) {
    let available = std::process::Command::new("python3")
        .args(["-c", "import slixmpp"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !available {
        skip("slixmpp is not installed (pip install slixmpp)");
        return;
    }
    let mut config = test_config(tag);
    config.server.require_encryption = true;
    config.server.allow_plaintext_auth = false;
    let server = TestServer::start_with(config).await;
    server.add_user("alice", "secret").await;
    server.add_user("bob", "secret").await;

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop")
        .join(script);
    let port = server.addr.port().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args(["--port", &port])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "scenario failed:\n{stdout}\n{stderr}"
    );
    for step in steps {
        assert!(stdout.contains(step), "missing step {step:?} in:\n{stdout}");
    }
    server.stop().await;
}
