//! The admin namespace (muc#admin): affiliation and role lists, and
//! changes to them (several items per request), with Prosody's rules on
//! who may change what, the announcements of out-of-room changes
//! (XEP-0045 example 195), kicks (307) and bans (301).

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::muc::user::Status;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

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

/// Whether an actor (`actor_role` is `None` when not in the room) may give
/// an occupant `role`, as Prosody decides: never someone of a higher
/// affiliation; giving or taking moderator needs an owner or an admin; and
/// only a moderator in the room changes roles at all.
pub(crate) fn may_set_role(
    actor_aff: Affiliation,
    actor_role: Option<Role>,
    target_aff: Affiliation,
    target_role: Role,
    role: Role,
) -> bool {
    if actor_aff < target_aff {
        return false;
    }
    if (target_role == Role::Moderator || role == Role::Moderator) && !actor_aff.is_admin() {
        return false;
    }
    actor_role == Some(Role::Moderator)
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
            let idx = self
                .index_by_nick(&nick)
                .ok_or_else(|| StanzaErr::new(ErrorType::Modify, DefinedCondition::ItemNotFound))?;
            let target = &self.occupants[idx];
            let actor_role = self.sender_index(sender).map(|i| self.occupants[i].role);
            let target_aff = self.affiliation(&target.bare);
            if !may_set_role(actor_aff, actor_role, target_aff, target.role, role) {
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

#[cfg(test)]
mod tests {
    use super::may_set_role;
    use crate::affiliation::Affiliation::{self, Admin, Member, None as NoAff, Outcast, Owner};
    use crate::role::Role::{self, Moderator, None as NoRole, Participant, Visitor};
    use crate::testing::{assert_wire, ctx, from, open_room, stanzas, JULIET, ROMEO};

    const AFFS: [Affiliation; 5] = [Outcast, NoAff, Member, Admin, Owner];
    const ROLES: [Role; 4] = [NoRole, Visitor, Participant, Moderator];

    /// Every combination of actor affiliation, actor role (absent: not in
    /// the room), target affiliation, target role and requested role.
    fn every_case() -> impl Iterator<Item = (Affiliation, Option<Role>, Affiliation, Role, Role)> {
        AFFS.into_iter().flat_map(|aa| {
            [None, Some(Visitor), Some(Participant), Some(Moderator)]
                .into_iter()
                .flat_map(move |ar| {
                    AFFS.into_iter().flat_map(move |ta| {
                        ROLES
                            .into_iter()
                            .flat_map(move |tr| ROLES.into_iter().map(move |r| (aa, ar, ta, tr, r)))
                    })
                })
        })
    }

    #[test]
    fn nobody_changes_the_role_of_a_higher_affiliation() {
        for (aa, ar, ta, tr, r) in every_case().filter(|c| c.0 < c.2) {
            assert!(
                !may_set_role(aa, ar, ta, tr, r),
                "{aa:?} {ar:?} {ta:?} {tr:?} {r:?}"
            );
        }
        // a moderator with no affiliation cannot kick or mute a member
        assert!(!may_set_role(
            NoAff,
            Some(Moderator),
            Member,
            Participant,
            NoRole
        ));
        assert!(!may_set_role(
            NoAff,
            Some(Moderator),
            Member,
            Participant,
            Visitor
        ));
        // an admin cannot kick an owner
        assert!(!may_set_role(
            Admin,
            Some(Moderator),
            Owner,
            Moderator,
            NoRole
        ));
    }

    #[test]
    fn giving_or_taking_moderator_needs_an_owner_or_an_admin() {
        for (aa, ar, ta, tr, r) in every_case()
            .filter(|c| c.3 == Moderator || c.4 == Moderator)
            .filter(|c| c.0 < Admin)
        {
            assert!(
                !may_set_role(aa, ar, ta, tr, r),
                "{aa:?} {ar:?} {ta:?} {tr:?} {r:?}"
            );
        }
        // a moderator with no affiliation cannot demote another one
        assert!(!may_set_role(
            NoAff,
            Some(Moderator),
            NoAff,
            Moderator,
            Participant
        ));
        // nor make a participant a moderator
        assert!(!may_set_role(
            Member,
            Some(Moderator),
            NoAff,
            Participant,
            Moderator
        ));
        // an admin or an owner can, on someone not above them
        assert!(may_set_role(
            Admin,
            Some(Moderator),
            NoAff,
            Moderator,
            Participant
        ));
        assert!(may_set_role(
            Admin,
            Some(Moderator),
            Admin,
            Moderator,
            NoRole
        ));
        assert!(may_set_role(
            Owner,
            Some(Moderator),
            Member,
            Participant,
            Moderator
        ));
    }

    #[test]
    fn only_a_moderator_in_the_room_changes_roles() {
        for (aa, ar, ta, tr, r) in every_case().filter(|c| c.1 != Some(Moderator)) {
            assert!(
                !may_set_role(aa, ar, ta, tr, r),
                "{aa:?} {ar:?} {ta:?} {tr:?} {r:?}"
            );
        }
        // an admin or an owner who is not in the room cannot kick
        assert!(!may_set_role(Admin, None, NoAff, Participant, NoRole));
        assert!(!may_set_role(Owner, None, NoAff, Visitor, NoRole));
    }

    #[test]
    fn everything_else_is_allowed() {
        for (aa, ar, ta, tr, r) in every_case()
            .filter(|c| c.0 >= c.2)
            .filter(|c| (c.3 != Moderator && c.4 != Moderator) || c.0 >= Admin)
            .filter(|c| c.1 == Some(Moderator))
        {
            assert!(
                may_set_role(aa, ar, ta, tr, r),
                "{aa:?} {ar:?} {ta:?} {tr:?} {r:?}"
            );
        }
        // a moderator with no affiliation kicks, mutes and voices visitors
        assert!(may_set_role(
            NoAff,
            Some(Moderator),
            NoAff,
            Participant,
            NoRole
        ));
        assert!(may_set_role(
            NoAff,
            Some(Moderator),
            NoAff,
            Participant,
            Visitor
        ));
        assert!(may_set_role(
            NoAff,
            Some(Moderator),
            NoAff,
            Visitor,
            Participant
        ));
    }

    /// Romeo (owner) in the room; Juliet joins with no affiliation and is
    /// made a moderator; Mercutio (a member) joins.
    fn room_with_a_moderator() -> crate::room::Room {
        let mut room = open_room();
        for (who, nick) in [
            (JULIET, "Juliet"),
            ("mercutio@localhost/street", "Mercutio"),
        ] {
            room.handle(
                from(
                    who,
                    &format!(
                        "<presence xmlns='jabber:client' to='room@conference.localhost/{nick}'/>"
                    ),
                ),
                &ctx(1),
            );
        }
        for item in [
            "<item affiliation='member' jid='mercutio@localhost'/>",
            "<item role='moderator' nick='Juliet'/>",
        ] {
            let out = stanzas(room.handle(
                from(ROMEO, &format!("<iq xmlns='jabber:client' to='room@conference.localhost' id='s' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'>{item}</query></iq>")),
                &ctx(2),
            ));
            assert_eq!(out.last().and_then(|s| s.attr("type")), Some("result"));
        }
        room
    }

    fn set_role(
        room: &mut crate::room::Room,
        actor: &str,
        nick: &str,
        role: &str,
    ) -> Vec<minidom::Element> {
        stanzas(room.handle(
            from(actor, &format!("<iq xmlns='jabber:client' to='room@conference.localhost' id='r' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item role='{role}' nick='{nick}'/></query></iq>")),
            &ctx(3),
        ))
    }

    fn not_allowed(to: &str) -> String {
        format!("<iq xmlns='jabber:client' from='room@conference.localhost' to='{to}' id='r' type='error'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    }

    #[test]
    fn a_moderator_without_affiliation_may_not_kick_or_mute_a_member_nor_demote_a_moderator() {
        let mut room = room_with_a_moderator();
        for (nick, role) in [
            ("Mercutio", "none"),
            ("Mercutio", "visitor"),
            ("Romeo", "participant"),
        ] {
            let out = set_role(&mut room, JULIET, nick, role);
            assert_eq!(out.len(), 1, "{nick} {role}");
            assert_wire(&out[0], &not_allowed(JULIET));
        }
        assert_eq!(room.occupants.len(), 3);
    }

    #[test]
    fn an_admin_not_in_the_room_may_not_kick() {
        let mut room = room_with_a_moderator();
        let out = set_role(&mut room, "admin@localhost/desk", "Mercutio", "none");
        assert_eq!(out.len(), 1);
        assert_wire(&out[0], &not_allowed("admin@localhost/desk"));
    }

    #[test]
    fn a_role_change_for_a_nick_not_in_the_room_is_item_not_found_modify() {
        let mut room = room_with_a_moderator();
        let out = set_role(&mut room, ROMEO, "Tybalt", "none");
        assert_wire(&out[0], "<iq xmlns='jabber:client' from='room@conference.localhost' to='romeo@localhost/balcony' id='r' type='error'><error type='modify'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    }
}
