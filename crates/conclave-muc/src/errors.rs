//! Stanza errors (RFC 6120 section 8.3) as the group-chat service sends
//! them: the reply to a request, with `by` set to the room where Prosody
//! does, and the muc `<x/>` on join errors.

use minidom::Element;

use crate::xml::{elem, set_attr, stanza_type, text_elem, NS_CLIENT, NS_MUC, NS_STANZAS};

/// A stanza error: its type (`auth`, `cancel`, `modify`, `wait`), its
/// defined condition and an optional human-readable text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StanzaErr {
    pub type_: &'static str,
    pub condition: &'static str,
    pub text: Option<String>,
}

impl StanzaErr {
    pub fn new(type_: &'static str, condition: &'static str) -> StanzaErr {
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
        StanzaErr::new("modify", "bad-request").with_text(text)
    }
    pub fn not_acceptable(text: &str) -> StanzaErr {
        StanzaErr::new("modify", "not-acceptable").with_text(text)
    }
    pub fn forbidden() -> StanzaErr {
        StanzaErr::new("auth", "forbidden")
    }
    pub fn not_allowed() -> StanzaErr {
        StanzaErr::new("cancel", "not-allowed")
    }
    pub fn item_not_found() -> StanzaErr {
        StanzaErr::new("cancel", "item-not-found")
    }
    pub fn service_unavailable() -> StanzaErr {
        StanzaErr::new("cancel", "service-unavailable")
    }
    pub fn conflict() -> StanzaErr {
        StanzaErr::new("cancel", "conflict")
    }
    pub fn jid_malformed() -> StanzaErr {
        StanzaErr::new("modify", "jid-malformed")
    }

    /// The `<error/>` element.
    pub fn to_element(&self, by: Option<&str>) -> Element {
        let mut e = elem("error", NS_CLIENT, &[("type", self.type_)]);
        if let Some(by) = by {
            set_attr(&mut e, "by", by);
        }
        e.append_child(Element::bare(self.condition, NS_STANZAS));
        if let Some(t) = &self.text {
            e.append_child(text_elem("text", NS_STANZAS, t));
        }
        e
    }
}

/// The error reply to `request`: `from` and `to` swapped (the reply comes
/// from what the request was addressed to), `id` kept, `type='error'`.
/// `None` when the request is itself an error (never answer an error with
/// an error) or has no sender.
pub fn error_reply(request: &Element, err: &StanzaErr, by: Option<&str>) -> Option<Element> {
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
pub fn join_error(request: &Element, err: &StanzaErr, room: &str) -> Option<Element> {
    let mut reply = error_reply(request, err, Some(room))?;
    reply.append_child(Element::bare("x", NS_MUC));
    Some(reply)
}
