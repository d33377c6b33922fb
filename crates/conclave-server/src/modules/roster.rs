//! Rosters (RFC 6121 section 2): get (with versioning), set, remove, and
//! roster pushes to every resource of the account that requested the
//! roster. Items live in the store; subscription states change only
//! through presence subscriptions (`presence.rs`).

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use conclave_store::{RosterItem, Subscription};
use jid::{BareJid, FullJid};
use minidom::Element;
use xmpp_parsers::roster;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{
    account_key, Ctx, Declarations, Hook, IqRequest, IqScope, Module, Out, Outs, SessionRef,
};
use crate::hub::sessions::SessionId;
use crate::xml::{nc, set_attr, CLIENT};

pub const NS: &str = "jabber:iq:roster";

/// The sessions that requested the roster, which get roster pushes.
#[derive(Default)]
pub struct Roster {
    interested: Mutex<HashSet<SessionId>>,
}

/// Longest accepted item name or group name.
const MAX_NAME: usize = 1024;
/// Most groups one item may have.
const MAX_GROUPS: usize = 64;

/// The typed `<item/>` of a roster item (`None` for a stored JID that no
/// longer parses, which is left out).
fn typed_item(item: &RosterItem) -> Option<roster::Item> {
    Some(roster::Item {
        jid: BareJid::new(&item.jid).ok()?,
        name: item.name.clone(),
        subscription: match item.subscription {
            Subscription::None => roster::Subscription::None,
            Subscription::To => roster::Subscription::To,
            Subscription::From => roster::Subscription::From,
            Subscription::Both => roster::Subscription::Both,
        },
        ask: if item.ask {
            roster::Ask::Subscribe
        } else {
            roster::Ask::None
        },
        groups: item.groups.iter().cloned().map(roster::Group).collect(),
        approved: item.approved.then_some(true),
    })
}

/// The `<item subscription='remove'/>` of a roster push.
fn removed_item(jid: &BareJid) -> roster::Item {
    roster::Item {
        jid: jid.clone(),
        name: None,
        subscription: roster::Subscription::Remove,
        ask: roster::Ask::None,
        groups: Vec::new(),
        approved: None,
    }
}

/// The `<query/>` of a result or push. xmpp-parsers leaves out a
/// `subscription` of `none` (its default); it is written out, as RFC 6121's
/// examples and other servers do, for clients that look for it.
fn query(ver: Option<u64>, items: Vec<roster::Item>) -> Element {
    let mut q: Element = roster::Roster {
        ver: ver.map(|v| v.to_string()),
        items,
    }
    .into();
    for item in q.children_mut() {
        if item.attr("subscription").is_none() {
            set_attr(item, "subscription", "none");
        }
    }
    q
}

/// A roster set from the client, validated (RFC 6121 2.3.3 and 2.5.3).
#[derive(Debug, PartialEq)]
pub enum SetRequest {
    Update {
        jid: BareJid,
        name: Option<String>,
        groups: Vec<String>,
    },
    Remove(BareJid),
}

/// Validates the `<query/>` of a roster set.
pub fn parse_set(q: &Element) -> Result<SetRequest, (Cond, &'static str)> {
    let parsed = roster::Roster::try_from(q.clone())
        .map_err(|_| (Cond::BadRequest, "Invalid roster item"))?;
    let [item] = parsed.items.as_slice() else {
        return Err((
            Cond::BadRequest,
            "A roster set must contain exactly one item",
        ));
    };
    let jid = item.jid.clone();
    if item.subscription == roster::Subscription::Remove {
        return Ok(SetRequest::Remove(jid));
    }
    let name = item.name.clone().filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.len() > MAX_NAME) {
        return Err((Cond::NotAcceptable, "Item name too long"));
    }
    let mut groups: Vec<String> = Vec::new();
    for roster::Group(text) in &item.groups {
        if text.is_empty() {
            return Err((Cond::NotAcceptable, "Empty group name"));
        }
        if text.len() > MAX_NAME {
            return Err((Cond::NotAcceptable, "Group name too long"));
        }
        if !groups.contains(text) {
            groups.push(text.clone());
        }
    }
    if groups.len() > MAX_GROUPS {
        return Err((Cond::NotAcceptable, "Too many groups"));
    }
    Ok(SetRequest::Update { jid, name, groups })
}

impl Roster {
    fn interested(&self) -> MutexGuard<'_, HashSet<SessionId>> {
        self.interested.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A roster push of one item for every interested resource.
    pub fn push_item(&self, ctx: &Ctx<'_>, account: &BareJid, item: &RosterItem, ver: u64) -> Outs {
        match typed_item(item) {
            Some(typed) => self.push(ctx, account, &typed, ver),
            None => Vec::new(),
        }
    }

    /// A roster push of a removed item.
    fn push_removed(&self, ctx: &Ctx<'_>, account: &BareJid, jid: &BareJid, ver: u64) -> Outs {
        self.push(ctx, account, &removed_item(jid), ver)
    }

