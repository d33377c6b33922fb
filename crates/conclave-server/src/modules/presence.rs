//! Presence (RFC 6121 sections 3 and 4): broadcast of a session's presence
//! to the contacts subscribed to it, probes, directed presence, unavailable
//! presence at logout, and the subscription handshake: its decisions are
//! the pure state machine of `subscription.rs`; this carries them out
//! (stored pending requests, roster items saved and pushed, answers,
//! presence).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::Utc;
use conclave_store::{RosterItem, StoredStanza, Subscription};
use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{
    account_key, error, Ctx, Declarations, Flow, Hook, Module, Out, Outs, SessionRef,
};
use crate::hub::sessions::SessionId;
use crate::modules::blocking::{self, Blocking};
use crate::modules::offline;
use crate::modules::roster::{subscription_presence, Roster};
use crate::modules::subscription::{
    self, Direction, Kind, PresenceAction, Refusal, Request, State,
};
use crate::xml::{nc, set_attr, stanza_type, CLIENT};

const PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";

/// What presence knows of one session.
#[derive(Default)]
struct SessionPresence {
    /// Sent available broadcast presence (and not unavailable since).
    available: bool,
    /// Entities that got directed available presence (RFC 6121 4.6).
    directed: HashSet<Jid>,
}

/// Presence and subscriptions. Roster changes are pushed through the
/// roster module; the block list hides contacts (XEP-0191).
pub struct Presence {
    roster: Arc<Roster>,
    blocking: Arc<Blocking>,
    sessions: Mutex<HashMap<SessionId, SessionPresence>>,
}

/// The priority of an available presence (RFC 6121 4.7.2.3): an integer,
/// optionally signed, held to -128..=127 when it is out of that range (as
/// Prosody does); 0 when absent or not an integer.
pub fn priority_of(presence: &Element) -> i8 {
    let Some(text) = presence.get_child("priority", CLIENT).map(|p| p.text()) else {
        return 0;
    };
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text.as_str()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    // Too many digits for an i64 is far out of range either way.
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
    let value = if negative { -magnitude } else { magnitude };
    value.clamp(i64::from(i8::MIN), i64::from(i8::MAX)) as i8
}

async fn roster_items(ctx: &Ctx<'_>, account: &BareJid) -> Vec<RosterItem> {
    let Some((host, user)) = account_key(account) else {
        return Vec::new();
    };
    match ctx.store.roster_get(host, user).await {
        Ok((_, items)) => items,
        Err(e) => {
            tracing::error!("cannot read roster of {account}: {e}");
            Vec::new()
        }
    }
}

/// The contact receives the account's presence (`from` or `both`).
pub fn subscribed_from(s: Subscription) -> bool {
    matches!(s, Subscription::From | Subscription::Both)
}

fn subscribed_to(s: Subscription) -> bool {
    matches!(s, Subscription::To | Subscription::Both)
}

fn addressed(stanza: &Element, to: &str) -> Element {
    let mut s = stanza.clone();
    set_attr(&mut s, "to", to);
    s
}

/// The current presences of an account's available resources, addressed
/// to `to` (or `type` unavailable presences when `unavailable`).
pub fn presences_of(ctx: &Ctx<'_>, account: &BareJid, to: &str, unavailable: bool) -> Outs {
    ctx.sessions
        .available_resources(account)
        .into_iter()
        .filter_map(|(full, _, last)| {
            if unavailable {
                Some(
                    Element::builder("presence", CLIENT)
                        .attr(nc("type"), "unavailable")
                        .attr(nc("from"), full.as_str())
                        .attr(nc("to"), to)
                        .build(),
                )
            } else {
                last.map(|p| addressed(&p, to))
            }
        })
        .map(Out::Route)
        .collect()
}

