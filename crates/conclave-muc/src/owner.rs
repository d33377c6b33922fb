//! The owner namespace (muc#owner): the configuration form with Prosody's
//! fields, its submission (status 104, and 170-173 where privacy changes),
//! cancelling, and destroying the room.

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, FieldType};
use xmpp_parsers::muc::user::{MucUser, Status};

use crate::affiliation::Affiliation;
use crate::config::{AllowPm, RoomConfig, Whois};
use crate::errors::StanzaErr;
use crate::role::Role;
use crate::room::{Change, Room, Sender};
use crate::xml::{
    bool_str, field, form_element, list_field, parse_bool, set_attr, stanza_type, text_elem, Form,
    NS_DATA, NS_MUC_OWNER, NS_MUC_ROOMCONFIG, NS_MUC_USER,
};
use crate::{Context, Effect};

const WRONG_FORM_TYPE: &str = "The form must be of type submit or cancel";

impl Room {
    pub(crate) fn on_owner_iq(
        &mut self,
        iq: &Element,
        query: &Element,
        sender: &Sender,
        _ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        if self.affiliation(&sender.bare) != Affiliation::Owner {
            self.reply_error(
                iq,
                StanzaErr::forbidden().with_text("Only owners can configure rooms"),
                out,
            );
            return;
        }
        if stanza_type(iq) == "get" {
            let mut q = Element::bare("query", NS_MUC_OWNER);
            q.append_child(self.config_form());
            out.push(Effect::Send(self.iq_result(iq, Some(q))));
            return;
        }
        if let Some(d) = query.get_child("destroy", NS_MUC_OWNER) {
            self.destroy(iq, d, out);
            return;
        }
        let Some(x) = query.get_child("x", NS_DATA) else {
            self.reply_error(
                iq,
                StanzaErr::bad_request("Expected a data form or <destroy/>"),
                out,
            );
            return;
        };
        let Some(form) = Form::parse(x) else {
            let text = if matches!(x.attr("type"), Some("submit" | "cancel")) {
                "Invalid data form"
            } else {
                WRONG_FORM_TYPE
            };
            self.reply_error(iq, StanzaErr::bad_request(text), out);
            return;
        };
        match form.type_() {
            DataFormType::Cancel => {
                // Cancelling the initial configuration makes an instant room.
                let was_locked = self.locked;
                self.locked = false;
                out.push(Effect::Send(self.iq_result(iq, None)));
                if was_locked {
                    self.save(out);
                }
            }
            DataFormType::Submit => match self.apply_config(&form) {
                Ok(new) => {
                    let old = std::mem::replace(&mut self.config, new);
                    self.locked = false;
                    self.save(out);
                    out.push(Effect::Send(self.iq_result(iq, None)));
                    let privacy = crate::whois::privacy_codes(&old, &self.config)
                        .into_iter()
                        .filter_map(crate::whois::privacy_status);
                    let x = MucUser::new().with_statuses(
                        std::iter::once(Status::ConfigNonPrivacyRelated)
                            .chain(privacy)
                            .collect(),
                    );
                    self.room_message(&x.into(), Some("groupchat"), |_| true, out);
                    if self.config.members_only && !old.members_only {
                        self.remove_non_members(out);
                    }
                    if self.config.history_length < self.history.len() {
                        let excess = self.history.len() - self.config.history_length;
                        self.history.drain(..excess);
                    }
                }
                Err(e) => self.reply_error(iq, e, out),
            },
            _ => self.reply_error(iq, StanzaErr::bad_request(WRONG_FORM_TYPE), out),
        }
    }

