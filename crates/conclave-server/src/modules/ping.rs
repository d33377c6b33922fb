//! XMPP Ping (XEP-0199): the server answers pings addressed to itself or,
//! on their behalf, to its accounts' bare JIDs.

use minidom::Element;

use crate::xml::{iq_result, stanza_type};

pub const NS: &str = "urn:xmpp:ping";

/// The result for a ping request, `None` when `payload` is not a ping.
pub fn handle(iq: &Element, payload: &Element) -> Option<Element> {
    if stanza_type(iq) == "get" && payload.is("ping", NS) {
        Some(iq_result(iq, None, None))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_ping_get_only() {
        let iq: Element = "<iq xmlns='jabber:client' type='get' id='p1' from='a@h/r' to='h'><ping xmlns='urn:xmpp:ping'/></iq>"
            .parse()
            .unwrap();
        let r = handle(&iq, iq.children().next().unwrap()).unwrap();
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(r.attr("id"), Some("p1"));
        assert_eq!(r.attr("to"), Some("a@h/r"));
        assert_eq!(r.attr("from"), Some("h"));
        let set: Element =
            "<iq xmlns='jabber:client' type='set' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>"
                .parse()
                .unwrap();
        assert!(handle(&set, set.children().next().unwrap()).is_none());
        let other: Element =
            "<iq xmlns='jabber:client' type='get' id='p3'><query xmlns='jabber:iq:version'/></iq>"
                .parse()
                .unwrap();
        assert!(handle(&other, other.children().next().unwrap()).is_none());
    }
}
