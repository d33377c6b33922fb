//! Contact addresses for XMPP services (XEP-0157): the `[contact]`
//! configuration, published as a `jabber:x:data` form with `FORM_TYPE`
//! `http://jabber.org/network/serverinfo` in the server's disco#info.

use async_trait::async_trait;
use xmpp_parsers::data_forms::{DataForm, DataFormType};
use xmpp_parsers::server_info::generate_address_field;

use crate::config::ContactSection;
use crate::hub::module::{Declarations, Module};

pub const FORM_TYPE: &str = "http://jabber.org/network/serverinfo";

pub struct Contact {
    form: Option<DataForm>,
}

impl Contact {
    pub fn new(contact: &ContactSection) -> Contact {
        Contact {
            form: form(contact),
        }
    }
}

/// The serverinfo form, `None` when no address is configured.
pub fn form(contact: &ContactSection) -> Option<DataForm> {
    let fields = contact.fields();
    if fields.is_empty() {
        return None;
    }
    let mut form = DataForm {
        type_: DataFormType::Result_,
        title: None,
        instructions: None,
        fields: fields
            .into_iter()
            .map(|(var, values)| generate_address_field(var, values.to_vec()))
            .collect(),
    };
    form.set_form_type(FORM_TYPE.to_owned());
    Some(form)
}

#[async_trait]
impl Module for Contact {
    fn name(&self) -> &'static str {
        "contact"
    }

    fn declare(&self, d: &mut Declarations) {
        if let Some(f) = &self.form {
            d.server_form(f.clone());
        }
    }
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
        let df = form(&c).unwrap();
        assert_eq!(
            df.fields.len(),
            3,
            "FORM_TYPE and the configured kinds only"
        );
        let info = xmpp_parsers::server_info::ServerInfo::try_from(df).unwrap();
        assert_eq!(info.abuse, vec!["mailto:abuse@h"]);
        assert_eq!(info.admin, vec!["xmpp:admin@h", "mailto:admin@h"]);
        assert!(info.support.is_empty());
    }
}
