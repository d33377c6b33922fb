//! Affiliations (long-lived: owner, admin, member, outcast) and what the
//! room remembers with them: the reason given and a reserved nickname.

use serde::{Deserialize, Serialize};

/// A user's long-term standing in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Affiliation {
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::Admin => "admin",
            Affiliation::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Affiliation> {
        Some(match s {
            "outcast" => Affiliation::Outcast,
            "none" => Affiliation::None,
            "member" => Affiliation::Member,
            "admin" => Affiliation::Admin,
            "owner" => Affiliation::Owner,
            _ => return None,
        })
    }

    /// Owners and admins administer the room.
    pub fn is_admin(self) -> bool {
        self >= Affiliation::Admin
    }
}

/// What the room stores for one bare JID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffiliationEntry {
    pub affiliation: Affiliation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The nickname reserved for this user (registration or admin `nick`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_orders() {
        for a in ["outcast", "none", "member", "admin", "owner"] {
            assert_eq!(Affiliation::parse(a).map(|x| x.as_str()), Some(a));
        }
        assert_eq!(Affiliation::parse("king"), None);
        assert!(Affiliation::Owner > Affiliation::Admin);
        assert!(Affiliation::Member > Affiliation::None);
        assert!(Affiliation::None > Affiliation::Outcast);
        assert!(Affiliation::Admin.is_admin() && !Affiliation::Member.is_admin());
    }
}
