//! Blocking command (XEP-0191): each account's block list, stored in the
//! `blocklist` key-value store (one key per blocked JID) and kept in memory
//! while the user has a session, so that routing reads no store for them. Blocked entities get no presence
//! and their stanzas do not reach the user; the user's own stanzas to them
//! are refused with `not-acceptable` and a `<blocked/>` error child.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::blocking::{Block, Blocked, BlocklistResult, Unblock};
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{
    account_key, error, Ctx, Declarations, Flow, Hook, IqRequest, IqScope, Module, Out, Outs,
    SessionRef,
};
use crate::hub::sessions::SessionId;
use crate::modules::presence::{presences_of, subscribed_from};
use crate::xml::{error_reply, nc, stanza_type, CLIENT};

pub const NS: &str = "urn:xmpp:blocking";
pub const ERRORS_NS: &str = "urn:xmpp:blocking:errors";
const KV: &str = "blocklist";

/// The block list of an account with sessions, while it has any.
struct Cached {
    sessions: usize,
    /// `None` until it is loaded.
    list: Option<Arc<BlockList>>,
}

/// Block lists in memory, and the sessions that get block-list pushes.
pub struct Blocking {
    max_items: usize,
    /// Lock order: the session registry before this (the group-chat
    /// fan-out asks [`Module::refuses_in_memory`] under the registry lock);
    /// nothing here takes the registry's lock.
    cache: Mutex<HashMap<BareJid, Cached>>,
    requested: Mutex<HashSet<SessionId>>,
}

/// The JIDs one account blocks, as normalised strings: a full JID, a bare
/// JID, a domain or `domain/resource`.
pub type BlockList = HashSet<String>;

/// Whether `list` blocks `jid`, with the matching rules of XEP-0016
/// section 2.1 that XEP-0191 refers to: an item matches the same full JID,
/// the bare JID blocks all its resources, a domain blocks everything at it.
pub fn matches(list: &BlockList, jid: &Jid) -> bool {
    if list.is_empty() {
        return false;
    }
    let domain = jid.domain().as_str();
    if list.contains(jid.as_str()) || list.contains(domain) {
        return true;
    }
    if jid.node().is_some() && list.contains(jid.to_bare().as_str()) {
        return true;
    }
    match jid.resource() {
        Some(r) => list.contains(&format!("{domain}/{}", r.as_str())),
        None => false,
    }
}

async fn load_from_store(ctx: &Ctx<'_>, account: &BareJid) -> Result<BlockList, ()> {
    let Some((host, user)) = account_key(account) else {
        return Ok(BlockList::new());
    };
    match ctx.store.kv_list(host, user, KV).await {
        Ok(items) => Ok(items.into_iter().map(|(k, _)| k).collect()),
        Err(e) => {
            tracing::error!("cannot read block list of {account}: {e}");
            Err(())
        }
    }
}

