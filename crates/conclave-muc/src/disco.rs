//! Service discovery of a room: identity, the muc_ features, the
//! muc#roominfo form, and the `x-roomuser-item` node (reserved nick).

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, FieldType};
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};

use crate::room::{Room, Sender};
use crate::xml::{
    bool_str, elem, field, form_element, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_MUC_ROOMINFO,
    NS_OCCUPANT_ID, NS_REGISTER,
};
use crate::Effect;

/// A `conference`/`text` identity with a name.
pub(crate) fn conference_identity(name: &str) -> Identity {
    Identity {
        category: "conference".into(),
        type_: "text".into(),
        lang: None,
        name: Some(name.to_owned()),
    }
}

impl Room {
    pub(crate) fn on_disco_info(
        &mut self,
        iq: &Element,
        query: &Element,
        sender: &Sender,
        out: &mut Vec<Effect>,
    ) {
        let q = match query.attr("node") {
            Some("x-roomuser-item") => Element::from(DiscoInfoResult {
                node: Some("x-roomuser-item".into()),
                identities: self
                    .reserved_nick(&sender.bare)
                    .map(conference_identity)
                    .into_iter()
                    .collect(),
                features: Default::default(),
                extensions: Vec::new(),
            }),
            Some(_) => {
                self.reply_error(iq, crate::errors::StanzaErr::item_not_found(), out);
                return;
            }
            None => self.info(),
        };
        out.push(Effect::Send(self.iq_result(iq, Some(q))));
    }

    /// The room's disco#info: identity, features, muc#roominfo form.
    fn info(&self) -> Element {
        let c = &self.config;
        let name = if c.name.is_empty() {
            self.jid
                .node()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default()
        } else {
            c.name.clone()
        };
        // Built by hand around typed children: `DiscoInfoResult` keeps its
        // features sorted, the room lists them in its own order.
        let mut q = Element::bare("query", NS_DISCO_INFO);
        q.append_child(conference_identity(&name).into());
        let features = [
            NS_MUC,
            "http://jabber.org/protocol/muc#stable_id",
            "http://jabber.org/protocol/muc#self-ping-optimization",
            NS_DISCO_INFO,
            NS_DISCO_ITEMS,
            NS_REGISTER,
            NS_OCCUPANT_ID,
            if c.persistent {
                "muc_persistent"
            } else {
                "muc_temporary"
            },
            if c.public { "muc_public" } else { "muc_hidden" },
            if c.members_only {
                "muc_membersonly"
            } else {
                "muc_open"
            },
            if c.moderated {
                "muc_moderated"
            } else {
                "muc_unmoderated"
            },
            if c.password.is_some() {
                "muc_passwordprotected"
            } else {
                "muc_unsecured"
            },
            if c.non_anonymous() {
                "muc_nonanonymous"
            } else {
                "muc_semianonymous"
            },
        ];
        for f in features {
            q.append_child(elem("feature", NS_DISCO_INFO, &[("var", f)]));
        }
        let subject = self.subject.as_ref().map(|s| s.text.as_str()).unwrap_or("");
        let fields = vec![
            field(
                "muc#roomconfig_roomname",
                FieldType::TextSingle,
                "Title",
                [name.as_str()],
            ),
            field(
                "muc#roominfo_description",
                FieldType::TextSingle,
                "Description",
                [c.description.as_str()],
            ),
            field(
                "muc#roominfo_subject",
                FieldType::TextSingle,
                "Subject",
                [subject],
            ),
            field(
                "muc#roominfo_occupants",
                FieldType::TextSingle,
                "Number of occupants",
                [self.occupants.len().to_string()],
            ),
            field(
                "muc#roominfo_lang",
                FieldType::TextSingle,
                "Language tag for room (e.g. 'en', 'de', 'fr' etc.)",
                [c.language.as_str()],
            ),
            field(
                "muc#roomconfig_changesubject",
                FieldType::Boolean,
                "Allow anyone to set the room's subject",
                [bool_str(c.change_subject)],
            ),
            field(
                "muc#roomconfig_allowinvites",
                FieldType::Boolean,
                "Allow members to invite new members",
                [bool_str(c.allow_invites)],
            ),
        ];
        q.append_child(form_element(DataForm::new(
            DataFormType::Result_,
            NS_MUC_ROOMINFO,
            fields,
        )));
        q
    }

