//! Presence (RFC 6121 sections 3 and 4): broadcast of a session's presence
//! to the contacts subscribed to it, probes, directed presence, unavailable
//! presence at logout, and the subscription handshake with its roster state
//! transitions, pushes, stored pending requests and pre-approvals.

use chrono::Utc;
use conclave_store::{RosterItem, StoredStanza, Subscription};
use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::modules::offline;
use crate::modules::roster::{item_element, push, subscription_presence};
use crate::hub::router::{account_key, bounce, Router};
use crate::hub::session::SessionState;
use crate::xml::{nc, set_attr, stanza_type, CLIENT};

/// The priority of an available presence (RFC 6121 4.7.2.3): an integer
/// from -128 to 127, 0 when absent or invalid.
pub fn priority_of(presence: &Element) -> i8 {
    presence
        .get_child("priority", CLIENT)
        .and_then(|p| p.text().trim().parse::<i8>().ok())
        .unwrap_or(0)
}

async fn roster_items(router: &Router, account: &BareJid) -> Vec<RosterItem> {
    let Some((host, user)) = account_key(account) else {
        return Vec::new();
    };
    match router.store.roster_get(host, user).await {
        Ok((_, items)) => items,
        Err(e) => {
            tracing::error!("cannot read roster of {account}: {e}");
            Vec::new()
        }
    }
}

/// The contact receives the account's presence (`from` or `both`).
pub fn subscribed_from(s: Subscription) -> bool {
    matches!(s, Subscription::From | Subscription::Both)
}

fn subscribed_to(s: Subscription) -> bool {
    matches!(s, Subscription::To | Subscription::Both)
}

fn addressed(stanza: &Element, to: &str) -> Element {
    let mut s = stanza.clone();
    set_attr(&mut s, "to", to);
    s
}

/// Presence without `to` from a session: its broadcast presence
/// (available, or unavailable). Returns the stanzas to route.
pub async fn broadcast(router: &Router, st: &mut SessionState, stanza: Element) -> Vec<Element> {
    match stanza_type(&stanza) {
        "" => available(router, st, stanza).await,
        "unavailable" => unavailable(router, st, stanza).await,
        _ => bounce(
            &stanza,
            Cond::BadRequest,
            Some("This presence type needs a 'to' address"),
        ),
    }
}

async fn available(router: &Router, st: &mut SessionState, stanza: Element) -> Vec<Element> {
    let priority = priority_of(&stanza);
    let initial = !st.available;
    st.available = true;
    router.with_session(&st.full, st.id, |e| {
        e.available = true;
        e.priority = priority;
        e.presence = Some(stanza.clone());
    });
    let items = unblocked(router, &st.bare, roster_items(router, &st.bare).await);
    let mut out: Vec<Element> = items
        .iter()
        .filter(|i| subscribed_from(i.subscription))
        .map(|i| addressed(&stanza, &i.jid))
        .collect();
    // The account's own available resources, this one included.
    for (full, _, last) in router.available_resources(&st.bare) {
        router.send_to_full(&full, addressed(&stanza, full.as_str()));
        if initial && full != st.full {
            if let Some(p) = last {
                router.send_to_full(&st.full, addressed(&p, st.full.as_str()));
            }
        }
    }
    if initial {
        for i in items.iter().filter(|i| subscribed_to(i.subscription)) {
            out.push(
                Element::builder("presence", CLIENT)
                    .attr(nc("type"), "probe")
                    .attr(nc("from"), st.full.as_str())
                    .attr(nc("to"), i.jid.as_str())
                    .build(),
            );
        }
        // Pending inbound subscription requests are presented again.
        if let Some((host, user)) = account_key(&st.bare) {
            match router.store.sub_request_list(host, user).await {
                Ok(list) => {
                    for (_, req) in list {
                        if let Ok(el) = req.xml.parse::<Element>() {
                            router.send_to_full(&st.full, el);
                        }
                    }
                }
                Err(e) => tracing::error!("cannot read subscription requests of {}: {e}", st.bare),
            }
        }
        if priority >= 0 {
            offline::deliver(router, &st.full).await;
        }
    }
    out
}

