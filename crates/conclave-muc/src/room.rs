//! The room core: its state, the dispatch of incoming stanzas to the
//! feature modules, and the building and broadcasting of occupant
//! presences in Prosody's three variants (full, anonymous, self).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::muc::user::Status;

use crate::affiliation::{Affiliation, AffiliationEntry};
use crate::config::RoomConfig;
use crate::errors::{error_reply, StanzaErr};
use crate::history::HistoryEntry;
use crate::occupant::Occupant;
use crate::role::Role;
use crate::subject::Subject;
use crate::xml::{
    elem, set_attr, stanza, stanza_type, text_elem, NS_CLIENT, NS_MUC, NS_MUC_USER, NS_OCCUPANT_ID,
};
use crate::{Context, Effect, RoomListing, ServiceConfig};

/// One room: its configuration, affiliations, occupants and history.
pub struct Room {
    pub(crate) jid: BareJid,
    pub(crate) service: Arc<ServiceConfig>,
    /// The room exists (a join created it, or it was restored).
    pub(crate) created: bool,
    /// Created but not configured yet: only owners may enter.
    pub(crate) locked: bool,
    pub(crate) config: RoomConfig,
    pub(crate) affiliations: BTreeMap<BareJid, AffiliationEntry>,
    /// In order of arrival.
    pub(crate) occupants: Vec<Occupant>,
    pub(crate) history: VecDeque<HistoryEntry>,
    pub(crate) subject: Option<Subject>,
    /// Secret mixed into occupant ids (XEP-0421).
    pub(crate) salt: String,
    /// A `Remove` was emitted: the room is gone.
    pub(crate) gone: bool,
}

/// Who performed a change, as shown in `<actor/>`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Actor {
    pub jid: Option<Jid>,
    pub nick: Option<String>,
}

/// What changed about an occupant, for the presence that announces it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Change {
    /// Status codes for everyone, placed before the `<item/>`.
    pub codes: Vec<Status>,
    /// Status codes only for the occupant themself (201, 100, 170, 210).
    pub self_codes: Vec<Status>,
    pub actor: Option<Actor>,
    pub reason: Option<String>,
    /// For a nick change (303): the new nickname, on the item.
    pub new_nick: Option<String>,
    pub unavailable: bool,
    /// The presence whose payload (show, status...) is carried instead of
    /// the occupant's stored one.
    pub base: Option<Element>,
    /// `<destroy/>` for a destroyed room.
    pub destroy: Option<Element>,
    /// Send only to the occupant's own sessions.
    pub only_self: bool,
}

/// The sender of a stanza.
pub(crate) struct Sender {
    pub jid: Jid,
    pub full: Option<FullJid>,
    pub bare: BareJid,
}

impl Room {
    /// A room that does not exist yet: the join presence that the caller
    /// passes next to [`Room::handle`] creates it (status 201, locked).
    pub fn new(jid: BareJid, service: Arc<ServiceConfig>) -> Room {
        Room {
            jid,
            service,
            created: false,
            locked: false,
            config: RoomConfig::default(),
            affiliations: BTreeMap::new(),
            occupants: Vec::new(),
            history: VecDeque::new(),
            subject: None,
            salt: crate::occupant_id::new_salt(),
            gone: false,
        }
    }

    pub fn jid(&self) -> &BareJid {
        &self.jid
    }

