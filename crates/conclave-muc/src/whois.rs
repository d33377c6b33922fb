//! Who sees real JIDs (semi-anonymous or non-anonymous rooms), and the
//! status codes that announce a change of that (172, 173).

use xmpp_parsers::muc::user::Status;

use crate::config::{RoomConfig, Whois};

/// The status codes to add to the 104 message when the room's privacy or
/// logging changes: 170/171 (logging on/off), 172/173 (non-anonymous /
/// semi-anonymous).
pub(crate) fn privacy_codes(old: &RoomConfig, new: &RoomConfig) -> Vec<u16> {
    let mut codes = Vec::new();
    if old.logging != new.logging {
        codes.push(if new.logging { 170 } else { 171 });
    }
    if old.whois != new.whois {
        codes.push(if new.whois == Whois::Anyone { 172 } else { 173 });
    }
    codes
}

/// The typed status for one of the codes above.
pub(crate) fn privacy_status(code: u16) -> Option<Status> {
    Some(match code {
        170 => Status::ConfigRoomLoggingEnabled,
        171 => Status::ConfigRoomLoggingDisabled,
        172 => Status::ConfigRoomNonAnonymous,
        173 => Status::ConfigRoomSemiAnonymous,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_for_privacy_changes() {
        let old = RoomConfig::default();
        let mut new = old.clone();
        assert!(privacy_codes(&old, &new).is_empty());
        new.whois = Whois::Anyone;
        assert_eq!(privacy_codes(&old, &new), vec![172]);
        assert_eq!(privacy_codes(&new, &old), vec![173]);
        new.logging = true;
        assert_eq!(privacy_codes(&old, &new), vec![170, 172]);
    }

    #[test]
    fn privacy_statuses_carry_their_codes() {
        for code in [170, 171, 172, 173] {
            let status = privacy_status(code).map(minidom::Element::from);
            assert_eq!(
                status.as_ref().and_then(|s| s.attr("code")),
                Some(code.to_string().as_str())
            );
        }
        assert_eq!(privacy_status(104), None);
    }
}