    /// The room configuration form, with the current values.
    pub(crate) fn config_form(&self) -> Element {
        let c = &self.config;
        let whois = match c.whois {
            Whois::Moderators => "moderators",
            Whois::Anyone => "anyone",
        };
        let roles = c.presence_broadcast.iter().map(|r| r.as_str());
        let fields = vec![
            field(
                "muc#roomconfig_roomname",
                FieldType::TextSingle,
                "Title",
                [c.name.as_str()],
            ),
            field(
                "muc#roomconfig_roomdesc",
                FieldType::TextSingle,
                "Description",
                [c.description.as_str()],
            ),
            field(
                "muc#roomconfig_persistentroom",
                FieldType::Boolean,
                "Persistent (room should remain even when it is not occupied)",
                [bool_str(c.persistent)],
            ),
            field(
                "muc#roomconfig_publicroom",
                FieldType::Boolean,
                "Include room information in public lists",
                [bool_str(c.public)],
            ),
            field(
                "muc#roomconfig_membersonly",
                FieldType::Boolean,
                "Only allow members to join",
                [bool_str(c.members_only)],
            ),
            field(
                "muc#roomconfig_moderatedroom",
                FieldType::Boolean,
                "Moderated (require permission to speak)",
                [bool_str(c.moderated)],
            ),
            field(
                "muc#roomconfig_passwordprotectedroom",
                FieldType::Boolean,
                "Password protected",
                [bool_str(c.password.is_some())],
            ),
            field(
                "muc#roomconfig_roomsecret",
                FieldType::TextPrivate,
                "Password",
                [c.password.as_deref().unwrap_or("")],
            ),
            list_field(
                "muc#roomconfig_whois",
                FieldType::ListSingle,
                "Addresses (JIDs) of room occupants may be viewed by:",
                [whois],
                &[("moderators", "Moderators only"), ("anyone", "Anyone")],
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
            list_field(
                "muc#roomconfig_allowpm",
                FieldType::ListSingle,
                "Allow private messages from",
                [c.allow_pm.as_str()],
                &[
                    ("anyone", "Anyone"),
                    ("participants", "Anyone with Voice"),
                    ("moderators", "Moderators"),
                    ("none", "Nobody"),
                ],
            ),
            list_field(
                "muc#roomconfig_presencebroadcast",
                FieldType::ListMulti,
                "Roles for which presence is broadcast",
                roles,
                &[
                    ("moderator", "Moderator"),
                    ("participant", "Participant"),
                    ("visitor", "Visitor"),
                ],
            ),
            field(
                "muc#roomconfig_historylength",
                FieldType::TextSingle,
                "Maximum number of history messages returned by room",
                [c.history_length.to_string()],
            ),
            field(
                "muc#roomconfig_defaulthistorymessages",
                FieldType::TextSingle,
                "Default number of history messages returned by room",
                [c.default_history_messages.to_string()],
            ),
            field(
                "muc#roomconfig_roomlang",
                FieldType::TextSingle,
                "Language tag for room (e.g. 'en', 'de', 'fr' etc.)",
                [c.language.as_str()],
            ),
            field(
                "muc#roomconfig_enablelogging",
                FieldType::Boolean,
                "Archive discussion",
                [bool_str(c.logging)],
            ),
        ];
        let mut form = DataForm::new(DataFormType::Form, NS_MUC_ROOMCONFIG, fields);
        form.title = Some(format!("Configuration for {}", self.jid));
        form_element(form)
    }

    /// A new configuration from a submitted form: every field absent from
    /// the form keeps its value; any invalid value rejects the whole form.
    pub(crate) fn apply_config(&self, form: &Form) -> Result<RoomConfig, StanzaErr> {
        match form.form_type() {
            None => {}
            Some(NS_MUC_ROOMCONFIG) => {}
            Some(_) => {
                return Err(StanzaErr::bad_request(
                    "Unexpected FORM_TYPE, expected muc#roomconfig",
                ))
            }
        }
        let mut c = self.config.clone();
        let boolean = |var: &str, target: &mut bool| -> Result<(), StanzaErr> {
            if let Some(v) = form.value(var) {
                *target = parse_bool(v).ok_or_else(|| {
                    StanzaErr::not_acceptable(&format!("Invalid boolean for {var}"))
                })?;
            }
            Ok(())
        };
        let number = |var: &str, target: &mut usize, cap: usize| -> Result<(), StanzaErr> {
            if let Some(v) = form.value(var) {
                if !v.trim().is_empty() {
                    let n: usize = v.trim().parse().map_err(|_| {
                        StanzaErr::not_acceptable(&format!("Invalid number for {var}"))
                    })?;
                    *target = n.min(cap);
                }
            }
            Ok(())
        };
        if let Some(v) = form.value("muc#roomconfig_roomname") {
            c.name = v.to_owned();
        }
        if let Some(v) = form.value("muc#roomconfig_roomdesc") {
            c.description = v.to_owned();
        }
        boolean("muc#roomconfig_persistentroom", &mut c.persistent)?;
        boolean("muc#roomconfig_publicroom", &mut c.public)?;
        boolean("muc#roomconfig_membersonly", &mut c.members_only)?;
        boolean("muc#roomconfig_moderatedroom", &mut c.moderated)?;
        boolean("muc#roomconfig_changesubject", &mut c.change_subject)?;
        boolean("muc#roomconfig_allowinvites", &mut c.allow_invites)?;
        boolean("muc#roomconfig_enablelogging", &mut c.logging)?;
        let mut protected = c.password.is_some();
        boolean("muc#roomconfig_passwordprotectedroom", &mut protected)?;
        if let Some(secret) = form.value("muc#roomconfig_roomsecret") {
            c.password = (!secret.is_empty()).then(|| secret.to_owned());
        } else if !protected {
            c.password = None;
        }
        if let Some(v) = form.value("muc#roomconfig_whois") {
            c.whois = match v {
                "moderators" => Whois::Moderators,
                "anyone" => Whois::Anyone,
                _ => {
                    return Err(StanzaErr::not_acceptable(
                        "Invalid value for muc#roomconfig_whois",
                    ))
                }
            };
        }
        if let Some(v) = form.value("muc#roomconfig_allowpm") {
            c.allow_pm = AllowPm::parse(v).ok_or_else(|| {
                StanzaErr::not_acceptable("Invalid value for muc#roomconfig_allowpm")
            })?;
        }
        if let Some(vals) = form.values("muc#roomconfig_presencebroadcast") {
            let mut roles = Vec::new();
            for v in vals {
                match Role::parse(v) {
                    Some(r) if r != Role::None => roles.push(r),
                    _ => {
                        return Err(StanzaErr::not_acceptable(
                            "Invalid role in muc#roomconfig_presencebroadcast",
                        ))
                    }
                }
            }
            c.presence_broadcast = roles;
        }
        let cap = self.service.max_history;
        number("muc#roomconfig_historylength", &mut c.history_length, cap)?;
        number(
            "muc#roomconfig_defaulthistorymessages",
            &mut c.default_history_messages,
            cap,
        )?;
        if let Some(v) = form.value("muc#roomconfig_roomlang") {
            c.language = v.to_owned();
        }
        Ok(c)
    }

    /// Destroys the room: every occupant gets an unavailable presence with
    /// `<destroy/>` (reason and alternate venue), then the iq result.
    fn destroy(&mut self, iq: &Element, d: &Element, out: &mut Vec<Effect>) {
        // Read and built by hand: xmpp-parsers has no <destroy/> type.
        let mut destroy = Element::bare("destroy", NS_MUC_USER);
        if let Some(alt) = d.attr("jid") {
            if jid::Jid::new(alt).is_err() {
                self.reply_error(
                    iq,
                    StanzaErr::jid_malformed().with_text("Invalid alternate venue"),
                    out,
                );
                return;
            }
            set_attr(&mut destroy, "jid", alt);
        }
        if let Some(r) = d.get_child("reason", NS_MUC_OWNER) {
            destroy.append_child(text_elem("reason", NS_MUC_USER, &r.text()));
        }
        if let Some(p) = d.get_child("password", NS_MUC_OWNER) {
            destroy.append_child(text_elem("password", NS_MUC_USER, &p.text()));
        }
        let ch = Change {
            destroy: Some(destroy),
            ..Change::default()
        };
        while !self.occupants.is_empty() {
            self.remove_occupant(0, ch.clone(), out);
        }
        out.push(Effect::Send(self.iq_result(iq, None)));
        self.gone = true;
        out.push(Effect::Remove);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_wire, ctx, from, open_room, stanzas, ROMEO};

    /// The form's `<field/>` for `var`.
    fn field_of<'a>(form: &'a Element, var: &str) -> &'a Element {
        form.children()
            .find(|f| f.attr("var") == Some(var))
            .unwrap_or_else(|| panic!("no field {var}"))
    }

    #[test]
    fn the_configuration_form_as_sent() {
        let room = open_room();
        assert_wire(
            &room.config_form(),
            concat!(
                "<x xmlns='jabber:x:data' type='form'>",
                "<title>Configuration for room@conference.localhost</title>",
                "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roomconfig</value></field>",
                "<field var='muc#roomconfig_roomname' type='text-single' label='Title'><value/></field>",
                "<field var='muc#roomconfig_roomdesc' type='text-single' label='Description'><value/></field>",
                "<field var='muc#roomconfig_persistentroom' type='boolean' label='Persistent (room should remain even when it is not occupied)'><value>0</value></field>",
                "<field var='muc#roomconfig_publicroom' type='boolean' label='Include room information in public lists'><value>1</value></field>",
                "<field var='muc#roomconfig_membersonly' type='boolean' label='Only allow members to join'><value>0</value></field>",
                "<field var='muc#roomconfig_moderatedroom' type='boolean' label='Moderated (require permission to speak)'><value>0</value></field>",
                "<field var='muc#roomconfig_passwordprotectedroom' type='boolean' label='Password protected'><value>0</value></field>",
                "<field var='muc#roomconfig_roomsecret' type='text-private' label='Password'><value/></field>",
                "<field var='muc#roomconfig_whois' type='list-single' label='Addresses (JIDs) of room occupants may be viewed by:'><value>moderators</value><option label='Moderators only'><value>moderators</value></option><option label='Anyone'><value>anyone</value></option></field>",
                "<field var='muc#roomconfig_changesubject' type='boolean' label=\"Allow anyone to set the room's subject\"><value>0</value></field>",
                "<field var='muc#roomconfig_allowinvites' type='boolean' label='Allow members to invite new members'><value>0</value></field>",
                "<field var='muc#roomconfig_allowpm' type='list-single' label='Allow private messages from'><value>anyone</value><option label='Anyone'><value>anyone</value></option><option label='Anyone with Voice'><value>participants</value></option><option label='Moderators'><value>moderators</value></option><option label='Nobody'><value>none</value></option></field>",
                "<field var='muc#roomconfig_presencebroadcast' type='list-multi' label='Roles for which presence is broadcast'><value>moderator</value><value>participant</value><value>visitor</value><option label='Moderator'><value>moderator</value></option><option label='Participant'><value>participant</value></option><option label='Visitor'><value>visitor</value></option></field>",
                "<field var='muc#roomconfig_historylength' type='text-single' label='Maximum number of history messages returned by room'><value>20</value></field>",
                "<field var='muc#roomconfig_defaulthistorymessages' type='text-single' label='Default number of history messages returned by room'><value>20</value></field>",
                "<field var='muc#roomconfig_roomlang' type='text-single' label=\"Language tag for room (e.g. 'en', 'de', 'fr' etc.)\"><value/></field>",
                "<field var='muc#roomconfig_enablelogging' type='boolean' label='Archive discussion'><value>0</value></field>",
                "</x>"
            ),
        );
    }

    #[test]
    fn the_configuration_form_carries_the_current_values() {
        let mut room = open_room();
        let c = &mut room.config;
        c.name = "Balcony <&> \"Co\"".into();
        c.password = Some("s3cret".into());
        c.whois = Whois::Anyone;
        c.allow_pm = AllowPm::Participants;
        c.presence_broadcast = vec![Role::Moderator];
        c.history_length = 5;
        c.language = "en".into();
        c.logging = true;
        let form = room.config_form();
        assert_wire(
            field_of(&form, "muc#roomconfig_roomname"),
            "<field xmlns='jabber:x:data' var='muc#roomconfig_roomname' type='text-single' label='Title'><value>Balcony &lt;&amp;&gt; &quot;Co&quot;</value></field>",
        );
        assert_wire(
            field_of(&form, "muc#roomconfig_passwordprotectedroom"),
            "<field xmlns='jabber:x:data' var='muc#roomconfig_passwordprotectedroom' type='boolean' label='Password protected'><value>1</value></field>",
        );
        assert_wire(
            field_of(&form, "muc#roomconfig_roomsecret"),
            "<field xmlns='jabber:x:data' var='muc#roomconfig_roomsecret' type='text-private' label='Password'><value>s3cret</value></field>",
        );
        assert_wire(
            field_of(&form, "muc#roomconfig_whois"),
            "<field xmlns='jabber:x:data' var='muc#roomconfig_whois' type='list-single' label='Addresses (JIDs) of room occupants may be viewed by:'><value>anyone</value><option label='Moderators only'><value>moderators</value></option><option label='Anyone'><value>anyone</value></option></field>",
        );
        assert_eq!(
            field_of(&form, "muc#roomconfig_allowpm")
                .children()
                .find(|c| c.name() == "value")
                .map(|v| v.text()),
            Some("participants".to_owned())
        );
        assert_wire(
            field_of(&form, "muc#roomconfig_presencebroadcast"),
            "<field xmlns='jabber:x:data' var='muc#roomconfig_presencebroadcast' type='list-multi' label='Roles for which presence is broadcast'><value>moderator</value><option label='Moderator'><value>moderator</value></option><option label='Participant'><value>participant</value></option><option label='Visitor'><value>visitor</value></option></field>",
        );
        assert_wire(
            field_of(&form, "muc#roomconfig_historylength"),
            "<field xmlns='jabber:x:data' var='muc#roomconfig_historylength' type='text-single' label='Maximum number of history messages returned by room'><value>5</value></field>",
        );
        assert_wire(
            field_of(&form, "muc#roomconfig_roomlang"),
            "<field xmlns='jabber:x:data' var='muc#roomconfig_roomlang' type='text-single' label=\"Language tag for room (e.g. 'en', 'de', 'fr' etc.)\"><value>en</value></field>",
        );
        assert_wire(
            field_of(&form, "muc#roomconfig_enablelogging"),
            "<field xmlns='jabber:x:data' var='muc#roomconfig_enablelogging' type='boolean' label='Archive discussion'><value>1</value></field>",
        );
    }

    fn submit(room: &mut Room, fields: &str) -> Vec<Element> {
        stanzas(room.handle(
            from(
                ROMEO,
                &format!("<iq xmlns='jabber:client' to='room@conference.localhost' id='c' type='set'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>"),
            ),
            &ctx(1),
        ))
    }

    #[test]
    fn a_submitted_form_sets_what_it_carries_and_keeps_the_rest() {
        let mut room = open_room();
        room.config.description = "kept".into();
        let out = submit(
            &mut room,
            concat!(
                "<field var='muc#roomconfig_roomname' type='text-single'><value>Balcony</value></field>",
                "<field var='muc#roomconfig_roomsecret'><value/></field>",
                "<field var='muc#roomconfig_roomlang'/>",
                "<field var='muc#roomconfig_publicroom' type='boolean'><value>false</value></field>",
                "<field var='muc#roomconfig_whois'><value>anyone</value></field>",
                "<field var='muc#roomconfig_presencebroadcast' type='list-multi'><value>moderator</value><value>visitor</value></field>",
                "<field var='muc#roomconfig_historylength'><value> 7 </value></field>",
                "<field var='muc#roomconfig_defaulthistorymessages'><value>999</value></field>",
            ),
        );
        let c = &room.config;
        assert_eq!(c.name, "Balcony");
        assert_eq!(c.description, "kept");
        assert_eq!(c.password, None);
        assert_eq!(c.language, "");
        assert!(!c.public);
        assert_eq!(c.whois, Whois::Anyone);
        assert_eq!(c.presence_broadcast, vec![Role::Moderator, Role::Visitor]);
        assert_eq!(c.history_length, 7);
        assert_eq!(c.default_history_messages, 50, "capped by the service");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].attr("type"), Some("result"));
        // the change notice: 104, and 172 as the room became non-anonymous
        assert_wire(
            &out[1],
            "<message xmlns='jabber:client' from='room@conference.localhost' type='groupchat'><x xmlns='http://jabber.org/protocol/muc#user'><status code='104'/><status code='172'/></x></message>",
        );
    }

    #[test]
    fn a_form_with_another_form_type_or_of_another_type_is_refused() {
        let mut room = open_room();
        let out = submit(
            &mut room,
            "<field var='FORM_TYPE' type='hidden'><value>urn:other</value></field><field var='muc#roomconfig_roomname'><value>x</value></field>",
        );
        assert_wire(
            &out[0],
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='c' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Unexpected FORM_TYPE, expected muc#roomconfig</text></error></iq>",
        );
        assert_eq!(room.config.name, "");
        let out = stanzas(room.handle(
            from(
                ROMEO,
                "<iq xmlns='jabber:client' to='room@conference.localhost' id='c' type='set'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='result'/></query></iq>",
            ),
            &ctx(1),
        ));
        assert_wire(
            &out[0],
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='c' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>The form must be of type submit or cancel</text></error></iq>",
        );
        for (form, text) in [
            (
                "<x xmlns='jabber:x:data' type='weird'/>",
                "The form must be of type submit or cancel",
            ),
            (
                "<x xmlns='jabber:x:data' type='submit'><field><value>x</value></field></x>",
                "Invalid data form",
            ),
        ] {
            let out = stanzas(room.handle(
                from(
                    ROMEO,
                    &format!("<iq xmlns='jabber:client' to='room@conference.localhost' id='c' type='set'><query xmlns='http://jabber.org/protocol/muc#owner'>{form}</query></iq>"),
                ),
                &ctx(1),
            ));
            assert_wire(
                &out[0],
                &format!("<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='c' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>{text}</text></error></iq>"),
            );
        }
        let out = submit(
            &mut room,
            "<field var='muc#roomconfig_moderatedroom'><value>maybe</value></field>",
        );
        assert_wire(
            &out[0],
            "<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='c' type='error'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Invalid boolean for muc#roomconfig_moderatedroom</text></error></iq>",
        );
    }
}
