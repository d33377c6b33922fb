//! Room registration (jabber:iq:register with the muc#register form):
//! registering makes the user a member and reserves their nickname;
//! `<remove/>` unregisters. Unaffiliated users get registration-required.

use minidom::Element;

use crate::affiliation::{Affiliation, AffiliationEntry};
use crate::errors::StanzaErr;
use crate::nick::prep_nick;
use crate::room::{Change, Room, Sender};
use crate::xml::{
    elem, field, form_type_field, stanza_type, text_elem, Form, NS_DATA, NS_MUC_REGISTER,
    NS_REGISTER,
};
use crate::{Context, Effect};

impl Room {
    pub(crate) fn on_register_iq(
        &mut self,
        iq: &Element,
        query: &Element,
        sender: &Sender,
        _ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        let aff = self.affiliation(&sender.bare);
        if aff < Affiliation::Member {
            self.reply_error(iq, StanzaErr::new("auth", "registration-required"), out);
            return;
        }
        if stanza_type(iq) == "get" {
            let mut q = Element::bare("query", NS_REGISTER);
            if let Some(n) = self.reserved_nick(&sender.bare) {
                q.append_child(Element::bare("registered", NS_REGISTER));
                q.append_child(text_elem("username", NS_REGISTER, n));
            }
            q.append_child(self.register_form());
            out.push(Effect::Send(self.iq_result(iq, Some(q))));
            return;
        }
        if query.get_child("remove", NS_REGISTER).is_some() {
            if aff == Affiliation::Owner && self.is_last_owner(&sender.bare) {
                self.reply_error(
                    iq,
                    StanzaErr::conflict().with_text("The last owner cannot unregister"),
                    out,
                );
                return;
            }
            self.set_affiliation(&sender.bare, Affiliation::None, None, None, None, out);
            out.push(Effect::Send(self.iq_result(iq, None)));
            return;
        }
        let Some(form) = query.get_child("x", NS_DATA).and_then(Form::parse) else {
            self.reply_error(
                iq,
                StanzaErr::bad_request("Expected the muc#register form"),
                out,
            );
            return;
        };
        if form.type_ != "submit" || form.form_type() != Some(NS_MUC_REGISTER) {
            self.reply_error(
                iq,
                StanzaErr::bad_request("Expected a submitted muc#register form"),
                out,
            );
            return;
        }
        let Some(nick) = form.value("muc#register_roomnick").and_then(prep_nick) else {
            self.reply_error(
                iq,
                StanzaErr::not_acceptable("A valid nickname is required"),
                out,
            );
            return;
        };
        if let Some(holder) = self.nick_owner(&nick) {
            if holder != &sender.bare {
                self.reply_error(
                    iq,
                    StanzaErr::conflict().with_text("That nickname is reserved by someone else"),
                    out,
                );
                return;
            }
        }
        let new_aff = aff.max(Affiliation::Member);
        if !self.is_service_admin(&sender.bare) || self.affiliations.contains_key(&sender.bare) {
            self.affiliations.insert(
                sender.bare.clone(),
                AffiliationEntry {
                    affiliation: new_aff,
                    reason: self
                        .affiliations
                        .get(&sender.bare)
                        .and_then(|e| e.reason.clone()),
                    nick: Some(nick.clone()),
                },
            );
        } else {
            self.affiliations.insert(
                sender.bare.clone(),
                AffiliationEntry {
                    affiliation: Affiliation::Owner,
                    reason: None,
                    nick: Some(nick.clone()),
                },
            );
        }
        self.kick_impostor(&nick, &sender.bare.clone(), out);
        let mine: Vec<usize> = (0..self.occupants.len())
            .filter(|&i| self.occupants[i].bare == sender.bare)
            .collect();
        if mine.is_empty() {
            if aff != new_aff {
                self.announce_affiliation(&sender.bare, new_aff, out);
            }
        } else {
            for i in mine {
                let occ = self.occupants[i].clone();
                self.publicise(&occ, &Change::default(), out);
            }
        }
        self.save(out);
        out.push(Effect::Send(self.iq_result(iq, None)));
    }

    fn is_last_owner(&self, bare: &jid::BareJid) -> bool {
        self.affiliations
            .iter()
            .filter(|(_, e)| e.affiliation == Affiliation::Owner)
            .all(|(j, _)| j == bare)
    }

    fn register_form(&self) -> Element {
        let mut x = elem("x", NS_DATA, &[("type", "form")]);
        x.append_child(form_type_field(NS_MUC_REGISTER));
        let mut nick = field(
            "muc#register_roomnick",
            "text-single",
            Some("Nickname"),
            &[],
        );
        nick.append_child(Element::bare("required", NS_DATA));
        x.append_child(nick);
        x
    }
}
