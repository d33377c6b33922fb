//! The life of one client session after authentication: resource binding
//! (RFC 6120 section 7, with replacement of an existing session using the
//! same resource), the optional legacy `<session/>`, then the loop that
//! reads the client's stanzas (stamping `from` with the session's full JID) and writes the
//! stanzas queued for it, until the stream ends. Everything a client sends
//! goes to the router ([`Router::from_session`]); the modules learn of the
//! session's start and end through the router too.

use std::sync::Arc;
use std::time::Duration;

use jid::{BareJid, FullJid, Jid, ResourcePart};
use minidom::Element;
use rand::Rng;
use tokio::sync::{mpsc, watch};
use xmpp_parsers::bind::{BindQuery, BindResponse};
use xmpp_parsers::stanza_error::DefinedCondition as Cond;
use xmpp_parsers::stream_error::DefinedCondition as StreamCond;

use crate::edge::negotiate::Authenticated;
use crate::edge::stream::XmlStream;
use crate::hub::module::SessionRef;
use crate::hub::router::Router;
use crate::hub::sessions::{Outbound, SessionControl, TooManySessions};
use crate::xml::{error_reply, first_child, iq_result, remove_attr, set_attr, stanza_type, CLIENT};

const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";

/// Time a write may take before the peer is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed between authentication and resource binding.
const BIND_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed for writing the closing stream error.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Closes the stream (with a stream error if given), without waiting
/// forever on a peer that does not read.
async fn close(stream: &mut XmlStream, reason: Option<Fatal>) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.close(reason)).await;
}

/// Sends one stanza; `false` when the stream is gone or the write timed out.
async fn send(stream: &mut XmlStream, el: &Element) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, stream.send(el)).await,
        Ok(Ok(()))
    )
}

/// A stream error that ends the session.
type Fatal = (StreamCond, String);

fn fatal(cond: StreamCond, text: &str) -> Fatal {
    (cond, text.to_owned())
}

/// A server-chosen resource.
fn random_resource() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("conclave-{n:016x}")
}

/// What a bind request asks for.
#[derive(Debug, PartialEq)]
enum BindRequest {
    Resource(String),
    Invalid,
}

fn parse_bind(iq: &Element) -> Option<BindRequest> {
    if iq.name() != "iq" || stanza_type(iq) != "set" {
        return None;
    }
    let bind = first_child(iq).filter(|c| c.is("bind", BIND))?;
    let Ok(query) = BindQuery::try_from(bind.clone()) else {
        return Some(BindRequest::Invalid);
    };
    match query.resource {
        None => Some(BindRequest::Resource(random_resource())),
        Some(r) if r.trim().is_empty() => Some(BindRequest::Resource(random_resource())),
        Some(r) => match ResourcePart::new(&r) {
            Ok(part) => Some(BindRequest::Resource(part.as_str().to_owned())),
            Err(_) => Some(BindRequest::Invalid),
        },
    }
}

/// Resource binding (RFC 6120 section 7): nothing else is accepted before
/// it. Returns the bound JID and the request to answer, or `None` when the
/// stream ended (closed here as it must be).
async fn bind(
    stream: &mut XmlStream,
    jid: &BareJid,
    peer: std::net::SocketAddr,
    shutdown: &mut watch::Receiver<bool>,
    deadline: tokio::time::Instant,
) -> Option<(FullJid, Element)> {
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout_at(deadline, stream.next_stanza()) => match n {
                Ok(n) => n,
                Err(_) => {
                    close(stream, Some(fatal(StreamCond::ConnectionTimeout, "No resource bound in time"))).await;
                    return None;
                }
            },
            _ = shutdown.changed() => {
                close(stream, Some(fatal(StreamCond::SystemShutdown, "Server shutting down"))).await;
                return None;
            }
        };
        let el = match next {
            Ok(Some(el)) => el,
            Ok(None) => {
                close(stream, None).await;
                return None;
            }
            Err(e) => {
                tracing::debug!("{peer}: stream ended before bind: {e}");
                return None;
            }
        };
        let full = match parse_bind(&el) {
            Some(BindRequest::Resource(r)) => jid.with_resource_str(&r).ok(),
            Some(BindRequest::Invalid) => None,
            None => {
                close(
                    stream,
                    Some(fatal(StreamCond::NotAuthorized, "Bind a resource first")),
                )
                .await;
                return None;
            }
        };
        match full {
            Some(full) => return Some((full, el)),
            None => {
                if let Some(e) = error_reply(&el, Cond::BadRequest, Some("Invalid resource")) {
                    send(stream, &e).await;
                }
            }
        }
    }
}

