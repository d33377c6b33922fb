//! Messages: groupchat broadcast (from the sender's occupant JID, id
//! kept), subject changes, private messages between occupants, and iqs
//! relayed between occupants.

use minidom::Element;
use xmpp_parsers::muc::user::MucUser;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use crate::errors::StanzaErr;
use crate::room::{Room, Sender};
use crate::xml::{
    set_attr, stanza_type, without_children, NS_CLIENT, NS_MUC_USER, NS_OCCUPANT_ID, NS_PING,
};
use crate::{Context, Effect};

impl Room {
    pub(crate) fn on_message(
        &mut self,
        m: &Element,
        sender: &Sender,
        nick: Option<&str>,
        ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        let t = stanza_type(m).to_owned();
        match (nick, t.as_str()) {
            (None, "groupchat") => self.groupchat(m, sender, ctx, out),
            (None, _) => {
                if let Some(x) = m.get_child("x", NS_MUC_USER) {
                    self.on_muc_user_message(m, x, sender, ctx, out);
                } else {
                    self.reply_error(m, StanzaErr::bad_request("Send groupchat messages to the room, or private messages to an occupant"), out);
                }
            }
            (Some(_), "groupchat") => {
                self.reply_error(
                    m,
                    StanzaErr::bad_request("Groupchat messages go to the room, not to an occupant"),
                    out,
                );
            }
            (Some(n), _) => self.private_message(m, sender, n, out),
        }
    }

    /// The payload of a relayed message: the sender's stanza minus any
    /// occupant-id it tried to set and the addressing.
    fn relayed(&self, m: &Element, from_nick: &str, bare: &jid::BareJid) -> Element {
        let mut msg = without_children(m, |c| c.has_ns(NS_OCCUPANT_ID));
        crate::xml::remove_attr(&mut msg, "to");
        set_attr(&mut msg, "from", self.occupant_jid(from_nick));
        msg.append_child(self.occupant_id_element(bare));
        msg
    }

    fn groupchat(&mut self, m: &Element, sender: &Sender, ctx: &Context, out: &mut Vec<Effect>) {
        let Some(idx) = self.sender_index(sender) else {
            self.reply_error(
                m,
                StanzaErr::new(ErrorType::Cancel, DefinedCondition::NotAcceptable)
                    .with_text("You are not currently connected to this chat"),
                out,
            );
            return;
        };
        // Voice first, then the subject: a message with a body or a thread
        // besides its subject is an ordinary message, not a subject change.
        if !self.may_speak(self.occupants[idx].role) {
            self.reply_error(
                m,
                StanzaErr::forbidden()
                    .with_text("You do not currently have permission to speak in this chat"),
                out,
            );
            return;
        }
        let is_subject = m.get_child("subject", NS_CLIENT).is_some()
            && m.get_child("body", NS_CLIENT).is_none()
            && m.get_child("thread", NS_CLIENT).is_none();
        if is_subject {
            if let Err(e) = self.change_subject(m, idx) {
                self.reply_error(m, e, out);
                return;
            }
            self.save(out);
        }
        let occ = &self.occupants[idx];
        let msg = self.relayed(m, &occ.nick.clone(), &occ.bare.clone());
        let to = self.all_sessions();
        if !is_subject && m.get_child("body", NS_CLIENT).is_some() {
            self.add_history(&msg, ctx.now);
        }
        out.push(Effect::Broadcast { stanza: msg, to });
    }

    fn private_message(&mut self, m: &Element, sender: &Sender, nick: &str, out: &mut Vec<Effect>) {
        let Some(idx) = self.sender_index(sender) else {
            self.reply_error(
                m,
                StanzaErr::new(ErrorType::Cancel, DefinedCondition::NotAcceptable)
                    .with_text("You are not currently connected to this chat"),
                out,
            );
            return;
        };
        let from_role = self.occupants[idx].role;
        if !self.config.allow_pm.allows(from_role) {
            self.reply_error(
                m,
                StanzaErr::not_allowed().with_text("Private messages are not allowed in this room"),
                out,
            );
            return;
        }
        let target = crate::nick::prep_nick(nick).and_then(|n| self.index_by_nick(&n));
        let Some(target) = target else {
            self.reply_error(
                m,
                StanzaErr::item_not_found().with_text("That occupant is not in the room"),
                out,
            );
            return;
        };
        let (from_nick, bare) = (
            self.occupants[idx].nick.clone(),
            self.occupants[idx].bare.clone(),
        );
        let mut msg = self.relayed(m, &from_nick, &bare);
        if msg.get_child("x", NS_MUC_USER).is_none() {
            msg.append_child(MucUser::new().into());
        }
        for s in &self.occupants[target].sessions {
            let mut copy = msg.clone();
            set_attr(&mut copy, "to", s.jid.to_string());
            out.push(Effect::Send(copy));
        }
    }