    fn push(&self, ctx: &Ctx<'_>, account: &BareJid, item: &roster::Item, ver: u64) -> Outs {
        let list = ctx.sessions.resources_where(account, |_| true);
        let interested = self.interested();
        list.into_iter()
            .filter(|(_, id)| interested.contains(id))
            .map(|(full, _)| {
                let iq = Element::builder("iq", CLIENT)
                    .attr(nc("type"), "set")
                    .attr(nc("id"), format!("push{ver}"))
                    .attr(nc("to"), full.as_str())
                    .append(query(Some(ver), vec![item.clone()]))
                    .build();
                Out::Local(full, iq)
            })
            .collect()
    }

    async fn get(&self, ctx: &Ctx<'_>, req: &IqRequest<'_>, from: &FullJid) -> Outs {
        let bare = from.to_bare();
        let Some((host, user)) = account_key(&bare) else {
            return req.error(Cond::BadRequest, None);
        };
        if let Some(id) = ctx.sessions.id_of(from) {
            self.interested().insert(id);
        }
        let (ver, items) = match ctx.store.roster_get(host, user).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot read roster of {bare}: {e}");
                return req.error(Cond::InternalServerError, None);
            }
        };
        // Versioning (RFC 6121 2.6): an up-to-date client gets an empty result.
        let asked = req.payload.attr("ver");
        if asked.is_some() && asked == Some(ver.to_string().as_str()) {
            return req.result(Some(bare.as_str()), None);
        }
        let q = query(Some(ver), items.iter().filter_map(typed_item).collect());
        req.result(Some(bare.as_str()), Some(q))
    }

    async fn set(&self, ctx: &Ctx<'_>, req: &IqRequest<'_>, bare: &BareJid) -> Outs {
        let Some((host, user)) = account_key(bare) else {
            return req.error(Cond::BadRequest, None);
        };
        let parsed = match parse_set(req.payload) {
            Ok(r) => r,
            Err((cond, text)) => return req.error(cond, Some(text)),
        };
        let pushes: Outs;
        let mut out = Vec::new();
        match parsed {
            SetRequest::Update { jid, name, groups } => {
                let existing = ctx.store.roster_get_item(host, user, jid.as_str()).await;
                let mut item = match existing {
                    Ok(Some(i)) => i,
                    Ok(None) => RosterItem {
                        jid: jid.as_str().to_owned(),
                        name: None,
                        subscription: Subscription::None,
                        ask: false,
                        approved: false,
                        groups: Vec::new(),
                    },
                    Err(e) => {
                        tracing::error!("roster read failed for {bare}: {e}");
                        return req.error(Cond::InternalServerError, None);
                    }
                };
                item.name = name;
                item.groups = groups;
                match ctx.store.roster_set(host, user, &item).await {
                    Ok(ver) => match typed_item(&item) {
                        Some(typed) => pushes = self.push(ctx, bare, &typed, ver),
                        None => return req.error(Cond::BadRequest, None),
                    },
                    Err(e) => {
                        tracing::error!("roster write failed for {bare}: {e}");
                        return req.error(Cond::InternalServerError, None);
                    }
                }
            }
            SetRequest::Remove(jid) => {
                let existing = match ctx.store.roster_get_item(host, user, jid.as_str()).await {
                    Ok(Some(i)) => i,
                    Ok(None) => return req.error(Cond::ItemNotFound, None),
                    Err(e) => {
                        tracing::error!("roster read failed for {bare}: {e}");
                        return req.error(Cond::InternalServerError, None);
                    }
                };
                // RFC 6121 2.5.2: the subscriptions are cancelled both
                // ways before the item goes, from the removing session.
                let sub = existing.subscription;
                let pending_in = match ctx.store.sub_request_list(host, user).await {
                    Ok(list) => list.iter().any(|(from, _)| *from == jid.as_str()),
                    Err(e) => {
                        tracing::error!("roster read failed for {bare}: {e}");
                        return req.error(Cond::InternalServerError, None);
                    }
                };
                if matches!(sub, Subscription::From | Subscription::Both) || pending_in {
                    out.push(Out::Route(subscription_presence_from(
                        req.from.as_str(),
                        &jid,
                        "unsubscribed",
                    )));
                }
                if matches!(sub, Subscription::To | Subscription::Both) || existing.ask {
                    out.extend(crate::modules::presence::presences_of(
                        ctx,
                        bare,
                        jid.as_str(),
                        true,
                    ));
                    out.push(Out::Route(subscription_presence_from(
                        req.from.as_str(),
                        &jid,
                        "unsubscribe",
                    )));
                }
                if let Err(e) = ctx.store.sub_request_remove(host, user, jid.as_str()).await {
                    tracing::error!("roster write failed for {bare}: {e}");
                    return req.error(Cond::InternalServerError, None);
                }
                match ctx.store.roster_remove(host, user, jid.as_str()).await {
                    Ok(ver) => pushes = self.push_removed(ctx, bare, &jid, ver),
                    Err(e) => {
                        tracing::error!("roster write failed for {bare}: {e}");
                        return req.error(Cond::InternalServerError, None);
                    }
                }
            }
        }
        // What the removal sent the contact, then the result, then the
        // pushes to every interested resource.
        out.extend(req.result(Some(bare.as_str()), None));
        out.extend(pushes);
        out
    }
}

