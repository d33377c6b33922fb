//! Rosters (RFC 6121 section 2): get (with versioning), set, remove, and
//! roster pushes to every resource of the account that requested the
//! roster. Items live in the store; subscription states change only
//! through presence subscriptions (`presence.rs`).

use conclave_store::{RosterItem, Subscription};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::router::{account_key, bounce, Router};
use crate::xml::{iq_result, nc, stanza_type, CLIENT};

pub const NS: &str = "jabber:iq:roster";

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

/// Handles a roster get or set from one of the account's own sessions.
pub async fn handle_iq(
    router: &Router,
    iq: &Element,
    payload: &Element,
    from: &FullJid,
) -> Vec<Element> {
    let bare = from.to_bare();
    let Some((host, user)) = account_key(&bare) else {
        return bounce(iq, Cond::BadRequest, None);
    };
    match stanza_type(iq) {
        "get" => {
            router.with_entry(from, |e| e.interested = true);
            let (ver, items) = match router.store.roster_get(host, user).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("cannot read roster of {bare}: {e}");
                    return bounce(iq, Cond::InternalServerError, None);
                }
            };
            // Versioning (RFC 6121 2.6): an up-to-date client gets an empty result.
            let versioned = payload.attr("ver").is_some();
            if versioned && payload.attr("ver") == Some(ver.to_string().as_str()) {
                return vec![iq_result(iq, Some(bare.as_str()), None)];
            }
            let q = query(Some(ver), items.iter().map(item_element).collect());
            vec![iq_result(iq, Some(bare.as_str()), Some(q))]
        }
        "set" => {
            let req = match parse_set(payload) {
                Ok(r) => r,
                Err((cond, text)) => return bounce(iq, cond, Some(text)),
            };
            let mut out = Vec::new();
            match req {
                SetRequest::Update { jid, name, groups } => {
                    let existing = router.store.roster_get_item(host, user, jid.as_str()).await;
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
                            return bounce(iq, Cond::InternalServerError, None);
                        }
                    };
                    item.name = name;
                    item.groups = groups;
                    match router.store.roster_set(host, user, &item).await {
                        Ok(ver) => push(router, &bare, &item_element(&item), ver),
                        Err(e) => {
                            tracing::error!("roster write failed for {bare}: {e}");
                            return bounce(iq, Cond::InternalServerError, None);
                        }
                    }
                }
                SetRequest::Remove(jid) => {
                    let existing =
                        match router.store.roster_get_item(host, user, jid.as_str()).await {
                            Ok(Some(i)) => i,
                            Ok(None) => return bounce(iq, Cond::ItemNotFound, None),
                            Err(e) => {
                                tracing::error!("roster read failed for {bare}: {e}");
                                return bounce(iq, Cond::InternalServerError, None);
                            }
                        };
                    // RFC 6121 2.5.2: cancel the subscriptions both ways.
                    let sub = existing.subscription;
                    if matches!(sub, Subscription::To | Subscription::Both) || existing.ask {
                        out.push(subscription_presence(&bare, &jid, "unsubscribe"));
                    }
                    if matches!(sub, Subscription::From | Subscription::Both) {
                        out.push(subscription_presence(&bare, &jid, "unsubscribed"));
                        // RFC 6121 2.5.2: the removed contact sees the user go offline.
                        out.extend(crate::modules::presence::presences_of(
                            router,
                            &bare,
                            jid.as_str(),
                            true,
                        ));
                    }
                    let _ = router
                        .store
                        .sub_request_remove(host, user, jid.as_str())
                        .await;
                    match router.store.roster_remove(host, user, jid.as_str()).await {
                        Ok(ver) => {
                            let removed = Element::builder("item", NS)
                                .attr(nc("jid"), jid.as_str())
                                .attr(nc("subscription"), "remove")
                                .build();
                            push(router, &bare, &removed, ver);
                        }
                        Err(e) => {
                            tracing::error!("roster write failed for {bare}: {e}");
                            return bounce(iq, Cond::InternalServerError, None);
                        }
                    }
                }
            }
            let mut replies = vec![iq_result(iq, Some(bare.as_str()), None)];
            replies.extend(out);
            replies
        }
        _ => Vec::new(),
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

/// Sends a roster push with one item to every interested resource.
pub fn push(router: &Router, account: &BareJid, item: &Element, ver: u64) {
    for full in router.resources_where(account, |e| e.interested) {
        let iq = Element::builder("iq", CLIENT)
            .attr(nc("type"), "set")
            .attr(nc("id"), format!("push{ver}"))
            .attr(nc("to"), full.as_str())
            .append(query(Some(ver), vec![item.clone()]))
            .build();
        router.send_to_full(&full, iq);
    }
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
