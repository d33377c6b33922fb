//! The router: addressing for everything that is not the stream itself
//! (RFC 6121 section 8 for local users). Stanzas arrive with their `from`
//! already stamped (by the session, or by a room); the router sends them to
//! a local session, to offline storage, to the server's own handlers, to the
//! group-chat service, or answers with an error. It also owns the registry
//! of connected sessions.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use conclave_store::Store;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use tokio::sync::{mpsc, Notify};
use xmpp_parsers::stanza_error::DefinedCondition as Cond;
use xmpp_parsers::stream_error::DefinedCondition as StreamCond;

use crate::modules::blocking::{self, BlockList};
use crate::config::{ContactSection, ExternalServiceSection, ImSection};
use crate::xml::{error_reply, first_child, stanza_type, CLIENT};
use crate::modules::{
    carbons, disco, extdisco, last, offline, ping, presence, private, roster, time, vcard, version,
};
use crate::services::muc;

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

/// Out-of-band control of a session: the router asks it to close its
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
    id: u64,
    tx: mpsc::Sender<Outbound>,
    control: Arc<SessionControl>,
    /// Sent available presence and has not gone unavailable since.
    pub available: bool,
    pub priority: i8,
    /// The last broadcast presence (with `from` stamped), for probes.
    pub presence: Option<Element>,
    /// Requested the roster: receives roster pushes.
    pub interested: bool,
    /// Enabled message carbons (XEP-0280).
    pub carbons: bool,
    /// Requested the block list: receives block list pushes (XEP-0191).
    pub blocklist_requested: bool,
}

/// Static settings of the router.
pub struct RouterSettings {
    pub hosts: Vec<String>,
    pub muc_domain: String,
    pub max_offline_messages: usize,
    pub session_queue: usize,
    pub room_queue: usize,
    /// Instant-messaging feature settings.
    pub im: ImSettings,
}

/// Settings of the instant-messaging features (from the `[im]`,
/// `[contact]` and `[[external_service]]` configuration sections).
#[derive(Clone, Debug, Default)]
pub struct ImSettings {
    pub im: ImSection,
    pub contact: ContactSection,
    pub external_services: Vec<ExternalServiceSection>,
}

type Registry = HashMap<BareJid, HashMap<String, SessionEntry>>;

/// Upper bound on the stanzas one routing call may generate (replies,
/// pushes, bounces), guarding against loops.
const MAX_ROUTING_STEPS: usize = 100_000;

pub struct Router {
    pub settings: RouterSettings,
    pub store: Arc<dyn Store>,
    sessions: Mutex<Registry>,
    next_id: AtomicU64,
    pub muc: muc::MucService,
    /// Block lists of the users with a connected session, kept in memory so
    /// that routing needs no store read per stanza. Lock order: `sessions`
    /// before `blocklists`.
    blocklists: Mutex<HashMap<BareJid, Arc<BlockList>>>,
    /// When the server started (XEP-0012 uptime).
    pub started: std::time::Instant,
}

impl Router {
    pub fn new(settings: RouterSettings, store: Arc<dyn Store>, muc: muc::MucService) -> Router {
        Router {
            settings,
            store,
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            muc,
            blocklists: Mutex::new(HashMap::new()),
            started: std::time::Instant::now(),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A poisoned lock only means another task panicked while holding
        // it; the map itself is still consistent enough to carry on.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_local_host(&self, domain: &str) -> bool {
        self.settings.hosts.iter().any(|h| h == domain)
    }

    // --- the session registry ----------------------------------------------

    /// Registers a bound resource. An existing session with the same full
    /// JID is replaced and told to close with `conflict`. Returns the id
    /// used to unregister.
    pub fn register(
        &self,
        full: &FullJid,
        tx: mpsc::Sender<Outbound>,
        control: Arc<SessionControl>,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = SessionEntry {
            id,
            tx,
            control,
            available: false,
            priority: 0,
            presence: None,
            interested: false,
            carbons: false,
            blocklist_requested: false,
        };
        let old = self
            .registry()
            .entry(full.to_bare())
            .or_default()
            .insert(full.resource().as_str().to_owned(), entry);
        if let Some(old) = old {
            old.control.kick(
                StreamCond::Conflict,
                "Replaced by a new session with the same resource",
            );
        }
        id
    }

    /// Removes a session (only if it is still the one registered under
    /// that resource). Returns whether it was available.
    pub fn unregister(&self, full: &FullJid, id: u64) -> bool {
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
            // Under the registry lock, so a session registering meanwhile
            // cannot see its freshly loaded list dropped.
            self.blocklists_map().remove(&bare);
        }
        was_available
    }

