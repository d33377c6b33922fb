//! Stanza errors (RFC 6120 section 8.3) as the group-chat service sends
//! them: the reply to a request, with `by` set to the room where Prosody
//! does, and the muc `<x/>` on join errors.

use std::collections::BTreeMap;

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::muc::Muc;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::xml::{elem, remove_xml_lang, set_attr, stanza_type, NS_CLIENT, NS_STANZAS};

/// A stanza error: its type, its defined condition and an optional
/// human-readable text (without a language, as Prosody sends it).
#[derive(Clone, Debug, PartialEq)]
pub struct StanzaErr {
    pub type_: ErrorType,
    pub condition: DefinedCondition,
    pub text: Option<String>,
}

impl StanzaErr {
    pub fn new(type_: ErrorType, condition: DefinedCondition) -> StanzaErr {
        StanzaErr {
            type_,
            condition,
            text: None,
        }
    }
    pub fn with_text(mut self, text: impl Into<String>) -> StanzaErr {
        self.text = Some(text.into());
        self
    }
    pub fn bad_request(text: &str) -> StanzaErr {
        StanzaErr::new(ErrorType::Modify, DefinedCondition::BadRequest).with_text(text)
    }
    pub fn not_acceptable(text: &str) -> StanzaErr {
        StanzaErr::new(ErrorType::Modify, DefinedCondition::NotAcceptable).with_text(text)
    }
    pub fn forbidden() -> StanzaErr {
        StanzaErr::new(ErrorType::Auth, DefinedCondition::Forbidden)
    }
    pub fn not_allowed() -> StanzaErr {
        StanzaErr::new(ErrorType::Cancel, DefinedCondition::NotAllowed)
    }
    pub fn item_not_found() -> StanzaErr {
        StanzaErr::new(ErrorType::Cancel, DefinedCondition::ItemNotFound)
    }
    pub fn service_unavailable() -> StanzaErr {
        StanzaErr::new(ErrorType::Cancel, DefinedCondition::ServiceUnavailable)
    }
    pub fn conflict() -> StanzaErr {
        StanzaErr::new(ErrorType::Cancel, DefinedCondition::Conflict)
    }
    pub fn jid_malformed() -> StanzaErr {
        StanzaErr::new(ErrorType::Modify, DefinedCondition::JidMalformed)
    }

    /// The `<error/>` element, with `by` when given.
    pub fn to_element(&self, by: Option<&BareJid>) -> Element {
        let mut texts = BTreeMap::new();
        if let Some(t) = &self.text {
            texts.insert(String::new(), t.clone());
        }
        let mut e = Element::from(StanzaError {
            type_: self.type_.clone(),
            by: by.map(|b| Jid::from(b.clone())),
            defined_condition: self.condition.clone(),
            texts,
            other: None,
        });
        // xmpp-parsers writes a text without a language as `xml:lang=''`;
        // the service's texts have never carried the attribute.
        for t in e.children_mut().filter(|c| c.is("text", NS_STANZAS)) {
            remove_xml_lang(t);
        }
        e
    }
}

/// The error reply to `request`: `from` and `to` swapped (the reply comes
/// from what the request was addressed to), `id` kept, `type='error'`.
/// `None` when the request is itself an error (never answer an error with
/// an error) or has no sender.
pub fn error_reply(request: &Element, err: &StanzaErr, by: Option<&BareJid>) -> Option<Element> {
    if stanza_type(request) == "error" {
        return None;
    }
    if request.name() == "iq" && !matches!(stanza_type(request), "get" | "set") {
        return None;
    }
    let to = request.attr("from")?;
    let from = request.attr("to").unwrap_or("");
    let mut reply = elem(
        request.name(),
        NS_CLIENT,
        &[("from", from), ("to", to), ("type", "error")],
    );
    if let Some(id) = request.attr("id") {
        set_attr(&mut reply, "id", id);
    }
    reply.append_child(err.to_element(by));
    Some(reply)
}

