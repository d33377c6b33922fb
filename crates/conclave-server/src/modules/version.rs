//! Software version (XEP-0092) of the server: name `Conclave` and the
//! crate version; the operating system only when `im.version_show_os` is set.

use minidom::Element;
use xmpp_parsers::version::VersionResult;

use crate::config::ImSection;
use crate::xml::{iq_result, stanza_type};

pub const NS: &str = "jabber:iq:version";

/// The answer to a version query, `None` when `payload` is not one.
pub fn handle(iq: &Element, payload: &Element, settings: &ImSection) -> Option<Element> {
    if stanza_type(iq) != "get" || !payload.is("query", NS) {
        return None;
    }
    let result = VersionResult {
        name: "Conclave".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        os: settings
            .version_show_os
            .then(|| std::env::consts::OS.to_owned()),
    };
    Some(iq_result(iq, None, Some(result.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> Element {
        "<iq xmlns='jabber:client' type='get' id='v' from='a@h/r' to='h'><query xmlns='jabber:iq:version'/></iq>"
            .parse()
            .unwrap()
    }

    #[test]
    fn os_only_when_enabled() {
        let iq = query();
        let payload = iq.children().next().unwrap();
        let mut settings = ImSection::default();
        let r = handle(&iq, payload, &settings).unwrap();
        let v = VersionResult::try_from(r.get_child("query", NS).unwrap().clone()).unwrap();
        assert_eq!(v.name, "Conclave");
        assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
        assert!(v.os.is_none());
        settings.version_show_os = true;
        let r = handle(&iq, payload, &settings).unwrap();
        let v = VersionResult::try_from(r.get_child("query", NS).unwrap().clone()).unwrap();
        assert_eq!(v.os.as_deref(), Some(std::env::consts::OS));
    }
}
