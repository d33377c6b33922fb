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

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{
    Ctx, Declarations, Flow, Hook, IqRequest, IqScope, Module, Out, Outs, SessionRef,
};
use crate::hub::sessions::SessionId;
use crate::xml::{nc, stanza_type, CLIENT};

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

/// The sessions that enabled carbons.
pub struct Carbons {
    /// The group-chat service: private messages with its occupants are
    /// copied only with the muc#user marker.
    muc_domain: String,
    enabled: Mutex<HashSet<SessionId>>,
}

impl Carbons {
    pub fn new(muc_domain: String) -> Carbons {
        Carbons {
            muc_domain,
            enabled: Mutex::new(HashSet::new()),
        }
    }

    fn enabled(&self) -> MutexGuard<'_, HashSet<SessionId>> {
        self.enabled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The account's sessions with carbons enabled.
    fn targets(&self, ctx: &Ctx<'_>, account: &BareJid) -> Vec<FullJid> {
        let list = ctx.sessions.resources_where(account, |_| true);
        let enabled = self.enabled();
        list.into_iter()
            .filter(|(_, id)| enabled.contains(id))
            .map(|(full, _)| full)
            .collect()
    }

    /// Copies of a message delivered to `account`, for its carbons-enabled
    /// resources that did not get it.
    fn copy_received(
        &self,
        ctx: &Ctx<'_>,
        msg: &Element,
        account: &BareJid,
        got: &[FullJid],
    ) -> Outs {
        let Some(peer) = peer_of(msg, "from") else {
            return Vec::new();
        };
        if !eligible(msg, &peer, &self.muc_domain) {
            return Vec::new();
        }
        self.targets(ctx, account)
            .into_iter()
            .filter(|full| !got.contains(full))
            .map(|full| {
                let copy = wrap("received", account, &full, msg);
                Out::Local(full, copy)
            })
            .collect()
    }

    /// Copies of a message sent by `sender`, for the account's other
    /// carbons-enabled resources. Messages to the account itself are left
    /// to [`Carbons::copy_received`].
    fn copy_sent(&self, ctx: &Ctx<'_>, msg: &Element, sender: &SessionRef) -> Outs {
        let Some(peer) = peer_of(msg, "to") else {
            return Vec::new();
        };
        let account = &sender.bare;
        if peer.to_bare() == *account || !eligible(msg, &peer, &self.muc_domain) {
            return Vec::new();
        }
        self.targets(ctx, account)
            .into_iter()
            .filter(|full| *full != sender.full)
            .map(|full| {
                let copy = wrap("sent", account, &full, msg);
                Out::Local(full, copy)
            })
            .collect()
    }
}

#[async_trait]
impl Module for Carbons {
    fn name(&self) -> &'static str {
        "carbons"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Own, NS)
            .hook(Hook::Outbound)
            .hook(Hook::Delivered)
            .hook(Hook::Session)
            .server_feature(NS);
    }

    /// Enable or disable, from one of the account's sessions.
    async fn iq(&self, ctx: &Ctx<'_>, _: IqScope, req: IqRequest<'_>) -> Outs {
        let on = match (req.is_set(), req.payload.name()) {
            (true, "enable") => true,
            (true, "disable") => false,
            _ => {
                return req.error(
                    Cond::BadRequest,
                    Some("Expected a set with <enable/> or <disable/>"),
                )
            }
        };
        let Ok(full) = req.from.clone().try_into_full() else {
            return req.error(Cond::BadRequest, None);
        };
        if let Some(id) = ctx.sessions.id_of(&full) {
            if on {
                self.enabled().insert(id);
            } else {
                self.enabled().remove(&id);
            }
        }
        req.result(Some(full.to_bare().as_str()), None)
    }

    async fn outbound(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionRef,
        stanza: &Element,
        out: &mut Outs,
    ) -> Flow {
        if stanza.name() == "message" {
            out.extend(self.copy_sent(ctx, stanza, session));
        }
        Flow::Continue
    }

    fn delivered(&self, ctx: &Ctx<'_>, msg: &Element, account: &BareJid, got: &[FullJid]) -> Outs {
        self.copy_received(ctx, msg, account, got)
    }

    async fn ended(&self, _: &Ctx<'_>, session: &SessionRef) -> Outs {
        self.enabled().remove(&session.id);
        Vec::new()
    }
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
