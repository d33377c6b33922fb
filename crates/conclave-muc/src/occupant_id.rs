//! XEP-0421 occupant ids: a stable, opaque id per user and room, derived
//! from the room's secret salt and the user's bare JID.

use base64::Engine;
use jid::BareJid;
use minidom::Element;
use sha2::{Digest, Sha256};
use xmpp_parsers::occupant_id::OccupantId;

use crate::room::Room;

/// A new random salt for a room.
pub(crate) fn new_salt() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// The occupant id of `bare` in a room salted with `salt`.
pub(crate) fn occupant_id(salt: &str, room: &BareJid, bare: &BareJid) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(room.as_str().as_bytes());
    h.update([0u8]);
    h.update(bare.as_str().as_bytes());
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(h.finalize())
}

impl Room {
    pub(crate) fn occupant_id_element(&self, bare: &BareJid) -> Element {
        OccupantId {
            id: occupant_id(&self.salt, &self.jid, bare),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_user_and_differ_across_users_and_salts() {
        let room: BareJid = "room@conference.localhost".parse().unwrap();
        let a: BareJid = "a@localhost".parse().unwrap();
        let b: BareJid = "b@localhost".parse().unwrap();
        assert_eq!(occupant_id("s", &room, &a), occupant_id("s", &room, &a));
        assert_ne!(occupant_id("s", &room, &a), occupant_id("s", &room, &b));
        assert_ne!(occupant_id("s", &room, &a), occupant_id("t", &room, &a));
        assert!(!occupant_id("s", &room, &a).contains("a@localhost"));
    }
}
