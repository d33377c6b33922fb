//! Test helpers: parse XML strings into stanzas, a small in-memory world
//! (service + rooms + clients) that routes the effects of the state
//! machine to the clients' queues, and a replayer that drives that world
//! with a scansion script. Parsing and matching are `conclave-scansion`'s:
//! one implementation of the format.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use conclave_muc::{Context, CreationPolicy, Effect, Room, RoomListing, Service, ServiceConfig};
use conclave_scansion::matcher::match_stanza;
use conclave_scansion::script::{parse_stanzas, Action, VarKind};
use conclave_scansion::Script;
use jid::{BareJid, Jid};
use minidom::Element;

pub const SERVICE: &str = "conference.localhost";

/// Parses one stanza written with `jabber:client` as default namespace.
pub fn xml(s: &str) -> Element {
    parse_stanzas(s)
        .unwrap_or_else(|e| panic!("bad XML {s}: {e}"))
        .into_iter()
        .next()
        .expect("one element")
}

pub fn config() -> ServiceConfig {
    ServiceConfig {
        domain: SERVICE.into(),
        admins: vec!["admin@localhost".parse().unwrap()],
        creation: CreationPolicy::LocalUsers,
        local_hosts: vec!["localhost".into()],
        max_history: 50,
        max_history_bytes: 1 << 20,
        max_occupants: 0,
    }
}

pub fn at(secs: i64) -> Context {
    Context {
        now: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
    }
}

/// Service, rooms, stored state, and what each full JID received.
pub struct World {
    pub service: Service,
    pub rooms: HashMap<BareJid, Room>,
    pub saved: BTreeMap<BareJid, String>,
    pub inbox: HashMap<String, VecDeque<Element>>,
    pub now: DateTime<Utc>,
    /// Every effect in order, for order-sensitive assertions.
    pub log: Vec<String>,
}

impl World {
    pub fn new() -> World {
        World::with_config(config())
    }

    pub fn with_config(c: ServiceConfig) -> World {
        World {
            service: Service::new(Arc::new(c)),
            rooms: HashMap::new(),
            saved: BTreeMap::new(),
            inbox: HashMap::new(),
            now: at(0).now,
            log: Vec::new(),
        }
    }

    pub fn ctx(&self) -> Context {
        Context { now: self.now }
    }

    /// `from` sends `stanza` (the server stamps `from`).
    pub fn send(&mut self, from: &str, stanza: &str) {
        self.send_element(from, xml(stanza));
    }

    /// `from` sends `el` (the server stamps `from`).
    pub fn send_element(&mut self, from: &str, mut el: Element) {
        el.set_attr(
            minidom::rxml::Namespace::NONE,
            minidom::rxml::NcName::try_from("from").unwrap(),
            from.to_string(),
        );
        self.inject(el);
    }

    pub fn inject(&mut self, el: Element) {
        let Some(to) = el.attr("to").and_then(|t| Jid::new(t).ok()) else {
            return;
        };
        if to.domain().as_str() != SERVICE {
            return;
        }
        let ctx = self.ctx();
        if to.node().is_none() {
            let listings: Vec<RoomListing> =
                self.rooms.values().filter_map(|r| r.listing()).collect();
            for out in self.service.handle_domain_stanza(el, &listings, &ctx) {
                self.deliver(out);
            }
            return;
        }
        let bare = to.to_bare();
        if !self.rooms.contains_key(&bare) {
            match self.service.on_missing_room(&el, &ctx) {
                Ok(room) => {
                    self.rooms.insert(bare.clone(), room);
                }
                Err(replies) => {
                    for r in replies {
                        self.deliver(r);
                    }
                    return;
                }
            }
        }
        let effects = self.rooms.get_mut(&bare).unwrap().handle(el, &ctx);
        for e in effects {
            match e {
                Effect::Send(s) => self.deliver(s),
                Effect::Broadcast { stanza, to } => {
                    assert!(stanza.attr("to").is_none(), "broadcast stanza has no to");
                    for jid in to {
                        let mut copy = stanza.clone();
                        copy.set_attr(
                            minidom::rxml::Namespace::NONE,
                            minidom::rxml::NcName::try_from("to").unwrap(),
                            jid.to_string(),
                        );
                        self.deliver(copy);
                    }
                }
                Effect::Save(json) => {
                    self.log.push("save".into());
                    self.saved.insert(bare.clone(), json);
                }
                Effect::Remove => {
                    self.log.push("remove".into());
                    self.rooms.remove(&bare);
                    self.saved.remove(&bare);
                }
            }
        }
    }

    pub fn deliver(&mut self, el: Element) {
        assert_eq!(
            el.ns(),
            "jabber:client",
            "outgoing stanza namespace: {}",
            String::from(&el)
        );
        let to = el.attr("to").expect("outgoing stanza has to").to_owned();
        assert!(
            el.attr("from").is_some(),
            "outgoing stanza has from: {}",
            String::from(&el)
        );
        self.log.push(format!("{} {}", to, String::from(&el)));
        self.inbox.entry(to).or_default().push_back(el);
    }

