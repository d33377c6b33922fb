//! The module API: how a server feature plugs into the core.
//!
//! A feature is one file in `modules/` with one type implementing
//! [`Module`]. At start the server asks each module what it handles
//! ([`Module::declare`]): the IQ payload namespaces it answers in each
//! [`IqScope`], the hooks it wants called, and what it adds to the
//! server's disco#info, an account's disco#info and the stream features.
//! The core then calls it through those declarations only, giving it a
//! narrow [`Ctx`]: the sessions (read, never written to directly), the
//! store and facts about the server. A module never sees the router.
//!
//! Every handler and hook *returns* what it wants sent, as [`Out`]s, and
//! the core carries them out in order: stanzas to route, and stanzas the
//! server hands to one of its own sessions as they are (pushes, copies,
//! stored messages). Nothing is sent any other way.

use std::time::Instant;

use async_trait::async_trait;
use base64::prelude::{Engine as _, BASE64_STANDARD};
use conclave_store::Store;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::caps::{compute_disco, hash_caps, Caps};
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::disco::{DiscoInfoResult, Identity};
use xmpp_parsers::hashes::Algo;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::sessions::{SessionId, Sessions};
use crate::xml::{error_reply, iq_result};

/// Something a module wants sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A stanza to route, with its `from` set; the router addresses it as
    /// any other.
    Route(Element),
    /// A stanza the server itself gives one local session as it is, with
    /// no addressing (roster and block-list pushes, carbon copies, stored
    /// messages): dropped if that session is gone.
    Local(FullJid, Element),
}

/// What a handler or hook returns: sent in order.
pub type Outs = Vec<Out>;

/// The routed error reply to `stanza` (none for errors and results).
pub fn error(stanza: &Element, cond: Cond, text: Option<&str>) -> Outs {
    error_reply(stanza, cond, text)
        .map(Out::Route)
        .into_iter()
        .collect()
}

/// Routes each of `stanzas`.
pub fn route_all(stanzas: impl IntoIterator<Item = Element>) -> Outs {
    stanzas.into_iter().map(Out::Route).collect()
}

/// Where an IQ request was addressed; each scope has its own table of
/// handlers, keyed by the payload's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IqScope {
    /// To a local host itself (`to='example.org'`).
    Server,
    /// To a local account's bare JID, from anyone: answered by the server
    /// on the account's behalf (the account exists: the core checked).
    Account,
    /// From one of the account's own sessions about its own state
    /// (carbons, block list), addressed to its bare JID or to its server.
    Own,
}

/// The hooks a module may ask for (see the methods of [`Module`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// [`Module::bound`] and [`Module::ended`].
    Session,
    /// [`Module::outbound`].
    Outbound,
    /// [`Module::inbound`] and [`Module::refuses_in_memory`].
    Inbound,
    /// [`Module::delivered`].
    Delivered,
    /// [`Module::undeliverable`].
    Undeliverable,
}

/// What a module declares at start.
#[derive(Default)]
pub struct Declarations {
    pub(crate) iq: Vec<(IqScope, &'static str)>,
    pub(crate) hooks: Vec<Hook>,
    pub(crate) server_features: Vec<&'static str>,
    pub(crate) account_features: Vec<&'static str>,
    pub(crate) server_forms: Vec<DataForm>,
    pub(crate) stream_features: Vec<Element>,
}

impl Declarations {
    /// Answers IQ requests whose payload is in `ns`, in `scope`.
    pub fn iq(&mut self, scope: IqScope, ns: &'static str) -> &mut Self {
        self.iq.push((scope, ns));
        self
    }

    /// Wants `hook` called.
    pub fn hook(&mut self, hook: Hook) -> &mut Self {
        self.hooks.push(hook);
        self
    }

    /// A feature of the server's disco#info.
    pub fn server_feature(&mut self, var: &'static str) -> &mut Self {
        self.server_features.push(var);
        self
    }

    /// A feature of every account's disco#info.
    pub fn account_feature(&mut self, var: &'static str) -> &mut Self {
        self.account_features.push(var);
        self
    }

    /// A data form (XEP-0128) in the server's disco#info.
    pub fn server_form(&mut self, form: DataForm) -> &mut Self {
        self.server_forms.push(form);
        self
    }