/// The error reply to a join presence: carries `by` and the muc `<x/>`.
pub fn join_error(request: &Element, err: &StanzaErr, room: &BareJid) -> Option<Element> {
    let mut reply = error_reply(request, err, Some(room))?;
    reply.append_child(Muc::new().into());
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_wire, ctx, from, open_room, parse, stanzas, JULIET};

    const IQ: &str = "<iq xmlns='jabber:client' from='romeo@localhost/balcony' to='room@conference.localhost' id='q1' type='get'><query xmlns='urn:x'/></iq>";

    #[test]
    fn an_error_reply_swaps_the_addresses_keeps_the_id_and_escapes_its_text() {
        let r = error_reply(
            &parse(IQ),
            &StanzaErr::bad_request("Missing <payload> & \"quotes\" 'too'"),
            None,
        );
        assert_wire(
            &r.unwrap(),
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='q1' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Missing &lt;payload&gt; &amp; &quot;quotes&quot; &apos;too&apos;</text></error></iq>",
        );
    }

    #[test]
    fn each_error_has_its_type_and_condition_and_no_text_unless_given() {
        let cases = [
            (StanzaErr::forbidden(), "auth", "forbidden"),
            (StanzaErr::not_allowed(), "cancel", "not-allowed"),
            (StanzaErr::item_not_found(), "cancel", "item-not-found"),
            (
                StanzaErr::service_unavailable(),
                "cancel",
                "service-unavailable",
            ),
            (StanzaErr::conflict(), "cancel", "conflict"),
            (StanzaErr::jid_malformed(), "modify", "jid-malformed"),
        ];
        for (err, type_, condition) in cases {
            assert_wire(
                &err.to_element(None),
                &format!("<error xmlns='jabber:client' type='{type_}'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"),
            );
        }
        assert_wire(
            &StanzaErr::not_acceptable("No")
                .to_element(Some(&"room@conference.localhost".parse().unwrap())),
            "<error xmlns='jabber:client' type='modify' by='room@conference.localhost'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>No</text></error>",
        );
    }

    #[test]
    fn errors_and_results_are_never_answered() {
        let err = StanzaErr::item_not_found();
        for req in [
            "<message xmlns='jabber:client' from='a@b/c' to='room@conference.localhost' type='error'/>",
            "<iq xmlns='jabber:client' from='a@b/c' to='room@conference.localhost' type='result' id='1'/>",
            "<iq xmlns='jabber:client' to='room@conference.localhost' type='get' id='1'/>",
        ] {
            assert!(error_reply(&parse(req), &err, None).is_none(), "{req}");
        }
    }

    #[test]
    fn a_join_error_comes_from_the_nick_with_by_and_the_muc_payload() {
        let mut room = open_room();
        room.config.password = Some("pw".into());
        let out = stanzas(room.handle(
            from(
                JULIET,
                "<presence xmlns='jabber:client' to='room@conference.localhost/Juliet' id='j1'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
            ),
            &ctx(1),
        ));
        assert_eq!(out.len(), 1);
        assert_wire(
            &out[0],
            "<presence xmlns='jabber:client' from='room@conference.localhost/Juliet' to='juliet@localhost/garden' id='j1' type='error'><error type='auth' by='room@conference.localhost'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>A password is required to enter this room</text></error><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        );
    }

    #[test]
    fn errors_with_other_types_on_the_wire() {
        // registration-required (auth) for an outsider's registration
        let mut room = open_room();
        let out = stanzas(room.handle(
            from(
                JULIET,
                "<iq xmlns='jabber:client' to='room@conference.localhost' id='r' type='get'><query xmlns='jabber:iq:register'/></iq>",
            ),
            &ctx(1),
        ));
        assert_wire(
            &out[0],
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='juliet@localhost/garden' id='r' type='error'><error type='auth'><registration-required xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        );
        // not-acceptable (cancel) for a message from a non-occupant
        let out = stanzas(room.handle(
            from(
                JULIET,
                "<message xmlns='jabber:client' to='room@conference.localhost' type='groupchat'><body>hi</body></message>",
            ),
            &ctx(1),
        ));
        assert_wire(
            &out[0],
            "<message xmlns='jabber:client' from='room@conference.localhost' to='juliet@localhost/garden' type='error'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>You are not currently connected to this chat</text></error></message>",
        );
        // service-unavailable (wait) when the room is full
        let mut full = crate::room::Room::new(
            crate::testing::ROOM.parse().unwrap(),
            std::sync::Arc::new(crate::ServiceConfig {
                max_occupants: 1,
                ..(*crate::testing::service()).clone()
            }),
        );
        full.handle(
            from(
                crate::testing::ROMEO,
                "<presence xmlns='jabber:client' to='room@conference.localhost/Romeo'/>",
            ),
            &ctx(0),
        );
        full.locked = false;
        let out = stanzas(full.handle(
            from(
                JULIET,
                "<presence xmlns='jabber:client' to='room@conference.localhost/Juliet'/>",
            ),
            &ctx(1),
        ));
        assert_wire(
            &out[0],
            "<presence xmlns='jabber:client' from='room@conference.localhost/Juliet' to='juliet@localhost/garden' type='error'><error type='wait' by='room@conference.localhost'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>The room is full</text></error><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        );
    }
}
