//! Entering a room: creation (201, locked, creator is owner), the checks
//! (lock, ban, members-only, password, nickname, capacity) and the join
//! sequence (others' presences, own presence, history, subject).

use jid::FullJid;
use minidom::Element;
use xmpp_parsers::muc::user::Status;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use crate::affiliation::{Affiliation, AffiliationEntry};
use crate::errors::{join_error, StanzaErr};
use crate::nick::prep_nick;
use crate::occupant::{Occupant, Session};
use crate::presence::sanitize;
use crate::role::Role;
use crate::room::{Change, Room};
use crate::xml::NS_MUC;
use crate::{Context, Effect};

impl Room {
    pub(crate) fn on_join(
        &mut self,
        p: &Element,
        full: &FullJid,
        raw_nick: &str,
        ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        let room = self.jid.clone();
        let Some(nick) = prep_nick(raw_nick) else {
            if let Some(e) = join_error(
                p,
                &StanzaErr::jid_malformed().with_text("Invalid nickname"),
                &room,
            ) {
                out.push(Effect::Send(e));
            }
            return;
        };
        let bare = full.to_bare();
        let mut self_codes = Vec::new();
        if !self.created {
            self.created = true;
            self.locked = true;
            if !self.is_service_admin(&bare) {
                self.affiliations.insert(
                    bare.clone(),
                    AffiliationEntry {
                        affiliation: Affiliation::Owner,
                        reason: None,
                        nick: None,
                    },
                );
            }
            self_codes.push(Status::RoomHasBeenCreated);
        }
        let muc_x = p.get_child("x", NS_MUC);
        let aff = self.affiliation(&bare);
        if let Err(err) = self.check_join(&bare, aff, &nick, muc_x) {
            if let Some(e) = join_error(p, &err, &room) {
                out.push(Effect::Send(e));
            }
            return;
        }
        let presence = sanitize(p);
        let session = Session {
            jid: full.clone(),
            presence,
        };
        // Another session of the same user with the same nick: share it.
        if let Some(i) = self.index_by_nick(&nick) {
            self.occupants[i].sessions.push(session);
            self.send_occupants_to(full, i, out);
            let occ = self.occupants[i].clone();
            self.publicise(&occ, &Change::default(), out);
            self.send_history(full, muc_x, ctx, out);
            self.send_subject(full, out);
            return;
        }
        let Some(role) = Role::default_for(aff, self.config.moderated, self.config.members_only)
        else {
            // check_join rejects these; stay safe.
            return;
        };
        self.occupants.push(Occupant {
            nick: nick.clone(),
            bare,
            role,
            sessions: vec![session],
        });
        let idx = self.occupants.len() - 1;
        self.send_occupants_to(full, idx, out);
        if self.config.non_anonymous() {
            self_codes.push(Status::NonAnonymousRoom);
        }
        if self.config.logging {
            self_codes.push(Status::ConfigRoomLoggingEnabled);
        }
        if raw_nick != nick {
            self_codes.push(Status::AssignedNick);
        }
        let occ = self.occupants[idx].clone();
        self.publicise(
            &occ,
            &Change {
                self_codes,
                ..Change::default()
            },
            out,
        );
        self.send_history(full, muc_x, ctx, out);
        self.send_subject(full, out);
    }

    /// The checks in Prosody's order; the first failing one is reported.
    fn check_join(
        &self,
        bare: &jid::BareJid,
        aff: Affiliation,
        nick: &str,
        muc_x: Option<&Element>,
    ) -> Result<(), StanzaErr> {
        if self.locked && aff != Affiliation::Owner {
            return Err(StanzaErr::item_not_found()
                .with_text("This room is locked: its owner has not configured it yet"));
        }
        if aff == Affiliation::Outcast {
            return Err(StanzaErr::forbidden().with_text("You have been banned from this room"));
        }
        self.check_members_only(aff)?;
        self.check_password(aff, muc_x)?;
        self.check_nick(bare, nick)?;
        let max = self.service.max_occupants;
        let already_in = self
            .occupants
            .iter()
            .any(|o| &o.bare == bare && o.nick == nick);
        if max > 0 && self.occupants.len() >= max && !aff.is_admin() && !already_in {
            return Err(
                StanzaErr::new(ErrorType::Wait, DefinedCondition::ServiceUnavailable)
                    .with_text("The room is full"),
            );
        }
        Ok(())
    }

    /// Every other occupant's presence, to the joining session.
    fn send_occupants_to(&self, full: &FullJid, idx: usize, out: &mut Vec<Effect>) {
        let Some(me) = self.occupants.get(idx) else {
            return;
        };
        let see = self.sees_real_jids(me);
        for (i, other) in self.occupants.iter().enumerate() {
            if i == idx || !(self.config.broadcasts(other.role) || me.role == Role::Moderator) {
                continue;
            }
            out.push(Effect::Send(self.occupant_presence(
                other,
                full,
                see,
                false,
                &Change::default(),
            )));
        }
    }
}
