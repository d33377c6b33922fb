//! Contact addresses for XMPP services (XEP-0157): the `[contact]`
//! configuration, published as a `jabber:x:data` form with `FORM_TYPE`
//! `http://jabber.org/network/serverinfo` in the server's disco#info.

use minidom::Element;

use crate::config::ContactSection;
use crate::xml::nc;

pub const FORM_TYPE: &str = "http://jabber.org/network/serverinfo";
const DATA: &str = "jabber:x:data";

fn field(var: &str, type_: &str, values: &[String]) -> Element {
    Element::builder("field", DATA)
        .attr(nc("var"), var)
        .attr(nc("type"), type_)
        .append_all(
            values
                .iter()
                .map(|v| Element::builder("value", DATA).append(v.as_str()).build()),
        )
        .build()
}

/// The serverinfo form, `None` when no address is configured.
pub fn form(contact: &ContactSection) -> Option<Element> {
    let fields = contact.fields();
    if fields.is_empty() {
        return None;
    }
    Some(
        Element::builder("x", DATA)
            .attr(nc("type"), "result")
            .append(field("FORM_TYPE", "hidden", &[FORM_TYPE.to_owned()]))
            .append_all(
                fields
                    .into_iter()
                    .map(|(var, values)| field(&var, "list-multi", values)),
            )
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_lists_configured_addresses() {
        assert!(form(&ContactSection::default()).is_none());
        let c = ContactSection {
            abuse: vec!["mailto:abuse@h".into()],
            admin: vec!["xmpp:admin@h".into(), "mailto:admin@h".into()],
            ..Default::default()
        };
        let x = form(&c).unwrap();
        let df = xmpp_parsers::data_forms::DataForm::try_from(x).unwrap();
        let info = xmpp_parsers::server_info::ServerInfo::try_from(df).unwrap();
        assert_eq!(info.abuse, vec!["mailto:abuse@h"]);
        assert_eq!(info.admin, vec!["xmpp:admin@h", "mailto:admin@h"]);
        assert!(info.support.is_empty());
    }
}
