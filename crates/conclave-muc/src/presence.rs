//! Presence from occupants: dispatch (join, leave, update, nick change,
//! probe), leaving the room, and removing an occupant whose client
//! bounced a stanza (status 333).

use minidom::Element;
use xmpp_parsers::muc::user::Status;

use crate::room::{Change, Room, Sender};
use crate::xml::{
    stanza_type, text_elem, without_children, NS_CLIENT, NS_MUC, NS_MUC_USER, NS_OCCUPANT_ID,
    NS_STANZAS,
};
use crate::{Context, Effect};

/// The payload of a presence that the room keeps and relays: everything
/// but the muc payloads and any occupant-id the client tried to set.
pub(crate) fn sanitize(presence: &Element) -> Element {
    without_children(presence, |c| {
        c.is("x", NS_MUC) || c.is("x", NS_MUC_USER) || c.has_ns(NS_OCCUPANT_ID)
    })
}

impl Room {
    pub(crate) fn on_presence(
        &mut self,
        p: &Element,
        sender: &Sender,
        nick: Option<&str>,
        ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        let Some(full) = sender.full.clone() else {
            return;
        };
        let idx = self.index_by_session(&full);
        match (stanza_type(p), idx, nick) {
            ("unavailable", Some(i), _) => self.leave(p, &full, i, out),
            ("unavailable", None, _) => {}
            ("probe", _, Some(n)) => self.probe(p, sender, n, out),
            ("probe", _, None) => {}
            ("available", Some(i), Some(n)) => self.change_nick(p, sender, i, n, out),
            ("available", Some(i), None) => self.update_presence(p, sender, i, out),
            ("available", None, Some(n)) => self.on_join(p, &full, n, ctx, out),
            ("available", None, None) => {
                let room = self.jid.clone();
                if let Some(e) = crate::errors::join_error(
                    p,
                    &crate::errors::StanzaErr::jid_malformed().with_text("A nickname is required"),
                    &room,
                ) {
                    out.push(Effect::Send(e));
                }
            }
            // subscribe and friends are not for rooms
            _ => {}
        }
    }

    /// An occupant's presence update (show/status): re-broadcast.
    pub(crate) fn update_presence(
        &mut self,
        p: &Element,
        sender: &Sender,
        idx: usize,
        out: &mut Vec<Effect>,
    ) {
        let Some(full) = &sender.full else { return };
        if let Some(s) = self.occupants[idx]
            .sessions
            .iter_mut()
            .find(|s| &s.jid == full)
        {
            s.presence = sanitize(p);
        }
        // The sending session becomes the one that represents the occupant.
        let occ = &mut self.occupants[idx];
        if let Some(pos) = occ.sessions.iter().position(|s| &s.jid == full) {
            let s = occ.sessions.remove(pos);
            occ.sessions.push(s);
        }
        let occ = self.occupants[idx].clone();
        self.publicise(&occ, &Change::default(), out);
    }

    /// A session leaves. The last session takes the occupant out.
    pub(crate) fn leave(
        &mut self,
        p: &Element,
        full: &jid::FullJid,
        idx: usize,
        out: &mut Vec<Effect>,
    ) {
        let base = sanitize(p);
        if self.occupants[idx].sessions.len() > 1 {
            let occ = &mut self.occupants[idx];
            let Some(pos) = occ.sessions.iter().position(|s| &s.jid == full) else {
                return;
            };
            let session = occ.sessions.remove(pos);
            // Tell the leaving session only; the others keep the nick.
            let mut view = occ.clone();
            view.sessions = vec![session];
            let ch = Change {
                unavailable: true,
                only_self: true,
                base: Some(base),
                ..Change::default()
            };
            self.publicise(&view, &ch, out);
            return;
        }
        let ch = Change {
            base: Some(base),
            ..Change::default()
        };
        self.remove_occupant(idx, ch, out);
    }

    /// A presence probe to `room/nick`: the occupant's current presence.
    fn probe(&self, p: &Element, sender: &Sender, nick: &str, out: &mut Vec<Effect>) {
        let Some(full) = &sender.full else { return };
        let Some(viewer) = self.index_by_session(full) else {
            self.reply_error(
                p,
                crate::errors::StanzaErr::not_acceptable("You are not in the room"),
                out,
            );
            return;
        };
        let Some(target) = crate::nick::prep_nick(nick).and_then(|n| self.index_by_nick(&n)) else {
            self.reply_error(p, crate::errors::StanzaErr::item_not_found(), out);
            return;
        };
        let see = self.sees_real_jids(&self.occupants[viewer]);
        let occ = &self.occupants[target];
        let is_self = viewer == target;
        out.push(Effect::Send(self.occupant_presence(
            occ,
            full,
            see,
            is_self,
            &Change::default(),
        )));
    }

