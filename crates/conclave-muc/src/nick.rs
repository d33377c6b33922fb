//! Nicknames: preparation (resourceprep), and changing one's nickname
//! (status 303 with the new nick, then the available presence).

use jid::ResourcePart;
use minidom::Element;
use xmpp_parsers::muc::user::Status;

use crate::errors::{join_error, StanzaErr};
use crate::room::{Change, Room, Sender};
use crate::Effect;

/// A nickname as the room stores it: resourceprep'd, non-empty.
pub(crate) fn prep_nick(raw: &str) -> Option<String> {
    let prepped = ResourcePart::new(raw).ok()?;
    let s = prepped.as_str().to_owned();
    (!s.is_empty()).then_some(s)
}

impl Room {
    /// May `sender` take `nick`? Conflict when another user holds it in
    /// the room or has reserved it.
    pub(crate) fn check_nick(&self, bare: &jid::BareJid, nick: &str) -> Result<(), StanzaErr> {
        if let Some(i) = self.index_by_nick(nick) {
            if &self.occupants[i].bare != bare {
                return Err(StanzaErr::conflict());
            }
        }
        if let Some(owner) = self.nick_owner(nick) {
            if owner != bare {
                return Err(StanzaErr::conflict());
            }
        }
        Ok(())
    }

    /// An occupant's available presence to a new nickname.
    pub(crate) fn change_nick(
        &mut self,
        presence: &Element,
        sender: &Sender,
        idx: usize,
        raw: &str,
        out: &mut Vec<Effect>,
    ) {
        let room = self.jid.clone();
        let Some(new_nick) = prep_nick(raw) else {
            if let Some(e) = join_error(presence, &StanzaErr::jid_malformed(), &room) {
                out.push(Effect::Send(e));
            }
            return;
        };
        if self.occupants[idx].nick == new_nick {
            self.update_presence(presence, sender, idx, out);
            return;
        }
        if let Err(err) = self.check_nick(&sender.bare, &new_nick) {
            if let Some(e) = join_error(presence, &err, &room) {
                out.push(Effect::Send(e));
            }
            return;
        }
        if self.occupants[idx].sessions.len() > 1 {
            // One session of several cannot rename the shared occupant.
            self.reply_error(
                presence,
                StanzaErr::not_acceptable("Other sessions share this nickname"),
                out,
            );
            return;
        }
        let old = self.occupants[idx].clone();
        let leaving = Change {
            codes: vec![Status::NewNick],
            new_nick: Some(new_nick.clone()),
            unavailable: true,
            ..Change::default()
        };
        // The unavailable presence from the old nick keeps the real role.
        let mut old_shown = old.clone();
        old_shown.role = old.role;
        self.publicise_nick_leave(&old_shown, &leaving, out);
        self.occupants[idx].nick = new_nick.clone();
        if let Some(s) = self.occupants[idx].sessions.first_mut() {
            s.presence = crate::presence::sanitize(presence);
        }
        let mut arriving = Change::default();
        if raw != new_nick {
            arriving.self_codes.push(Status::AssignedNick);
        }
        let occ = self.occupants[idx].clone();
        self.publicise(&occ, &arriving, out);
    }

    /// The 303 presence keeps the occupant's role on the item.
    fn publicise_nick_leave(
        &self,
        occ: &crate::occupant::Occupant,
        ch: &Change,
        out: &mut Vec<Effect>,
    ) {
        for other in &self.occupants {
            if other.nick == occ.nick {
                continue;
            }
            let full = self.sees_real_jids(other);
            for s in &other.sessions {
                let mut p = self.occupant_presence(occ, &s.jid, full, false, ch);
                Self::fix_role(&mut p, occ.role);
                out.push(Effect::Send(p));
            }
        }
        for s in &occ.sessions {
            let mut p = self.occupant_presence(occ, &s.jid, true, true, ch);
            Self::fix_role(&mut p, occ.role);
            out.push(Effect::Send(p));
        }
    }

    fn fix_role(p: &mut Element, role: crate::role::Role) {
        if let Some(x) = p.get_child_mut("x", crate::xml::NS_MUC_USER) {
            if let Some(item) = x.get_child_mut("item", crate::xml::NS_MUC_USER) {
                crate::xml::set_attr(item, "role", role.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_resourceprepped() {
        assert_eq!(prep_nick("Juliet").as_deref(), Some("Juliet"));
        assert_eq!(prep_nick("").as_deref(), None);
        // Non-breaking space maps to a plain space under resourceprep.
        assert_eq!(prep_nick("a\u{00A0}b").as_deref(), Some("a b"));
    }
}
