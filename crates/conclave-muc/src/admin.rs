//! The admin namespace (muc#admin): affiliation and role lists, and
//! changes to them (several items per request), with Prosody's rules on
//! who may change what, the announcements of out-of-room changes
//! (XEP-0045 example 195), kicks (307) and bans (301).

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::muc::user::Status;

use crate::affiliation::{Affiliation, AffiliationEntry};
use crate::errors::StanzaErr;
use crate::nick::prep_nick;
use crate::role::Role;
use crate::room::{Actor, Change, Room, Sender};
use crate::xml::{elem, set_attr, stanza_type, text_elem, NS_MUC_ADMIN, NS_MUC_USER};
use crate::{Context, Effect};

/// One validated change from a set request.
#[derive(Clone, Debug)]
pub(crate) enum AdminChange {
    Affiliation {
        jid: BareJid,
        affiliation: Affiliation,
        reason: Option<String>,
        nick: Option<String>,
    },
    Role {
        nick: String,
        role: Role,
        reason: Option<String>,
    },
}

pub(crate) const RESERVED_REASON: &str = "This nickname is reserved";

impl Room {
    pub(crate) fn on_admin_iq(
        &mut self,
        iq: &Element,
        query: &Element,
        sender: &Sender,
        _ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        let items: Vec<&Element> = query
            .children()
            .filter(|c| c.is("item", NS_MUC_ADMIN))
            .collect();
        let Some(first) = items.first() else {
            self.reply_error(
                iq,
                StanzaErr::bad_request("Expected at least one <item/>"),
                out,
            );
            return;
        };
        if stanza_type(iq) == "get" {
            let res = if let Some(a) = first.attr("affiliation") {
                self.affiliation_list(sender, a)
            } else if let Some(r) = first.attr("role") {
                self.role_list(sender, r)
            } else {
                Err(StanzaErr::bad_request("Expected an affiliation or a role"))
            };
            match res {
                Ok(q) => out.push(Effect::Send(self.iq_result(iq, Some(q)))),
                Err(e) => self.reply_error(iq, e, out),
            }
            return;
        }
        let mut changes = Vec::new();
        for item in &items {
            match self.validate_item(sender, item) {
                Ok(c) => changes.push(c),
                Err(e) => {
                    self.reply_error(iq, e, out);
                    return;
                }
            }
        }
        if let Err(e) = self.check_last_owner(&changes) {
            self.reply_error(iq, e, out);
            return;
        }
        let actor = self.actor_of(sender);
        for c in changes {
            match c {
                AdminChange::Affiliation {
                    jid,
                    affiliation,
                    reason,
                    nick,
                } => {
                    self.set_affiliation(&jid, affiliation, reason, nick, Some(actor.clone()), out)
                }
                AdminChange::Role { nick, role, reason } => {
                    self.set_role(&nick, role, reason, &actor, out)
                }
            }
        }
        out.push(Effect::Send(self.iq_result(iq, None)));
    }

    pub(crate) fn actor_of(&self, sender: &Sender) -> Actor {
        Actor {
            jid: Some(sender.jid.clone()),
            nick: self
                .sender_index(sender)
                .map(|i| self.occupants[i].nick.clone()),
        }
    }

    fn affiliation_list(&self, sender: &Sender, aff: &str) -> Result<Element, StanzaErr> {
        let aff =
            Affiliation::parse(aff).ok_or_else(|| StanzaErr::bad_request("Unknown affiliation"))?;
        if aff == Affiliation::None {
            return Err(StanzaErr::bad_request(
                "The list of unaffiliated users is not available",
            ));
        }
        let mine = self.affiliation(&sender.bare);
        let allowed = mine.is_admin()
            || (aff != Affiliation::Outcast
                && mine >= Affiliation::Member
                && self.config.non_anonymous());
        if !allowed {
            return Err(StanzaErr::forbidden());
        }
        let mut q = Element::bare("query", NS_MUC_ADMIN);
        let mut entries: Vec<(BareJid, Option<String>, Option<String>)> = self
            .affiliations
            .iter()
            .filter(|(_, e)| e.affiliation == aff)
            .map(|(j, e)| (j.clone(), e.nick.clone(), e.reason.clone()))
            .collect();
        if aff == Affiliation::Owner {
            for a in &self.service.admins {
                if !self.affiliations.contains_key(a) {
                    entries.push((a.clone(), None, None));
                }
            }
        }
        for (j, nick, reason) in entries {
            let mut item = elem(
                "item",
                NS_MUC_ADMIN,
                &[("affiliation", aff.as_str()), ("jid", &j.to_string())],
            );
            if let Some(n) = nick {
                set_attr(&mut item, "nick", n);
            }
            if let Some(r) = reason {
                item.append_child(text_elem("reason", NS_MUC_ADMIN, &r));
            }
            q.append_child(item);
        }
        Ok(q)
    }

