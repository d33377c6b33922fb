//! The router: addressing, and nothing else. A stanza whose `from` is
//! already stamped and trusted goes to one of four places (RFC 6121
//! section 8 for local accounts):
//!
//! - a local account: the modules' inbound hooks, then a session (or the
//!   undeliverable hook, i.e. offline storage), or the modules' account
//!   IQ table for IQs to the bare JID;
//! - a local host itself: the modules' server IQ table;
//! - a [`Component`] at its own domain (group chat);
//! - anything else: the remote link, when one is plugged in, otherwise
//!   `remote-server-not-found`.
//!
//! Modules and components never see the router: modules return [`Out`]s,
//! which the router carries out; components send through the [`Outlet`]
//! it gives them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use conclave_store::Store;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;
use xmpp_parsers::stream_error::DefinedCondition as StreamCond;

use crate::hub::dispatch::{is_request, Modules};
use crate::hub::module::{error, Ctx, Flow, Out, Outs, ServerInfo, SessionRef};
use crate::hub::sessions::{Sessions, Spliced};
use crate::xml::{set_attr, stanza_type, CLIENT};

/// A service at its own domain (group chat now; pubsub and upload next),
/// or the link to other servers: the router hands it every stanza
/// addressed to its domain, or, as the remote link, to any domain that is
/// not local.
#[async_trait]
pub trait Component: Send + Sync {
    /// The domain it serves.
    fn domain(&self) -> &str;

    /// Its name in the server's disco#items; `None` keeps it unlisted.
    fn disco_name(&self) -> Option<&str>;

    /// Starts it: `outlet` is how it sends stanzas.
    async fn start(&self, outlet: std::sync::Weak<dyn Outlet>) -> anyhow::Result<()>;

    /// A stanza addressed to `to` at this component. Returns the stanzas
    /// to route at once (errors); everything else goes through the outlet.
    async fn deliver(&self, stanza: Element, to: &Jid) -> Vec<Element>;

    /// Stops taking stanzas and winds down, while sessions are still open.
    async fn shutdown(&self);
}

/// How a component sends: through the router, which owns addressing.
#[async_trait]
pub trait Outlet: Send + Sync {
    /// Routes one stanza (its `from` set by the component).
    async fn route(&self, stanza: Element);

    /// One stanza (with `from`, without `to`) to each of `recipients`:
    /// serialised once for the local sessions, each copy with its address
    /// spliced in; routed as an element to the others.
    async fn broadcast(&self, stanza: Element, recipients: Vec<FullJid>);
}

/// Upper bound on the stanzas one routing call may generate (replies,
/// pushes, bounces), guarding against loops.
const MAX_ROUTING_STEPS: usize = 100_000;

pub struct Router {
    sessions: Arc<Sessions>,
    store: Arc<dyn Store>,
    modules: Modules,
    info: ServerInfo,
    components: HashMap<String, Arc<dyn Component>>,
}

impl Router {
    /// A router over `modules` for `hosts`, with `components` at their
    /// domains. The server's disco#items lists the components.
    pub fn new(
        hosts: Vec<String>,
        sessions: Arc<Sessions>,
        store: Arc<dyn Store>,
        modules: Modules,
        components: Vec<Arc<dyn Component>>,
    ) -> Router {
        let mut disco = modules.disco().clone();
        disco
            .server_features
            .extend(crate::edge::DISCO_FEATURES.iter().copied());
        disco.items = components
            .iter()
            .filter_map(|c| Some((c.domain().to_owned(), c.disco_name()?.to_owned())))
            .collect();
        Router {
            sessions,
            store,
            modules,
            info: ServerInfo {
                hosts,
                started: std::time::Instant::now(),
                disco,
            },
            components: components
                .into_iter()
                .map(|c| (c.domain().to_owned(), c))
                .collect(),
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            sessions: &self.sessions,
            store: self.store.as_ref(),
            server: &self.info,
        }
    }

    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// The stream features the modules offer after authentication.
    pub fn stream_features(&self) -> Vec<Element> {
        self.modules.stream_features().to_vec()
    }

    /// The server's entity capabilities (XEP-0115), so that a client that
    /// knows them can skip asking for the server's disco#info.
    pub fn caps(&self) -> Option<Element> {
        self.info.disco.caps().map(Element::from)
    }