    /// disco#items of a room: its occupants, for those who may see them
    /// (occupants of the room); empty for outsiders.
    pub(crate) fn on_disco_items(&mut self, iq: &Element, sender: &Sender, out: &mut Vec<Effect>) {
        let mut items = Vec::new();
        if self.sender_index(sender).is_some() {
            for o in &self.occupants {
                // Nicknames are resourceprepped on entry: always valid.
                if let Ok(jid) = self.jid.with_resource_str(&o.nick) {
                    items.push(Item {
                        jid: jid.into(),
                        node: None,
                        name: None,
                    });
                }
            }
        }
        let q = DiscoItemsResult {
            node: None,
            items,
            rsm: None,
        };
        out.push(Effect::Send(self.iq_result(iq, Some(q.into()))));
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_wire, ctx, from, open_room, stanzas, JULIET, ROMEO};

    fn ask(room: &mut crate::room::Room, who: &str, query: &str) -> minidom::Element {
        stanzas(room.handle(
            from(
                who,
                &format!("<iq xmlns='jabber:client' to='room@conference.localhost' id='d' type='get'>{query}</iq>"),
            ),
            &ctx(1),
        ))
        .remove(0)
    }

    #[test]
    fn the_room_info_as_sent() {
        let mut room = open_room();
        assert_wire(
            &ask(&mut room, JULIET, "<query xmlns='http://jabber.org/protocol/disco#info'/>"),
            concat!(
                "<iq xmlns='jabber:client' from='room@conference.localhost' to='juliet@localhost/garden' id='d' type='result'>",
                "<query xmlns='http://jabber.org/protocol/disco#info'>",
                "<identity category='conference' type='text' name='room'/>",
                "<feature var='http://jabber.org/protocol/muc'/>",
                "<feature var='http://jabber.org/protocol/muc#stable_id'/>",
                "<feature var='http://jabber.org/protocol/muc#self-ping-optimization'/>",
                "<feature var='http://jabber.org/protocol/disco#info'/>",
                "<feature var='http://jabber.org/protocol/disco#items'/>",
                "<feature var='jabber:iq:register'/>",
                "<feature var='urn:xmpp:occupant-id:0'/>",
                "<feature var='muc_temporary'/>",
                "<feature var='muc_public'/>",
                "<feature var='muc_open'/>",
                "<feature var='muc_unmoderated'/>",
                "<feature var='muc_unsecured'/>",
                "<feature var='muc_semianonymous'/>",
                "<x xmlns='jabber:x:data' type='result'>",
                "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roominfo</value></field>",
                "<field var='muc#roomconfig_roomname' type='text-single' label='Title'><value>room</value></field>",
                "<field var='muc#roominfo_description' type='text-single' label='Description'><value/></field>",
                "<field var='muc#roominfo_subject' type='text-single' label='Subject'><value/></field>",
                "<field var='muc#roominfo_occupants' type='text-single' label='Number of occupants'><value>1</value></field>",
                "<field var='muc#roominfo_lang' type='text-single' label=\"Language tag for room (e.g. 'en', 'de', 'fr' etc.)\"><value/></field>",
                "<field var='muc#roomconfig_changesubject' type='boolean' label=\"Allow anyone to set the room's subject\"><value>0</value></field>",
                "<field var='muc#roomconfig_allowinvites' type='boolean' label='Allow members to invite new members'><value>0</value></field>",
                "</x></query></iq>"
            ),
        );
    }