    fn blocklists_map(&self) -> std::sync::MutexGuard<'_, HashMap<BareJid, Arc<BlockList>>> {
        self.blocklists.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached block list of a user with a connected session.
    pub fn cached_blocklist(&self, bare: &BareJid) -> Option<Arc<BlockList>> {
        self.blocklists_map().get(bare).cloned()
    }

    /// Caches a block list loaded at login, unless one is already cached
    /// (by another session of the user, which keeps it current).
    pub fn cache_blocklist_if_absent(&self, bare: &BareJid, list: BlockList) {
        let reg = self.registry();
        if reg.get(bare).is_some_and(|r| !r.is_empty()) {
            self.blocklists_map()
                .entry(bare.clone())
                .or_insert_with(|| Arc::new(list));
        }
    }

    /// Replaces the cached block list of a connected user after a change.
    pub fn update_blocklist(&self, bare: &BareJid, list: BlockList) {
        let reg = self.registry();
        if reg.get(bare).is_some_and(|r| !r.is_empty()) {
            self.blocklists_map().insert(bare.clone(), Arc::new(list));
        }
    }

    /// Whether this resource is still the registered one with this id.
    pub fn is_current(&self, full: &FullJid, id: u64) -> bool {
        self.with_entry(full, |e| e.id == id).unwrap_or(false)
    }

    /// Runs `f` on a session's entry if it is still the one with this id
    /// (not replaced by a newer session with the same resource).
    pub fn with_session<T>(
        &self,
        full: &FullJid,
        id: u64,
        f: impl FnOnce(&mut SessionEntry) -> T,
    ) -> Option<T> {
        self.with_entry(full, |e| (e.id == id).then(|| f(e)))
            .flatten()
    }

    /// Runs `f` on a session's entry under the lock.
    pub fn with_entry<T>(
        &self,
        full: &FullJid,
        f: impl FnOnce(&mut SessionEntry) -> T,
    ) -> Option<T> {
        let mut reg = self.registry();
        reg.get_mut(&full.to_bare())
            .and_then(|r| r.get_mut(full.resource().as_str()))
            .map(f)
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

    /// Full JIDs of a user's resources selected by `pick`.
    pub fn resources_where(
        &self,
        bare: &BareJid,
        pick: impl Fn(&SessionEntry) -> bool,
    ) -> Vec<FullJid> {
        let reg = self.registry();
        let Some(resources) = reg.get(bare) else {
            return Vec::new();
        };
        resources
            .iter()
            .filter(|(_, e)| pick(e))
            .filter_map(|(r, _)| bare.with_resource_str(r).ok())
            .collect()
    }

    /// Whether the user has any connected resource.
    pub fn is_online(&self, bare: &BareJid) -> bool {
        self.registry().get(bare).is_some_and(|r| !r.is_empty())
    }

    /// Number of connected resources (all users).
    pub fn session_count(&self) -> usize {
        self.registry().values().map(|r| r.len()).sum()
    }

    fn push(entry: &SessionEntry, out: Outbound) {
        if let Err(mpsc::error::TrySendError::Full(_)) = entry.tx.try_send(out) {
            entry.control.kick(
                StreamCond::PolicyViolation,
                "Too many stanzas queued for this session",
            );
        }
    }

    /// Queues a stanza for one resource; `false` when it is not connected.
    pub fn send_to_full(&self, full: &FullJid, stanza: Element) -> bool {
        let reg = self.registry();
        match reg
            .get(&full.to_bare())
            .and_then(|r| r.get(full.resource().as_str()))
        {
            Some(e) => {
                Self::push(e, Outbound::Stanza(Box::new(stanza)));
                true
            }
            None => false,
        }
    }

    /// Queues a spliced stanza from `from` for each of `recipients`, under
    /// one lock of the registry. Returns the recipients it was not queued
    /// for, to be routed as elements: those without a session (whose
    /// bounce tells the room), those that block `from`, and addresses that
    /// would need escaping.
    pub fn send_spliced(
        &self,
        body: &Arc<Spliced>,
        from: &Jid,
        recipients: Vec<FullJid>,
    ) -> Vec<FullJid> {
        let from_bare = from.to_bare();
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
            if bare != from_bare && blocking::blocks_cached(self, &bare, from) == Some(true) {
                rest.push(to);
                continue;
            }
            Self::push(entry, Outbound::Spliced(body.clone(), to));
        }
        rest
    }