    /// Handles one stanza addressed to the room (`room@service`) or to an
    /// occupant (`room@service/nick`). Its `from` is the sender's full JID,
    /// stamped and checked by the server.
    pub fn handle(&mut self, stanza: Element, ctx: &Context) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.gone {
            if let Some(e) = error_reply(&stanza, &StanzaErr::item_not_found(), Some(&self.jid)) {
                out.push(Effect::Send(e));
            }
            return out;
        }
        let Some(jid) = stanza.attr("from").and_then(|f| Jid::new(f).ok()) else {
            return out;
        };
        let sender = Sender {
            full: jid.clone().try_into_full().ok(),
            bare: jid.to_bare(),
            jid,
        };
        // The nickname as written (before resourceprep), so that a join
        // can tell the client its nick was changed (210).
        let nick = crate::xml::to_jid(&stanza).and_then(|t| {
            t.resource()?;
            let raw = stanza.attr("to")?;
            raw.split_once('/').map(|(_, r)| r.to_owned())
        });
        if stanza_type(&stanza) == "error" {
            self.on_error_stanza(&stanza, &sender, nick.as_deref(), ctx, &mut out);
        } else {
            match stanza.name() {
                "presence" => self.on_presence(&stanza, &sender, nick.as_deref(), ctx, &mut out),
                "message" => self.on_message(&stanza, &sender, nick.as_deref(), ctx, &mut out),
                "iq" => self.on_iq(&stanza, &sender, nick.as_deref(), ctx, &mut out),
                _ => {}
            }
        }
        if self.occupants.is_empty() && !(self.created && self.config.persistent) && !self.gone {
            self.gone = true;
            out.push(Effect::Remove);
        }
        out
    }

    /// `Some` when the room is public (listed in the service's disco#items).
    pub fn listing(&self) -> Option<RoomListing> {
        if self.created && !self.gone && self.config.public && !self.locked {
            Some(RoomListing {
                jid: self.jid.clone(),
                name: (!self.config.name.is_empty()).then(|| self.config.name.clone()),
            })
        } else {
            None
        }
    }

    /// No occupant is in the room.
    pub fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }

    // ----- lookups -----

    pub(crate) fn room_str(&self) -> String {
        self.jid.to_string()
    }

    pub(crate) fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{}", self.jid, nick)
    }

    pub(crate) fn is_service_admin(&self, bare: &BareJid) -> bool {
        self.service.admins.contains(bare)
    }

    /// The affiliation of a bare JID (service admins own every room).
    pub(crate) fn affiliation(&self, bare: &BareJid) -> Affiliation {
        if self.is_service_admin(bare) {
            return Affiliation::Owner;
        }
        self.affiliations
            .get(bare)
            .map(|e| e.affiliation)
            .unwrap_or(Affiliation::None)
    }

    pub(crate) fn reserved_nick(&self, bare: &BareJid) -> Option<&str> {
        self.affiliations.get(bare).and_then(|e| e.nick.as_deref())
    }

    /// The bare JID that reserved `nick`, if any.
    pub(crate) fn nick_owner(&self, nick: &str) -> Option<&BareJid> {
        self.affiliations
            .iter()
            .find(|(_, e)| e.nick.as_deref() == Some(nick))
            .map(|(j, _)| j)
    }

    pub(crate) fn index_by_session(&self, jid: &FullJid) -> Option<usize> {
        self.occupants.iter().position(|o| o.has_session(jid))
    }

    pub(crate) fn index_by_nick(&self, nick: &str) -> Option<usize> {
        self.occupants.iter().position(|o| o.nick == nick)
    }

    pub(crate) fn sender_index(&self, sender: &Sender) -> Option<usize> {
        sender.full.as_ref().and_then(|f| self.index_by_session(f))
    }

    pub(crate) fn send(out: &mut Vec<Effect>, el: Element) {
        out.push(Effect::Send(el));
    }

    pub(crate) fn reply_error(&self, request: &Element, err: StanzaErr, out: &mut Vec<Effect>) {
        let by = (request.name() == "presence").then_some(&self.jid);
        if let Some(e) = error_reply(request, &err, by) {
            out.push(Effect::Send(e));
        }
    }

    /// The empty result of an iq request.
    pub(crate) fn iq_result(&self, request: &Element, payload: Option<Element>) -> Element {
        let from = request.attr("to").unwrap_or("");
        let to = request.attr("from").unwrap_or("");
        let mut r = elem(
            "iq",
            crate::xml::NS_CLIENT,
            &[("from", from), ("to", to), ("type", "result")],
        );
        if let Some(id) = request.attr("id") {
            set_attr(&mut r, "id", id);
        }
        if let Some(p) = payload {
            r.append_child(p);
        }
        r
    }

    /// Persist the room when it is persistent.
    pub(crate) fn save(&self, out: &mut Vec<Effect>) {
        if self.created && self.config.persistent {
            out.push(Effect::Save(self.snapshot()));
        }
    }

    // ----- presence broadcast -----

    /// Builds the presence of `occ` for one recipient. `full`: the item
    /// carries the real JID; `is_self`: the copy for the occupant themself
    /// (sent to session `to`).
    pub(crate) fn occupant_presence(
        &self,
        occ: &Occupant,
        to: &FullJid,
        full: bool,
        is_self: bool,
        ch: &Change,
    ) -> Element {
        let mut p = stanza("presence", &self.occupant_jid(&occ.nick), &to.to_string());
        if ch.unavailable {
            set_attr(&mut p, "type", "unavailable");
        }
        let base = ch
            .base
            .as_ref()
            .or_else(|| occ.primary().map(|s| &s.presence));
        if let Some(base) = base {
            for c in base.children() {
                if c.is("x", NS_MUC) || c.is("x", NS_MUC_USER) || c.has_ns(NS_OCCUPANT_ID) {
                    continue;
                }
                p.append_child(c.clone());
            }
        }
        // Built by hand around typed status codes: xmpp-parsers' `Item`
        // leaves out affiliation='none' and role='none' (its defaults), its
        // `Actor` cannot be built, and `MucUser` cannot place status 110
        // and <destroy/> after the item.
        let mut x = Element::bare("x", NS_MUC_USER);
        let self_codes = if is_self { &ch.self_codes[..] } else { &[] };
        for c in self_codes.iter().chain(&ch.codes) {
            x.append_child(c.clone().into());
        }
        let role = if ch.unavailable { Role::None } else { occ.role };
        let aff = if ch.destroy.is_some() {
            Affiliation::None
        } else {
            self.affiliation(&occ.bare)
        };
        let mut item = elem(
            "item",
            NS_MUC_USER,
            &[("affiliation", aff.as_str()), ("role", role.as_str())],
        );
        if ch.destroy.is_none() {
            let item_jid = if is_self {
                Some(to.clone())
            } else if full {
                occ.primary().map(|s| s.jid.clone())
            } else {
                None
            };
            if let Some(j) = item_jid {
                set_attr(&mut item, "jid", j.to_string());
            }
        }
        if let Some(n) = &ch.new_nick {
            set_attr(&mut item, "nick", n.as_str());
        }
        if let Some(actor) = &ch.actor {
            let mut a = Element::bare("actor", NS_MUC_USER);
            if full && !is_self {
                if let Some(j) = &actor.jid {
                    set_attr(&mut a, "jid", j.to_string());
                }
            }
            if let Some(n) = &actor.nick {
                set_attr(&mut a, "nick", n.as_str());
            }
            if a.attrs().iter().next().is_some() {
                item.append_child(a);
            }
        }
        if let Some(r) = &ch.reason {
            item.append_child(text_elem("reason", NS_MUC_USER, r));
        }
        x.append_child(item);
        if let Some(d) = &ch.destroy {
            x.append_child(d.clone());
        }
        if is_self {
            x.append_child(Status::SelfPresence.into());
        }
        p.append_child(x);
        p.append_child(self.occupant_id_element(&occ.bare));
        p
    }

    /// May this occupant see real JIDs?
    pub(crate) fn sees_real_jids(&self, viewer: &Occupant) -> bool {
        self.config.non_anonymous() || viewer.role == Role::Moderator
    }

    /// Sends `occ`'s presence to every occupant that should see it (other
    /// occupants first, in order of arrival), then to `occ`'s own sessions.
    /// `occ` need not be in the room any more (leaving, kicked).
    pub(crate) fn publicise(&self, occ: &Occupant, ch: &Change, out: &mut Vec<Effect>) {
        let broadcast = self.config.broadcasts(occ.role) || ch.unavailable;
        if !ch.only_self && broadcast {
            for other in &self.occupants {
                if other.nick == occ.nick {
                    continue;
                }
                let full = self.sees_real_jids(other);
                for s in &other.sessions {
                    Self::send(out, self.occupant_presence(occ, &s.jid, full, false, ch));
                }
            }
        }
        for s in &occ.sessions {
            Self::send(out, self.occupant_presence(occ, &s.jid, true, true, ch));
        }
    }

    /// Takes occupant `idx` out of the room and tells everyone (and them).
    pub(crate) fn remove_occupant(&mut self, idx: usize, mut ch: Change, out: &mut Vec<Effect>) {
        if idx >= self.occupants.len() {
            return;
        }
        let mut occ = self.occupants.remove(idx);
        occ.role = Role::None;
        ch.unavailable = true;
        self.publicise(&occ, &ch, out);
    }

    /// A message from the room itself to every occupant session for which
    /// `filter` holds.
    pub(crate) fn room_message(
        &self,
        x: &Element,
        type_: Option<&str>,
        filter: impl Fn(&Occupant) -> bool,
        out: &mut Vec<Effect>,
    ) {
        let to: Vec<FullJid> = self
            .occupants
            .iter()
            .filter(|o| filter(o))
            .flat_map(|o| o.sessions.iter().map(|s| s.jid.clone()))
            .collect();
        if to.is_empty() {
            return;
        }
        let mut m = Element::bare("message", NS_CLIENT);
        set_attr(&mut m, "from", self.room_str());
        if let Some(t) = type_ {
            set_attr(&mut m, "type", t);
        }
        m.append_child(x.clone());
        out.push(Effect::Broadcast { stanza: m, to });
    }

    /// Every session of every occupant, in room order.
    pub(crate) fn all_sessions(&self) -> Vec<FullJid> {
        self.occupants
            .iter()
            .flat_map(|o| o.sessions.iter().map(|s| s.jid.clone()))
            .collect()
    }

    // ----- dispatch -----

    fn on_iq(
        &mut self,
        iq: &Element,
        sender: &Sender,
        nick: Option<&str>,
        ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        let t = stanza_type(iq);
        if let Some(nick) = nick {
            self.on_occupant_iq(iq, sender, nick, out);
            return;
        }
        if t != "get" && t != "set" {
            return;
        }
        let Some(payload) = iq.children().next() else {
            self.reply_error(iq, StanzaErr::bad_request("Missing payload"), out);
            return;
        };
        let ns = payload.ns();
        match (payload.name(), ns.as_str(), t) {
            ("query", crate::xml::NS_MUC_OWNER, _) => {
                self.on_owner_iq(iq, payload, sender, ctx, out)
            }
            ("query", crate::xml::NS_MUC_ADMIN, _) => {
                self.on_admin_iq(iq, payload, sender, ctx, out)
            }
            ("query", crate::xml::NS_REGISTER, _) => {
                self.on_register_iq(iq, payload, sender, ctx, out)
            }
            ("query", crate::xml::NS_DISCO_INFO, "get") => {
                self.on_disco_info(iq, payload, sender, out)
            }
            ("query", crate::xml::NS_DISCO_ITEMS, "get") => self.on_disco_items(iq, sender, out),
            ("ping", crate::xml::NS_PING, "get") => {
                let r = self.iq_result(iq, None);
                Self::send(out, r);
            }
            _ => self.reply_error(iq, StanzaErr::service_unavailable(), out),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_wire, ctx, from, open_room, stanzas, JULIET, ROMEO};

    fn oid(bare: &str) -> String {
        crate::occupant_id::occupant_id(
            "salt",
            &"room@conference.localhost".parse().unwrap(),
            &bare.parse().unwrap(),
        )
    }

    #[test]
    fn presences_on_entering_and_on_being_kicked() {
        let mut room = open_room();
        room.config.logging = true;
        let out = stanzas(room.handle(
            from(
                JULIET,
                "<presence xmlns='jabber:client' to='room@conference.localhost/Juliet'><show>away</show><x xmlns='http://jabber.org/protocol/muc'/></presence>",
            ),
            &ctx(1),
        ));
        let (romeo, juliet) = (oid("romeo@localhost"), oid("juliet@localhost"));
        // Romeo's presence to Juliet, Juliet's to Romeo (a moderator: full
        // JID), Juliet's own (170 for logging, 110), then the subject.
        assert_eq!(out.len(), 4);
        assert_wire(
            &out[0],
            &format!("<presence xmlns='jabber:client' from='room@conference.localhost/Romeo' to='juliet@localhost/garden'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/></x><occupant-id xmlns='urn:xmpp:occupant-id:0' id='{romeo}'/></presence>"),
        );
        assert_wire(
            &out[1],
            &format!("<presence xmlns='jabber:client' from='room@conference.localhost/Juliet' to='romeo@localhost/balcony'><show>away</show><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant' jid='juliet@localhost/garden'/></x><occupant-id xmlns='urn:xmpp:occupant-id:0' id='{juliet}'/></presence>"),
        );
        assert_wire(
            &out[2],
            &format!("<presence xmlns='jabber:client' from='room@conference.localhost/Juliet' to='juliet@localhost/garden'><show>away</show><x xmlns='http://jabber.org/protocol/muc#user'><status code='170'/><item affiliation='none' role='participant' jid='juliet@localhost/garden'/><status code='110'/></x><occupant-id xmlns='urn:xmpp:occupant-id:0' id='{juliet}'/></presence>"),
        );
        let out = stanzas(room.handle(
            from(
                ROMEO,
                "<iq xmlns='jabber:client' to='room@conference.localhost' id='k' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Juliet' role='none'><reason>out &amp; about</reason></item></query></iq>",
            ),
            &ctx(2),
        ));
        assert_eq!(out.len(), 3);
        assert_wire(
            &out[0],
            &format!("<presence xmlns='jabber:client' from='room@conference.localhost/Juliet' to='romeo@localhost/balcony' type='unavailable'><show>away</show><x xmlns='http://jabber.org/protocol/muc#user'><status code='307'/><item affiliation='none' role='none' jid='juliet@localhost/garden'><actor jid='romeo@localhost/balcony' nick='Romeo'/><reason>out &amp; about</reason></item></x><occupant-id xmlns='urn:xmpp:occupant-id:0' id='{juliet}'/></presence>"),
        );
        assert_wire(
            &out[1],
            &format!("<presence xmlns='jabber:client' from='room@conference.localhost/Juliet' to='juliet@localhost/garden' type='unavailable'><show>away</show><x xmlns='http://jabber.org/protocol/muc#user'><status code='307'/><item affiliation='none' role='none' jid='juliet@localhost/garden'><actor nick='Romeo'/><reason>out &amp; about</reason></item><status code='110'/></x><occupant-id xmlns='urn:xmpp:occupant-id:0' id='{juliet}'/></presence>"),
        );
        assert_eq!(out[2].attr("type"), Some("result"));
    }
}
