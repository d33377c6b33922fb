//! System shutdown (XEP-0045 status 332): when the server stops, every
//! occupant is told it was removed from the room, as Prosody does. The
//! room's saved state is left alone, so a persistent room comes back
//! (empty) when the server starts again.

use xmpp_parsers::muc::user::Status;

use crate::role::Role;
use crate::room::{Change, Room};
use crate::Effect;

impl Room {
    /// Empties the room because the server is shutting down: each session
    /// of each occupant gets its own unavailable presence with status 332
    /// (and 110). Nobody is left to be told about the others, so this
    /// costs one presence per session, not one per pair of occupants.
    pub fn shutdown(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        let ch = Change {
            codes: vec![Status::ServiceShutdown],
            unavailable: true,
            only_self: true,
            ..Change::default()
        };
        for mut occ in std::mem::take(&mut self.occupants) {
            occ.role = Role::None;
            self.publicise(&occ, &ch, &mut out);
        }
        out
    }
}
