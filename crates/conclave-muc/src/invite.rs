//! Invitations: mediated invites through the room (XEP-0045 7.8.2) and
//! their declines; members-only rooms make the invitee a member when an
//! admin invites. Direct invites (XEP-0249) travel as private messages.

use jid::Jid;
use minidom::Element;

use crate::affiliation::Affiliation;
use crate::errors::StanzaErr;
use crate::role::Role;
use crate::room::{Room, Sender};
use crate::xml::{set_attr, stanza, text_elem, NS_CLIENT, NS_MUC_USER};
use crate::{Context, Effect};

impl Room {
    pub(crate) fn on_muc_user_message(
        &mut self,
        m: &Element,
        x: &Element,
        sender: &Sender,
        _ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        if let Some(d) = x.get_child("decline", NS_MUC_USER) {
            self.decline(m, d, sender, out);
            return;
        }
        let invites: Vec<&Element> = x
            .children()
            .filter(|c| c.is("invite", NS_MUC_USER))
            .collect();
        if invites.is_empty() {
            self.reply_error(
                m,
                StanzaErr::bad_request("Expected an invite or a decline"),
                out,
            );
            return;
        }
        let Some(idx) = self.sender_index(sender) else {
            self.reply_error(
                m,
                StanzaErr::new("cancel", "not-acceptable")
                    .with_text("You are not currently connected to this chat"),
                out,
            );
            return;
        };
        let role = self.occupants[idx].role;
        let aff = self.affiliation(&sender.bare);
        let may_invite = if self.config.members_only {
            aff.is_admin() || (self.config.allow_invites && role >= Role::Participant)
        } else {
            self.config.allow_invites || role == Role::Moderator || aff.is_admin()
        };
        if !may_invite {
            self.reply_error(
                m,
                StanzaErr::forbidden().with_text("You may not invite people to this room"),
                out,
            );
            return;
        }
        let mut targets = Vec::new();
        for inv in &invites {
            match inv.attr("to").map(Jid::new) {
                Some(Ok(j)) => {
                    targets.push((j, inv.get_child("reason", NS_MUC_USER).map(|r| r.text())))
                }
                _ => {
                    self.reply_error(
                        m,
                        StanzaErr::jid_malformed().with_text("Invalid invitee"),
                        out,
                    );
                    return;
                }
            }
        }
        let room = self.room_str();
        for (to, reason) in targets {
            let bare = to.to_bare();
            if self.config.members_only
                && aff.is_admin()
                && self.affiliation(&bare) < Affiliation::Member
            {
                let actor = self.actor_of(sender);
                self.set_affiliation(&bare, Affiliation::Member, None, None, Some(actor), out);
            }
            let mut msg = stanza("message", &room, to.as_str());
            if let Some(id) = m.attr("id") {
                set_attr(&mut msg, "id", id);
            }
            let mut ux = Element::bare("x", NS_MUC_USER);
            let mut inv = Element::bare("invite", NS_MUC_USER);
            set_attr(&mut inv, "from", sender.jid.to_string());
            if let Some(r) = &reason {
                inv.append_child(text_elem("reason", NS_MUC_USER, r));
            }
            ux.append_child(inv);
            if let Some(p) = &self.config.password {
                ux.append_child(text_elem("password", NS_MUC_USER, p));
            }
            msg.append_child(ux);
            let text = match &reason {
                Some(r) => format!("{} invited you to the room {} ({})", sender.bare, room, r),
                None => format!("{} invited you to the room {}", sender.bare, room),
            };
            msg.append_child(text_elem("body", NS_CLIENT, &text));
            out.push(Effect::Send(msg));
        }
    }

    /// A declined invitation goes back to the inviter.
    fn decline(&mut self, m: &Element, d: &Element, sender: &Sender, out: &mut Vec<Effect>) {
        let Some(Ok(to)) = d.attr("to").map(Jid::new) else {
            self.reply_error(
                m,
                StanzaErr::jid_malformed().with_text("Invalid decline recipient"),
                out,
            );
            return;
        };
        let mut msg = stanza("message", &self.room_str(), to.as_str());
        let mut ux = Element::bare("x", NS_MUC_USER);
        let mut dec = Element::bare("decline", NS_MUC_USER);
        set_attr(&mut dec, "from", sender.jid.to_string());
        if let Some(r) = d.get_child("reason", NS_MUC_USER) {
            dec.append_child(text_elem("reason", NS_MUC_USER, &r.text()));
        }
        ux.append_child(dec);
        msg.append_child(ux);
        out.push(Effect::Send(msg));
    }
}
