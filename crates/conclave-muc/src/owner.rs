//! The owner namespace (muc#owner): the configuration form with Prosody's
//! fields, its submission (status 104, and 170-173 where privacy changes),
//! cancelling, and destroying the room.

use minidom::Element;

use crate::affiliation::Affiliation;
use crate::config::{AllowPm, RoomConfig, Whois};
use crate::errors::StanzaErr;
use crate::role::Role;
use crate::room::{Change, Room, Sender};
use crate::xml::{
    bool_str, elem, field, form_type_field, list_field, parse_bool, set_attr, stanza_type,
    text_elem, Form, NS_DATA, NS_MUC_OWNER, NS_MUC_ROOMCONFIG, NS_MUC_USER,
};
use crate::{Context, Effect};

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
        let Some(form) = query.get_child("x", NS_DATA).and_then(Form::parse) else {
            self.reply_error(
                iq,
                StanzaErr::bad_request("Expected a data form or <destroy/>"),
                out,
            );
            return;
        };
        match form.type_.as_str() {
            "cancel" => {
                // Cancelling the initial configuration makes an instant room.
                let was_locked = self.locked;
                self.locked = false;
                out.push(Effect::Send(self.iq_result(iq, None)));
                if was_locked {
                    self.save(out);
                }
            }
            "submit" => match self.apply_config(&form) {
                Ok(new) => {
                    let old = std::mem::replace(&mut self.config, new);
                    self.locked = false;
                    self.save(out);
                    out.push(Effect::Send(self.iq_result(iq, None)));
                    let mut x = Element::bare("x", NS_MUC_USER);
                    for code in
                        std::iter::once(104).chain(crate::whois::privacy_codes(&old, &self.config))
                    {
                        x.append_child(elem("status", NS_MUC_USER, &[("code", &code.to_string())]));
                    }
                    self.room_message(&x, Some("groupchat"), |_| true, out);
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
            _ => self.reply_error(
                iq,
                StanzaErr::bad_request("The form must be of type submit or cancel"),
                out,
            ),
        }
    }

    /// The room configuration form, with the current values.
    pub(crate) fn config_form(&self) -> Element {
        let c = &self.config;
        let mut x = elem("x", NS_DATA, &[("type", "form")]);
        x.append_child(text_elem(
            "title",
            NS_DATA,
            &format!("Configuration for {}", self.jid),
        ));
        x.append_child(form_type_field(NS_MUC_ROOMCONFIG));
        x.append_child(field(
            "muc#roomconfig_roomname",
            "text-single",
            Some("Title"),
            &[&c.name],
        ));
        x.append_child(field(
            "muc#roomconfig_roomdesc",
            "text-single",
            Some("Description"),
            &[&c.description],
        ));
        x.append_child(field(
            "muc#roomconfig_persistentroom",
            "boolean",
            Some("Persistent (room should remain even when it is not occupied)"),
            &[bool_str(c.persistent)],
        ));
        x.append_child(field(
            "muc#roomconfig_publicroom",
            "boolean",
            Some("Include room information in public lists"),
            &[bool_str(c.public)],
        ));
        x.append_child(field(
            "muc#roomconfig_membersonly",
            "boolean",
            Some("Only allow members to join"),
            &[bool_str(c.members_only)],
        ));
        x.append_child(field(
            "muc#roomconfig_moderatedroom",
            "boolean",
            Some("Moderated (require permission to speak)"),
            &[bool_str(c.moderated)],
        ));
        x.append_child(field(
            "muc#roomconfig_passwordprotectedroom",
            "boolean",
            Some("Password protected"),
            &[bool_str(c.password.is_some())],
        ));
        x.append_child(field(
            "muc#roomconfig_roomsecret",
            "text-private",
            Some("Password"),
            &[c.password.as_deref().unwrap_or("")],
        ));
        let whois = match c.whois {
            Whois::Moderators => "moderators",
            Whois::Anyone => "anyone",
        };
        x.append_child(list_field(
            "muc#roomconfig_whois",
            "list-single",
            "Addresses (JIDs) of room occupants may be viewed by:",
            &[whois],
            &[("moderators", "Moderators only"), ("anyone", "Anyone")],
        ));
        x.append_child(field(
            "muc#roomconfig_changesubject",
            "boolean",
            Some("Allow anyone to set the room's subject"),
            &[bool_str(c.change_subject)],
        ));
        x.append_child(field(
            "muc#roomconfig_allowinvites",
            "boolean",
            Some("Allow members to invite new members"),
            &[bool_str(c.allow_invites)],
        ));
        x.append_child(list_field(
            "muc#roomconfig_allowpm",
            "list-single",
            "Allow private messages from",
            &[c.allow_pm.as_str()],
            &[
                ("anyone", "Anyone"),
                ("participants", "Anyone with Voice"),
                ("moderators", "Moderators"),
                ("none", "Nobody"),
            ],
        ));
        let roles: Vec<&str> = c.presence_broadcast.iter().map(|r| r.as_str()).collect();
        x.append_child(list_field(
            "muc#roomconfig_presencebroadcast",
            "list-multi",
            "Roles for which presence is broadcast",
            &roles,
            &[
                ("moderator", "Moderator"),
                ("participant", "Participant"),
                ("visitor", "Visitor"),
            ],
        ));
        x.append_child(field(
            "muc#roomconfig_historylength",
            "text-single",
            Some("Maximum number of history messages returned by room"),
            &[&c.history_length.to_string()],
        ));
        x.append_child(field(
            "muc#roomconfig_defaulthistorymessages",
            "text-single",
            Some("Default number of history messages returned by room"),
            &[&c.default_history_messages.to_string()],
        ));
        x.append_child(field(
            "muc#roomconfig_roomlang",
            "text-single",
            Some("Language tag for room (e.g. 'en', 'de', 'fr' etc.)"),
            &[&c.language],
        ));
        x.append_child(field(
            "muc#roomconfig_enablelogging",
            "boolean",
            Some("Archive discussion"),
            &[bool_str(c.logging)],
        ));
        x
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
