//! Blocking command (XEP-0191): each account's block list, stored in the
//! `blocklist` key-value store (one key per blocked JID) and cached in the
//! router while the user has a session. Blocked entities get no presence
//! and their stanzas do not reach the user; the user's own stanzas to them
//! are refused with `not-acceptable` and a `<blocked/>` error child.

use std::collections::HashSet;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::modules::presence::{presences_of, subscribed_from};
use crate::hub::router::{account_key, bounce, Router};
use crate::xml::{error_reply, iq_result, nc, stanza_type, CLIENT};

pub const NS: &str = "urn:xmpp:blocking";
pub const ERRORS_NS: &str = "urn:xmpp:blocking:errors";
const KV: &str = "blocklist";

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

async fn load_from_store(router: &Router, account: &BareJid) -> BlockList {
    let Some((host, user)) = account_key(account) else {
        return BlockList::new();
    };
    match router.store.kv_list(host, user, KV).await {
        Ok(items) => items.into_iter().map(|(k, _)| k).collect(),
        Err(e) => {
            tracing::error!("cannot read block list of {account}: {e}");
            BlockList::new()
        }
    }
}

/// Loads a user's block list into the router's cache at login.
pub async fn load(router: &Router, account: &BareJid) {
    if router.cached_blocklist(account).is_none() {
        let list = load_from_store(router, account).await;
        router.cache_blocklist_if_absent(account, list);
    }
}

/// Whether the cached list of a connected user blocks `other`; `None` when
/// the user has no cached list (no session).
pub fn blocks_cached(router: &Router, account: &BareJid, other: &Jid) -> Option<bool> {
    router
        .cached_blocklist(account)
        .map(|list| matches(&list, other))
}

/// Whether `account` blocks `other`: from memory for connected users,
/// from the store otherwise.
pub async fn blocks(router: &Router, account: &BareJid, other: &Jid) -> bool {
    match blocks_cached(router, account, other) {
        Some(b) => b,
        None => {
            if account_key(account).is_none() {
                return false;
            }
            matches(&load_from_store(router, account).await, other)
        }
    }
}

/// The error for a stanza refused because of a block: `not-acceptable`
/// with `<blocked xmlns='urn:xmpp:blocking:errors'/>` (XEP-0191 3.5).
pub fn blocked_error(stanza: &Element, text: &str) -> Vec<Element> {
    let Some(mut reply) = error_reply(stanza, Cond::NotAcceptable, Some(text)) else {
        return Vec::new();
    };
    for child in reply.children_mut() {
        if child.is("error", CLIENT) {
            child.append_child(Element::builder("blocked", ERRORS_NS).build());
        }
    }
    vec![reply]
}

/// What a stanza from an entity the recipient blocks gets: presence is
/// dropped, IQ requests get `service-unavailable`, messages bounce with
/// the blocked error.
pub fn inbound_refusal(stanza: &Element) -> Vec<Element> {
    match stanza.name() {
        "presence" => Vec::new(),
        "iq" => bounce(stanza, Cond::ServiceUnavailable, None),
        _ => blocked_error(stanza, "The recipient has blocked you"),
    }
}

/// Checks an outbound stanza of a connected user: the error to return
/// when its recipient is on the sender's block list.
pub fn outbound_refusal(
    router: &Router,
    sender: &BareJid,
    stanza: &Element,
) -> Option<Vec<Element>> {
    let to = Jid::new(stanza.attr("to")?).ok()?;
    if to.to_bare() == *sender || !blocks_cached(router, sender, &to)? {
        return None;
    }
    Some(blocked_error(
        stanza,
        "You have blocked this contact; unblock it first",
    ))
}

fn item(jid: &str) -> Element {
    Element::builder("item", NS).attr(nc("jid"), jid).build()
}