    /// Queues one stanza, serialised once, for the resources of `bare`
    /// selected by `pick`. Returns how many got it.
    pub fn send_to_resources(
        &self,
        bare: &BareJid,
        stanza: &Element,
        pick: impl Fn(&SessionEntry) -> bool,
    ) -> usize {
        let reg = self.registry();
        let Some(resources) = reg.get(bare) else {
            return 0;
        };
        let targets: Vec<&SessionEntry> = resources.values().filter(|e| pick(e)).collect();
        match targets.len() {
            0 => 0,
            1 => {
                Self::push(targets[0], Outbound::Stanza(Box::new(stanza.clone())));
                1
            }
            n => {
                let bytes: Arc<[u8]> = crate::edge::stream::serialize(stanza).into();
                for e in targets {
                    Self::push(e, Outbound::Bytes(bytes.clone()));
                }
                n
            }
        }
    }

    /// Sends every session a `system-shutdown` request.
    pub fn kick_all(&self, cond: StreamCond, text: &str) {
        for resources in self.registry().values() {
            for e in resources.values() {
                e.control.kick(cond.clone(), text);
            }
        }
    }

    // --- routing -------------------------------------------------------------

    /// Routes a stanza whose `from` is already stamped and trusted, and
    /// everything its handling produces (replies, pushes, bounces).
    pub async fn route(&self, stanza: Element) {
        let mut queue = VecDeque::from([stanza]);
        let mut steps = 0;
        while let Some(s) = queue.pop_front() {
            steps += 1;
            if steps > MAX_ROUTING_STEPS {
                tracing::warn!("routing loop cut short");
                break;
            }
            let more = self.route_one(s).await;
            queue.extend(more);
        }
    }

    /// Routes several stanzas in order.
    pub async fn route_all(&self, stanzas: Vec<Element>) {
        for s in stanzas {
            self.route(s).await;
        }
    }

    async fn route_one(&self, mut stanza: Element) -> Vec<Element> {
        if stanza.ns() != CLIENT || !matches!(stanza.name(), "message" | "presence" | "iq") {
            return Vec::new();
        }
        let from = match stanza.attr("from").map(Jid::new) {
            Some(Ok(j)) => j,
            _ => return Vec::new(),
        };
        let to = match stanza.attr("to") {
            None => {
                // No `to`: addressed to the sender's own account.
                let bare = from.to_bare();
                crate::xml::set_attr(&mut stanza, "to", bare.as_str());
                Jid::from(bare)
            }
            Some(t) => match Jid::new(t) {
                Ok(j) => j,
                Err(_) => {
                    return bounce(&stanza, Cond::JidMalformed, Some("Malformed 'to' address"))
                }
            },
        };
        let domain = to.domain().as_str();
        if self.is_local_host(domain) {
            match to.node() {
                None => self.to_server(stanza, &from, &to).await,
                Some(_) => self.to_local_user(stanza, &from, to).await,
            }
        } else if domain == self.settings.muc_domain {
            self.muc.dispatch(self, stanza, &to)
        } else {
            bounce(
                &stanza,
                Cond::RemoteServerNotFound,
                Some("This server does not connect to other servers"),
            )
        }
    }

    /// Stanzas addressed to a local domain itself.
    async fn to_server(&self, stanza: Element, from: &Jid, to: &Jid) -> Vec<Element> {
        match stanza.name() {
            "iq" => self.server_iq(stanza, from, to).await,
            "message" => match stanza_type(&stanza) {
                "error" | "headline" | "groupchat" => Vec::new(),
                _ => bounce(&stanza, Cond::ServiceUnavailable, None),
            },
            // Presence to the server itself (e.g. a probe) has nothing to answer.
            _ => Vec::new(),
        }
    }