/// The account's current roster version (0 when it cannot be read).
async fn roster_ver(ctx: &Ctx<'_>, account: &BareJid) -> u64 {
    let Some((host, user)) = account_key(account) else {
        return 0;
    };
    match ctx.store.roster_get(host, user).await {
        Ok((ver, _)) => ver,
        Err(e) => {
            tracing::error!("cannot read roster of {account}: {e}");
            0
        }
    }
}

async fn load_item(ctx: &Ctx<'_>, account: &BareJid, contact: &BareJid) -> Option<RosterItem> {
    let (host, user) = account_key(account)?;
    match ctx
        .store
        .roster_get_item(host, user, contact.as_str())
        .await
    {
        Ok(item) => item,
        Err(e) => {
            tracing::error!("cannot read roster item of {account}: {e}");
            None
        }
    }
}

/// Removes the pending inbound subscription request from `contact`, if
/// any; says whether there was one.
async fn take_sub_request(ctx: &Ctx<'_>, host: &str, user: &str, contact: &BareJid) -> bool {
    let had = has_sub_request(ctx, host, user, contact).await;
    if let Err(e) = ctx
        .store
        .sub_request_remove(host, user, contact.as_str())
        .await
    {
        tracing::error!("cannot remove the subscription request of {contact}: {e}");
    }
    had
}

async fn has_sub_request(ctx: &Ctx<'_>, host: &str, user: &str, contact: &BareJid) -> bool {
    match ctx.store.sub_request_list(host, user).await {
        Ok(l) => l.iter().any(|(from, _)| *from == contact.as_str()),
        Err(e) => {
            tracing::error!("cannot read subscription requests: {e}");
            false
        }
    }
}

fn new_item(contact: &BareJid) -> RosterItem {
    RosterItem {
        jid: contact.as_str().to_owned(),
        name: None,
        subscription: Subscription::None,
        ask: false,
        approved: false,
        groups: Vec::new(),
    }
}

/// Each available resource of `account` gets `stanza` as it is.
fn to_available(ctx: &Ctx<'_>, account: &BareJid, stanza: &Element) -> Outs {
    ctx.sessions
        .available_resources(account)
        .into_iter()
        .map(|(full, _, _)| Out::Local(full, stanza.clone()))
        .collect()
}

