//! An occupant: one nickname in the room, held by one user through one or
//! more sessions (full JIDs), each with its last presence.

use jid::{BareJid, FullJid};
use minidom::Element;

use crate::role::Role;

#[derive(Clone, Debug)]
pub struct Session {
    pub jid: FullJid,
    /// The last presence received from this session (as sent, minus the
    /// muc payloads).
    pub presence: Element,
}

#[derive(Clone, Debug)]
pub struct Occupant {
    pub nick: String,
    pub bare: BareJid,
    pub role: Role,
    pub sessions: Vec<Session>,
}

impl Occupant {
    /// The session whose presence represents the occupant (the latest).
    pub fn primary(&self) -> Option<&Session> {
        self.sessions.last()
    }

    pub fn has_session(&self, jid: &FullJid) -> bool {
        self.sessions.iter().any(|s| &s.jid == jid)
    }
}