    async fn server_iq(&self, stanza: Element, from: &Jid, to: &Jid) -> Vec<Element> {
        if !matches!(stanza_type(&stanza), "get" | "set") {
            return Vec::new();
        }
        let Some(payload) = first_child(&stanza) else {
            return bounce(&stanza, Cond::BadRequest, Some("IQ without payload"));
        };
        if let Some(reply) = ping::handle(&stanza, payload) {
            return vec![reply];
        }
        if let Some(reply) =
            disco::handle_server(&stanza, payload, to.domain().as_str(), &self.settings)
        {
            return vec![reply];
        }
        if let Some(reply) = version::handle(&stanza, payload, &self.settings.im.im) {
            return vec![reply];
        }
        if let Some(reply) = time::handle(&stanza, payload) {
            return vec![reply];
        }
        if let Some(reply) = last::handle_server(&stanza, payload, self.started) {
            return vec![reply];
        }
        let local_user = from
            .node()
            .is_some_and(|_| self.is_local_host(from.domain().as_str()));
        if let Some(reply) = extdisco::handle(
            &stanza,
            payload,
            &self.settings.im.external_services,
            local_user,
        ) {
            return reply;
        }
        // Requests some clients address to their server rather than to
        // their own account.
        if let Ok(full) = from.clone().try_into_full() {
            if local_user && to.domain() == full.domain() {
                if let Some(replies) = self.own_session_iq(&stanza, payload, &full).await {
                    return replies;
                }
            }
        }
        bounce(&stanza, Cond::ServiceUnavailable, None)
    }

    /// Requests about the sending session's own account state (carbons,
    /// block list). `None` when `payload` is neither.
    async fn own_session_iq(
        &self,
        stanza: &Element,
        payload: &Element,
        from: &FullJid,
    ) -> Option<Vec<Element>> {
        if let Some(r) = carbons::handle_iq(self, stanza, payload, from) {
            return Some(r);
        }
        blocking::handle_iq(self, stanza, payload, from).await
    }

    /// Stanzas to `user@local-host[/resource]` (RFC 6121 section 8.5).
    async fn to_local_user(&self, stanza: Element, from: &Jid, to: Jid) -> Vec<Element> {
        let bare = to.to_bare();
        let to_full = to.try_as_full().ok().cloned();
        // XEP-0191: nothing from a blocked entity reaches the user. The
        // list is in memory for connected users; the store is read only
        // for users without a session.
        if from.to_bare() != bare {
            let blocked = match blocking::blocks_cached(self, &bare, from) {
                Some(b) => b,
                // Plain presence for a user without a session goes nowhere.
                None if stanza.name() == "presence"
                    && matches!(stanza_type(&stanza), "" | "unavailable") =>
                {
                    false
                }
                None => blocking::blocks(self, &bare, from).await,
            };
            if blocked {
                return blocking::inbound_refusal(&stanza);
            }
        }
        match stanza.name() {
            "message" => self.message_to_user(stanza, &bare, to_full.as_ref()).await,
            "presence" => {
                let t = stanza_type(&stanza);
                if matches!(
                    t,
                    "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed"
                ) {
                    return presence::inbound_subscription(self, stanza, from, &bare).await;
                }
                if t == "probe" {
                    return presence::handle_probe(self, from, &bare).await;
                }
                match &to_full {
                    Some(full) => {
                        self.send_to_full(full, stanza);
                    }
                    None => {
                        self.send_to_resources(&bare, &stanza, |e| e.available);
                    }
                }
                Vec::new()
            }
            _ => {
                // iq
                if let Some(full) = &to_full {
                    if self.send_to_full(full, stanza.clone()) {
                        return Vec::new();
                    }
                    return bounce(&stanza, Cond::ServiceUnavailable, None);
                }
                self.account_iq(stanza, from, &bare).await
            }
        }
    }