    #[test]
    fn the_room_info_follows_the_configuration() {
        let mut room = open_room();
        let c = &mut room.config;
        c.name = "Balcony & Co".into();
        c.description = "<desc>".into();
        c.persistent = true;
        c.public = false;
        c.members_only = true;
        c.moderated = true;
        c.password = Some("pw".into());
        c.whois = crate::config::Whois::Anyone;
        c.language = "en".into();
        c.change_subject = true;
        c.allow_invites = true;
        room.subject = Some(crate::subject::Subject {
            text: "Plans".into(),
            nick: None,
        });
        assert_wire(
            &ask(&mut room, ROMEO, "<query xmlns='http://jabber.org/protocol/disco#info'/>"),
            concat!(
                "<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='d' type='result'>",
                "<query xmlns='http://jabber.org/protocol/disco#info'>",
                "<identity category='conference' type='text' name='Balcony &amp; Co'/>",
                "<feature var='http://jabber.org/protocol/muc'/>",
                "<feature var='http://jabber.org/protocol/muc#stable_id'/>",
                "<feature var='http://jabber.org/protocol/muc#self-ping-optimization'/>",
                "<feature var='http://jabber.org/protocol/disco#info'/>",
                "<feature var='http://jabber.org/protocol/disco#items'/>",
                "<feature var='jabber:iq:register'/>",
                "<feature var='urn:xmpp:occupant-id:0'/>",
                "<feature var='muc_persistent'/>",
                "<feature var='muc_hidden'/>",
                "<feature var='muc_membersonly'/>",
                "<feature var='muc_moderated'/>",
                "<feature var='muc_passwordprotected'/>",
                "<feature var='muc_nonanonymous'/>",
                "<x xmlns='jabber:x:data' type='result'>",
                "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roominfo</value></field>",
                "<field var='muc#roomconfig_roomname' type='text-single' label='Title'><value>Balcony &amp; Co</value></field>",
                "<field var='muc#roominfo_description' type='text-single' label='Description'><value>&lt;desc&gt;</value></field>",
                "<field var='muc#roominfo_subject' type='text-single' label='Subject'><value>Plans</value></field>",
                "<field var='muc#roominfo_occupants' type='text-single' label='Number of occupants'><value>1</value></field>",
                "<field var='muc#roominfo_lang' type='text-single' label=\"Language tag for room (e.g. 'en', 'de', 'fr' etc.)\"><value>en</value></field>",
                "<field var='muc#roomconfig_changesubject' type='boolean' label=\"Allow anyone to set the room's subject\"><value>1</value></field>",
                "<field var='muc#roomconfig_allowinvites' type='boolean' label='Allow members to invite new members'><value>1</value></field>",
                "</x></query></iq>"
            ),
        );
    }

    #[test]
    fn the_reserved_nick_node() {
        let mut room = open_room();
        let node = "<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>";
        assert_wire(
            &ask(&mut room, ROMEO, node),
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='d' type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>",
        );
        room.affiliations
            .get_mut(&"romeo@localhost".parse::<jid::BareJid>().unwrap())
            .unwrap()
            .nick = Some("Romeo & co".into());
        assert_wire(
            &ask(&mut room, ROMEO, node),
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='d' type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'><identity category='conference' type='text' name='Romeo &amp; co'/></query></iq>",
        );
        assert_wire(
            &ask(&mut room, ROMEO, "<query xmlns='http://jabber.org/protocol/disco#info' node='other'/>"),
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='d' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        );
    }

    #[test]
    fn the_occupants_for_occupants_only() {
        let mut room = open_room();
        let items = "<query xmlns='http://jabber.org/protocol/disco#items'/>";
        assert_wire(
            &ask(&mut room, JULIET, items),
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='juliet@localhost/garden' id='d' type='result'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
        );
        room.handle(
            from(
                JULIET,
                "<presence xmlns='jabber:client' to='room@conference.localhost/Juliet &amp; Co'/>",
            ),
            &ctx(1),
        );
        assert_wire(
            &ask(&mut room, JULIET, items),
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='juliet@localhost/garden' id='d' type='result'><query xmlns='http://jabber.org/protocol/disco#items'><item jid='room@conference.localhost/Romeo'/><item jid='room@conference.localhost/Juliet &amp; Co'/></query></iq>",
        );
    }
}