/// Runs one session to its end. `shutdown` turning true closes it with
/// `system-shutdown`; `_alive` is dropped when the session is over.
pub async fn run(
    auth: Authenticated,
    router: Arc<Router>,
    mut shutdown: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let Authenticated {
        mut stream,
        jid,
        peer,
    } = auth;
    let deadline = tokio::time::Instant::now() + BIND_TIMEOUT;
    let control = Arc::new(SessionControl::default());
    let (full, bind_iq, id, rx) = loop {
        let Some((full, bind_iq)) = bind(&mut stream, &jid, peer, &mut shutdown, deadline).await
        else {
            return;
        };
        match router.sessions().register(&full, control.clone()) {
            Ok((id, rx)) => break (full, bind_iq, id, rx),
            // RFC 6120 7.6.2.1: the account has reached its limit.
            Err(TooManySessions) => {
                let text = "Too many sessions for this account";
                if let Some(e) = error_reply(&bind_iq, Cond::ResourceConstraint, Some(text)) {
                    send(&mut stream, &e).await;
                }
            }
        }
    };
    let bound = BindResponse { jid: full.clone() };
    let mut reply = iq_result(&bind_iq, None, Some(bound.into()));
    remove_attr(&mut reply, "to");
    remove_attr(&mut reply, "from");
    if !send(&mut stream, &reply).await {
        router.sessions().unregister(&full, id);
        return;
    }
    let session = SessionRef::new(id, full);
    router.session_bound(&session).await;
    tracing::info!("{peer}: session {} started", session.full);
    let end = session_loop(&mut stream, &router, &session, rx, &control, &mut shutdown).await;
    // Leaving: the modules send what they must (unavailable presence)
    // while the session is still registered as this id; then it goes.
    router.session_ended(&session).await;
    match end {
        End::Fatal(cond) => close(&mut stream, Some(cond)).await,
        End::Closed => close(&mut stream, None).await,
        End::Broken => {}
    }
    tracing::info!("{peer}: session {} ended", session.full);
}

enum End {
    /// Close with this stream error.
    Fatal(Fatal),
    /// The peer closed the stream: close ours.
    Closed,
    /// The stream is already gone (error already sent, or socket closed).
    Broken,
}

async fn session_loop(
    stream: &mut XmlStream,
    router: &Router,
    session: &SessionRef,
    mut rx: mpsc::Receiver<Outbound>,
    control: &SessionControl,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    loop {
        tokio::select! {
            biased;
            reason = control.kicked() => {
                let reason = reason.unwrap_or_else(|| fatal(StreamCond::PolicyViolation, "Session closed by the server"));
                // A session closed for not reading its queue is not made
                // to wait for that queue to be written.
                if reason.0 == StreamCond::PolicyViolation {
                    return End::Fatal(reason);
                }
                return flush_then(stream, &mut rx, End::Fatal(reason)).await;
            }
            _ = shutdown.changed() => {
                let end = End::Fatal(fatal(StreamCond::SystemShutdown, "Server shutting down"));
                return flush_then(stream, &mut rx, end).await;
            }
            out = rx.recv() => {
                let Some(out) = out else {
                    return End::Closed;
                };
                let mut buf = Vec::new();
                encode(&out, &mut buf);
                // Whatever else is already queued goes out in the same write.
                while buf.len() < BATCH_BYTES {
                    match rx.try_recv() {
                        Ok(more) => encode(&more, &mut buf),
                        Err(_) => break,
                    }
                }
                // A peer that stops reading blocks the write: it is then
                // dropped after the timeout, or as soon as it is kicked.
                tokio::select! {
                    r = tokio::time::timeout(WRITE_TIMEOUT, stream.send_bytes(&buf)) => {
                        if !matches!(r, Ok(Ok(()))) {
                            return End::Broken;
                        }
                    }
                    reason = control.kicked() => {
                        let reason = reason.unwrap_or_else(|| fatal(StreamCond::PolicyViolation, "Session closed by the server"));
                        return End::Fatal(reason);
                    }
                }
            }
            next = stream.next_stanza() => match next {
                Ok(Some(el)) => {
                    match inbound(router, session, el).await {
                        Ok(replies) => {
                            for r in replies {
                                if !send(stream, &r).await {
                                    return End::Broken;
                                }
                            }
                        }
                        Err(f) => return End::Fatal(f),
                    }
                }
                Ok(None) => return End::Closed,
                Err(e) => {
                    tracing::debug!("{}: stream error: {e}", session.full);
                    return End::Broken;
                }
            }
        }
    }
}

/// Upper bound on the bytes gathered from the outbound queue into one write.
const BATCH_BYTES: usize = 64 * 1024;

/// Appends the bytes of one queued stanza to `buf`.
fn encode(out: &Outbound, buf: &mut Vec<u8>) {
    out.encode(buf);
}

/// Writes what is still queued for the session (e.g. the rooms' status
/// 332 presences at shutdown) before it closes, within the write timeout;
/// a peer that does not read in time makes the stream `Broken`.
async fn flush_then(stream: &mut XmlStream, rx: &mut mpsc::Receiver<Outbound>, end: End) -> End {
    let mut buf = Vec::new();
    while let Ok(out) = rx.try_recv() {
        encode(&out, &mut buf);
    }
    if buf.is_empty() {
        return end;
    }
    match tokio::time::timeout(WRITE_TIMEOUT, stream.send_bytes(&buf)).await {
        Ok(Ok(())) => end,
        _ => End::Broken,
    }
}