/// Roster items without the contacts the account blocks (XEP-0191: no
/// presence to or from them).
fn unblocked(router: &Router, account: &BareJid, items: Vec<RosterItem>) -> Vec<RosterItem> {
    let Some(list) = router.cached_blocklist(account) else {
        return items;
    };
    if list.is_empty() {
        return items;
    }
    items
        .into_iter()
        .filter(|i| Jid::new(&i.jid).is_ok_and(|j| !crate::modules::blocking::matches(&list, &j)))
        .collect()
}

async fn unavailable(router: &Router, st: &mut SessionState, stanza: Element) -> Vec<Element> {
    st.available = false;
    if let Some(status) = stanza.get_child("status", CLIENT) {
        st.last_status = Some(status.text());
    }
    let current = router
        .with_session(&st.full, st.id, |e| {
            e.available = false;
            e.presence = None;
        })
        .is_some();
    let items = unblocked(router, &st.bare, roster_items(router, &st.bare).await);
    let mut out: Vec<Element> = items
        .iter()
        .filter(|i| subscribed_from(i.subscription))
        .map(|i| addressed(&stanza, &i.jid))
        .collect();
    for full in router.resources_where(&st.bare, |e| e.available) {
        // A newer session that took over this resource is not told.
        if current || full != st.full {
            router.send_to_full(&full, addressed(&stanza, full.as_str()));
        }
    }
    for target in std::mem::take(&mut st.directed) {
        if !items
            .iter()
            .any(|i| i.jid == target.to_bare().as_str() && subscribed_from(i.subscription))
        {
            out.push(addressed(&stanza, target.as_str()));
        }
    }
    out
}

/// The unavailable presence a session sends when it ends without having
/// sent one: to subscribed contacts and every entity that got directed presence.
pub async fn session_ended(router: &Router, st: &mut SessionState) -> Vec<Element> {
    if !st.available && st.directed.is_empty() {
        return Vec::new();
    }
    let p = Element::builder("presence", CLIENT)
        .attr(nc("type"), "unavailable")
        .attr(nc("from"), st.full.as_str())
        .build();
    unavailable(router, st, p).await
}

/// Directed presence (available or unavailable, with a `to`) from a session.
pub fn directed(st: &mut SessionState, stanza: Element, to: Jid) -> Vec<Element> {
    match stanza_type(&stanza) {
        "" => {
            st.directed.insert(to);
        }
        "unavailable" => {
            st.directed.remove(&to);
        }
        _ => {}
    }
    vec![stanza]
}

async fn load_item(router: &Router, account: &BareJid, contact: &BareJid) -> Option<RosterItem> {
    let (host, user) = account_key(account)?;
    router
        .store
        .roster_get_item(host, user, contact.as_str())
        .await
        .ok()
        .flatten()
}

async fn save_item(router: &Router, account: &BareJid, item: &RosterItem) {
    let Some((host, user)) = account_key(account) else {
        return;
    };
    match router.store.roster_set(host, user, item).await {
        Ok(ver) => push(router, account, &item_element(item), ver),
        Err(e) => tracing::error!("cannot save roster item of {account}: {e}"),
    }
}

/// Removes the pending inbound subscription request from `contact`, if
/// any; says whether there was one.
async fn take_sub_request(router: &Router, host: &str, user: &str, contact: &BareJid) -> bool {
    let had = router
        .store
        .sub_request_list(host, user)
        .await
        .map(|l| l.iter().any(|(from, _)| *from == contact.as_str()))
        .unwrap_or(false);
    let _ = router
        .store
        .sub_request_remove(host, user, contact.as_str())
        .await;
    had
}

fn new_item(contact: &BareJid) -> RosterItem {
    RosterItem {
        jid: contact.as_str().to_owned(),
        name: None,
        subscription: Subscription::None,
        ask: false,
        approved: false,
        groups: Vec::new(),
    }
}

/// The current presences of an account's available resources, addressed
/// to `to` (or `type` unavailable presences when `unavailable`).
pub fn presences_of(
    router: &Router,
    account: &BareJid,
    to: &str,
    unavailable: bool,
) -> Vec<Element> {
    router
        .available_resources(account)
        .into_iter()
        .filter_map(|(full, _, last)| {
            if unavailable {
                Some(
                    Element::builder("presence", CLIENT)
                        .attr(nc("type"), "unavailable")
                        .attr(nc("from"), full.as_str())
                        .attr(nc("to"), to)
                        .build(),
                )
            } else {
                last.map(|p| addressed(&p, to))
            }
        })
        .collect()
}

