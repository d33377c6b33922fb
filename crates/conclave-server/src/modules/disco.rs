//! Service discovery (XEP-0030) for the server itself (identity server/im,
//! the features implemented; items: the group-chat service) and, on their
//! behalf, for accounts (identity account/registered).

use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::router::RouterSettings;
use crate::xml::{error_reply, iq_result, nc, stanza_type};

pub const INFO: &str = "http://jabber.org/protocol/disco#info";
pub const ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// Features the server announces.
pub const SERVER_FEATURES: &[&str] = &[
    INFO,
    ITEMS,
    crate::modules::ping::NS,
    "jabber:iq:roster",
    "urn:xmpp:features:rosterver",
    "urn:xmpp:features:pre-approval",
    "msgoffline",
    "urn:xmpp:delay",
    "urn:xmpp:stream-limits:0",
    crate::modules::version::NS,
    crate::modules::time::NS,
    crate::modules::last::NS,
    crate::modules::vcard::NS,
    crate::modules::private::NS,
    crate::modules::blocking::NS,
    crate::modules::carbons::NS,
    crate::modules::extdisco::NS,
];

/// Features answered on an account's behalf at its bare JID.
pub const ACCOUNT_FEATURES: &[&str] = &[
    INFO,
    ITEMS,
    crate::modules::ping::NS,
    crate::modules::vcard::NS,
    crate::modules::last::NS,
];

fn identity(category: &str, type_: &str, name: Option<&str>) -> Element {
    let mut b = Element::builder("identity", INFO)
        .attr(nc("category"), category)
        .attr(nc("type"), type_);
    if let Some(n) = name {
        b = b.attr(nc("name"), n);
    }
    b.build()
}

fn feature(var: &str) -> Element {
    Element::builder("feature", INFO)
        .attr(nc("var"), var)
        .build()
}

fn info(identities: Vec<Element>, features: &[&str]) -> Element {
    Element::builder("query", INFO)
        .append_all(identities)
        .append_all(features.iter().map(|f| feature(f)))
        .build()
}

/// Disco queries to a local host. `None` when `payload` is not disco.
pub fn handle_server(
    iq: &Element,
    payload: &Element,
    _host: &str,
    settings: &RouterSettings,
) -> Option<Element> {
    if stanza_type(iq) != "get" {
        return None;
    }
    if payload.is("query", INFO) {
        if payload.attr("node").is_some() {
            return error_reply(iq, Cond::ItemNotFound, None);
        }
        let mut q = info(
            vec![identity("server", "im", Some("Conclave"))],
            SERVER_FEATURES,
        );
        if let Some(form) = crate::modules::contact::form(&settings.im.contact) {
            q.append_child(form);
        }
        return Some(iq_result(iq, None, Some(q)));
    }
    if payload.is("query", ITEMS) {
        if payload.attr("node").is_some() {
            return error_reply(iq, Cond::ItemNotFound, None);
        }
        let item = Element::builder("item", ITEMS)
            .attr(nc("jid"), settings.muc_domain.as_str())
            .attr(nc("name"), "Chatrooms")
            .build();
        let q = Element::builder("query", ITEMS).append(item).build();
        return Some(iq_result(iq, None, Some(q)));
    }
    None
}

/// Disco queries to an account's bare JID, answered on its behalf.
pub fn handle_account(iq: &Element, payload: &Element) -> Option<Element> {
    if stanza_type(iq) != "get" {
        return None;
    }
    if payload.is("query", INFO) {
        let q = info(
            vec![identity("account", "registered", None)],
            ACCOUNT_FEATURES,
        );
        return Some(iq_result(iq, None, Some(q)));
    }
    if payload.is("query", ITEMS) {
        return Some(iq_result(
            iq,
            None,
            Some(Element::builder("query", ITEMS).build()),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RouterSettings {
        RouterSettings {
            hosts: vec!["h".into()],
            muc_domain: "conference.h".into(),
            max_offline_messages: 10,
            session_queue: 16,
            room_queue: 16,
            im: Default::default(),
        }
    }

    #[test]
    fn server_info_and_items() {
        let iq: Element = "<iq xmlns='jabber:client' type='get' id='1' from='a@h/r' to='h'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>".parse().unwrap();
        let r = handle_server(&iq, iq.children().next().unwrap(), "h", &settings()).unwrap();
        let q = xmpp_parsers::disco::DiscoInfoResult::try_from(
            r.get_child("query", INFO).unwrap().clone(),
        )
        .unwrap();
        assert!(q
            .identities
            .iter()
            .any(|i| i.category == "server" && i.type_ == "im"));
        assert!(q.features.iter().any(|f| f == crate::modules::ping::NS));
        let iq: Element = "<iq xmlns='jabber:client' type='get' id='2' from='a@h/r' to='h'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>".parse().unwrap();
        let r = handle_server(&iq, iq.children().next().unwrap(), "h", &settings()).unwrap();
        let q = xmpp_parsers::disco::DiscoItemsResult::try_from(
            r.get_child("query", ITEMS).unwrap().clone(),
        )
        .unwrap();
        assert_eq!(q.items.len(), 1);
        assert_eq!(q.items[0].jid.as_str(), "conference.h");
    }

    #[test]
    fn unknown_node_is_item_not_found() {
        let iq: Element = "<iq xmlns='jabber:client' type='get' id='1' from='a@h/r' to='h'><query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>".parse().unwrap();
        let r = handle_server(&iq, iq.children().next().unwrap(), "h", &settings()).unwrap();
        assert_eq!(r.attr("type"), Some("error"));
    }
}