    /// An error bounced by an occupant's client: that session is gone
    /// (status 333). Never answered.
    pub(crate) fn on_error_stanza(
        &mut self,
        stanza: &Element,
        sender: &Sender,
        nick: Option<&str>,
        ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        if stanza.name() == "iq" {
            self.on_occupant_iq_error(stanza, sender, out);
            return;
        }
        let (condition, text) = bounced_error(stanza);
        // A bounced message removes its sender only for the conditions that
        // say the client is gone; a bounced presence always does.
        if stanza.name() == "message"
            && !matches!(
                condition.as_deref(),
                None | Some(
                    "gone"
                        | "internal-server-error"
                        | "item-not-found"
                        | "jid-malformed"
                        | "recipient-unavailable"
                        | "redirect"
                        | "remote-server-not-found"
                        | "remote-server-timeout"
                        | "service-unavailable"
                )
            )
        {
            // Any other error to an occupant is relayed to them like a
            // private message; one to the room itself is dropped.
            if let Some(n) = nick {
                if self.sender_index(sender).is_some() {
                    self.on_message(stanza, sender, Some(n), ctx, out);
                }
            }
            return;
        }
        let Some(full) = &sender.full else { return };
        let Some(idx) = self.index_by_session(full) else {
            return;
        };
        if self.occupants[idx].sessions.len() > 1 {
            if let Some(occ) = self.occupants.get_mut(idx) {
                occ.sessions.retain(|s| &s.jid != full);
            }
            return;
        }
        let mut status = format!(
            "Kicked: {}",
            condition
                .map(|c| c.replace('-', " "))
                .unwrap_or_else(|| "presence error".to_owned())
        );
        if let Some(t) = text.filter(|_| self.config.non_anonymous()) {
            status.push_str(": ");
            status.push_str(&t);
        }
        let mut base = Element::bare("presence", NS_CLIENT);
        base.append_child(text_elem("status", NS_CLIENT, &status));
        let ch = Change {
            codes: vec![Status::ServiceErrorKick],
            base: Some(base),
            ..Change::default()
        };
        self.remove_occupant(idx, ch, out);
    }
}

/// The defined condition and the text of a bounced stanza's `<error/>`
/// (`None` when it has none, as for a malformed error).
fn bounced_error(stanza: &Element) -> (Option<String>, Option<String>) {
    let Some(error) = stanza.get_child("error", NS_CLIENT) else {
        return (None, None);
    };
    let condition = error
        .children()
        .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned());
    let text = error.get_child("text", NS_STANZAS).map(|t| t.text());
    (condition, text)
}

#[cfg(test)]
mod tests {
    use crate::config::Whois;
    use crate::testing::{ctx, from, open_room, stanzas, JULIET, ROMEO};

    /// What Romeo is told when Juliet's client bounces `stanza`.
    fn bounce(whois: Whois, stanza: &str) -> Vec<minidom::Element> {
        let mut room = open_room();
        room.config.whois = whois;
        room.handle(
            from(
                JULIET,
                "<presence xmlns='jabber:client' to='room@conference.localhost/Juliet'/>",
            ),
            &ctx(1),
        );
        stanzas(room.handle(from(JULIET, stanza), &ctx(2)))
            .into_iter()
            .filter(|s| s.attr("to") == Some(ROMEO))
            .collect()
    }

    fn status(p: &minidom::Element) -> String {
        p.get_child("status", "jabber:client")
            .map(|s| s.text())
            .unwrap_or_default()
    }

    const GONE: &str = "<message xmlns='jabber:client' to='room@conference.localhost/Romeo' type='error'><error type='cancel'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Offline</text></error></message>";

    #[test]
    fn the_kick_says_the_condition_and_its_text_only_where_real_jids_are_public() {
        let out = bounce(Whois::Moderators, GONE);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].attr("type"), Some("unavailable"));
        assert_eq!(status(&out[0]), "Kicked: recipient unavailable");
        let out = bounce(Whois::Anyone, GONE);
        assert_eq!(status(&out[0]), "Kicked: recipient unavailable: Offline");
    }

    #[test]
    fn a_malformed_error_kicks_as_a_presence_error() {
        let out = bounce(
            Whois::Moderators,
            "<presence xmlns='jabber:client' to='room@conference.localhost/Romeo' type='error'/>",
        );
        assert_eq!(status(&out[0]), "Kicked: presence error");
    }

    #[test]
    fn a_bounced_message_kicks_only_for_the_conditions_of_a_gone_client() {
        let out = bounce(Whois::Moderators, "<message xmlns='jabber:client' to='room@conference.localhost/Romeo' type='error' id='e'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        // relayed to Romeo as it is, from Juliet's occupant JID
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name(), "message");
        assert_eq!(out[0].attr("type"), Some("error"));
        assert_eq!(
            out[0].attr("from"),
            Some("room@conference.localhost/Juliet")
        );
        // a bounced presence always does
        let out = bounce(Whois::Moderators, "<presence xmlns='jabber:client' to='room@conference.localhost/Romeo' type='error'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
        assert_eq!(status(&out[0]), "Kicked: not acceptable");
    }
}