    fn is_local_host(&self, domain: &str) -> bool {
        self.info.hosts.iter().any(|h| h == domain)
    }

    /// Starts every component, giving it this router as its outlet.
    pub async fn start_components(self: &Arc<Self>) -> anyhow::Result<()> {
        let as_outlet: Arc<dyn Outlet> = self.clone();
        let outlet = Arc::downgrade(&as_outlet);
        for c in self.components.values() {
            c.start(outlet.clone()).await?;
        }
        Ok(())
    }

    /// Shuts every component down.
    pub async fn shutdown_components(&self) {
        for c in self.components.values() {
            c.shutdown().await;
        }
    }

    /// Asks every session to close with `system-shutdown`.
    pub fn kick_all(&self) {
        self.sessions
            .kick_all(StreamCond::SystemShutdown, "Server shutting down");
    }

    // --- sessions ------------------------------------------------------------

    /// A session was bound: the modules learn of it.
    pub async fn session_bound(&self, session: &SessionRef) {
        self.modules.bound(&self.ctx(), session).await;
    }

    /// A session ends: the modules learn of it while it is still
    /// registered, then it is unregistered, then what they want sent (its
    /// unavailable presence) is sent.
    pub async fn session_ended(&self, session: &SessionRef) {
        let out = self.modules.ended(&self.ctx(), session).await;
        self.sessions.unregister(&session.full, session.id);
        self.run(out).await;
    }

    /// A stanza from a client session, `from` stamped: the modules'
    /// outbound hooks, then routing.
    pub async fn from_session(&self, session: &SessionRef, stanza: Element) {
        let mut out = Vec::new();
        if self
            .modules
            .outbound(&self.ctx(), session, &stanza, &mut out)
            .await
            == Flow::Continue
        {
            out.push(Out::Route(stanza));
        }
        self.run(out).await;
    }

    // --- routing -------------------------------------------------------------

    /// Routes a stanza whose `from` is already stamped and trusted, and
    /// everything its handling produces.
    pub async fn route(&self, stanza: Element) {
        self.run(vec![Out::Route(stanza)]).await;
    }

    /// Carries out `outs` in order, each completely before the next: a
    /// stanza for a session is queued for it, a stanza to route is routed
    /// together with everything its handling produces (as Prosody sends
    /// each stanza at once, where it is sent).
    pub async fn run(&self, outs: Outs) {
        let mut pending: VecDeque<Out> = outs.into();
        let mut steps = 0;
        while let Some(out) = pending.pop_front() {
            match out {
                Out::Local(to, s) => {
                    self.sessions.send_to_full(&to, s);
                }
                Out::Route(s) => {
                    steps += 1;
                    if steps > MAX_ROUTING_STEPS {
                        tracing::warn!("routing loop cut short");
                        break;
                    }
                    // What this produces goes before what was already pending.
                    for more in self.route_one(s).await.into_iter().rev() {
                        pending.push_front(more);
                    }
                }
            }
        }
    }