/// The JIDs of a block or unblock request, normalised.
fn parse_items(payload: &Element) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    for i in payload.children().filter(|c| c.is("item", NS)) {
        let raw = i.attr("jid").ok_or("An item has no 'jid' attribute")?;
        let jid = Jid::new(raw).map_err(|_| "An item has an invalid JID")?;
        let s = jid.as_str().to_owned();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

fn push(router: &Router, account: &BareJid, payload: Element) {
    for full in router.resources_where(account, |e| e.blocklist_requested) {
        let iq = Element::builder("iq", CLIENT)
            .attr(nc("type"), "set")
            .attr(nc("id"), format!("block-push-{}", rand::random::<u32>()))
            .attr(nc("from"), account.as_str())
            .attr(nc("to"), full.as_str())
            .append(payload.clone())
            .build();
        router.send_to_full(&full, iq);
    }
}

/// Roster contacts subscribed to the account's presence that `list`
/// matches.
async fn subscribed_contacts(router: &Router, account: &BareJid, jids: &[String]) -> Vec<Jid> {
    let Some((host, user)) = account_key(account) else {
        return Vec::new();
    };
    let list: BlockList = jids.iter().cloned().collect();
    let items = match router.store.roster_get(host, user).await {
        Ok((_, items)) => items,
        Err(_) => return Vec::new(),
    };
    items
        .into_iter()
        .filter(|i| subscribed_from(i.subscription))
        .filter_map(|i| Jid::new(&i.jid).ok())
        .filter(|j| matches(&list, j))
        .collect()
}

/// Block list requests from one of the account's own sessions. `None`
/// when `payload` is not a blocking command.
pub async fn handle_iq(
    router: &Router,
    iq: &Element,
    payload: &Element,
    from: &FullJid,
) -> Option<Vec<Element>> {
    if payload.ns() != NS {
        return None;
    }
    let account = from.to_bare();
    let (host, user) = account_key(&account)?;
    let max = router.settings.im.im.max_blocklist_items;
    Some(match (stanza_type(iq), payload.name()) {
        ("get", "blocklist") => {
            router.with_entry(from, |e| e.blocklist_requested = true);
            let list = match router.cached_blocklist(&account) {
                Some(l) => (*l).clone(),
                None => load_from_store(router, &account).await,
            };
            let mut jids: Vec<&String> = list.iter().collect();
            jids.sort();
            let q = Element::builder("blocklist", NS)
                .append_all(jids.into_iter().map(|j| item(j)))
                .build();
            vec![iq_result(iq, Some(account.as_str()), Some(q))]
        }
        ("set", "block") => {
            let jids = match parse_items(payload) {
                Ok(j) if j.is_empty() => {
                    return Some(bounce(iq, Cond::BadRequest, Some("Nothing to block")))
                }
                Ok(j) => j,
                Err(text) => return Some(bounce(iq, Cond::JidMalformed, Some(text))),
            };
            let mut list = load_from_store(router, &account).await;
            let new: Vec<String> = jids.into_iter().filter(|j| !list.contains(j)).collect();
            if list.len() + new.len() > max {
                return Some(bounce(
                    iq,
                    Cond::ResourceConstraint,
                    Some("The block list is full"),
                ));
            }
            for j in &new {
                if let Err(e) = router.store.kv_set(host, user, KV, j, "").await {
                    tracing::error!("cannot save block list of {account}: {e}");
                    return Some(bounce(iq, Cond::InternalServerError, None));
                }
                list.insert(j.clone());
            }
            router.update_blocklist(&account, list);
            let mut out = vec![iq_result(iq, Some(account.as_str()), None)];
            if !new.is_empty() {
                // Contacts that saw the user online see it go offline.
                for contact in subscribed_contacts(router, &account, &new).await {
                    out.extend(presences_of(router, &account, contact.as_str(), true));
                }
                push(
                    router,
                    &account,
                    Element::builder("block", NS)
                        .append_all(new.iter().map(|j| item(j)))
                        .build(),
                );
            }
            out
        }
        ("set", "unblock") => {
            let jids = match parse_items(payload) {
                Ok(j) => j,
                Err(text) => return Some(bounce(iq, Cond::JidMalformed, Some(text))),
            };
            let mut list = load_from_store(router, &account).await;
            // No items: unblock everything (XEP-0191 3.4).
            let removed: Vec<String> = if jids.is_empty() {
                list.iter().cloned().collect()
            } else {
                jids.into_iter().filter(|j| list.contains(j)).collect()
            };
            for j in &removed {
                if let Err(e) = router.store.kv_delete(host, user, KV, j).await {
                    tracing::error!("cannot save block list of {account}: {e}");
                    return Some(bounce(iq, Cond::InternalServerError, None));
                }
                list.remove(j);
            }
            router.update_blocklist(&account, list);
            let mut out = vec![iq_result(iq, Some(account.as_str()), None)];
            if !removed.is_empty() {
                // Subscribed contacts get the user's current presence again.
                for contact in subscribed_contacts(router, &account, &removed).await {
                    out.extend(presences_of(router, &account, contact.as_str(), false));
                }
                let mut unblock = Element::builder("unblock", NS);
                if payload.children().next().is_some() {
                    unblock = unblock.append_all(removed.iter().map(|j| item(j)));
                }
                push(router, &account, unblock.build());
            }
            out
        }
        _ => bounce(iq, Cond::BadRequest, Some("Unknown blocking command")),
    })
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
        let e = blocked_error(&m, "blocked");
        let err = e[0].get_child("error", CLIENT).unwrap();
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
