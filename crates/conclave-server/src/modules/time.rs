//! Entity time (XEP-0202): the server's clock, in UTC.

use chrono::{FixedOffset, Utc};
use minidom::Element;
use xmpp_parsers::time::TimeResult;

use crate::xml::{iq_result, stanza_type};

pub const NS: &str = "urn:xmpp:time";

/// The answer to a time query, `None` when `payload` is not one.
pub fn handle(iq: &Element, payload: &Element) -> Option<Element> {
    if stanza_type(iq) != "get" || !payload.is("time", NS) {
        return None;
    }
    let result = TimeResult {
        tz_offset: FixedOffset::east_opt(0)?,
        utc: Utc::now(),
    };
    Some(iq_result(iq, None, Some(result.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_current_utc_time() {
        let iq: Element =
            "<iq xmlns='jabber:client' type='get' id='t' to='h'><time xmlns='urn:xmpp:time'/></iq>"
                .parse()
                .unwrap();
        let before = Utc::now();
        let r = handle(&iq, iq.children().next().unwrap()).unwrap();
        let t = TimeResult::try_from(r.get_child("time", NS).unwrap().clone()).unwrap();
        assert_eq!(t.tz_offset.local_minus_utc(), 0);
        let delta = (t.utc - before).num_seconds().abs();
        assert!(delta <= 2, "clock off by {delta}s");
        let set: Element =
            "<iq xmlns='jabber:client' type='set' id='t' to='h'><time xmlns='urn:xmpp:time'/></iq>"
                .parse()
                .unwrap();
        assert!(handle(&set, set.children().next().unwrap()).is_none());
    }
}