    /// An iq to `room/nick`: self-ping (XEP-0410) is answered by the room,
    /// other requests are relayed to the occupant's primary session.
    /// Results from an occupant are relayed back to the occupant named in
    /// their `to`.
    pub(crate) fn on_occupant_iq(
        &mut self,
        iq: &Element,
        sender: &Sender,
        nick: &str,
        out: &mut Vec<Effect>,
    ) {
        let t = stanza_type(iq);
        let Some(idx) = self.sender_index(sender) else {
            if t == "get" || t == "set" {
                self.reply_error(
                    iq,
                    StanzaErr::new(ErrorType::Cancel, DefinedCondition::NotAcceptable)
                        .with_text("You are not currently connected to this chat"),
                    out,
                );
            }
            return;
        };
        let target = crate::nick::prep_nick(nick).and_then(|n| self.index_by_nick(&n));
        if t == "get" && iq.get_child("ping", NS_PING).is_some() && target == Some(idx) {
            out.push(Effect::Send(self.iq_result(iq, None)));
            return;
        }
        let Some(target) = target else {
            if t == "get" || t == "set" {
                self.reply_error(iq, StanzaErr::item_not_found(), out);
            }
            return;
        };
        let Some(to) = self.occupants[target].primary().map(|s| s.jid.to_string()) else {
            return;
        };
        let mut fwd = iq.clone();
        set_attr(
            &mut fwd,
            "from",
            self.occupant_jid(&self.occupants[idx].nick),
        );
        set_attr(&mut fwd, "to", to);
        out.push(Effect::Send(fwd));
    }

    /// An iq error from an occupant: relay it like a result, never kick.
    pub(crate) fn on_occupant_iq_error(
        &mut self,
        iq: &Element,
        sender: &Sender,
        out: &mut Vec<Effect>,
    ) {
        let Some(nick) =
            crate::xml::to_jid(iq).and_then(|j| j.resource().map(|r| r.as_str().to_owned()))
        else {
            return;
        };
        self.on_occupant_iq(iq, sender, &nick, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_wire, ctx, from, open_room, stanzas, JULIET, ROMEO};

    #[test]
    fn a_private_message_carries_the_occupant_id_and_an_empty_muc_user_payload() {
        let mut room = open_room();
        room.handle(
            from(
                JULIET,
                "<presence xmlns='jabber:client' to='room@conference.localhost/Juliet'/>",
            ),
            &ctx(1),
        );
        let out = stanzas(room.handle(
            from(
                ROMEO,
                "<message xmlns='jabber:client' to='room@conference.localhost/Juliet' type='chat' id='p1'><body>psst</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/></message>",
            ),
            &ctx(2),
        ));
        let id = crate::occupant_id::occupant_id(
            "salt",
            &"room@conference.localhost".parse().unwrap(),
            &"romeo@localhost".parse().unwrap(),
        );
        assert_eq!(out.len(), 1);
        assert_wire(
            &out[0],
            &format!("<message xmlns='jabber:client' from='room@conference.localhost/Romeo' to='juliet@localhost/garden' type='chat' id='p1'><body>psst</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='{id}'/><x xmlns='http://jabber.org/protocol/muc#user'/></message>"),
        );
    }

    fn join_juliet(room: &mut crate::room::Room) {
        room.handle(
            from(
                JULIET,
                "<presence xmlns='jabber:client' to='room@conference.localhost/Juliet'/>",
            ),
            &ctx(1),
        );
    }

    #[test]
    fn a_subject_with_a_body_or_a_thread_is_relayed_to_everyone_and_changes_nothing() {
        for extra in ["<body>hello</body>", "<thread>t1</thread>"] {
            let mut room = open_room();
            room.config.change_subject = false;
            join_juliet(&mut room);
            let effects = room.handle(
                from(
                    JULIET,
                    &format!("<message xmlns='jabber:client' to='room@conference.localhost' type='groupchat' id='m1'><subject>New</subject>{extra}</message>"),
                ),
                &ctx(2),
            );
            assert_eq!(effects.len(), 1, "{extra}");
            let crate::Effect::Broadcast { stanza, to } = &effects[0] else {
                panic!("not a broadcast: {effects:?}");
            };
            assert_eq!(to.len(), 2);
            assert_eq!(
                stanza.attr("from"),
                Some("room@conference.localhost/Juliet")
            );
            assert!(stanza.get_child("subject", "jabber:client").is_some());
            assert!(room.subject.is_none(), "{extra}");
            assert_eq!(room.history.len(), usize::from(extra.starts_with("<body")));
        }
    }

    #[test]
    fn a_visitor_is_refused_before_the_subject_is_looked_at() {
        let mut room = open_room();
        room.config.moderated = true;
        join_juliet(&mut room);
        for payload in [
            "<subject>New</subject>",
            "<subject>New</subject><body>b</body>",
            "<body>b</body>",
        ] {
            let out = stanzas(room.handle(
                from(
                    JULIET,
                    &format!("<message xmlns='jabber:client' to='room@conference.localhost' type='groupchat' id='v'>{payload}</message>"),
                ),
                &ctx(2),
            ));
            assert_eq!(out.len(), 1);
            assert_wire(
                &out[0],
                "<message xmlns='jabber:client' from='room@conference.localhost' to='juliet@localhost/garden' type='error' id='v'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>You do not currently have permission to speak in this chat</text></error></message>",
            );
        }
    }
}