    /// Everything `jid` received so far, emptying its queue.
    pub fn take(&mut self, jid: &str) -> Vec<Element> {
        self.inbox
            .get_mut(jid)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// Shortcut: join `room` as `nick`.
    pub fn join(&mut self, from: &str, room: &str, nick: &str) {
        self.send(from, &format!("<presence to='{room}@{SERVICE}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    }

    /// Creates an instant room owned by `owner` joined as `nick`.
    pub fn instant_room(&mut self, owner: &str, room: &str, nick: &str) {
        self.join(owner, room, nick);
        self.configure(owner, room, "");
        self.take(owner);
    }

    /// Submits a config form with the given raw fields.
    pub fn configure(&mut self, owner: &str, room: &str, fields: &str) {
        self.send(owner, &format!(
            "<iq id='cfg' type='set' to='{room}@{SERVICE}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>{fields}</x></query></iq>"
        ));
    }
}

/// Finds the `x` muc#user payload of a stanza.
pub fn muc_user(el: &Element) -> Option<&Element> {
    el.get_child("x", "http://jabber.org/protocol/muc#user")
}

/// The status codes in a stanza's muc#user payload, in order.
pub fn codes(el: &Element) -> Vec<String> {
    muc_user(el)
        .map(|x| {
            x.children()
                .filter(|c| c.name() == "status")
                .filter_map(|c| c.attr("code").map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn item(el: &Element) -> Option<&Element> {
    muc_user(el).and_then(|x| x.get_child("item", "http://jabber.org/protocol/muc#user"))
}

/// The defined condition of an error stanza.
pub fn error_condition(el: &Element) -> Option<String> {
    let e = el.get_child("error", "jabber:client")?;
    e.children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        .map(|c| c.name().to_owned())
}

// ---------------------------------------------------------------- scansion

/// Replays a script against the state machine: what each client sends is
/// fed to the world, what it receives must match. A client that
/// disconnects leaves the rooms it sent presence to. Panics with a report
/// on the first step that fails.
pub fn replay(path: &str, loose: bool) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let script = Script::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The full JID of each client: as declared, or with a fixed resource.
    let full: HashMap<String, String> = script
        .clients()
        .iter()
        .map(|c| {
            let j = if c.jid.resource().is_some() {
                c.jid.to_string()
            } else {
                format!("{}/scansion", c.jid)
            };
            (c.name.clone(), j)
        })
        .collect();
    let lookup = |name: &str, kind: VarKind| -> Option<String> {
        let decl = script.client(name)?;
        Some(match kind {
            VarKind::BareJid => decl.bare_jid().to_string(),
            VarKind::FullJid => full.get(name)?.clone(),
        })
    };
    let mut world = World::new();
    let mut joined: HashMap<String, Vec<String>> = HashMap::new();
    let mut connected: HashMap<String, bool> = HashMap::new();
    for step in &script.steps {
        let n = &step.client;
        let me = &full[n];
        let here = format!("{path}:{} ({})", step.line, step.describe());
        match &step.action {
            Action::Connect => {
                connected.insert(n.clone(), true);
            }
            Action::Disconnect => {
                connected.insert(n.clone(), false);
                for room in joined.remove(n).unwrap_or_default() {
                    world.send(me, &format!("<presence type='unavailable' to='{room}'/>"));
                }
            }
            Action::Send(block) => {
                if connected.get(n) != Some(&true) {
                    continue;
                }
                let text = block
                    .resolve(lookup)
                    .unwrap_or_else(|e| panic!("{here}: {e}"));
                for el in parse_stanzas(&text).unwrap_or_else(|e| panic!("{here}: {e}")) {
                    if el.name() == "presence" {
                        if let Some(room) = el
                            .attr("to")
                            .map(|t| t.split('/').next().unwrap_or(t).to_owned())
                        {
                            let rooms = joined.entry(n.clone()).or_default();
                            if !rooms.contains(&room) {
                                rooms.push(room);
                            }
                        }
                    }
                    world.send_element(me, el);
                }
            }
            Action::Receive(block) => {
                let text = block
                    .resolve(lookup)
                    .unwrap_or_else(|e| panic!("{here}: {e}"));
                for exp in parse_stanzas(&text).unwrap_or_else(|e| panic!("{here}: {e}")) {
                    let queue = world.inbox.entry(me.clone()).or_default();
                    let mut passed = Vec::new();
                    let mut found = false;
                    while let Some(got) = queue.pop_front() {
                        match match_stanza(&exp, &got, loose) {
                            Ok(()) => {
                                found = true;
                                break;
                            }
                            Err(m) => passed.push(format!("{}\n    ({m})", String::from(&got))),
                        }
                    }
                    assert!(
                        found,
                        "{here} failed.\nexpected: {}\npassed over:\n{}",
                        String::from(&exp),
                        passed.join("\n")
                    );
                }
            }
            Action::ReceiveNothing => {
                let queue = world.inbox.entry(me.clone()).or_default();
                assert!(
                    queue.is_empty(),
                    "{here}: expected nothing, got {:?}",
                    queue.iter().map(String::from).collect::<Vec<_>>()
                );
            }
        }
    }
}
