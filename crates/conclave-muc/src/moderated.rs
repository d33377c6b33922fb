//! Moderated rooms: unaffiliated occupants enter as visitors and may not
//! speak until a moderator grants them voice.

use crate::role::Role;
use crate::room::Room;

impl Room {
    /// May an occupant of this role send groupchat messages?
    pub(crate) fn may_speak(&self, role: Role) -> bool {
        role >= Role::Participant
    }
}
