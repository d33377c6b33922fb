//! Roles (for the length of a visit: moderator, participant, visitor).

use serde::{Deserialize, Serialize};

use crate::affiliation::Affiliation;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    None,
    Visitor,
    Participant,
    Moderator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Visitor => "visitor",
            Role::Participant => "participant",
            Role::Moderator => "moderator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "none" => Role::None,
            "visitor" => Role::Visitor,
            "participant" => Role::Participant,
            "moderator" => Role::Moderator,
            _ => return None,
        })
    }

    /// The role an occupant gets from an affiliation on entering (as
    /// Prosody's `get_default_role`): `None` means not allowed in.
    pub fn default_for(aff: Affiliation, moderated: bool, members_only: bool) -> Option<Role> {
        match aff {
            Affiliation::Owner | Affiliation::Admin => Some(Role::Moderator),
            Affiliation::Member => Some(Role::Participant),
            Affiliation::None if members_only => None,
            Affiliation::None if moderated => Some(Role::Visitor),
            Affiliation::None => Some(Role::Participant),
            Affiliation::Outcast => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_roles() {
        assert_eq!(
            Role::default_for(Affiliation::Owner, false, false),
            Some(Role::Moderator)
        );
        assert_eq!(
            Role::default_for(Affiliation::None, true, false),
            Some(Role::Visitor)
        );
        assert_eq!(Role::default_for(Affiliation::None, false, true), None);
        assert_eq!(
            Role::default_for(Affiliation::Member, true, true),
            Some(Role::Participant)
        );
        assert_eq!(Role::default_for(Affiliation::Outcast, false, false), None);
        assert_eq!(Role::parse("visitor"), Some(Role::Visitor));
        assert_eq!(Role::parse("god"), None);
    }
}