/// Stamps `from` with the session's full JID (RFC 6120 8.1.2.1). A `from`
/// that names anything else (another resource, another account, a room
/// nickname) is rewritten rather than refused, and the stream stays open,
/// as Prosody's router does for every client stanza.
pub fn stamp_from(session: &SessionRef, el: &mut Element) {
    set_attr(el, "from", session.full.as_str());
}

/// RFC 6120 8.2.3: an id, a known type, exactly one payload in a get or
/// set, at most one in a result.
fn valid_iq(iq: &Element) -> bool {
    let payloads = iq.children().count();
    iq.attr("id").is_some()
        && match stanza_type(iq) {
            "get" | "set" => payloads == 1,
            "result" => payloads <= 1,
            "error" => true,
            _ => false,
        }
}

/// Handles one element from the client. Returns replies for this stream
/// only (everything else is routed), or a fatal stream error.
async fn inbound(
    router: &Router,
    session: &SessionRef,
    mut el: Element,
) -> Result<Vec<Element>, Fatal> {
    if el.ns() != CLIENT || !matches!(el.name(), "message" | "presence" | "iq") {
        return Err(fatal(
            StreamCond::UnsupportedStanzaType,
            "Only message, presence and iq are supported",
        ));
    }
    stamp_from(session, &mut el);
    // Legacy session establishment (RFC 3921), and repeated binds.
    if el.name() == "iq" && stanza_type(&el) == "set" {
        if let Some(child) = first_child(&el) {
            if child.is("session", SESSION) {
                let mut r = iq_result(&el, None, None);
                remove_attr(&mut r, "from");
                return Ok(vec![r]);
            }
            if child.is("bind", BIND) {
                return Ok(reply(&el, Cond::NotAllowed, "A resource is already bound"));
            }
        }
    }
    if el.name() == "iq" && !valid_iq(&el) {
        return Ok(reply(&el, Cond::BadRequest, "Invalid IQ (RFC 6120 8.2.3)"));
    }
    if el.attr("to").is_some_and(|to| Jid::new(to).is_err()) {
        return Ok(reply(&el, Cond::JidMalformed, "Malformed 'to' address"));
    }
    router.from_session(session, el).await;
    Ok(Vec::new())
}

/// An error reply for this stream only.
fn reply(el: &Element, cond: Cond, text: &str) -> Vec<Element> {
    error_reply(el, cond, Some(text)).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st() -> SessionRef {
        SessionRef::new(
            crate::hub::sessions::SessionId::for_tests(1),
            jid::FullJid::new("a@h/r").unwrap(),
        )
    }

    #[test]
    fn from_is_stamped_and_rewritten() {
        let s = st();
        for stanza in [
            "<message xmlns='jabber:client' to='b@h'/>",
            "<message xmlns='jabber:client' from='a@h' to='b@h'/>",
            "<message xmlns='jabber:client' from='x@h/r' to='b@h'/>",
            "<message xmlns='jabber:client' from='a@h/other'/>",
            "<message xmlns='jabber:client' from='room@conference.h/nick'/>",
            "<message xmlns='jabber:client' from='@@not a jid'/>",
        ] {
            let mut m: Element = stanza.parse().unwrap();
            stamp_from(&s, &mut m);
            assert_eq!(m.attr("from"), Some("a@h/r"), "{stanza}");
        }
    }

    #[test]
    fn iq_validity() {
        let v = |s: &str| valid_iq(&s.parse::<Element>().unwrap());
        assert!(v(
            "<iq xmlns='jabber:client' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        assert!(v("<iq xmlns='jabber:client' type='result' id='1'/>"));
        assert!(!v("<iq xmlns='jabber:client' type='get' id='1'/>"));
        assert!(!v(
            "<iq xmlns='jabber:client' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        assert!(!v(
            "<iq xmlns='jabber:client' type='fetch' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        assert!(!v(
            "<iq xmlns='jabber:client' type='set' id='1'><a xmlns='x'/><b xmlns='x'/></iq>"
        ));
    }

    #[test]
    fn bind_requests() {
        let b = |s: &str| -> Element {
            format!("<iq xmlns='jabber:client' type='set' id='b'>{s}</iq>")
                .parse()
                .unwrap()
        };
        match parse_bind(&b(
            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind>",
        )) {
            Some(BindRequest::Resource(r)) => assert_eq!(r, "phone"),
            _ => panic!("expected a resource"),
        }
        match parse_bind(&b("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")) {
            Some(BindRequest::Resource(r)) => assert!(r.starts_with("conclave-")),
            _ => panic!("expected a server-chosen resource"),
        }
        assert!(parse_bind(&b("<ping xmlns='urn:xmpp:ping'/>")).is_none());
    }
}
