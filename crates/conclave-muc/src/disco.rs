//! Service discovery of a room: identity, the muc_ features, the
//! muc#roominfo form, and the `x-roomuser-item` node (reserved nick).

use minidom::Element;

use crate::room::{Room, Sender};
use crate::xml::{
    elem, field, form_type_field, set_attr, NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC,
    NS_MUC_ROOMINFO, NS_OCCUPANT_ID, NS_REGISTER,
};
use crate::Effect;

impl Room {
    pub(crate) fn on_disco_info(
        &mut self,
        iq: &Element,
        query: &Element,
        sender: &Sender,
        out: &mut Vec<Effect>,
    ) {
        let mut q = Element::bare("query", NS_DISCO_INFO);
        match query.attr("node") {
            Some("x-roomuser-item") => {
                set_attr(&mut q, "node", "x-roomuser-item");
                if let Some(n) = self.reserved_nick(&sender.bare) {
                    q.append_child(elem(
                        "identity",
                        NS_DISCO_INFO,
                        &[("category", "conference"), ("type", "text"), ("name", n)],
                    ));
                }
            }
            Some(_) => {
                self.reply_error(iq, crate::errors::StanzaErr::item_not_found(), out);
                return;
            }
            None => self.fill_info(&mut q),
        }
        out.push(Effect::Send(self.iq_result(iq, Some(q))));
    }

    fn fill_info(&self, q: &mut Element) {
        let c = &self.config;
        let name = if c.name.is_empty() {
            self.jid
                .node()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default()
        } else {
            c.name.clone()
        };
        q.append_child(elem(
            "identity",
            NS_DISCO_INFO,
            &[
                ("category", "conference"),
                ("type", "text"),
                ("name", &name),
            ],
        ));
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
        let mut x = elem("x", NS_DATA, &[("type", "result")]);
        x.append_child(form_type_field(NS_MUC_ROOMINFO));
        x.append_child(field(
            "muc#roomconfig_roomname",
            "text-single",
            Some("Title"),
            &[&name],
        ));
        x.append_child(field(
            "muc#roominfo_description",
            "text-single",
            Some("Description"),
            &[&c.description],
        ));
        let subject = self.subject.as_ref().map(|s| s.text.as_str()).unwrap_or("");
        x.append_child(field(
            "muc#roominfo_subject",
            "text-single",
            Some("Subject"),
            &[subject],
        ));
        x.append_child(field(
            "muc#roominfo_occupants",
            "text-single",
            Some("Number of occupants"),
            &[&self.occupants.len().to_string()],
        ));
        x.append_child(field(
            "muc#roominfo_lang",
            "text-single",
            Some("Language tag for room (e.g. 'en', 'de', 'fr' etc.)"),
            &[&c.language],
        ));
        x.append_child(field(
            "muc#roomconfig_changesubject",
            "boolean",
            Some("Allow anyone to set the room's subject"),
            &[crate::xml::bool_str(c.change_subject)],
        ));
        x.append_child(field(
            "muc#roomconfig_allowinvites",
            "boolean",
            Some("Allow members to invite new members"),
            &[crate::xml::bool_str(c.allow_invites)],
        ));
        q.append_child(x);
    }

    /// disco#items of a room: its occupants, for those who may see them
    /// (occupants of the room); empty for outsiders.
    pub(crate) fn on_disco_items(&mut self, iq: &Element, sender: &Sender, out: &mut Vec<Effect>) {
        let mut q = Element::bare("query", NS_DISCO_ITEMS);
        if self.sender_index(sender).is_some() {
            for o in &self.occupants {
                q.append_child(elem(
                    "item",
                    NS_DISCO_ITEMS,
                    &[("jid", &self.occupant_jid(&o.nick))],
                ));
            }
        }
        out.push(Effect::Send(self.iq_result(iq, Some(q))));
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
