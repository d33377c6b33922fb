//! Invitations: mediated invites through the room (XEP-0045 7.8.2) and
//! their declines; members-only rooms make the invitee a member when an
//! admin invites. Direct invites (XEP-0249) travel as private messages.

use minidom::Element;
use xmpp_parsers::muc::user::{Decline, Invite, MucUser};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

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
                StanzaErr::new(ErrorType::Cancel, DefinedCondition::NotAcceptable)
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
            match Invite::try_from((*inv).clone()) {
                Ok(Invite {
                    to: Some(j),
                    reason,
                    ..
                }) => targets.push((j, reason)),
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
            let mut ux: Element = MucUser {
                invite: Some(Invite {
                    from: Some(sender.jid.clone()),
                    to: None,
                    reason: reason.clone(),
                }),
                ..MucUser::new()
            }
            .into();
            // `MucUser` has no <password/>: added to the typed payload.
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
        let Ok(Decline {
            to: Some(to),
            reason,
            ..
        }) = Decline::try_from(d.clone())
        else {
            self.reply_error(
                m,
                StanzaErr::jid_malformed().with_text("Invalid decline recipient"),
                out,
            );
            return;
        };
        let mut msg = stanza("message", &self.room_str(), to.as_str());
        let ux = MucUser {
            decline: Some(Decline {
                from: Some(sender.jid.clone()),
                to: None,
                reason,
            }),
            ..MucUser::new()
        };
        msg.append_child(ux.into());
        out.push(Effect::Send(msg));
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_wire, ctx, from, open_room, stanzas, JULIET, ROMEO};

    #[test]
    fn an_invitation_as_the_invitee_gets_it() {
        let mut room = open_room();
        room.config.password = Some("p&w".into());
        let out = stanzas(room.handle(
            from(
                ROMEO,
                "<message xmlns='jabber:client' to='room@conference.localhost' id='i1'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='juliet@localhost'><reason>come &amp; see</reason></invite></x></message>",
            ),
            &ctx(1),
        ));
        assert_eq!(out.len(), 1);
        assert_wire(
            &out[0],
            "<message xmlns='jabber:client' from='room@conference.localhost' to='juliet@localhost' id='i1'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='romeo@localhost/balcony'><reason>come &amp; see</reason></invite><password>p&amp;w</password></x><body>romeo@localhost invited you to the room room@conference.localhost (come &amp; see)</body></message>",
        );
        let out = stanzas(room.handle(
            from(
                ROMEO,
                "<message xmlns='jabber:client' to='room@conference.localhost'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='juliet@localhost'/><invite to='nurse@localhost'/></x></message>",
            ),
            &ctx(1),
        ));
        assert_eq!(out.len(), 2);
        assert_wire(
            &out[1],
            "<message xmlns='jabber:client' from='room@conference.localhost' to='nurse@localhost'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='romeo@localhost/balcony'/><password>p&amp;w</password></x><body>romeo@localhost invited you to the room room@conference.localhost</body></message>",
        );
    }

    #[test]
    fn a_decline_goes_back_to_the_inviter() {
        let mut room = open_room();
        let out = stanzas(room.handle(
            from(
                JULIET,
                "<message xmlns='jabber:client' to='room@conference.localhost'><x xmlns='http://jabber.org/protocol/muc#user'><decline to='romeo@localhost'><reason>busy</reason></decline></x></message>",
            ),
            &ctx(1),
        ));
        assert_wire(
            &out[0],
            "<message xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost'><x xmlns='http://jabber.org/protocol/muc#user'><decline from='juliet@localhost/garden'><reason>busy</reason></decline></x></message>",
        );
        let out = stanzas(room.handle(
            from(
                JULIET,
                "<message xmlns='jabber:client' to='room@conference.localhost'><x xmlns='http://jabber.org/protocol/muc#user'><decline to='@@'/></x></message>",
            ),
            &ctx(1),
        ));
        assert_wire(
            &out[0],
            "<message xmlns='jabber:client' from='room@conference.localhost' to='juliet@localhost/garden' type='error'><error type='modify'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Invalid decline recipient</text></error></message>",
        );
    }

    #[test]
    fn an_invitation_to_a_malformed_address_is_refused() {
        let mut room = open_room();
        let out = stanzas(room.handle(
            from(
                ROMEO,
                "<message xmlns='jabber:client' to='room@conference.localhost'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='juliet@localhost'/><invite/></x></message>",
            ),
            &ctx(1),
        ));
        assert_eq!(out.len(), 1, "nobody is invited");
        assert_wire(
            &out[0],
            "<message xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' type='error'><error type='modify'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Invalid invitee</text></error></message>",
        );
    }
}