    async fn route_one(&self, mut stanza: Element) -> Outs {
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
                set_attr(&mut stanza, "to", bare.as_str());
                Jid::from(bare)
            }
            Some(t) => match Jid::new(t) {
                Ok(j) => j,
                Err(_) => {
                    return error(&stanza, Cond::JidMalformed, Some("Malformed 'to' address"))
                }
            },
        };
        let domain = to.domain().as_str();
        if self.is_local_host(domain) {
            return match to.node() {
                None => self.to_server(stanza, &from, &to).await,
                Some(_) => self.to_local_account(stanza, &from, to).await,
            };
        }
        if let Some(c) = self.components.get(domain) {
            return c
                .deliver(stanza, &to)
                .await
                .into_iter()
                .map(Out::Route)
                .collect();
        }
        error(
            &stanza,
            Cond::RemoteServerNotFound,
            Some("This server does not connect to other servers"),
        )
    }

    /// Stanzas addressed to a local domain itself.
    async fn to_server(&self, stanza: Element, from: &Jid, to: &Jid) -> Outs {
        match stanza.name() {
            "iq" if is_request(&stanza) => {
                self.modules.server_iq(&self.ctx(), &stanza, from, to).await
            }
            "message" => match stanza_type(&stanza) {
                "error" | "headline" | "groupchat" => Vec::new(),
                _ => error(&stanza, Cond::ServiceUnavailable, None),
            },
            // Presence to the server itself (e.g. a probe) and IQ results
            // have nothing to answer.
            _ => Vec::new(),
        }
    }

    /// Stanzas to `user@local-host[/resource]` (RFC 6121 section 8.5).
    async fn to_local_account(&self, stanza: Element, from: &Jid, to: Jid) -> Outs {
        let ctx = self.ctx();
        let mut out = Vec::new();
        if self
            .modules
            .inbound(&ctx, &stanza, from, &to, &mut out)
            .await
            == Flow::Stop
        {
            return out;
        }
        let bare = to.to_bare();
        let full = to.try_as_full().ok();
        match (stanza.name(), full) {
            ("message", _) => out.extend(self.message_to_account(&ctx, stanza, &bare, full).await),
            ("presence", Some(full)) => {
                self.sessions.send_to_full(full, stanza);
            }
            ("presence", None) => {
                self.sessions
                    .send_to_resources(&bare, &stanza, |e| e.available());
            }
            (_, Some(full)) => {
                let delivered = self.sessions.send_to_full(full, stanza.clone());
                if !delivered {
                    out.extend(error(&stanza, Cond::ServiceUnavailable, None));
                }
            }
            (_, None) if is_request(&stanza) => {
                out.extend(
                    self.modules
                        .account_iq(&ctx, &stanza, from, &to, &bare)
                        .await,
                );
            }
            _ => {}
        }
        out
    }

    /// Messages to a local account (RFC 6121 8.5.2 and 8.5.3).
    async fn message_to_account(
        &self,
        ctx: &Ctx<'_>,
        stanza: Element,
        bare: &BareJid,
        full: Option<&FullJid>,
    ) -> Outs {
        let t = stanza_type(&stanza);
        if let Some(full) = full {
            if self.sessions.send_to_full(full, stanza.clone()) {
                return self
                    .modules
                    .delivered(ctx, &stanza, bare, std::slice::from_ref(full));
            }
            // No such resource: groupchat bounces, headline and errors are
            // dropped, normal and chat are treated as sent to the bare JID.
            match t {
                "groupchat" => return error(&stanza, Cond::ServiceUnavailable, None),
                "headline" | "error" => return Vec::new(),
                _ => {}
            }
        }
        match t {
            "groupchat" => error(&stanza, Cond::ServiceUnavailable, None),
            "error" => Vec::new(),
            "headline" => {
                self.sessions
                    .send_to_resources(bare, &stanza, |e| e.available() && e.priority() >= 0);
                Vec::new()
            }
            _ => {
                // Highest-priority available resource(s) with non-negative priority.
                let best = self
                    .sessions
                    .available_resources(bare)
                    .iter()
                    .map(|(_, p, _)| *p)
                    .filter(|p| *p >= 0)
                    .max();
                if let Some(best) = best {
                    let got = self.sessions.send_to_resources(bare, &stanza, |e| {
                        e.available() && e.priority() == best
                    });
                    return self.modules.delivered(ctx, &stanza, bare, &got);
                }
                match self.modules.undeliverable(ctx, &stanza, bare).await {
                    Some(bounced) if bounced.is_empty() => {
                        self.modules.delivered(ctx, &stanza, bare, &[])
                    }
                    Some(bounced) => bounced,
                    None => error(&stanza, Cond::ServiceUnavailable, None),
                }
            }
        }
    }
}

#[async_trait]
impl Outlet for Router {
    async fn route(&self, stanza: Element) {
        Router::route(self, stanza).await;
    }

    async fn broadcast(&self, stanza: Element, recipients: Vec<FullJid>) {
        let Some(from) = stanza.attr("from").and_then(|f| Jid::new(f).ok()) else {
            tracing::warn!("broadcast without a valid 'from'");
            return;
        };
        let from_bare = from.to_bare();
        let rest = match Spliced::new(&stanza) {
            Some(body) => self
                .sessions
                .send_spliced(&Arc::new(body), recipients, |bare| {
                    *bare != from_bare && self.modules.refuses_in_memory(bare, &from)
                }),
            None => recipients,
        };
        // Recipients without a session (or that refuse the sender) get an
        // element routed as usual, so that a bounce comes back.
        for to in rest {
            let mut copy = stanza.clone();
            set_attr(&mut copy, "to", to.as_str());
            Router::route(self, copy).await;
        }
    }
}
