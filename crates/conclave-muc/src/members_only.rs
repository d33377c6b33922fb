//! Members-only rooms: unaffiliated users may not enter
//! (registration-required); occupants who lose membership are removed
//! (321), and so are non-members when a room becomes members-only (322).

use xmpp_parsers::muc::user::Status;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use crate::affiliation::Affiliation;
use crate::errors::StanzaErr;
use crate::room::{Change, Room};
use crate::Effect;

impl Room {
    pub(crate) fn check_members_only(&self, aff: Affiliation) -> Result<(), StanzaErr> {
        if self.config.members_only && aff < Affiliation::Member {
            return Err(
                StanzaErr::new(ErrorType::Auth, DefinedCondition::RegistrationRequired)
                    .with_text("Only members may enter this room"),
            );
        }
        Ok(())
    }

    /// The room just became members-only: remove everyone without an
    /// affiliation (status 322).
    pub(crate) fn remove_non_members(&mut self, out: &mut Vec<Effect>) {
        while let Some(idx) = self
            .occupants
            .iter()
            .position(|o| self.affiliation(&o.bare) < Affiliation::Member)
        {
            let ch = Change {
                codes: vec![Status::ConfigMembersOnly],
                ..Change::default()
            };
            self.remove_occupant(idx, ch, out);
        }
    }
}
