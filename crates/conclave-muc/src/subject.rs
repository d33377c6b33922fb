//! The room subject: sent last in the join sequence (an empty
//! `<subject/>` when none was set), changed by a groupchat message with a
//! subject and no body, by whom `muc#roomconfig_changesubject` allows.

use jid::FullJid;
use minidom::Element;
use serde::{Deserialize, Serialize};

use crate::errors::StanzaErr;
use crate::role::Role;
use crate::room::Room;
use crate::xml::{set_attr, stanza, text_elem, NS_CLIENT};
use crate::Effect;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Subject {
    pub text: String,
    /// Nickname of who set it, when known.
    pub nick: Option<String>,
}

impl Room {
    /// The subject message to one session.
    pub(crate) fn send_subject(&self, to: &FullJid, out: &mut Vec<Effect>) {
        let from = match self.subject.as_ref().and_then(|s| s.nick.as_deref()) {
            Some(n) => self.occupant_jid(n),
            None => self.room_str(),
        };
        let mut m = stanza("message", &from, &to.to_string());
        set_attr(&mut m, "type", "groupchat");
        let text = self.subject.as_ref().map(|s| s.text.as_str()).unwrap_or("");
        if text.is_empty() {
            m.append_child(minidom::Element::bare("subject", NS_CLIENT));
        } else {
            m.append_child(text_elem("subject", NS_CLIENT, text));
        }
        out.push(Effect::Send(m));
    }

    /// May an occupant of this role change the subject?
    pub(crate) fn may_change_subject(&self, role: Role) -> bool {
        role == Role::Moderator || (self.config.change_subject && role >= Role::Participant)
    }

    /// A subject change by occupant `idx` (the message is broadcast by the
    /// caller when this returns `Ok`).
    pub(crate) fn change_subject(&mut self, msg: &Element, idx: usize) -> Result<(), StanzaErr> {
        let occ = &self.occupants[idx];
        if !self.may_change_subject(occ.role) {
            return Err(
                StanzaErr::forbidden().with_text("You are not allowed to change the subject")
            );
        }
        let text = msg
            .get_child("subject", NS_CLIENT)
            .map(|s| s.text())
            .unwrap_or_default();
        self.subject = Some(Subject {
            text,
            nick: Some(occ.nick.clone()),
        });
        Ok(())
    }
}