    fn role_list(&self, sender: &Sender, role: &str) -> Result<Element, StanzaErr> {
        let role = Role::parse(role)
            .filter(|r| *r != Role::None)
            .ok_or_else(|| StanzaErr::bad_request("Unknown role"))?;
        let viewer = self.sender_index(sender).map(|i| self.occupants[i].role);
        if viewer != Some(Role::Moderator) {
            return Err(StanzaErr::forbidden());
        }
        let mut q = Element::bare("query", NS_MUC_ADMIN);
        for o in self.occupants.iter().filter(|o| o.role == role) {
            let mut item = elem(
                "item",
                NS_MUC_ADMIN,
                &[
                    ("role", role.as_str()),
                    ("nick", &o.nick),
                    ("affiliation", self.affiliation(&o.bare).as_str()),
                ],
            );
            if let Some(s) = o.primary() {
                set_attr(&mut item, "jid", s.jid.to_string());
            }
            q.append_child(item);
        }
        Ok(q)
    }

    /// Checks one item of a set request against the sender's rights.
    fn validate_item(&self, sender: &Sender, item: &Element) -> Result<AdminChange, StanzaErr> {
        let reason = item.get_child("reason", NS_MUC_ADMIN).map(|r| r.text());
        let actor_aff = self.affiliation(&sender.bare);
        if let Some(a) = item.attr("affiliation") {
            let affiliation = Affiliation::parse(a)
                .ok_or_else(|| StanzaErr::bad_request("Unknown affiliation"))?;
            let jid = match item.attr("jid") {
                Some(j) => Jid::new(j)
                    .map_err(|_| StanzaErr::jid_malformed().with_text("Invalid JID"))?
                    .to_bare(),
                None => {
                    let nick = item
                        .attr("nick")
                        .and_then(prep_nick)
                        .ok_or_else(|| StanzaErr::bad_request("Expected a jid"))?;
                    let i = self
                        .index_by_nick(&nick)
                        .ok_or_else(StanzaErr::item_not_found)?;
                    self.occupants[i].bare.clone()
                }
            };
            let nick = match item.attr("nick").filter(|_| item.attr("jid").is_some()) {
                Some(n) => Some(
                    prep_nick(n)
                        .ok_or_else(|| StanzaErr::jid_malformed().with_text("Invalid nickname"))?,
                ),
                None => None,
            };
            let current = self.affiliation(&jid);
            let allowed = match actor_aff {
                Affiliation::Owner => true,
                Affiliation::Admin => {
                    current < Affiliation::Admin && affiliation < Affiliation::Admin
                }
                _ => return Err(StanzaErr::forbidden()),
            };
            if !allowed {
                return Err(StanzaErr::not_allowed());
            }
            if self.is_service_admin(&jid) && affiliation != Affiliation::Owner {
                return Err(
                    StanzaErr::not_allowed().with_text("Service administrators own every room")
                );
            }
            if let Some(n) = &nick {
                if let Some(holder) = self.nick_owner(n) {
                    if holder != &jid {
                        return Err(StanzaErr::conflict()
                            .with_text("That nickname is reserved by someone else"));
                    }
                }
                if affiliation < Affiliation::Member {
                    return Err(StanzaErr::not_acceptable(
                        "Only members can reserve a nickname",
                    ));
                }
            }
            return Ok(AdminChange::Affiliation {
                jid,
                affiliation,
                reason,
                nick,
            });
        }
        if let Some(r) = item.attr("role") {
            let role = Role::parse(r).ok_or_else(|| StanzaErr::bad_request("Unknown role"))?;
            let nick = item
                .attr("nick")
                .and_then(prep_nick)
                .ok_or_else(|| StanzaErr::bad_request("Expected a nick"))?;
            let idx = self.index_by_nick(&nick).ok_or_else(|| {
                StanzaErr::item_not_found().with_text("That occupant is not in the room")
            })?;
            let actor_role = self.sender_index(sender).map(|i| self.occupants[i].role);
            if actor_role != Some(Role::Moderator) && !actor_aff.is_admin() {
                return Err(StanzaErr::forbidden());
            }
            let target_aff = self.affiliation(&self.occupants[idx].bare);
            if role == Role::Moderator && !actor_aff.is_admin() {
                return Err(StanzaErr::not_allowed().with_text("Only admins can grant moderator"));
            }
            if target_aff.is_admin() && target_aff >= actor_aff {
                return Err(StanzaErr::not_allowed()
                    .with_text("You cannot change the role of this occupant"));
            }
            if self.config.members_only && role == Role::Visitor && target_aff < Affiliation::Member
            {
                return Err(StanzaErr::not_allowed());
            }
            return Ok(AdminChange::Role { nick, role, reason });
        }
        Err(StanzaErr::bad_request("Expected an affiliation or a role"))
    }

