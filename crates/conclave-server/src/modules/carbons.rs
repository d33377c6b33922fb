//! Message carbons (XEP-0280): sessions enable or disable carbons; copies
//! of the chat messages an account sends or receives go, wrapped in
//! `<sent/>` or `<received/>` with a `<forwarded xmlns='urn:xmpp:forward:0'/>`,
//! to its other carbons-enabled resources.
//!
//! Eligible (XEP-0280 section 6): type `chat`; type `normal` with a body or
//! an IM payload (receipts, chat states, markers). Not eligible: group
//! chat, headlines, errors, carbons themselves, and messages with the
//! `<private xmlns='urn:xmpp:carbons:2'/>` or `<no-copy xmlns='urn:xmpp:hints'/>`
//! hints. Private messages with a group-chat occupant are copied only when
//! they carry `<x xmlns='http://jabber.org/protocol/muc#user'/>`, since the
//! other resources are not in the room (section 6.1).

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::router::{bounce, Router};
use crate::xml::{iq_result, nc, stanza_type, CLIENT};

pub const NS: &str = "urn:xmpp:carbons:2";
pub const FORWARD: &str = "urn:xmpp:forward:0";
const HINTS: &str = "urn:xmpp:hints";
const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// Payloads that make a `normal` message without a body eligible.
const IM_PAYLOADS: &[&str] = &[
    "urn:xmpp:receipts",
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:chat-markers:0",
];

/// Enable or disable from one of the account's sessions. `None` when
/// `payload` is not a carbons request.
pub fn handle_iq(
    router: &Router,
    iq: &Element,
    payload: &Element,
    from: &FullJid,
) -> Option<Vec<Element>> {
    if payload.ns() != NS {
        return None;
    }
    let on = match (stanza_type(iq), payload.name()) {
        ("set", "enable") => true,
        ("set", "disable") => false,
        _ => {
            return Some(bounce(
                iq,
                Cond::BadRequest,
                Some("Expected a set with <enable/> or <disable/>"),
            ))
        }
    };
    router.with_entry(from, |e| e.carbons = on);
    Some(vec![iq_result(iq, Some(from.to_bare().as_str()), None)])
}

/// Whether a message exchanged with `peer` is copied to other resources.
pub fn eligible(msg: &Element, peer: &Jid, muc_domain: &str) -> bool {
    let payload_ok = match stanza_type(msg) {
        "chat" => true,
        "" | "normal" => {
            msg.has_child("body", CLIENT)
                || msg
                    .children()
                    .any(|c| IM_PAYLOADS.contains(&c.ns().as_str()))
        }
        _ => false,
    };
    if !payload_ok {
        return false;
    }
    if msg.has_child("private", NS)
        || msg.has_child("no-copy", HINTS)
        || msg.has_child("sent", NS)
        || msg.has_child("received", NS)
    {
        return false;
    }
    // A private message with a room occupant.
    if peer.domain().as_str() == muc_domain && peer.resource().is_some() {
        return msg.has_child("x", MUC_USER);
    }
    true
}

/// A carbon copy of `msg` for `to`: `<sent/>` or `<received/>` wrapping it.
pub fn wrap(direction: &str, account: &BareJid, to: &FullJid, msg: &Element) -> Element {
    let forwarded = Element::builder("forwarded", FORWARD)
        .append(msg.clone())
        .build();
    Element::builder("message", CLIENT)
        .attr(nc("from"), account.as_str())
        .attr(nc("to"), to.as_str())
        .attr(nc("type"), stanza_type(msg).to_owned())
        .append(Element::builder(direction, NS).append(forwarded).build())
        .build()
}

fn peer_of(msg: &Element, attr: &str) -> Option<Jid> {
    msg.attr(attr).and_then(|j| Jid::new(j).ok())
}

/// Copies a message delivered to `account` to its carbons-enabled
/// resources that did not get it (`got`).
pub fn copy_received(
    router: &Router,
    msg: &Element,
    account: &BareJid,
    got: impl Fn(&FullJid) -> bool,
) {
    let Some(peer) = peer_of(msg, "from") else {
        return;
    };
    if !eligible(msg, &peer, &router.settings.muc_domain) {
        return;
    }
    for full in router.resources_where(account, |e| e.carbons) {
        if !got(&full) {
            router.send_to_full(&full, wrap("received", account, &full, msg));
        }
    }
}

/// Copies a message sent by `sender` to the account's other
/// carbons-enabled resources. Messages to the account itself are left to
/// [`copy_received`].
pub fn copy_sent(router: &Router, msg: &Element, sender: &FullJid) {
    let Some(peer) = peer_of(msg, "to") else {
        return;
    };
    let account = sender.to_bare();
    if peer.to_bare() == account || !eligible(msg, &peer, &router.settings.muc_domain) {
        return;
    }
    for full in router.resources_where(&account, |e| e.carbons) {
        if full != *sender {
            router.send_to_full(&full, wrap("sent", &account, &full, msg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Element {
        s.parse().unwrap()
    }

    fn j(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn eligibility_rules() {
        let peer = j("b@h/r");
        let muc = "conference.h";
        assert!(eligible(
            &m("<message xmlns='jabber:client' type='chat'/>"),
            &peer,
            muc
        ));
        assert!(eligible(
            &m("<message xmlns='jabber:client'><body>x</body></message>"),
            &peer,
            muc
        ));
        assert!(eligible(
            &m("<message xmlns='jabber:client'><received xmlns='urn:xmpp:receipts' id='1'/></message>"),
            &peer,
            muc
        ));
        assert!(!eligible(
            &m("<message xmlns='jabber:client'/>"),
            &peer,
            muc
        ));
        for t in ["groupchat", "headline", "error"] {
            let msg = m(&format!(
                "<message xmlns='jabber:client' type='{t}'><body>x</body></message>"
            ));
            assert!(!eligible(&msg, &peer, muc), "{t}");
        }
        assert!(!eligible(
            &m("<message xmlns='jabber:client' type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>"),
            &peer,
            muc
        ));
        assert!(!eligible(
            &m("<message xmlns='jabber:client' type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>"),
            &peer,
            muc
        ));
        let room_pm = j("room@conference.h/nick");
        assert!(!eligible(
            &m("<message xmlns='jabber:client' type='chat'><body>x</body></message>"),
            &room_pm,
            muc
        ));
        assert!(eligible(
            &m("<message xmlns='jabber:client' type='chat'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>"),
            &room_pm,
            muc
        ));
    }

    #[test]
    fn wrapped_copy_parses_as_carbon() {
        let msg = m("<message xmlns='jabber:client' from='b@h/r' to='a@h/one' type='chat'><body>hi</body></message>");
        let w = wrap(
            "received",
            &BareJid::new("a@h").unwrap(),
            &FullJid::new("a@h/two").unwrap(),
            &msg,
        );
        assert_eq!(w.attr("from"), Some("a@h"));
        assert_eq!(w.attr("to"), Some("a@h/two"));
        let received = w.get_child("received", NS).unwrap();
        let carbon = xmpp_parsers::carbons::Received::try_from(received.clone()).unwrap();
        let inner: Element = carbon.forwarded.message.into();
        assert_eq!(inner.get_child("body", CLIENT).unwrap().text(), "hi");
    }
}
