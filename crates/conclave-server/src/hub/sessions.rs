//! The registry of bound sessions and delivery to them. Each session has a
//! bounded outbound queue; everything the server sends a client goes
//! through [`Sessions`]. The registry keeps, per session, only what
//! addressing needs (RFC 6121 section 8: availability, priority, the last
//! broadcast presence for probes); features keep their own per-session
//! state, keyed by [`SessionId`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use jid::{BareJid, FullJid};
use minidom::Element;
use tokio::sync::{mpsc, Notify};
use xmpp_parsers::stream_error::DefinedCondition as StreamCond;

/// Identifies one session for its whole life; a newer session that takes
/// over the same resource gets another id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    #[cfg(test)]
    pub(crate) fn for_tests(n: u64) -> SessionId {
        SessionId(n)
    }
}

/// What a session is sent.
#[derive(Debug)]
pub enum Outbound {
    /// Boxed: the queue reserves its slots up front, and a small variant
    /// keeps an idle session's queue small.
    Stanza(Box<Element>),
    /// A stanza serialised once for many recipients.
    Bytes(Arc<[u8]>),
    /// A stanza serialised once for many recipients without its `to`;
    /// this recipient's address is spliced in when it is written.
    Spliced(Arc<Spliced>, FullJid),
}

impl Outbound {
    /// Appends the bytes of this stanza to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Outbound::Stanza(el) => buf.extend_from_slice(&crate::edge::stream::serialize(el)),
            Outbound::Bytes(b) => buf.extend_from_slice(b),
            Outbound::Spliced(s, to) => s.write_to(to, buf),
        }
    }
}

/// A stanza serialised once, split where a `to` attribute goes, so that
/// each recipient's copy costs two copies of bytes and no serialisation.
#[derive(Debug)]
pub struct Spliced {
    /// `<name to="`
    head: Box<[u8]>,
    /// `"` and the rest of the serialised stanza.
    tail: Box<[u8]>,
}

impl Spliced {
    /// Serialises `stanza` (which must have no `to`). `None` when it has
    /// one, or the serialisation does not start with its name.
    pub fn new(stanza: &Element) -> Option<Spliced> {
        if stanza.attr("to").is_some() {
            return None;
        }
        let bytes = crate::edge::stream::serialize(stanza);
        let start = format!("<{}", stanza.name());
        let rest = bytes.strip_prefix(start.as_bytes())?;
        if !matches!(rest.first(), Some(b' ' | b'/' | b'>')) {
            return None;
        }
        let mut head = start.into_bytes();
        head.extend_from_slice(b" to=\"");
        let mut tail = Vec::with_capacity(rest.len() + 1);
        tail.push(b'"');
        tail.extend_from_slice(rest);
        Some(Spliced {
            head: head.into(),
            tail: tail.into(),
        })
    }

    /// Whether `to` can be spliced in verbatim: it has nothing that XML
    /// would need escaped in a double-quoted attribute. Other addresses
    /// (rare: only resources may hold such characters) take the element
    /// path, where the serialiser escapes them.
    pub fn fits(to: &FullJid) -> bool {
        !to.as_str()
            .bytes()
            .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'') || b < 0x20)
    }

    /// Appends the copy addressed to `to` to `buf`.
    pub fn write_to(&self, to: &FullJid, buf: &mut Vec<u8>) {
        buf.reserve(self.head.len() + to.as_str().len() + self.tail.len());
        buf.extend_from_slice(&self.head);
        buf.extend_from_slice(to.as_str().as_bytes());
        buf.extend_from_slice(&self.tail);
    }
}

/// Out-of-band control of a session: the server asks it to close its
/// stream with a stream error (replaced by a newer session, too slow).
#[derive(Default)]
pub struct SessionControl {
    notify: Notify,
    reason: Mutex<Option<(StreamCond, String)>>,
}

impl SessionControl {
    /// Asks the session to close with this stream error.
    pub fn kick(&self, cond: StreamCond, text: &str) {
        if let Ok(mut r) = self.reason.lock() {
            if r.is_none() {
                *r = Some((cond, text.to_owned()));
            }
        }
        self.notify.notify_one();
    }

    /// Resolves once [`SessionControl::kick`] was called; returns the reason.
    pub async fn kicked(&self) -> Option<(StreamCond, String)> {
        self.notify.notified().await;
        self.reason.lock().ok().and_then(|mut r| r.take())
    }
}