/// A subscription request or answer sent by a session (RFC 6121 3.1.2,
/// 3.1.5, 3.2.2, 3.3.2, 3.4). Returns the stanzas to route.
pub async fn outbound_subscription(
    router: &Router,
    st: &SessionState,
    mut stanza: Element,
    to: Jid,
) -> Vec<Element> {
    let contact = to.to_bare();
    let account = st.bare.clone();
    // Subscription stanzas carry bare JIDs both ways.
    set_attr(&mut stanza, "from", account.as_str());
    set_attr(&mut stanza, "to", contact.as_str());
    if contact == account {
        return bounce(
            &stanza,
            Cond::BadRequest,
            Some("Cannot subscribe to oneself"),
        );
    }
    let existing = load_item(router, &account, &contact).await;
    let Some((host, user)) = account_key(&account) else {
        return Vec::new();
    };
    match stanza_type(&stanza) {
        "subscribe" => {
            let mut item = existing.unwrap_or_else(|| new_item(&contact));
            if !subscribed_to(item.subscription) && !item.ask {
                item.ask = true;
                save_item(router, &account, &item).await;
            }
            vec![stanza]
        }
        "subscribed" => {
            let pending = router
                .store
                .sub_request_list(host, user)
                .await
                .map(|l| l.iter().any(|(from, _)| *from == contact.as_str()))
                .unwrap_or(false);
            let mut item = existing.unwrap_or_else(|| new_item(&contact));
            if subscribed_from(item.subscription) {
                let _ = router
                    .store
                    .sub_request_remove(host, user, contact.as_str())
                    .await;
                return Vec::new();
            }
            if pending {
                item.subscription = match item.subscription {
                    Subscription::To => Subscription::Both,
                    _ => Subscription::From,
                };
                item.approved = false;
                let _ = router
                    .store
                    .sub_request_remove(host, user, contact.as_str())
                    .await;
                save_item(router, &account, &item).await;
                let mut out = vec![stanza];
                out.extend(presences_of(router, &account, contact.as_str(), false));
                out
            } else {
                // Pre-approval (RFC 6121 3.4).
                if !item.approved {
                    item.approved = true;
                    save_item(router, &account, &item).await;
                }
                Vec::new()
            }
        }
        "unsubscribe" => match existing {
            Some(mut item) if subscribed_to(item.subscription) || item.ask => {
                item.subscription = match item.subscription {
                    Subscription::Both | Subscription::From => Subscription::From,
                    _ => Subscription::None,
                };
                item.ask = false;
                save_item(router, &account, &item).await;
                vec![stanza]
            }
            _ => Vec::new(),
        },
        "unsubscribed" => {
            let had_request = take_sub_request(router, host, user, &contact).await;
            match existing {
                Some(mut item) if subscribed_from(item.subscription) => {
                    item.subscription = match item.subscription {
                        Subscription::Both | Subscription::To => Subscription::To,
                        _ => Subscription::None,
                    };
                    item.approved = false;
                    save_item(router, &account, &item).await;
                    let mut out = vec![stanza];
                    out.extend(presences_of(router, &account, contact.as_str(), true));
                    out
                }
                Some(mut item) if item.approved => {
                    item.approved = false;
                    save_item(router, &account, &item).await;
                    if had_request {
                        vec![stanza]
                    } else {
                        Vec::new()
                    }
                }
                _ if had_request => vec![stanza],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// A subscription stanza arriving for a local account (RFC 6121 3.1.3,
/// 3.1.6, 3.2.3, 3.3.3). Returns the stanzas to route.
pub async fn inbound_subscription(
    router: &Router,
    mut stanza: Element,
    from: &Jid,
    account: &BareJid,
) -> Vec<Element> {
    let contact = from.to_bare();
    set_attr(&mut stanza, "from", contact.as_str());
    set_attr(&mut stanza, "to", account.as_str());
    let t = stanza_type(&stanza).to_owned();
    if !router.account_exists(account).await {
        if t == "subscribe" {
            return vec![subscription_presence(account, &contact, "unsubscribed")];
        }
        return Vec::new();
    }
    let Some((host, user)) = account_key(account) else {
        return Vec::new();
    };
    let existing = load_item(router, account, &contact).await;
    let deliver = |s: &Element| {
        router.send_to_resources(account, s, |e| e.available);
    };
    match t.as_str() {
        "subscribe" => match existing {
            Some(item) if subscribed_from(item.subscription) => {
                vec![subscription_presence(account, &contact, "subscribed")]
            }
            Some(mut item) if item.approved => {
                item.subscription = match item.subscription {
                    Subscription::To => Subscription::Both,
                    _ => Subscription::From,
                };
                item.approved = false;
                save_item(router, account, &item).await;
                let mut out = vec![subscription_presence(account, &contact, "subscribed")];
                out.extend(presences_of(router, account, contact.as_str(), false));
                out
            }
            _ => {
                let req = StoredStanza {
                    xml: String::from(&stanza),
                    stamp: Utc::now(),
                };
                if let Err(e) = router
                    .store
                    .sub_request_put(host, user, contact.as_str(), &req)
                    .await
                {
                    tracing::error!("cannot store subscription request for {account}: {e}");
                }
                deliver(&stanza);
                Vec::new()
            }
        },
        "subscribed" => {
            if let Some(mut item) = existing {
                if item.ask && !subscribed_to(item.subscription) {
                    item.subscription = match item.subscription {
                        Subscription::From => Subscription::Both,
                        _ => Subscription::To,
                    };
                    item.ask = false;
                    save_item(router, account, &item).await;
                    deliver(&stanza);
                }
            }
            Vec::new()
        }
        "unsubscribe" => {
            let had_request = take_sub_request(router, host, user, &contact).await;
            if let Some(mut item) = existing {
                if subscribed_from(item.subscription) {
                    item.subscription = match item.subscription {
                        Subscription::Both => Subscription::To,
                        _ => Subscription::None,
                    };
                    save_item(router, account, &item).await;
                    deliver(&stanza);
                    return presences_of(router, account, contact.as_str(), true);
                }
            }
            // A withdrawn pending request (RFC 6121 A.2.3, "None + Pending
            // In" to "None"): the user is told.
            if had_request {
                deliver(&stanza);
            }
            Vec::new()
        }
        "unsubscribed" => {
            if let Some(mut item) = existing {
                if subscribed_to(item.subscription) || item.ask {
                    item.subscription = match item.subscription {
                        Subscription::Both => Subscription::From,
                        Subscription::From => Subscription::From,
                        _ => Subscription::None,
                    };
                    item.ask = false;
                    save_item(router, account, &item).await;
                    deliver(&stanza);
                }
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// A presence probe for a local account (RFC 6121 4.3.2): the prober gets
/// the account's current presences if it is subscribed to them.
pub async fn handle_probe(router: &Router, from: &Jid, account: &BareJid) -> Vec<Element> {
    let prober = from.to_bare();
    let allowed = prober == *account
        || load_item(router, account, &prober)
            .await
            .is_some_and(|i| subscribed_from(i.subscription));
    if !allowed {
        return Vec::new();
    }
    let out = presences_of(router, account, from.as_str(), false);
    if out.is_empty() && prober != *account {
        return vec![Element::builder("presence", CLIENT)
            .attr(nc("type"), "unavailable")
            .attr(nc("from"), account.as_str())
            .attr(nc("to"), from.as_str())
            .build()];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_parsing() {
        let p = |s: &str| -> Element {
            format!("<presence xmlns='jabber:client'>{s}</presence>")
                .parse()
                .unwrap()
        };
        assert_eq!(priority_of(&p("<priority>5</priority>")), 5);
        assert_eq!(priority_of(&p("<priority>-1</priority>")), -1);
        assert_eq!(priority_of(&p("<priority>999</priority>")), 0);
        assert_eq!(priority_of(&p("<priority>x</priority>")), 0);
        assert_eq!(priority_of(&p("")), 0);
    }

    #[test]
    fn directed_presence_is_tracked() {
        let full = jid::FullJid::new("a@h/r").unwrap();
        let mut st = SessionState::new(full);
        let to = Jid::new("room@conference.h/nick").unwrap();
        let p: Element = "<presence xmlns='jabber:client' to='room@conference.h/nick'/>"
            .parse()
            .unwrap();
        directed(&mut st, p, to.clone());
        assert!(st.directed.contains(&to));
        let u: Element =
            "<presence xmlns='jabber:client' type='unavailable' to='room@conference.h/nick'/>"
                .parse()
                .unwrap();
        directed(&mut st, u, to.clone());
        assert!(!st.directed.contains(&to));
    }
}
