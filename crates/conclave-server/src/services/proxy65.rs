//! SOCKS5 bytestreams proxy (XEP-0065), a component at its own domain
//! (`proxy.<host>` by default) with its own TCP listener, for file
//! transfers between clients that cannot reach each other.
//!
//! As Prosody's proxy does it: a client asks the component for its
//! streamhost (who may is the ACL: local users by default); both parties
//! connect to the listener and name the same session by the SHA-1 of the
//! stream id, the initiator's JID and the target's JID; the first to
//! arrive is held as the target, the second as the initiator; then the
//! initiator activates the pair with an IQ, whose `from` enters the hash,
//! so that nobody else can. The proxy then relays bytes both ways, a
//! bounded buffer at a time. Limits: transfers per user, bytes per second,
//! how long a connection may wait for activation, and idle time.
//!
//! The `http://jabber.org/protocol/bytestreams` payloads are built by
//! hand: xmpp-parsers has no type for them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jid::{BareJid, Jid};
use minidom::Element;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity};
use xmpp_parsers::stanza_error::{DefinedCondition as Cond, ErrorType};

use crate::config::Config;
use crate::hub::router::{Component, Outlet};
use crate::xml::{error_reply, error_reply_of, iq_result, nc, stanza_type};

pub const NS: &str = "http://jabber.org/protocol/bytestreams";
const INFO: &str = "http://jabber.org/protocol/disco#info";
const ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// Bytes relayed at a time in each direction: a slow reader holds the
/// writer back instead of making the proxy buffer.
const CHUNK: usize = 16 * 1024;

/// What the proxy is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub domain: String,
    pub name: String,
    pub listen: SocketAddr,
    pub public_host: Option<String>,
    pub public_port: Option<u16>,
    pub acl: Vec<Jid>,
    pub open_access: bool,
    pub local_hosts: Vec<String>,
    pub max_transfers_per_user: usize,
    pub max_bytes_per_second: u64,
    pub activation_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Settings {
    /// The settings of `[proxy65]`; `None` when it is disabled (or its
    /// address does not parse, which `check` reports).
    pub fn from_config(config: &Config) -> Option<Settings> {
        let p = &config.proxy65;
        if !p.enabled {
            return None;
        }
        Some(Settings {
            domain: config.proxy65_domain(),
            name: "SOCKS5 Bytestreams Service".to_owned(),
            listen: p.addr.parse().ok()?,
            public_host: p.public_host.clone(),
            public_port: p.public_port,
            acl: p.acl.iter().filter_map(|a| Jid::new(a).ok()).collect(),
            open_access: p.open_access,
            local_hosts: config.hosts(),
            max_transfers_per_user: p.max_transfers_per_user,
            max_bytes_per_second: p.max_bytes_per_second,
            activation_timeout: Duration::from_secs(p.activation_timeout.max(1)),
            idle_timeout: Duration::from_secs(p.idle_timeout.max(1)),
        })
    }
}

/// One connection waiting to be paired and activated.
struct Waiting {
    id: u64,
    stream: TcpStream,
}

/// The connections that named one session hash.
struct Pair {
    target: Waiting,
    initiator: Option<Waiting>,
}

#[derive(Default)]
struct Table {
    pairs: HashMap<String, Pair>,
    /// Running transfers per initiating user.
    running: HashMap<BareJid, usize>,
    next_id: u64,
}