impl Presence {
    pub fn new(roster: Arc<Roster>, blocking: Arc<Blocking>) -> Presence {
        Presence {
            roster,
            blocking,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> MutexGuard<'_, HashMap<SessionId, SessionPresence>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves a roster item and pushes it (a store error is logged: these
    /// changes come from presence stanzas, which have no reply).
    async fn save_item(&self, ctx: &Ctx<'_>, account: &BareJid, item: &RosterItem) -> Outs {
        let Some((host, user)) = account_key(account) else {
            return Vec::new();
        };
        match ctx.store.roster_set(host, user, item).await {
            Ok(ver) => self.roster.push_item(ctx, account, item, ver),
            Err(e) => {
                tracing::error!("cannot save roster item of {account}: {e}");
                Vec::new()
            }
        }
    }

    /// Roster items without the contacts the account blocks (XEP-0191: no
    /// presence to or from them).
    fn unblocked(&self, account: &BareJid, items: Vec<RosterItem>) -> Vec<RosterItem> {
        let Some(list) = self.blocking.cached(account) else {
            return items;
        };
        if list.is_empty() {
            return items;
        }
        items
            .into_iter()
            .filter(|i| Jid::new(&i.jid).is_ok_and(|j| !blocking::matches(&list, &j)))
            .collect()
    }

    /// Presence without `to` from a session: its broadcast presence
    /// (available, or unavailable).
    async fn broadcast(&self, ctx: &Ctx<'_>, session: &SessionRef, stanza: &Element) -> Outs {
        match stanza_type(stanza) {
            "" => self.available(ctx, session, stanza).await,
            "unavailable" => self.unavailable(ctx, session, stanza, true).await,
            // The error goes to the session itself: the stanza has no
            // `to` to answer from.
            _ => crate::xml::error_reply(
                stanza,
                Cond::BadRequest,
                Some("This presence type needs a 'to' address"),
            )
            .map(|e| Out::Local(session.full.clone(), e))
            .into_iter()
            .collect(),
        }
    }

    /// Broadcast available presence, in Prosody's order: back to the
    /// session itself, to the account's other available resources, to the
    /// contacts subscribed to it; on initial presence then the probes, the
    /// other resources' presence, the pending requests from contacts, the
    /// account's own pending requests sent again, and stored messages.
    async fn available(&self, ctx: &Ctx<'_>, session: &SessionRef, stanza: &Element) -> Outs {
        let priority = priority_of(stanza);
        let initial = {
            let mut state = self.state();
            let st = state.entry(session.id).or_default();
            let initial = !st.available;
            st.available = true;
            initial
        };
        // What probes and later resources get: the presence as sent, with
        // the time the server received it (XEP-0203).
        let host = session.bare.domain().as_str();
        let stored = offline::with_delay(stanza.clone(), host, Utc::now());
        ctx.sessions
            .set_presence(&session.full, session.id, Some((priority, stored)));
        let items = self.unblocked(&session.bare, roster_items(ctx, &session.bare).await);
        let resources = ctx.sessions.available_resources(&session.bare);
        let mut out = vec![Out::Local(
            session.full.clone(),
            addressed(stanza, session.full.as_str()),
        )];
        for (full, _, _) in resources.iter().filter(|(f, _, _)| *f != session.full) {
            out.push(Out::Local(full.clone(), addressed(stanza, full.as_str())));
        }
        out.extend(
            items
                .iter()
                .filter(|i| subscribed_from(i.subscription))
                .map(|i| Out::Route(addressed(stanza, &i.jid))),
        );
        if !initial {
            return out;
        }
        for i in items.iter().filter(|i| subscribed_to(i.subscription)) {
            out.push(Out::Route(
                Element::builder("presence", CLIENT)
                    .attr(nc("type"), "probe")
                    .attr(nc("from"), session.full.as_str())
                    .attr(nc("to"), i.jid.as_str())
                    .build(),
            ));
        }
        for (full, _, last) in resources {
            if full != session.full {
                if let Some(p) = last {
                    let to_self = addressed(&p, session.full.as_str());
                    out.push(Out::Local(session.full.clone(), to_self));
                }
            }
        }
        // Pending inbound subscription requests are presented again.
        if let Some((host, user)) = account_key(&session.bare) {
            match ctx.store.sub_request_list(host, user).await {
                Ok(list) => {
                    for (_, req) in list {
                        if let Ok(el) = req.xml.parse::<Element>() {
                            out.push(Out::Local(session.full.clone(), el));
                        }
                    }
                }
                Err(e) => {
                    tracing::error!("cannot read subscription requests of {}: {e}", session.bare)
                }
            }
        }
        // The account's own pending requests are sent again, each after
        // its roster push.
        let asked: Vec<&RosterItem> = items.iter().filter(|i| i.ask).collect();
        if !asked.is_empty() {
            let ver = roster_ver(ctx, &session.bare).await;
            for i in asked {
                let Ok(contact) = BareJid::new(&i.jid) else {
                    continue;
                };
                out.extend(self.roster.push_item(ctx, &session.bare, i, ver));
                out.push(Out::Route(subscription_presence(
                    &session.bare,
                    &contact,
                    "subscribe",
                )));
            }
        }
        if priority >= 0 {
            out.extend(offline::deliver(ctx, session).await);
        }
        out
    }

    /// Broadcast unavailable presence: back to the session itself (unless
    /// it is ending), to the account's other available resources, to the
    /// contacts subscribed to it, and to every other entity that got
    /// directed presence from it.
    async fn unavailable(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionRef,
        stanza: &Element,
        reflect: bool,
    ) -> Outs {
        let directed = {
            let mut state = self.state();
            let st = state.entry(session.id).or_default();
            st.available = false;
            std::mem::take(&mut st.directed)
        };
        let current = ctx
            .sessions
            .set_presence(&session.full, session.id, None)
            .is_some();
        let items = self.unblocked(&session.bare, roster_items(ctx, &session.bare).await);
        let mut out = Vec::new();
        // A newer session that took over this resource is not told.
        if reflect && current {
            out.push(Out::Local(
                session.full.clone(),
                addressed(stanza, session.full.as_str()),
            ));
        }
        for (full, _, _) in ctx.sessions.available_resources(&session.bare) {
            if full != session.full {
                out.push(Out::Local(full.clone(), addressed(stanza, full.as_str())));
            }
        }
        out.extend(
            items
                .iter()
                .filter(|i| subscribed_from(i.subscription))
                .map(|i| Out::Route(addressed(stanza, &i.jid))),
        );
        for target in directed {
            if !items
                .iter()
                .any(|i| i.jid == target.to_bare().as_str() && subscribed_from(i.subscription))
            {
                out.push(Out::Route(addressed(stanza, target.as_str())));
            }
        }
        out
    }

    /// Directed presence (available or unavailable, with a `to`).
    fn directed(&self, session: &SessionRef, stanza: &Element, to: Jid) {
        let mut state = self.state();
        let st = state.entry(session.id).or_default();
        match stanza_type(stanza) {
            "" => {
                st.directed.insert(to);
            }
            "unavailable" => {
                st.directed.remove(&to);
            }
            _ => {}
        }
    }

    /// A subscription stanza, sent by a session of `account`
    /// (`Outbound`, RFC 6121 3.1.2, 3.1.5, 3.2.2, 3.3.2, 3.4) or arriving
    /// for it (`Inbound`, 3.1.3, 3.1.6, 3.2.3, 3.3.3). The decisions are
    /// [`subscription::transition`]'s; this carries them out, in order:
    /// the stored request, the roster item (saved and pushed), the
    /// server's answer, the stanza itself, then presence.
    async fn subscription(
        &self,
        ctx: &Ctx<'_>,
        dir: Direction,
        stanza: &Element,
        account: &BareJid,
        contact: &BareJid,
    ) -> Outs {
        let Some(kind) = Kind::from_type(stanza_type(stanza)) else {
            return Vec::new();
        };
        // Subscription stanzas carry bare JIDs both ways.
        let mut stanza = stanza.clone();
        let (from, to) = match dir {
            Direction::Outbound => (account, contact),
            Direction::Inbound => (contact, account),
        };
        set_attr(&mut stanza, "from", from.as_str());
        set_attr(&mut stanza, "to", to.as_str());
        let exists = dir == Direction::Outbound || ctx.account_exists(account).await;
        match subscription::refusal(dir, kind, contact == account, exists) {
            Some(Refusal::Bounce) => {
                return error(
                    &stanza,
                    Cond::BadRequest,
                    Some("Cannot subscribe to oneself"),
                )
            }
            Some(Refusal::Answer(k)) => {
                return vec![Out::Route(subscription_presence(
                    account,
                    contact,
                    k.as_type(),
                ))]
            }
            Some(Refusal::Drop) => return Vec::new(),
            None => {}
        }
        let Some((host, user)) = account_key(account) else {
            return Vec::new();
        };
        let existing = load_item(ctx, account, contact).await;
        let mut item = existing.unwrap_or_else(|| new_item(contact));
        let state = State {
            subscription: item.subscription,
            ask: item.ask,
            approved: item.approved,
            pending_in: has_sub_request(ctx, host, user, contact).await,
        };
        let t = subscription::transition(dir, kind, state);
        match t.request {
            Request::Keep => {}
            Request::Remove => {
                take_sub_request(ctx, host, user, contact).await;
            }
            Request::Store => {
                let req = StoredStanza {
                    xml: String::from(&stanza),
                    stamp: Utc::now(),
                };
                if let Err(e) = ctx
                    .store
                    .sub_request_put(host, user, contact.as_str(), &req)
                    .await
                {
                    tracing::error!("cannot store subscription request for {account}: {e}");
                }
            }
        }
        let mut out = Vec::new();
        if t.acknowledge {
            out.push(Out::Route(
                Element::builder("presence", CLIENT)
                    .attr(nc("type"), "unavailable")
                    .attr(nc("from"), account.as_str())
                    .attr(nc("to"), contact.as_str())
                    .build(),
            ));
        }
        // An arriving stanza reaches the account's resources before the
        // roster push its change makes; a sent one goes out after it.
        if t.deliver && dir == Direction::Inbound {
            out.extend(to_available(ctx, account, &stanza));
        }
        if t.changed {
            item.subscription = t.next.subscription;
            item.ask = t.next.ask;
            item.approved = t.next.approved;
            out.extend(self.save_item(ctx, account, &item).await);
        } else if dir == Direction::Outbound && kind == Kind::Subscribe {
            // A request already made is pushed again as it stands.
            let ver = roster_ver(ctx, account).await;
            out.extend(self.roster.push_item(ctx, account, &item, ver));
        }
        if let Some(k) = t.reply {
            out.push(Out::Route(subscription_presence(
                account,
                contact,
                k.as_type(),
            )));
        }
        if t.deliver && dir == Direction::Outbound {
            out.push(Out::Route(stanza));
        }
        if let Some(p) = t.send_presence {
            let unavailable = p == PresenceAction::Unavailable;
            let presences = presences_of(ctx, account, contact.as_str(), unavailable);
            // A contact asking again, already subscribed, learns that the
            // user is offline when no resource is available.
            if presences.is_empty() && dir == Direction::Inbound && kind == Kind::Subscribe {
                out.push(Out::Route(
                    Element::builder("presence", CLIENT)
                        .attr(nc("type"), "unavailable")
                        .attr(nc("from"), account.as_str())
                        .attr(nc("to"), contact.as_str())
                        .build(),
                ));
            }
            out.extend(presences);
        }
        out
    }

    /// A presence probe for a local account (RFC 6121 4.3.2): the prober
    /// gets the account's current presences if it is subscribed to them.
    async fn probe(&self, ctx: &Ctx<'_>, from: &Jid, account: &BareJid) -> Outs {
        let prober = from.to_bare();
        let allowed = prober == *account
            || load_item(ctx, account, &prober)
                .await
                .is_some_and(|i| subscribed_from(i.subscription));
        if !allowed {
            return Vec::new();
        }
        let out = presences_of(ctx, account, from.as_str(), false);
        if out.is_empty() && prober != *account {
            return vec![Out::Route(
                Element::builder("presence", CLIENT)
                    .attr(nc("type"), "unavailable")
                    .attr(nc("from"), account.as_str())
                    .attr(nc("to"), from.as_str())
                    .build(),
            )];
        }
        out
    }
}

#[async_trait]
impl Module for Presence {
    fn name(&self) -> &'static str {
        "presence"
    }

    fn declare(&self, d: &mut Declarations) {
        d.hook(Hook::Outbound)
            .hook(Hook::Inbound)
            .hook(Hook::Session)
            .server_feature(PRE_APPROVAL)
            .stream_feature(Element::builder("sub", PRE_APPROVAL).build());
    }

    async fn outbound(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionRef,
        stanza: &Element,
        out: &mut Outs,
    ) -> Flow {
        if stanza.name() != "presence" {
            return Flow::Continue;
        }
        let to = stanza.attr("to").and_then(|t| Jid::new(t).ok());
        match to {
            None => out.extend(self.broadcast(ctx, session, stanza).await),
            Some(to) => match stanza_type(stanza) {
                "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" => out.extend(
                    self.subscription(
                        ctx,
                        Direction::Outbound,
                        stanza,
                        &session.bare,
                        &to.to_bare(),
                    )
                    .await,
                ),
                "" | "unavailable" => {
                    self.directed(session, stanza, to);
                    out.push(Out::Route(stanza.clone()));
                }
                _ => out.push(Out::Route(stanza.clone())),
            },
        }
        Flow::Stop
    }

    async fn inbound(
        &self,
        ctx: &Ctx<'_>,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        out: &mut Outs,
    ) -> Flow {
        if stanza.name() != "presence" {
            return Flow::Continue;
        }
        let account = to.to_bare();
        match stanza_type(stanza) {
            "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" => {
                let contact = from.to_bare();
                out.extend(
                    self.subscription(ctx, Direction::Inbound, stanza, &account, &contact)
                        .await,
                );
            }
            "probe" => out.extend(self.probe(ctx, from, &account).await),
            _ => return Flow::Continue,
        }
        Flow::Stop
    }

    /// The unavailable presence a session sends when it ends without having
    /// sent one: to subscribed contacts and every entity that got directed
    /// presence.
    async fn ended(&self, ctx: &Ctx<'_>, session: &SessionRef) -> Outs {
        let (available, directed) = match self.state().get(&session.id) {
            Some(st) => (st.available, !st.directed.is_empty()),
            None => (false, false),
        };
        let p = Element::builder("presence", CLIENT)
            .attr(nc("type"), "unavailable")
            .attr(nc("from"), session.full.as_str())
            .build();
        let out = if available {
            self.unavailable(ctx, session, &p, false).await
        } else if directed {
            // Never available: only those it sent presence to are told.
            let targets = match self.state().get_mut(&session.id) {
                Some(st) => std::mem::take(&mut st.directed),
                None => HashSet::new(),
            };
            let items = roster_items(ctx, &session.bare).await;
            targets
                .into_iter()
                .filter(|t| {
                    !items
                        .iter()
                        .any(|i| i.jid == t.to_bare().as_str() && subscribed_from(i.subscription))
                })
                .map(|t| Out::Route(addressed(&p, t.as_str())))
                .collect()
        } else {
            Vec::new()
        };
        self.state().remove(&session.id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_parsing() {
        let p = |s: &str| -> Element {
            format!("<presence xmlns='jabber:client'>{s}</presence>")
                .parse()
                .unwrap()
        };
        assert_eq!(priority_of(&p("<priority>5</priority>")), 5);
        assert_eq!(priority_of(&p("<priority>-1</priority>")), -1);
        assert_eq!(priority_of(&p("<priority>+7</priority>")), 7);
        assert_eq!(priority_of(&p("<priority>999</priority>")), 127);
        assert_eq!(priority_of(&p("<priority>-999</priority>")), -128);
        assert_eq!(
            priority_of(&p("<priority>123456789012345678901234567890</priority>")),
            127
        );
        assert_eq!(priority_of(&p("<priority>x</priority>")), 0);
        assert_eq!(priority_of(&p("<priority>5x</priority>")), 0);
        assert_eq!(priority_of(&p("<priority>-</priority>")), 0);
        assert_eq!(priority_of(&p("<priority></priority>")), 0);
        assert_eq!(priority_of(&p("")), 0);
    }

    #[test]
    fn directed_presence_is_tracked() {
        let presence = Presence::new(Arc::new(Roster::default()), Arc::new(Blocking::new(10)));
        let session = SessionRef::new(SessionId::for_tests(1), jid::FullJid::new("a@h/r").unwrap());
        let to = Jid::new("room@conference.h/nick").unwrap();
        let p: Element = "<presence xmlns='jabber:client' to='room@conference.h/nick'/>"
            .parse()
            .unwrap();
        presence.directed(&session, &p, to.clone());
        assert!(presence.state()[&session.id].directed.contains(&to));
        let u: Element =
            "<presence xmlns='jabber:client' type='unavailable' to='room@conference.h/nick'/>"
                .parse()
                .unwrap();
        presence.directed(&session, &u, to.clone());
        assert!(!presence.state()[&session.id].directed.contains(&to));
    }
}