impl Blocking {
    pub fn new(max_items: usize) -> Blocking {
        Blocking {
            max_items,
            cache: Mutex::new(HashMap::new()),
            requested: Mutex::new(HashSet::new()),
        }
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<BareJid, Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn requested(&self) -> MutexGuard<'_, HashSet<SessionId>> {
        self.requested.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The block list of a user with a connected session, from memory.
    pub fn cached(&self, account: &BareJid) -> Option<Arc<BlockList>> {
        self.cache().get(account).and_then(|c| c.list.clone())
    }

    /// Whether the in-memory list of a connected user blocks `other`;
    /// `None` when it has none in memory.
    pub fn blocks_cached(&self, account: &BareJid, other: &Jid) -> Option<bool> {
        self.cached(account).map(|list| matches(&list, other))
    }

    /// Whether `account` blocks `other`: from memory for connected users,
    /// from the store otherwise (a list that cannot be read blocks nothing).
    async fn blocks(&self, ctx: &Ctx<'_>, account: &BareJid, other: &Jid) -> bool {
        match self.blocks_cached(account, other) {
            Some(b) => b,
            None => load_from_store(ctx, account)
                .await
                .is_ok_and(|list| matches(&list, other)),
        }
    }

    /// The current list: from memory, else from the store.
    async fn current(&self, ctx: &Ctx<'_>, account: &BareJid) -> Result<BlockList, ()> {
        match self.cached(account) {
            Some(l) => Ok((*l).clone()),
            None => load_from_store(ctx, account).await,
        }
    }

    /// Replaces the in-memory list of a connected user after a change.
    fn update(&self, account: &BareJid, list: BlockList) {
        if let Some(c) = self.cache().get_mut(account) {
            c.list = Some(Arc::new(list));
        }
    }

    /// Block-list pushes to the sessions that requested the list.
    fn push(&self, ctx: &Ctx<'_>, account: &BareJid, payload: Element) -> Outs {
        let list = ctx.sessions.resources_where(account, |_| true);
        let requested = self.requested();
        list.into_iter()
            .filter(|(_, id)| requested.contains(id))
            .map(|(full, _)| {
                let iq = Element::builder("iq", CLIENT)
                    .attr(nc("type"), "set")
                    .attr(nc("id"), format!("block-push-{}", rand::random::<u32>()))
                    .attr(nc("from"), account.as_str())
                    .attr(nc("to"), full.as_str())
                    .append(payload.clone())
                    .build();
                Out::Local(full, iq)
            })
            .collect()
    }
}

/// The error for a stanza refused because of a block: `not-acceptable`
/// with `<blocked xmlns='urn:xmpp:blocking:errors'/>` (XEP-0191 3.5).
pub fn blocked_error(stanza: &Element, text: &str) -> Option<Element> {
    let mut reply = error_reply(stanza, Cond::NotAcceptable, Some(text))?;
    for child in reply.children_mut() {
        if child.is("error", CLIENT) {
            child.append_child(Blocked.into());
        }
    }
    Some(reply)
}

/// What a stanza from an entity the recipient blocks gets: presence is
/// dropped, IQ requests get `service-unavailable`, messages bounce with
/// the blocked error.
pub fn inbound_refusal(stanza: &Element) -> Outs {
    match stanza.name() {
        "presence" => Vec::new(),
        "iq" => error(stanza, Cond::ServiceUnavailable, None),
        _ => blocked_error(stanza, "The recipient has blocked you")
            .map(Out::Route)
            .into_iter()
            .collect(),
    }
}

/// JIDs kept as normalised strings, as typed items.
fn typed_jids(list: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<Jid> {
    list.into_iter()
        .filter_map(|j| Jid::new(j.as_ref()).ok())
        .collect()
}

/// The JIDs of a block or unblock request, normalised, without repeats.
fn parse_items(payload: &Element) -> Result<Vec<String>, &'static str> {
    let items = match payload.name() {
        "block" => Block::try_from(payload.clone()).map(|b| b.items),
        _ => Unblock::try_from(payload.clone()).map(|u| u.items),
    }
    .map_err(|_| "An item has a missing or invalid 'jid'")?;
    let mut out: Vec<String> = Vec::new();
    for jid in items {
        let s = jid.as_str().to_owned();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Which of `jids` are, as written, roster contacts subscribed to the
/// account's presence, and which have a subscription request pending.
async fn subscribed_or_pending(
    ctx: &Ctx<'_>,
    account: &BareJid,
    jids: &[String],
) -> (Vec<String>, Vec<String>) {
    let Some((host, user)) = account_key(account) else {
        return (Vec::new(), Vec::new());
    };
    let items = match ctx.store.roster_get(host, user).await {
        Ok((_, items)) => items,
        Err(e) => {
            tracing::error!("cannot read roster of {account}: {e}");
            return (Vec::new(), Vec::new());
        }
    };
    let requests = match ctx.store.sub_request_list(host, user).await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!("cannot read subscription requests of {account}: {e}");
            Vec::new()
        }
    };
    let mut subscribed = Vec::new();
    let mut pending = Vec::new();
    for j in jids {
        if items
            .iter()
            .any(|i| i.jid == *j && subscribed_from(i.subscription))
        {
            subscribed.push(j.clone());
        } else if requests.iter().any(|(from, _)| from == j) {
            pending.push(j.clone());
        }
    }
    (subscribed, pending)
}

impl Blocking {
    async fn block(&self, ctx: &Ctx<'_>, req: &IqRequest<'_>, account: &BareJid) -> Outs {
        let Some((host, user)) = account_key(account) else {
            return req.unsupported();
        };
        let jids = match parse_items(req.payload) {
            Ok(j) if j.is_empty() => return req.error(Cond::BadRequest, Some("Nothing to block")),
            Ok(j) => j,
            Err(text) => return req.error(Cond::JidMalformed, Some(text)),
        };
        let Ok(mut list) = load_from_store(ctx, account).await else {
            return req.error(Cond::InternalServerError, None);
        };
        let new: Vec<String> = jids.into_iter().filter(|j| !list.contains(j)).collect();
        // XEP-0191 3.3: a contact that sees the user's presence sees it go
        // offline; a pending request from a blocked JID is refused with it.
        let (subscribed, pending) = subscribed_or_pending(ctx, account, &new).await;
        if list.len() + new.len() > self.max_items {
            return req.error(Cond::ResourceConstraint, Some("The block list is full"));
        }
        for j in &new {
            if let Err(e) = ctx.store.kv_set(host, user, KV, j, "").await {
                tracing::error!("cannot save block list of {account}: {e}");
                return req.error(Cond::InternalServerError, None);
            }
            list.insert(j.clone());
        }
        self.update(account, list);
        let mut out = req.result(Some(account.as_str()), None);
        for j in &pending {
            if let Err(e) = ctx.store.sub_request_remove(host, user, j).await {
                tracing::error!("cannot remove the subscription request of {j}: {e}");
            }
        }
        if !new.is_empty() {
            // From each available resource, to the JID as it was blocked.
            for contact in &subscribed {
                out.extend(presences_of(ctx, account, contact, true));
            }
            let payload = Block {
                items: typed_jids(&new),
            };
            out.extend(self.push(ctx, account, payload.into()));
        }
        out
    }

