//! Small helpers over `minidom` elements shared by the core: attribute
//! setting, IQ replies and stanza errors (RFC 6120 section 8.3).

use minidom::Element;
use rxml::{Namespace, NcName};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// The client namespace of every stanza.
pub const CLIENT: &str = "jabber:client";

/// An attribute name known at compile time.
pub fn nc(name: &'static str) -> NcName {
    // Only ever called with literal attribute names, which are valid NCNames.
    NcName::try_from(name).expect("literal attribute name")
}

/// Sets (or replaces) an attribute.
pub fn set_attr(el: &mut Element, name: &'static str, value: impl Into<String>) {
    el.attrs_mut()
        .insert(Namespace::NONE, nc(name), value.into());
}

/// Removes an attribute if present.
pub fn remove_attr(el: &mut Element, name: &'static str) {
    let n = nc(name);
    el.attrs_mut().remove(&Namespace::NONE, &n);
}

/// The stanza's `type` attribute, `""` when absent.
pub fn stanza_type(el: &Element) -> &str {
    el.attr("type").unwrap_or("")
}

/// The first child element, if any (the payload of an IQ).
pub fn first_child(el: &Element) -> Option<&Element> {
    el.children().next()
}

/// A result IQ answering `req`, with an optional payload. `from` is the
/// entity that answers.
pub fn iq_result(req: &Element, from: Option<&str>, payload: Option<Element>) -> Element {
    let mut b = Element::builder("iq", CLIENT).attr(nc("type"), "result");
    if let Some(id) = req.attr("id") {
        b = b.attr(nc("id"), id);
    }
    if let Some(to) = req.attr("from") {
        b = b.attr(nc("to"), to);
    }
    if let Some(from) = from.or(req.attr("to")) {
        b = b.attr(nc("from"), from);
    }
    if let Some(p) = payload {
        b = b.append(p);
    }
    b.build()
}

/// The default error type of a condition (RFC 6120 section 8.3.3).
fn default_type(cond: &DefinedCondition) -> ErrorType {
    use DefinedCondition::*;
    match cond {
        BadRequest | JidMalformed | NotAcceptable | PolicyViolation | UnexpectedRequest => {
            ErrorType::Modify
        }
        NotAuthorized => ErrorType::Auth,
        Forbidden | RegistrationRequired | SubscriptionRequired => ErrorType::Auth,
        RemoteServerTimeout | ResourceConstraint => ErrorType::Wait,
        _ => ErrorType::Cancel,
    }
}

/// An `<error/>` element for a condition.
pub fn error_element(cond: DefinedCondition, text: Option<&str>) -> Element {
    error_element_of(default_type(&cond), cond, text)
}

/// An `<error/>` element of a given type (where Prosody's differs from
/// the condition's default).
pub fn error_element_of(type_: ErrorType, cond: DefinedCondition, text: Option<&str>) -> Element {
    let err = match text {
        Some(t) => StanzaError::new(type_, cond, "en", t),
        None => StanzaError {
            type_,
            by: None,
            defined_condition: cond,
            texts: Default::default(),
            other: None,
        },
    };
    err.into()
}

/// The error reply to a stanza: same name and id, `to`/`from` swapped,
/// `type='error'`. `None` for a stanza that is itself an error (errors
/// are never answered with errors) or an IQ result.
pub fn error_reply(
    stanza: &Element,
    cond: DefinedCondition,
    text: Option<&str>,
) -> Option<Element> {
    error_reply_of(stanza, default_type(&cond), cond, text)
}

/// [`error_reply`] with an error type of its own.
pub fn error_reply_of(
    stanza: &Element,
    type_: ErrorType,
    cond: DefinedCondition,
    text: Option<&str>,
) -> Option<Element> {
    let t = stanza_type(stanza);
    if t == "error" || (stanza.name() == "iq" && t == "result") {
        return None;
    }
    let mut b = Element::builder(stanza.name(), CLIENT).attr(nc("type"), "error");
    if let Some(id) = stanza.attr("id") {
        b = b.attr(nc("id"), id);
    }
    if let Some(to) = stanza.attr("from") {
        b = b.attr(nc("to"), to);
    }
    if let Some(from) = stanza.attr("to") {
        b = b.attr(nc("from"), from);
    }
    // Messages carry their body back, as RFC 6120 8.3.1 allows, so the
    // sender can tell which one failed.
    if stanza.name() == "message" {
        if let Some(body) = stanza.get_child("body", CLIENT) {
            b = b.append(body.clone());
        }
    }
    Some(b.append(error_element_of(type_, cond, text)).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn error_reply_swaps_addresses() {
        let m = parse("<message xmlns='jabber:client' from='a@x/r' to='b@y' id='1' type='chat'><body>hi</body></message>");
        let e = error_reply(&m, DefinedCondition::ServiceUnavailable, None).unwrap();
        assert_eq!(e.attr("to"), Some("a@x/r"));
        assert_eq!(e.attr("from"), Some("b@y"));
        assert_eq!(e.attr("type"), Some("error"));
        assert_eq!(e.attr("id"), Some("1"));
        let err = e.get_child("error", CLIENT).unwrap();
        assert_eq!(err.attr("type"), Some("cancel"));
        assert!(err.has_child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    }

    #[test]
    fn errors_and_results_are_not_answered() {
        let e = parse("<message xmlns='jabber:client' type='error'/>");
        assert!(error_reply(&e, DefinedCondition::ServiceUnavailable, None).is_none());
        let r = parse("<iq xmlns='jabber:client' type='result' id='x'/>");
        assert!(error_reply(&r, DefinedCondition::ServiceUnavailable, None).is_none());
    }

    #[test]
    fn attributes_set_and_removed() {
        let mut e = parse("<presence xmlns='jabber:client' to='a@b'/>");
        set_attr(&mut e, "to", "c@d");
        assert_eq!(e.attr("to"), Some("c@d"));
        remove_attr(&mut e, "to");
        assert_eq!(e.attr("to"), None);
    }
}