    /// A stream feature offered after authentication.
    pub fn stream_feature(&mut self, feature: Element) -> &mut Self {
        self.stream_features.push(feature);
        self
    }
}

/// What modules may know of the server itself.
pub struct ServerInfo {
    /// The virtual hosts.
    pub hosts: Vec<String>,
    /// When the server started.
    pub started: Instant,
    /// The server's disco#info, gathered from every module's declarations.
    pub disco: DiscoInfo,
}

/// The server's disco#info and disco#items, gathered at start.
#[derive(Default, Debug, Clone)]
pub struct DiscoInfo {
    pub server_features: Vec<&'static str>,
    pub account_features: Vec<&'static str>,
    pub server_forms: Vec<DataForm>,
    /// The services at their own domains: (domain, name).
    pub items: Vec<(String, String)>,
}

/// The node of the server's entity capabilities (XEP-0115).
pub const CAPS_NODE: &str = "urn:conclave:server";

fn identity(category: &str, type_: &str, name: Option<&str>) -> Identity {
    Identity {
        category: category.to_owned(),
        type_: type_.to_owned(),
        lang: None,
        name: name.map(str::to_owned),
    }
}

impl DiscoInfo {
    /// The server's disco#info result.
    pub fn server_result(&self) -> DiscoInfoResult {
        DiscoInfoResult {
            node: None,
            identities: vec![identity("server", "im", Some("Conclave"))],
            features: self
                .server_features
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
            extensions: self.server_forms.clone(),
        }
    }

    /// An account's disco#info result.
    pub fn account_result(&self) -> DiscoInfoResult {
        DiscoInfoResult {
            node: None,
            identities: vec![identity("account", "registered", None)],
            features: self
                .account_features
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
            extensions: Vec::new(),
        }
    }

    /// The server's entity capabilities (XEP-0115): SHA-1 over its
    /// disco#info, which changes whenever the features do.
    pub fn caps(&self) -> Option<Caps> {
        let hash = hash_caps(&compute_disco(&self.server_result()), Algo::Sha_1).ok()?;
        Some(Caps::new(CAPS_NODE, hash))
    }

    /// The `node#ver` a client asks disco#info about after seeing the caps.
    pub fn caps_node(&self) -> Option<String> {
        let caps = self.caps()?;
        Some(format!(
            "{}#{}",
            caps.node,
            BASE64_STANDARD.encode(&caps.ver)
        ))
    }
}

/// What a module is given when it is called.
pub struct Ctx<'a> {
    pub sessions: &'a Sessions,
    pub store: &'a dyn Store,
    pub server: &'a ServerInfo,
}

impl Ctx<'_> {
    pub fn is_local_host(&self, domain: &str) -> bool {
        self.server.hosts.iter().any(|h| h == domain)
    }

    /// Whether `jid` is an account at one of the local hosts (by its
    /// form, not by looking it up).
    pub fn is_local_user(&self, jid: &Jid) -> bool {
        jid.node().is_some() && self.is_local_host(jid.domain().as_str())
    }

    /// Whether an account exists (connected, or present in the store).
    pub async fn account_exists(&self, bare: &BareJid) -> bool {
        if self.sessions.is_online(bare) {
            return true;
        }
        let Some((host, user)) = account_key(bare) else {
            return false;
        };
        matches!(self.store.get_credentials(host, user).await, Ok(Some(_)))
    }
}

/// Host and username of a local bare JID, for the store.
pub fn account_key(bare: &BareJid) -> Option<(&str, &str)> {
    Some((bare.domain().as_str(), bare.node()?.as_str()))
}

/// One bound session, as modules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRef {
    pub id: SessionId,
    pub full: FullJid,
    pub bare: BareJid,
}

impl SessionRef {
    pub fn new(id: SessionId, full: FullJid) -> SessionRef {
        SessionRef {
            id,
            bare: full.to_bare(),
            full,
        }
    }
}

/// An IQ request of type `get` or `set` with exactly one payload, handed
/// to the module that declared the payload's namespace.
pub struct IqRequest<'a> {
    pub stanza: &'a Element,
    pub payload: &'a Element,
    pub from: &'a Jid,
    pub to: &'a Jid,
    /// The account addressed ([`IqScope::Account`]) or whose session asks
    /// ([`IqScope::Own`]); `None` for [`IqScope::Server`].
    pub account: Option<&'a BareJid>,
}