    async fn unblock(&self, ctx: &Ctx<'_>, req: &IqRequest<'_>, account: &BareJid) -> Outs {
        let Some((host, user)) = account_key(account) else {
            return req.unsupported();
        };
        let jids = match parse_items(req.payload) {
            Ok(j) => j,
            Err(text) => return req.error(Cond::JidMalformed, Some(text)),
        };
        let Ok(mut list) = load_from_store(ctx, account).await else {
            return req.error(Cond::InternalServerError, None);
        };
        // No items: unblock everything (XEP-0191 3.4).
        let named = !jids.is_empty();
        // Subscribed contacts named in the request probe the user, and so
        // get its current presence again.
        let (subscribed, _) = subscribed_or_pending(ctx, account, &jids).await;
        let removed: Vec<String> = if jids.is_empty() {
            list.iter().cloned().collect()
        } else {
            jids.into_iter().filter(|j| list.contains(j)).collect()
        };
        for j in &removed {
            if let Err(e) = ctx.store.kv_delete(host, user, KV, j).await {
                tracing::error!("cannot save block list of {account}: {e}");
                return req.error(Cond::InternalServerError, None);
            }
            list.remove(j);
        }
        self.update(account, list);
        let mut out = req.result(Some(account.as_str()), None);
        for contact in &subscribed {
            out.push(Out::Route(
                Element::builder("presence", CLIENT)
                    .attr(nc("type"), "probe")
                    .attr(nc("from"), contact.as_str())
                    .attr(nc("to"), account.as_str())
                    .build(),
            ));
        }
        if !removed.is_empty() {
            // Unblocking everything is pushed as an empty <unblock/>.
            let items = if named {
                typed_jids(&removed)
            } else {
                Vec::new()
            };
            out.extend(self.push(ctx, account, Unblock { items }.into()));
        }
        out
    }
}

#[async_trait]
impl Module for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Own, NS)
            .hook(Hook::Session)
            .hook(Hook::Outbound)
            .hook(Hook::Inbound)
            .server_feature(NS);
    }

    /// Block-list requests from one of the account's own sessions.
    async fn iq(&self, ctx: &Ctx<'_>, _: IqScope, req: IqRequest<'_>) -> Outs {
        let Some(account) = req.account else {
            return req.unsupported();
        };
        match (req.is_get(), req.payload.name()) {
            (true, "blocklist") => {
                if let Some(id) = req
                    .from
                    .clone()
                    .try_into_full()
                    .ok()
                    .and_then(|f| ctx.sessions.id_of(&f))
                {
                    self.requested().insert(id);
                }
                let Ok(list) = self.current(ctx, account).await else {
                    return req.error(Cond::InternalServerError, None);
                };
                let mut sorted: Vec<&String> = list.iter().collect();
                sorted.sort();
                let q = BlocklistResult {
                    items: typed_jids(sorted),
                };
                req.result(Some(account.as_str()), Some(q.into()))
            }
            (false, "block") => self.block(ctx, &req, account).await,
            (false, "unblock") => self.unblock(ctx, &req, account).await,
            _ => req.error(Cond::BadRequest, Some("Unknown blocking command")),
        }
    }

    async fn bound(&self, ctx: &Ctx<'_>, session: &SessionRef) {
        let loaded = {
            let mut cache = self.cache();
            let c = cache.entry(session.bare.clone()).or_insert(Cached {
                sessions: 0,
                list: None,
            });
            c.sessions += 1;
            c.list.is_some()
        };
        if loaded {
            return;
        }
        // Read without the lock; a list already loaded meanwhile (by
        // another session of the user, which keeps it current) stays.
        if let Ok(list) = load_from_store(ctx, &session.bare).await {
            if let Some(c) = self.cache().get_mut(&session.bare) {
                if c.list.is_none() {
                    c.list = Some(Arc::new(list));
                }
            }
        }
    }

    async fn ended(&self, _: &Ctx<'_>, session: &SessionRef) -> Outs {
        self.requested().remove(&session.id);
        let mut cache = self.cache();
        if let Some(c) = cache.get_mut(&session.bare) {
            c.sessions = c.sessions.saturating_sub(1);
            if c.sessions == 0 {
                cache.remove(&session.bare);
            }
        }
        Vec::new()
    }

    /// Nothing goes to a contact the user blocks.
    async fn outbound(
        &self,
        _: &Ctx<'_>,
        session: &SessionRef,
        stanza: &Element,
        out: &mut Outs,
    ) -> Flow {
        let Some(to) = stanza.attr("to").and_then(|t| Jid::new(t).ok()) else {
            return Flow::Continue;
        };
        if to.to_bare() == session.bare || self.blocks_cached(&session.bare, &to) != Some(true) {
            return Flow::Continue;
        }
        if let Some(e) = blocked_error(stanza, "You have blocked this contact; unblock it first") {
            out.push(Out::Local(session.full.clone(), e));
        }
        Flow::Stop
    }

    /// Nothing from a blocked entity reaches the user.
    async fn inbound(
        &self,
        ctx: &Ctx<'_>,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        out: &mut Outs,
    ) -> Flow {
        let account = to.to_bare();
        if from.to_bare() == account {
            return Flow::Continue;
        }
        let blocked = match self.blocks_cached(&account, from) {
            Some(b) => b,
            // Plain presence for a user without a session goes nowhere.
            None if stanza.name() == "presence"
                && matches!(stanza_type(stanza), "" | "unavailable") =>
            {
                false
            }
            None => self.blocks(ctx, &account, from).await,
        };
        if !blocked {
            return Flow::Continue;
        }
        out.extend(inbound_refusal(stanza));
        Flow::Stop
    }

    fn refuses_in_memory(&self, account: &BareJid, from: &Jid) -> bool {
        self.blocks_cached(account, from) == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> BlockList {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn j(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn matching_follows_privacy_list_rules() {
        let l = list(&["bad@h", "evil.example", "x@h/phone", "other.example/bot"]);
        assert!(matches(&l, &j("bad@h")));
        assert!(matches(&l, &j("bad@h/any")));
        assert!(matches(&l, &j("someone@evil.example/r")));
        assert!(matches(&l, &j("evil.example")));
        assert!(matches(&l, &j("x@h/phone")));
        assert!(!matches(&l, &j("x@h/desk")));
        assert!(!matches(&l, &j("x@h")));
        assert!(matches(&l, &j("other.example/bot")));
        // XEP-0016: <domain/resource> is tried for any JID at the domain.
        assert!(matches(&l, &j("u@other.example/bot")));
        assert!(!matches(&l, &j("u@other.example/human")));
        assert!(!matches(&l, &j("good@h")));
        assert!(!matches(&BlockList::new(), &j("bad@h")));
    }

    #[test]
    fn blocked_error_has_condition_and_child() {
        let m: Element = "<message xmlns='jabber:client' from='a@h/r' to='b@h' type='chat'><body>x</body></message>"
            .parse()
            .unwrap();
        let e = blocked_error(&m, "blocked").unwrap();
        let err = e.get_child("error", CLIENT).unwrap();
        assert_eq!(err.attr("type"), Some("modify"));
        assert!(err.has_child("not-acceptable", "urn:ietf:params:xml:ns:xmpp-stanzas"));
        assert!(err.has_child("blocked", ERRORS_NS));
    }

    #[test]
    fn items_are_parsed_and_checked() {
        let p: Element =
            "<block xmlns='urn:xmpp:blocking'><item jid='A@H'/><item jid='a@h'/></block>"
                .parse()
                .unwrap();
        assert_eq!(parse_items(&p).unwrap(), vec!["a@h".to_string()]);
        let bad: Element = "<block xmlns='urn:xmpp:blocking'><item/></block>"
            .parse()
            .unwrap();
        assert!(parse_items(&bad).is_err());
    }
}