    /// IQs to a bare account JID, answered by the server on the account's behalf.
    async fn account_iq(&self, stanza: Element, from: &Jid, account: &BareJid) -> Vec<Element> {
        if !matches!(stanza_type(&stanza), "get" | "set") {
            return Vec::new();
        }
        let Some(payload) = first_child(&stanza) else {
            return bounce(&stanza, Cond::BadRequest, Some("IQ without payload"));
        };
        let own = from.to_bare() == *account;
        if !own && !self.account_exists(account).await {
            return bounce(&stanza, Cond::ServiceUnavailable, Some("No such account"));
        }
        if payload.is("query", roster::NS) {
            if !own {
                return bounce(
                    &stanza,
                    Cond::Forbidden,
                    Some("Only the account may access its roster"),
                );
            }
            let Ok(full) = from.clone().try_into_full() else {
                return bounce(&stanza, Cond::BadRequest, None);
            };
            return roster::handle_iq(self, &stanza, payload, &full).await;
        }
        if own {
            if let Ok(full) = from.clone().try_into_full() {
                if let Some(replies) = self.own_session_iq(&stanza, payload, &full).await {
                    return replies;
                }
            }
        }
        if let Some(replies) = private::handle_iq(self, &stanza, payload, from, account).await {
            return replies;
        }
        if let Some(replies) = vcard::handle_iq(self, &stanza, payload, from, account).await {
            return replies;
        }
        if let Some(replies) = last::handle_account(self, &stanza, payload, from, account).await {
            return replies;
        }
        if let Some(reply) = ping::handle(&stanza, payload) {
            return vec![reply];
        }
        if let Some(reply) = disco::handle_account(&stanza, payload) {
            return vec![reply];
        }
        bounce(&stanza, Cond::ServiceUnavailable, None)
    }

    /// Messages to a local user (RFC 6121 8.5.2 and 8.5.3).
    async fn message_to_user(
        &self,
        stanza: Element,
        bare: &BareJid,
        full: Option<&FullJid>,
    ) -> Vec<Element> {
        let t = stanza_type(&stanza);
        if let Some(full) = full {
            if self.send_to_full(full, stanza.clone()) {
                carbons::copy_received(self, &stanza, bare, |r| r == full);
                return Vec::new();
            }
            // No such resource: groupchat bounces, headline and errors are
            // dropped, normal and chat are treated as sent to the bare JID.
            match t {
                "groupchat" => return bounce(&stanza, Cond::ServiceUnavailable, None),
                "headline" | "error" => return Vec::new(),
                _ => {}
            }
        }
        match t {
            "groupchat" => bounce(&stanza, Cond::ServiceUnavailable, None),
            "error" => Vec::new(),
            "headline" => {
                self.send_to_resources(bare, &stanza, |e| e.available && e.priority >= 0);
                Vec::new()
            }
            _ => {
                // Highest-priority available resource(s) with non-negative priority.
                let best = self
                    .available_resources(bare)
                    .iter()
                    .filter(|(_, p, _)| *p >= 0)
                    .map(|(_, p, _)| *p)
                    .max();
                if let Some(best) = best {
                    let got: Vec<FullJid> =
                        self.resources_where(bare, |e| e.available && e.priority == best);
                    self.send_to_resources(bare, &stanza, |e| e.available && e.priority == best);
                    carbons::copy_received(self, &stanza, bare, |r| got.contains(r));
                    return Vec::new();
                }
                let bounced = offline::store(self, stanza.clone(), bare).await;
                if bounced.is_empty() {
                    carbons::copy_received(self, &stanza, bare, |_| false);
                }
                bounced
            }
        }
    }

    /// Whether an account exists (connected, or present in the store).
    pub async fn account_exists(&self, bare: &BareJid) -> bool {
        if self.is_online(bare) {
            return true;
        }
        let Some(node) = bare.node() else {
            return false;
        };
        matches!(
            self.store
                .get_credentials(bare.domain().as_str(), node.as_str())
                .await,
            Ok(Some(_))
        )
    }
}

/// The error reply to `stanza`, as a routing result.
pub fn bounce(stanza: &Element, cond: Cond, text: Option<&str>) -> Vec<Element> {
    error_reply(stanza, cond, text).into_iter().collect()
}

/// Host and username of a local bare JID, for the store.
pub fn account_key(bare: &BareJid) -> Option<(&str, &str)> {
    Some((bare.domain().as_str(), bare.node()?.as_str()))
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
}
