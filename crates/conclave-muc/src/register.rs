//! Room registration (jabber:iq:register with the muc#register form):
//! registering makes the user a member and reserves their nickname;
//! `<remove/>` unregisters. Unaffiliated users get registration-required.

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use crate::affiliation::{Affiliation, AffiliationEntry};
use crate::errors::StanzaErr;
use crate::nick::prep_nick;
use crate::room::{Change, Room, Sender};
use crate::xml::{
    field, form_element, stanza_type, text_elem, Form, NS_DATA, NS_MUC_REGISTER, NS_REGISTER,
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
            self.reply_error(
                iq,
                StanzaErr::new(ErrorType::Auth, DefinedCondition::RegistrationRequired),
                out,
            );
            return;
        }
        if stanza_type(iq) == "get" {
            // Built by hand: xmpp-parsers has no register query with both
            // <registered/>/<username/> and a form.
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
        let Some(x) = query.get_child("x", NS_DATA) else {
            self.reply_error(
                iq,
                StanzaErr::bad_request("Expected the muc#register form"),
                out,
            );
            return;
        };
        let form = Form::parse(x);
        let submitted = form.as_ref().filter(|f| {
            *f.type_() == DataFormType::Submit && f.form_type() == Some(NS_MUC_REGISTER)
        });
        let Some(form) = submitted else {
            self.reply_error(
                iq,
                StanzaErr::bad_request("Expected a submitted muc#register form"),
                out,
            );
            return;
        };
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
        let nick = Field {
            required: true,
            ..field(
                "muc#register_roomnick",
                FieldType::TextSingle,
                "Nickname",
                std::iter::empty::<&str>(),
            )
        };
        form_element(DataForm::new(
            DataFormType::Form,
            NS_MUC_REGISTER,
            vec![nick],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_wire, ctx, from, open_room, stanzas, JULIET, ROMEO};

    fn register_get(room: &mut Room, who: &str) -> Element {
        stanzas(room.handle(
            from(
                who,
                "<iq xmlns='jabber:client' to='room@conference.localhost' id='r' type='get'><query xmlns='jabber:iq:register'/></iq>",
            ),
            &ctx(1),
        ))
        .remove(0)
    }

    const FORM: &str = "<x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick' type='text-single' label='Nickname'><required/></field></x>";

    #[test]
    fn the_registration_form_and_the_registered_nick() {
        let mut room = open_room();
        assert_wire(
            &register_get(&mut room, ROMEO),
            &format!("<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='r' type='result'><query xmlns='jabber:iq:register'>{FORM}</query></iq>"),
        );
        let out = stanzas(room.handle(
            from(
                ROMEO,
                "<iq xmlns='jabber:client' to='room@conference.localhost' id='s' type='set'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick'><value>Romeo</value></field></x></query></iq>",
            ),
            &ctx(1),
        ));
        assert_eq!(out.last().and_then(|r| r.attr("type")), Some("result"));
        assert_eq!(
            room.reserved_nick(&"romeo@localhost".parse().unwrap()),
            Some("Romeo")
        );
        assert_wire(
            &register_get(&mut room, ROMEO),
            &format!("<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='r' type='result'><query xmlns='jabber:iq:register'><registered/><username>Romeo</username>{FORM}</query></iq>"),
        );
    }

    #[test]
    fn a_registration_needs_a_submitted_muc_register_form_with_a_nick() {
        let mut room = open_room();
        room.affiliations.insert(
            "juliet@localhost".parse().unwrap(),
            crate::affiliation::AffiliationEntry {
                affiliation: Affiliation::Member,
                reason: None,
                nick: None,
            },
        );
        let cases = [
            ("<x xmlns='jabber:x:data' type='submit'><field var='muc#register_roomnick'><value>Jul</value></field></x>", "bad-request", "Expected a submitted muc#register form"),
            ("<x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#register</value></field></x>", "bad-request", "Expected a submitted muc#register form"),
            ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick'/></x>", "not-acceptable", "A valid nickname is required"),
            ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick'><value>Romeo</value></field></x>", "conflict", "That nickname is reserved by someone else"),
        ];
        room.affiliations
            .get_mut(&"romeo@localhost".parse::<jid::BareJid>().unwrap())
            .unwrap()
            .nick = Some("Romeo".into());
        for (form, condition, text) in cases {
            let out = stanzas(room.handle(
                from(
                    JULIET,
                    &format!("<iq xmlns='jabber:client' to='room@conference.localhost' id='s' type='set'><query xmlns='jabber:iq:register'>{form}</query></iq>"),
                ),
                &ctx(1),
            ));
            let err = out[0].get_child("error", "jabber:client").unwrap();
            assert!(
                err.has_child(condition, "urn:ietf:params:xml:ns:xmpp-stanzas"),
                "{form}: {}",
                String::from(&out[0])
            );
            assert_eq!(
                err.get_child("text", "urn:ietf:params:xml:ns:xmpp-stanzas")
                    .map(|t| t.text()),
                Some(text.to_owned()),
                "{form}"
            );
        }
        assert_eq!(
            room.reserved_nick(&"juliet@localhost".parse().unwrap()),
            None
        );
    }
}