#[async_trait]
impl Module for Roster {
    fn name(&self) -> &'static str {
        "roster"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Account, NS)
            .hook(Hook::Session)
            .server_feature(NS)
            .server_feature("urn:xmpp:features:rosterver")
            .stream_feature(Element::builder("ver", "urn:xmpp:features:rosterver").build());
    }

    async fn iq(&self, ctx: &Ctx<'_>, _: IqScope, req: IqRequest<'_>) -> Outs {
        if req.payload.name() != "query" {
            return req.unsupported();
        }
        if !req.is_own() {
            return req.error(
                Cond::Forbidden,
                Some("Only the account may access its roster"),
            );
        }
        let Ok(full) = req.from.clone().try_into_full() else {
            return req.error(Cond::BadRequest, None);
        };
        if req.is_get() {
            self.get(ctx, &req, &full).await
        } else {
            self.set(ctx, &req, &full.to_bare()).await
        }
    }

    async fn ended(&self, _: &Ctx<'_>, session: &SessionRef) -> Outs {
        self.interested().remove(&session.id);
        Vec::new()
    }
}

/// A subscription-management presence from an account to a contact.
pub fn subscription_presence(from: &BareJid, to: &BareJid, type_: &str) -> Element {
    subscription_presence_from(from.as_str(), to, type_)
}

/// A subscription-management presence from `from` (a bare or full JID).
fn subscription_presence_from(from: &str, to: &BareJid, type_: &str) -> Element {
    Element::builder("presence", CLIENT)
        .attr(nc("from"), from)
        .attr(nc("to"), to.as_str())
        .attr(nc("type"), type_)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Element {
        format!("<query xmlns='jabber:iq:roster'>{s}</query>")
            .parse()
            .unwrap()
    }

    #[test]
    fn set_parses_name_and_groups() {
        let r = parse_set(&q(
            "<item jid='b@h' name='B'><group>G1</group><group>G1</group><group>G2</group></item>",
        ))
        .unwrap();
        assert_eq!(
            r,
            SetRequest::Update {
                jid: BareJid::new("b@h").unwrap(),
                name: Some("B".into()),
                groups: vec!["G1".into(), "G2".into()]
            }
        );
    }

    #[test]
    fn set_rejects_bad_requests() {
        assert_eq!(parse_set(&q("")).unwrap_err().0, Cond::BadRequest);
        assert_eq!(
            parse_set(&q("<item jid='a@h'/><item jid='b@h'/>"))
                .unwrap_err()
                .0,
            Cond::BadRequest
        );
        assert_eq!(
            parse_set(&q("<item jid='a@h/r'/>")).unwrap_err().0,
            Cond::BadRequest
        );
        assert_eq!(
            parse_set(&q("<item jid='a@h'><group></group></item>"))
                .unwrap_err()
                .0,
            Cond::NotAcceptable
        );
        assert_eq!(parse_set(&q("<item/>")).unwrap_err().0, Cond::BadRequest);
    }

    #[test]
    fn remove_is_recognised() {
        assert_eq!(
            parse_set(&q("<item jid='b@h' subscription='remove'/>")).unwrap(),
            SetRequest::Remove(BareJid::new("b@h").unwrap())
        );
    }

    #[test]
    fn items_keep_their_wire_form() {
        let item = RosterItem {
            jid: "b@h".into(),
            name: Some("Bee".into()),
            subscription: Subscription::From,
            ask: true,
            approved: false,
            groups: vec!["Friends".into()],
        };
        let q = query(None, vec![typed_item(&item).unwrap()]);
        let el = q.children().next().unwrap();
        assert_eq!(el.attr("jid"), Some("b@h"));
        assert_eq!(el.attr("name"), Some("Bee"));
        assert_eq!(el.attr("subscription"), Some("from"));
        assert_eq!(el.attr("ask"), Some("subscribe"));
        assert_eq!(el.attr("approved"), None);
        assert_eq!(
            el.get_child("group", NS).map(|g| g.text()),
            Some("Friends".into())
        );
        let plain = RosterItem {
            jid: "c@h".into(),
            name: None,
            subscription: Subscription::None,
            ask: false,
            approved: true,
            groups: Vec::new(),
        };
        let q = query(None, vec![typed_item(&plain).unwrap()]);
        let el = q.children().next().unwrap();
        assert_eq!(el.attr("subscription"), Some("none"));
        assert_eq!(el.attr("ask"), None);
        assert_eq!(el.attr("approved"), Some("true"));
        let removed = Element::from(removed_item(&BareJid::new("d@h").unwrap()));
        assert_eq!(removed.attr("subscription"), Some("remove"));
        let q = query(Some(7), vec![typed_item(&plain).unwrap()]);
        assert_eq!(q.attr("ver"), Some("7"));
        assert_eq!(q.children().count(), 1);
    }
}