    /// A room always keeps an owner.
    fn check_last_owner(&self, changes: &[AdminChange]) -> Result<(), StanzaErr> {
        let mut owners: Vec<&BareJid> = self
            .affiliations
            .iter()
            .filter(|(_, e)| e.affiliation == Affiliation::Owner)
            .map(|(j, _)| j)
            .collect();
        let had_owner = !owners.is_empty();
        for c in changes {
            if let AdminChange::Affiliation {
                jid, affiliation, ..
            } = c
            {
                owners.retain(|o| *o != jid);
                if *affiliation == Affiliation::Owner {
                    owners.push(jid);
                }
            }
        }
        if had_owner && owners.is_empty() {
            return Err(StanzaErr::conflict().with_text("The last owner cannot be removed"));
        }
        Ok(())
    }

    /// Sets an affiliation and tells the room: occupants of that user see
    /// their presence again (or are removed: 301 ban, 321 lost membership),
    /// otherwise the change is announced to the moderators (everyone in a
    /// non-anonymous room). A reserved nick held by someone else in the room
    /// gets them kicked (307) first.
    pub(crate) fn set_affiliation(
        &mut self,
        jid: &BareJid,
        affiliation: Affiliation,
        reason: Option<String>,
        nick: Option<String>,
        actor: Option<Actor>,
        out: &mut Vec<Effect>,
    ) {
        let old_nick = self.affiliations.get(jid).and_then(|e| e.nick.clone());
        if affiliation == Affiliation::None {
            self.affiliations.remove(jid);
        } else {
            let keep_nick = if affiliation >= Affiliation::Member {
                old_nick
            } else {
                None
            };
            self.affiliations.insert(
                jid.clone(),
                AffiliationEntry {
                    affiliation,
                    reason: reason.clone(),
                    nick: nick.clone().or(keep_nick),
                },
            );
        }
        if let Some(n) = &nick {
            self.kick_impostor(n, jid, out);
        }
        let mine: Vec<usize> = (0..self.occupants.len())
            .filter(|&i| &self.occupants[i].bare == jid)
            .collect();
        if mine.is_empty() {
            self.announce_affiliation(jid, affiliation, out);
        } else {
            let ch = Change {
                actor,
                reason,
                ..Change::default()
            };
            let aff = self.affiliation(jid);
            if aff == Affiliation::Outcast
                || (self.config.members_only && aff < Affiliation::Member)
            {
                let code = if aff == Affiliation::Outcast {
                    Status::Banned
                } else {
                    Status::RemovalFromRoom
                };
                while let Some(i) = self.occupants.iter().position(|o| &o.bare == jid) {
                    self.remove_occupant(
                        i,
                        Change {
                            codes: vec![code.clone()],
                            ..ch.clone()
                        },
                        out,
                    );
                }
            } else {
                for i in mine {
                    if let Some(role) = Role::default_for(aff, self.config.moderated, false) {
                        self.occupants[i].role = role;
                    }
                    let occ = self.occupants[i].clone();
                    self.publicise(&occ, &ch, out);
                }
            }
        }
        self.save(out);
    }

    /// The out-of-room announcement (XEP-0045 example 195).
    pub(crate) fn announce_affiliation(
        &self,
        jid: &BareJid,
        affiliation: Affiliation,
        out: &mut Vec<Effect>,
    ) {
        // Built by hand: xmpp-parsers' muc#user `Item` takes a full JID only.
        let mut x = Element::bare("x", NS_MUC_USER);
        x.append_child(elem(
            "item",
            NS_MUC_USER,
            &[
                ("jid", &jid.to_string()),
                ("affiliation", affiliation.as_str()),
            ],
        ));
        let everyone = self.config.non_anonymous();
        self.room_message(&x, None, |o| everyone || o.role == Role::Moderator, out);
    }

    /// Whoever uses `nick` in the room without having reserved it is
    /// kicked (307, "This nickname is reserved").
    pub(crate) fn kick_impostor(&mut self, nick: &str, owner: &BareJid, out: &mut Vec<Effect>) {
        if let Some(i) = self.index_by_nick(nick) {
            if &self.occupants[i].bare != owner {
                let ch = Change {
                    codes: vec![Status::Kicked],
                    reason: Some(RESERVED_REASON.to_owned()),
                    ..Change::default()
                };
                self.remove_occupant(i, ch, out);
            }
        }
    }

    /// Sets an occupant's role: none kicks (307), others re-broadcast.
    fn set_role(
        &mut self,
        nick: &str,
        role: Role,
        reason: Option<String>,
        actor: &Actor,
        out: &mut Vec<Effect>,
    ) {
        let Some(i) = self.index_by_nick(nick) else {
            return;
        };
        let ch = Change {
            actor: Some(actor.clone()),
            reason,
            ..Change::default()
        };
        if role == Role::None {
            self.remove_occupant(
                i,
                Change {
                    codes: vec![Status::Kicked],
                    ..ch
                },
                out,
            );
        } else {
            self.occupants[i].role = role;
            let occ = self.occupants[i].clone();
            self.publicise(&occ, &ch, out);
        }
    }
}