/// One connected resource.
pub struct SessionEntry {
    id: SessionId,
    tx: mpsc::Sender<Outbound>,
    control: Arc<SessionControl>,
    /// Sent available presence and has not gone unavailable since.
    available: bool,
    priority: i8,
    /// The last broadcast presence (with `from` stamped), for probes.
    presence: Option<Element>,
}

impl SessionEntry {
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Whether the session has sent available presence (and not gone
    /// unavailable since).
    pub fn available(&self) -> bool {
        self.available
    }

    pub fn priority(&self) -> i8 {
        self.priority
    }

    fn push(&self, out: Outbound) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(out) {
            self.control.kick(
                StreamCond::PolicyViolation,
                "Too many stanzas queued for this session",
            );
        }
    }
}

type Registry = HashMap<BareJid, HashMap<String, SessionEntry>>;

/// An account already has as many sessions as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManySessions;

/// The bound sessions of every local account.
pub struct Sessions {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    queue: usize,
    max_per_account: usize,
}

impl Sessions {
    /// An empty registry whose sessions queue at most `queue` stanzas,
    /// with at most `max_per_account` sessions per account.
    pub fn new(queue: usize, max_per_account: usize) -> Sessions {
        Sessions {
            registry: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            queue,
            max_per_account: max_per_account.max(1),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A poisoned lock only means another task panicked while holding
        // it; the map itself is still consistent enough to carry on.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a bound resource and gives it its bounded queue. An
    /// existing session with the same full JID is replaced and told to
    /// close with `conflict`; a new resource beyond the account's limit
    /// is refused.
    pub fn register(
        &self,
        full: &FullJid,
        control: Arc<SessionControl>,
    ) -> Result<(SessionId, mpsc::Receiver<Outbound>), TooManySessions> {
        let mut reg = self.registry();
        let resources = reg.entry(full.to_bare()).or_default();
        let resource = full.resource().as_str();
        if !resources.contains_key(resource) && resources.len() >= self.max_per_account {
            return Err(TooManySessions);
        }
        let id = SessionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(self.queue.max(1));
        let entry = SessionEntry {
            id,
            tx,
            control,
            available: false,
            priority: 0,
            presence: None,
        };
        if let Some(old) = resources.insert(resource.to_owned(), entry) {
            old.control.kick(
                StreamCond::Conflict,
                "Replaced by a new session with the same resource",
            );
        }
        Ok((id, rx))
    }

    /// Removes a session (only if it is still the one registered under
    /// that resource). Returns whether it was available.
    pub fn unregister(&self, full: &FullJid, id: SessionId) -> bool {
        let bare = full.to_bare();
        let mut reg = self.registry();
        let Some(resources) = reg.get_mut(&bare) else {
            return false;
        };
        let res = full.resource().as_str();
        let mut was_available = false;
        if resources.get(res).is_some_and(|e| e.id == id) {
            was_available = resources.remove(res).is_some_and(|e| e.available);
        }
        if resources.is_empty() {
            reg.remove(&bare);
        }
        was_available
    }

    fn with_entry<T>(&self, full: &FullJid, f: impl FnOnce(&mut SessionEntry) -> T) -> Option<T> {
        let mut reg = self.registry();
        reg.get_mut(&full.to_bare())
            .and_then(|r| r.get_mut(full.resource().as_str()))
            .map(f)
    }

    /// The id of the session registered for this resource.
    pub fn id_of(&self, full: &FullJid) -> Option<SessionId> {
        self.with_entry(full, |e| e.id)
    }

    /// Records a session's broadcast presence: `Some((priority,
    /// presence))` when available, `None` when unavailable. Returns
    /// whether the session was available before, or `None` when it is no
    /// longer the registered session of its resource.
    pub fn set_presence(
        &self,
        full: &FullJid,
        id: SessionId,
        presence: Option<(i8, Element)>,
    ) -> Option<bool> {
        self.with_entry(full, |e| {
            if e.id != id {
                return None;
            }
            let was = e.available;
            match presence {
                Some((priority, p)) => {
                    e.available = true;
                    e.priority = priority;
                    e.presence = Some(p);
                }
                None => {
                    e.available = false;
                    e.presence = None;
                }
            }
            Some(was)
        })
        .flatten()
    }

    /// Full JIDs, priorities and last presences of a user's available resources.
    pub fn available_resources(&self, bare: &BareJid) -> Vec<(FullJid, i8, Option<Element>)> {
        let reg = self.registry();
        let Some(resources) = reg.get(bare) else {
            return Vec::new();
        };
        resources
            .iter()
            .filter(|(_, e)| e.available)
            .filter_map(|(r, e)| {
                Some((
                    bare.with_resource_str(r).ok()?,
                    e.priority,
                    e.presence.clone(),
                ))
            })
            .collect()
    }

    /// Full JIDs and ids of a user's sessions selected by `pick`.
    pub fn resources_where(
        &self,
        bare: &BareJid,
        pick: impl Fn(&SessionEntry) -> bool,
    ) -> Vec<(FullJid, SessionId)> {
        let reg = self.registry();
        let Some(resources) = reg.get(bare) else {
            return Vec::new();
        };
        resources
            .iter()
            .filter(|(_, e)| pick(e))
            .filter_map(|(r, e)| Some((bare.with_resource_str(r).ok()?, e.id)))
            .collect()
    }

    /// Whether the user has any connected resource.
    pub fn is_online(&self, bare: &BareJid) -> bool {
        self.registry().get(bare).is_some_and(|r| !r.is_empty())
    }

    /// Queues a stanza for one resource; `false` when it is not connected.
    pub fn send_to_full(&self, full: &FullJid, stanza: Element) -> bool {
        let reg = self.registry();
        match reg
            .get(&full.to_bare())
            .and_then(|r| r.get(full.resource().as_str()))
        {
            Some(e) => {
                e.push(Outbound::Stanza(Box::new(stanza)));
                true
            }
            None => false,
        }
    }

    /// Queues a spliced stanza for each of `recipients`, under one lock of
    /// the registry. Returns the recipients it was not queued for, to be
    /// routed as elements: those without a session (whose bounce tells the
    /// sender), those for which `refuses` is true (asked under the registry
    /// lock: it must not take it), and addresses that would need escaping.
    pub fn send_spliced(
        &self,
        body: &Arc<Spliced>,
        recipients: Vec<FullJid>,
        refuses: impl Fn(&BareJid) -> bool,
    ) -> Vec<FullJid> {
        let reg = self.registry();
        let mut rest = Vec::new();
        for to in recipients {
            if !Spliced::fits(&to) {
                rest.push(to);
                continue;
            }
            let bare = to.to_bare();
            let entry = reg.get(&bare).and_then(|r| r.get(to.resource().as_str()));
            let Some(entry) = entry else {
                rest.push(to);
                continue;
            };
            if refuses(&bare) {
                rest.push(to);
                continue;
            }
            entry.push(Outbound::Spliced(body.clone(), to));
        }
        rest
    }

    /// Queues one stanza, serialised once, for the resources of `bare`
    /// selected by `pick`. Returns the full JIDs that got it.
    pub fn send_to_resources(
        &self,
        bare: &BareJid,
        stanza: &Element,
        pick: impl Fn(&SessionEntry) -> bool,
    ) -> Vec<FullJid> {
        let reg = self.registry();
        let Some(resources) = reg.get(bare) else {
            return Vec::new();
        };
        let targets: Vec<(&String, &SessionEntry)> =
            resources.iter().filter(|(_, e)| pick(e)).collect();
        match targets.as_slice() {
            [] => {}
            [(_, e)] => e.push(Outbound::Stanza(Box::new(stanza.clone()))),
            _ => {
                let bytes: Arc<[u8]> = crate::edge::stream::serialize(stanza).into();
                for (_, e) in &targets {
                    e.push(Outbound::Bytes(bytes.clone()));
                }
            }
        }
        targets
            .into_iter()
            .filter_map(|(r, _)| bare.with_resource_str(r).ok())
            .collect()
    }

    /// Asks every session to close with this stream error.
    pub fn kick_all(&self, cond: StreamCond, text: &str) {
        for resources in self.registry().values() {
            for e in resources.values() {
                e.control.kick(cond.clone(), text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Element {
        std::str::from_utf8(bytes).unwrap().parse().unwrap()
    }

    #[test]
    fn spliced_copies_equal_the_addressed_stanza() {
        let msg: Element = "<message xmlns='jabber:client' from='room@conference.h/Al' \
             type='groupchat' id='x&amp;1'><body>a &lt; b &amp; c</body></message>"
            .parse()
            .unwrap();
        let body = Spliced::new(&msg).expect("spliceable");
        for to in ["bob@h/phone", "carol@h/desk top"] {
            let to = FullJid::new(to).unwrap();
            assert!(Spliced::fits(&to));
            let mut buf = Vec::new();
            body.write_to(&to, &mut buf);
            let mut expected = msg.clone();
            crate::xml::set_attr(&mut expected, "to", to.as_str());
            assert_eq!(parse(&buf), expected);
        }
        // Two copies written back to back stay two well-formed stanzas.
        let mut buf = b"<w xmlns='jabber:client'>".to_vec();
        body.write_to(&FullJid::new("a@h/1").unwrap(), &mut buf);
        body.write_to(&FullJid::new("b@h/2").unwrap(), &mut buf);
        buf.extend_from_slice(b"</w>");
        let tos: Vec<_> = parse(&buf)
            .children()
            .map(|c| c.attr("to").unwrap().to_owned())
            .collect();
        assert_eq!(tos, ["a@h/1", "b@h/2"]);
    }

    #[test]
    fn addresses_needing_escapes_are_not_spliced() {
        for r in ["it's", "a&b", "x<y", "q\"q", "g>t"] {
            let to = FullJid::new(&format!("u@h/{r}")).unwrap();
            assert!(!Spliced::fits(&to), "{r}");
        }
        let addressed: Element = "<message xmlns='jabber:client' to='u@h/r'/>"
            .parse()
            .unwrap();
        assert!(Spliced::new(&addressed).is_none());
    }

    #[test]
    fn a_replaced_session_cannot_touch_its_successor() {
        let sessions = Sessions::new(4, 1);
        let full = FullJid::new("a@h/r").unwrap();
        let first = Arc::new(SessionControl::default());
        let (old, _rx1) = sessions.register(&full, first).unwrap();
        // Replacing the same resource is not a session more.
        let (new, mut rx2) = sessions
            .register(&full, Arc::new(SessionControl::default()))
            .unwrap();
        assert_ne!(old, new);
        assert_eq!(sessions.id_of(&full), Some(new));
        assert_eq!(sessions.set_presence(&full, old, None), None);
        let p: Element = "<presence xmlns='jabber:client'/>".parse().unwrap();
        assert_eq!(sessions.set_presence(&full, new, Some((1, p))), Some(false));
        assert!(!sessions.unregister(&full, old));
        assert!(sessions.is_online(&full.to_bare()));
        assert!(sessions.send_to_full(&full, "<message xmlns='jabber:client'/>".parse().unwrap()));
        assert!(rx2.try_recv().is_ok());
        assert!(sessions.unregister(&full, new));
        assert!(!sessions.is_online(&full.to_bare()));
    }

    #[test]
    fn an_account_has_at_most_its_sessions() {
        let sessions = Sessions::new(4, 2);
        let control = || Arc::new(SessionControl::default());
        let j = |s: &str| FullJid::new(s).unwrap();
        let _a = sessions.register(&j("a@h/1"), control()).unwrap();
        let _b = sessions.register(&j("a@h/2"), control()).unwrap();
        assert_eq!(
            sessions.register(&j("a@h/3"), control()).err(),
            Some(TooManySessions)
        );
        // Another account, and the same resource again, are fine.
        assert!(sessions.register(&j("b@h/1"), control()).is_ok());
        assert!(sessions.register(&j("a@h/2"), control()).is_ok());
    }

    #[test]
    fn a_full_queue_kicks_its_session() {
        let sessions = Sessions::new(1, 4);
        let full = FullJid::new("a@h/r").unwrap();
        let control = Arc::new(SessionControl::default());
        let (_id, _rx) = sessions.register(&full, control.clone()).unwrap();
        let m: Element = "<message xmlns='jabber:client'/>".parse().unwrap();
        assert!(sessions.send_to_full(&full, m.clone()));
        assert!(sessions.send_to_full(&full, m));
        let reason = control.reason.lock().unwrap().clone();
        assert_eq!(reason.map(|r| r.0), Some(StreamCond::PolicyViolation));
    }
}