impl IqRequest<'_> {
    pub fn is_get(&self) -> bool {
        self.stanza.attr("type") == Some("get")
    }

    pub fn is_set(&self) -> bool {
        self.stanza.attr("type") == Some("set")
    }

    /// Whether the request comes from the addressed account itself.
    pub fn is_own(&self) -> bool {
        self.account.is_some_and(|a| self.from.to_bare() == *a)
    }

    /// The result, from the addressed entity (or `from` instead).
    pub fn result(&self, from: Option<&str>, payload: Option<Element>) -> Outs {
        vec![Out::Route(iq_result(self.stanza, from, payload))]
    }

    /// The error reply.
    pub fn error(&self, cond: Cond, text: Option<&str>) -> Outs {
        error(self.stanza, cond, text)
    }

    /// The answer for a payload this module does not know.
    pub fn unsupported(&self) -> Outs {
        self.error(Cond::ServiceUnavailable, None)
    }
}

/// Whether the core goes on with a stanza after a hook saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The next hook, then the core, handle it as usual.
    Continue,
    /// The hook took the stanza: nothing else happens to it.
    Stop,
}

/// A server feature. Every method has a default that does nothing; the
/// core calls only what [`Module::declare`] asked for. Hooks are called
/// in the order the modules are registered (`modules/mod.rs`).
#[async_trait]
pub trait Module: Send + Sync + 'static {
    /// A short name, for logs.
    fn name(&self) -> &'static str;

    /// What the module handles and adds to discovery.
    fn declare(&self, d: &mut Declarations);

    /// An IQ request whose payload namespace it declared for this scope.
    async fn iq(&self, ctx: &Ctx<'_>, scope: IqScope, req: IqRequest<'_>) -> Outs {
        let _ = (ctx, scope);
        req.unsupported()
    }

    /// A session was bound ([`Hook::Session`]).
    async fn bound(&self, ctx: &Ctx<'_>, session: &SessionRef) {
        let _ = (ctx, session);
    }

    /// A session ended ([`Hook::Session`]), still registered; called for
    /// every session that was bound, once.
    async fn ended(&self, ctx: &Ctx<'_>, session: &SessionRef) -> Outs {
        let _ = (ctx, session);
        Vec::new()
    }

    /// A stanza from one of the server's client sessions, `from` stamped,
    /// before it is routed ([`Hook::Outbound`]).
    async fn outbound(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionRef,
        stanza: &Element,
        out: &mut Outs,
    ) -> Flow {
        let _ = (ctx, session, stanza, out);
        Flow::Continue
    }

    /// A stanza to a local account (bare or full JID) from someone else or
    /// from itself, before the core delivers it ([`Hook::Inbound`]).
    async fn inbound(
        &self,
        ctx: &Ctx<'_>,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        out: &mut Outs,
    ) -> Flow {
        let _ = (ctx, stanza, from, to, out);
        Flow::Continue
    }

    /// Whether [`Module::inbound`] would refuse a stanza from `from` to a
    /// connected `account`, judged from memory alone: asked on the
    /// group-chat fan-out path, which reads no store and holds the
    /// session registry's lock (do not take it).
    fn refuses_in_memory(&self, account: &BareJid, from: &Jid) -> bool {
        let _ = (account, from);
        false
    }

    /// A message was delivered to these sessions of `account` (none when
    /// it was stored for later) ([`Hook::Delivered`]).
    fn delivered(&self, ctx: &Ctx<'_>, msg: &Element, account: &BareJid, got: &[FullJid]) -> Outs {
        let _ = (ctx, msg, account, got);
        Vec::new()
    }

    /// A message of type `normal` or `chat` for an account with no
    /// available resource ([`Hook::Undeliverable`]). `Some` when the module
    /// took it: with nothing, it was kept (or dropped on purpose); with
    /// stanzas, it was refused and these are the errors.
    async fn undeliverable(&self, ctx: &Ctx<'_>, msg: &Element, account: &BareJid) -> Option<Outs> {
        let _ = (ctx, msg, account);
        None
    }
}
