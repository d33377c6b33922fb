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
