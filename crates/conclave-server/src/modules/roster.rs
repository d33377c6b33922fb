//! Rosters (RFC 6121 section 2): get (with versioning), set, remove, and
//! roster pushes to every resource of the account that requested the
//! roster. Items live in the store; subscription states change only
//! through presence subscriptions (`presence.rs`).

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use conclave_store::{RosterItem, Subscription};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{
    account_key, Ctx, Declarations, Hook, IqRequest, IqScope, Module, Out, Outs, SessionRef,
};
use crate::hub::sessions::SessionId;
use crate::xml::{nc, CLIENT};

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

fn subscription_str(s: Subscription) -> &'static str {
    match s {
        Subscription::None => "none",
        Subscription::To => "to",
        Subscription::From => "from",
        Subscription::Both => "both",
    }
}

/// The `<item/>` of a roster item.
pub fn item_element(item: &RosterItem) -> Element {
    let mut b = Element::builder("item", NS)
        .attr(nc("jid"), item.jid.as_str())
        .attr(nc("subscription"), subscription_str(item.subscription));
    if let Some(name) = &item.name {
        b = b.attr(nc("name"), name.as_str());
    }
    if item.ask {
        b = b.attr(nc("ask"), "subscribe");
    }
    if item.approved {
        b = b.attr(nc("approved"), "true");
    }
    for g in &item.groups {
        b = b.append(Element::builder("group", NS).append(g.as_str()).build());
    }
    b.build()
}

fn query(ver: Option<u64>, items: Vec<Element>) -> Element {
    let mut b = Element::builder("query", NS);
    if let Some(v) = ver {
        b = b.attr(nc("ver"), v.to_string());
    }
    b.append_all(items).build()
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
    let items: Vec<&Element> = q.children().filter(|c| c.is("item", NS)).collect();
    let [item] = items.as_slice() else {
        return Err((
            Cond::BadRequest,
            "A roster set must contain exactly one item",
        ));
    };
    let jid = item
        .attr("jid")
        .and_then(|j| BareJid::new(j).ok())
        .ok_or((Cond::BadRequest, "Missing or invalid item JID"))?;
    if Jid::new(item.attr("jid").unwrap_or_default()).is_ok_and(|j| j.is_full()) {
        return Err((Cond::BadRequest, "Roster items are bare JIDs"));
    }
    match item.attr("subscription") {
        Some("remove") => return Ok(SetRequest::Remove(jid)),
        None | Some("none" | "to" | "from" | "both") => {}
        Some(_) => return Err((Cond::BadRequest, "Invalid subscription value")),
    }
    let name = item
        .attr("name")
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if name.as_ref().is_some_and(|n| n.len() > MAX_NAME) {
        return Err((Cond::NotAcceptable, "Item name too long"));
    }
    let mut groups: Vec<String> = Vec::new();
    for g in item.children().filter(|c| c.is("group", NS)) {
        let text = g.text();
        if text.is_empty() {
            return Err((Cond::NotAcceptable, "Empty group name"));
        }
        if text.len() > MAX_NAME {
            return Err((Cond::NotAcceptable, "Group name too long"));
        }
        if !groups.contains(&text) {
            groups.push(text);
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

    /// A roster push with one item for every interested resource.
    pub fn push(&self, ctx: &Ctx<'_>, account: &BareJid, item: &Element, ver: u64) -> Outs {
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
        let q = query(Some(ver), items.iter().map(item_element).collect());
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
        // Pushes first, then the result, then what the change sends contacts.
        let mut pushes: Outs;
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
                    Ok(ver) => pushes = self.push(ctx, bare, &item_element(&item), ver),
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
                // RFC 6121 2.5.2: cancel the subscriptions both ways.
                let sub = existing.subscription;
                if matches!(sub, Subscription::To | Subscription::Both) || existing.ask {
                    out.push(Out::Route(subscription_presence(bare, &jid, "unsubscribe")));
                }
                if matches!(sub, Subscription::From | Subscription::Both) {
                    out.push(Out::Route(subscription_presence(
                        bare,
                        &jid,
                        "unsubscribed",
                    )));
                    // RFC 6121 2.5.2: the removed contact sees the user go offline.
                    out.extend(crate::modules::presence::presences_of(
                        ctx,
                        bare,
                        jid.as_str(),
                        true,
                    ));
                }
                if let Err(e) = ctx.store.sub_request_remove(host, user, jid.as_str()).await {
                    tracing::error!("roster write failed for {bare}: {e}");
                    return req.error(Cond::InternalServerError, None);
                }
                match ctx.store.roster_remove(host, user, jid.as_str()).await {
                    Ok(ver) => {
                        let removed = Element::builder("item", NS)
                            .attr(nc("jid"), jid.as_str())
                            .attr(nc("subscription"), "remove")
                            .build();
                        pushes = self.push(ctx, bare, &removed, ver);
                    }
                    Err(e) => {
                        tracing::error!("roster write failed for {bare}: {e}");
                        return req.error(Cond::InternalServerError, None);
                    }
                }
            }
        }
        pushes.extend(req.result(Some(bare.as_str()), None));
        pushes.extend(out);
        pushes
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
    Element::builder("presence", CLIENT)
        .attr(nc("from"), from.as_str())
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
    fn item_element_round_trips_through_parser() {
        let item = RosterItem {
            jid: "b@h".into(),
            name: Some("Bee".into()),
            subscription: Subscription::From,
            ask: true,
            approved: false,
            groups: vec!["Friends".into()],
        };
        let parsed = xmpp_parsers::roster::Item::try_from(item_element(&item)).unwrap();
        assert_eq!(parsed.jid.as_str(), "b@h");
        assert_eq!(parsed.name.as_deref(), Some("Bee"));
        assert_eq!(
            parsed.subscription,
            xmpp_parsers::roster::Subscription::From
        );
        assert_eq!(parsed.ask, xmpp_parsers::roster::Ask::Subscribe);
        assert_eq!(parsed.groups.len(), 1);
    }
}