/// The proxy component. Cloning shares it.
#[derive(Clone)]
pub struct Proxy65 {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    /// The announced host and port, once listening.
    streamhost: OnceLock<(String, u16)>,
    table: Mutex<Table>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

/// Whether `jid` matches an ACL entry: the same domain, and the same
/// user and resource where the entry names them.
fn acl_matches(jid: &Jid, entry: &Jid) -> bool {
    jid.domain() == entry.domain()
        && entry.node().is_none_or(|n| jid.node() == Some(n))
        && entry.resource().is_none_or(|r| jid.resource() == Some(r))
}

/// The session hash of XEP-0065 section 5.3.2: hex SHA-1 of the stream
/// id, the initiator's JID and the target's JID.
pub fn session_hash(sid: &str, initiator: &str, target: &str) -> String {
    let digest = Sha1::digest(format!("{sid}{initiator}{target}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Proxy65 {
    pub fn new(settings: Settings) -> Proxy65 {
        Proxy65 {
            inner: Arc::new(Inner {
                settings,
                streamhost: OnceLock::new(),
                table: Mutex::new(Table::default()),
                accept: Mutex::new(None),
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.inner.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address the SOCKS5 listener is bound to, once started.
    pub fn streamhost(&self) -> Option<(String, u16)> {
        self.inner.streamhost.get().cloned()
    }

    /// Connections waiting for activation (for tests and diagnostics).
    pub fn waiting(&self) -> usize {
        self.table()
            .pairs
            .values()
            .map(|p| 1 + usize::from(p.initiator.is_some()))
            .sum()
    }

    fn may_use(&self, from: &Jid) -> bool {
        let s = &self.inner.settings;
        if !s.acl.is_empty() {
            return s.acl.iter().any(|a| acl_matches(from, a));
        }
        s.open_access
            || (from.node().is_some() && s.local_hosts.iter().any(|h| h == from.domain().as_str()))
    }

    fn disco_info(&self) -> Element {
        DiscoInfoResult {
            node: None,
            identities: vec![Identity {
                category: "proxy".to_owned(),
                type_: "bytestreams".to_owned(),
                lang: None,
                name: Some(self.inner.settings.name.clone()),
            }],
            features: [INFO, NS].iter().map(|f| (*f).to_owned()).collect(),
            extensions: Vec::new(),
        }
        .into()
    }

    /// The streamhost request (XEP-0065 section 5.3.1).
    fn streamhost_reply(&self, iq: &Element, query: &Element, from: &Jid) -> Option<Element> {
        if !self.may_use(from) {
            tracing::warn!("denying use of the bytestreams proxy to {from}");
            return error_reply(iq, Cond::Forbidden, None);
        }
        let Some((host, port)) = self.streamhost() else {
            return error_reply_of(
                iq,
                ErrorType::Wait,
                Cond::ItemNotFound,
                Some("Not listening on any port"),
            );
        };
        let streamhost = Element::builder("streamhost", NS)
            .attr(nc("jid"), self.inner.settings.domain.as_str())
            .attr(nc("host"), host)
            .attr(nc("port"), port.to_string())
            .build();
        let mut q = Element::builder("query", NS);
        if let Some(sid) = query.attr("sid") {
            q = q.attr(nc("sid"), sid);
        }
        Some(iq_result(iq, None, Some(q.append(streamhost).build())))
    }

    /// Activation by the initiator (XEP-0065 section 5.3.3).
    fn activate(&self, iq: &Element, query: &Element, from: &Jid) -> Option<Element> {
        let sid = query.attr("sid");
        let target = query.get_child("activate", NS).map(|a| a.text());
        let (sid, target) = match (sid, target) {
            (Some(sid), Some(t)) => match Jid::new(t.trim()) {
                Ok(j) => (sid, j),
                Err(_) => return error_reply(iq, Cond::JidMalformed, None),
            },
            _ => return error_reply(iq, Cond::BadRequest, None),
        };
        let hash = session_hash(sid, from.as_str(), target.as_str());
        let user = from.to_bare();
        let pair = {
            let mut table = self.table();
            match table.pairs.get(&hash) {
                None => {
                    tracing::debug!("bytestreams activation with an unknown session from {from}");
                    return error_reply_of(iq, ErrorType::Modify, Cond::ItemNotFound, None);
                }
                Some(p) if p.initiator.is_none() => {
                    return error_reply(
                        iq,
                        Cond::NotAllowed,
                        Some("The sender (you) is not connected to the proxy"),
                    );
                }
                Some(_) => {}
            }
            let running = table.running.get(&user).copied().unwrap_or(0);
            if running >= self.inner.settings.max_transfers_per_user {
                return error_reply(iq, Cond::ResourceConstraint, Some("Too many transfers"));
            }
            *table.running.entry(user.clone()).or_insert(0) += 1;
            table.pairs.remove(&hash)
        };
        let Some(Pair {
            target,
            initiator: Some(initiator),
        }) = pair
        else {
            return error_reply_of(iq, ErrorType::Modify, Cond::ItemNotFound, None);
        };
        tracing::debug!("bytestreams transfer activated by {from}");
        let proxy = self.clone();
        tokio::spawn(async move {
            relay(
                target.stream,
                initiator.stream,
                proxy.inner.settings.max_bytes_per_second,
                proxy.inner.settings.idle_timeout,
            )
            .await;
            let mut table = proxy.table();
            if let Some(n) = table.running.get_mut(&user) {
                *n -= 1;
                if *n == 0 {
                    table.running.remove(&user);
                }
            }
        });
        Some(iq_result(iq, None, None))
    }

    fn handle(&self, stanza: &Element, to: &Jid) -> Option<Element> {
        let t = stanza_type(stanza);
        if stanza.name() != "iq" {
            return match (stanza.name(), t) {
                ("message", "error" | "groupchat" | "headline") | ("presence", _) => None,
                _ => error_reply(stanza, Cond::ServiceUnavailable, None),
            };
        }
        if !matches!(t, "get" | "set") {
            return None;
        }
        let from = Jid::new(stanza.attr("from")?).ok()?;
        let Some(payload) = stanza.children().next() else {
            return error_reply(stanza, Cond::BadRequest, None);
        };
        if to.node().is_some() {
            return error_reply(stanza, Cond::ServiceUnavailable, None);
        }
        match (t, payload.ns().as_str(), payload.name()) {
            ("get", INFO, "query") => {
                if payload.attr("node").is_some() {
                    return error_reply(stanza, Cond::ItemNotFound, None);
                }
                Some(iq_result(stanza, None, Some(self.disco_info())))
            }
            ("get", ITEMS, "query") => {
                let empty = DiscoItemsResult {
                    node: None,
                    items: Vec::new(),
                    rsm: None,
                };
                Some(iq_result(stanza, None, Some(empty.into())))
            }
            ("get", NS, "query") => self.streamhost_reply(stanza, payload, &from),
            ("set", NS, "query") => self.activate(stanza, payload, &from),
            _ => error_reply(stanza, Cond::ServiceUnavailable, None),
        }
    }

    async fn accept_loop(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let proxy = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = proxy.connection(socket).await {
                            tracing::debug!("bytestreams connection from {peer}: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("bytestreams proxy cannot accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// One SOCKS5 connection: the handshake, then it waits to be paired
    /// and activated, and is closed when its time runs out.
    async fn connection(&self, mut socket: TcpStream) -> std::io::Result<()> {
        let timeout = self.inner.settings.activation_timeout;
        let hash = match tokio::time::timeout(timeout, handshake(&mut socket)).await {
            Ok(r) => r?,
            Err(_) => return Err(std::io::Error::other("no SOCKS5 request in time")),
        };
        // A hash with two connections already is refused.
        if self
            .table()
            .pairs
            .get(&hash)
            .is_some_and(|p| p.initiator.is_some())
        {
            socket.write_all(&FAILURE).await?;
            return Err(std::io::Error::other("a third connection for one session"));
        }
        let mut reply = vec![5, 0, 0, 3, 40];
        reply.extend_from_slice(hash.as_bytes());
        reply.extend_from_slice(&[0, 0]);
        socket.write_all(&reply).await?;
        let id = {
            let mut table = self.table();
            table.next_id += 1;
            let id = table.next_id;
            let waiting = Waiting { id, stream: socket };
            match table.pairs.get_mut(&hash) {
                None => {
                    table.pairs.insert(
                        hash.clone(),
                        Pair {
                            target: waiting,
                            initiator: None,
                        },
                    );
                }
                Some(p) if p.initiator.is_none() => p.initiator = Some(waiting),
                // Taken meanwhile: dropping it closes it.
                Some(_) => return Err(std::io::Error::other("a third connection for one session")),
            }
            id
        };
        // Not activated in time: the pair is dropped, which closes both.
        tokio::time::sleep(timeout).await;
        let mut table = self.table();
        let expired = table
            .pairs
            .get(&hash)
            .is_some_and(|p| p.target.id == id || p.initiator.as_ref().is_some_and(|i| i.id == id));
        if expired {
            table.pairs.remove(&hash);
            tracing::debug!("bytestreams session not activated in time");
        }
        Ok(())
    }
}

/// SOCKS5 "general failure" to a CONNECT request.
const FAILURE: [u8; 7] = [5, 1, 0, 3, 0, 0, 0];

/// The SOCKS5 greeting and CONNECT request of XEP-0065: no
/// authentication, a 40-character domain name (the session hash), port 0.
/// Returns the hash.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(socket: &mut S) -> std::io::Result<String> {
    let mut head = [0u8; 2];
    socket.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    socket.read_exact(&mut methods).await?;
    if head[0] != 5 || methods.is_empty() || !methods.contains(&0) {
        socket.write_all(&[5, 0xff]).await?;
        return Err(std::io::Error::other("no acceptable SOCKS5 method"));
    }
    socket.write_all(&[5, 0]).await?;
    let mut request = [0u8; 5];
    socket.read_exact(&mut request).await?;
    if request != [5, 1, 0, 3, 40] {
        socket.write_all(&FAILURE).await?;
        return Err(std::io::Error::other("not a XEP-0065 CONNECT request"));
    }
    let mut rest = [0u8; 42];
    socket.read_exact(&mut rest).await?;
    let hash = &rest[..40];
    if rest[40..] != [0, 0] || !hash.iter().all(|b| b.is_ascii_hexdigit()) {
        socket.write_all(&FAILURE).await?;
        return Err(std::io::Error::other("not a XEP-0065 session hash"));
    }
    // Hex digits are ASCII.
    Ok(String::from_utf8_lossy(hash).to_ascii_lowercase())
}

/// Relays bytes between the two connections until both directions end,
/// either fails, or nothing moves for `idle`.
async fn relay(a: TcpStream, b: TcpStream, rate: u64, idle: Duration) {
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    let both = async {
        tokio::join!(
            pump(ar, bw, rate, started, last.clone()),
            pump(br, aw, rate, started, last.clone())
        )
    };
    let watchdog = async {
        loop {
            tokio::time::sleep(idle / 4).await;
            let quiet =
                (started.elapsed().as_millis() as u64).saturating_sub(last.load(Ordering::Relaxed));
            if quiet >= idle.as_millis() as u64 {
                tracing::debug!("bytestreams transfer idle for too long");
                return;
            }
        }
    };
    tokio::select! {
        _ = both => {}
        _ = watchdog => {}
    }
}

/// Copies one direction, a chunk at a time, at most `rate` bytes per
/// second (0: no limit); half-closes the writer at the end.
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut from: R,
    mut to: W,
    rate: u64,
    started: Instant,
    last: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; CHUNK];
    let begun = Instant::now();
    let mut total: u64 = 0;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        total += n as u64;
        last.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        if rate > 0 {
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            let spent = begun.elapsed();
            if due > spent {
                tokio::time::sleep(due - spent).await;
            }
        }
    }
    let _ = to.shutdown().await;
}

#[async_trait]
impl Component for Proxy65 {
    fn domain(&self) -> &str {
        &self.inner.settings.domain
    }

    fn disco_name(&self) -> Option<&str> {
        Some(&self.inner.settings.name)
    }

    async fn start(&self, _outlet: Weak<dyn Outlet>) -> anyhow::Result<()> {
        let s = &self.inner.settings;
        // As Prosody's port manager: a port that cannot be had is logged,
        // and the component answers that it listens on no port.
        let listener = match TcpListener::bind(s.listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("bytestreams proxy cannot listen on {}: {e}", s.listen);
                return Ok(());
            }
        };
        let bound = listener.local_addr()?;
        let host = s.public_host.clone().unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                s.domain.clone()
            } else {
                bound.ip().to_string()
            }
        });
        let port = s.public_port.unwrap_or(bound.port());
        let _ = self.inner.streamhost.set((host, port));
        tracing::info!("bytestreams proxy {} listening on {bound}", s.domain);
        let task = tokio::spawn(self.clone().accept_loop(listener));
        if let Ok(mut a) = self.inner.accept.lock() {
            *a = Some(task);
        }
        Ok(())
    }

    async fn deliver(&self, stanza: Element, to: &Jid) -> Vec<Element> {
        self.handle(&stanza, to).into_iter().collect()
    }

    async fn shutdown(&self) {
        if let Some(task) = self.inner.accept.lock().ok().and_then(|mut a| a.take()) {
            task.abort();
        }
        self.table().pairs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_hash_is_hex_sha1() {
        // XEP-0065 example: SHA1(sid + initiator + target).
        let h = session_hash(
            "vxf9n471bn46",
            "requester@example.com/foo",
            "target@example.org/bar",
        );
        assert_eq!(h.len(), 40);
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(
            h,
            session_hash(
                "other",
                "requester@example.com/foo",
                "target@example.org/bar"
            )
        );
    }

    #[test]
    fn acl_entries_match_by_domain_user_and_resource() {
        let j = |s: &str| Jid::new(s).unwrap();
        assert!(acl_matches(&j("a@h/r"), &j("h")));
        assert!(acl_matches(&j("a@h/r"), &j("a@h")));
        assert!(!acl_matches(&j("b@h/r"), &j("a@h")));
        assert!(acl_matches(&j("a@h/r"), &j("a@h/r")));
        assert!(!acl_matches(&j("a@h/s"), &j("a@h/r")));
        assert!(!acl_matches(&j("a@other/r"), &j("h")));
    }

    #[tokio::test]
    async fn handshake_accepts_xep0065_and_refuses_the_rest() {
        let hash = session_hash("s", "a@h/r", "b@h/r");
        let (mut client, mut server) = tokio::io::duplex(256);
        let mut msg = vec![5, 1, 0, 5, 1, 0, 3, 40];
        msg.extend_from_slice(hash.as_bytes());
        msg.extend_from_slice(&[0, 0]);
        client.write_all(&msg).await.unwrap();
        assert_eq!(handshake(&mut server).await.unwrap(), hash);
        let mut reply = [0u8; 2];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, [5, 0]);

        // Only username/password offered: no acceptable method.
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(&[5, 1, 2]).await.unwrap();
        assert!(handshake(&mut server).await.is_err());
        let mut reply = [0u8; 2];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, [5, 0xff]);

        // An IPv4 CONNECT is not a session hash.
        let (mut client, mut server) = tokio::io::duplex(256);
        client
            .write_all(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80])
            .await
            .unwrap();
        assert!(handshake(&mut server).await.is_err());
        let mut reply = [0u8; 9];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply[2..], &FAILURE);
    }
}
