//! Test helpers: parse XML strings into stanzas, a small in-memory world
//! (service + rooms + clients) that routes the effects of the state
//! machine to the clients' queues, and a replayer for scansion scripts
//! with the matching rules of the seed scripts' README.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use conclave_muc::{Context, CreationPolicy, Effect, Room, RoomListing, Service, ServiceConfig};
use jid::{BareJid, Jid};
use minidom::Element;

pub const SERVICE: &str = "conference.localhost";

/// Parses one stanza written with `jabber:client` as default namespace.
pub fn xml(s: &str) -> Element {
    let wrapped = format!(
        "<wrapper xmlns='jabber:client'>{}</wrapper>",
        s.replace("scansion:strict=", "scansion-strict=")
    );
    let root: Element = wrapped
        .parse()
        .unwrap_or_else(|e| panic!("bad XML {s}: {e}"));
    root.children().next().cloned().expect("one element")
}

pub fn config() -> ServiceConfig {
    ServiceConfig {
        domain: SERVICE.into(),
        admins: vec!["admin@localhost".parse().unwrap()],
        creation: CreationPolicy::LocalUsers,
        local_hosts: vec!["localhost".into()],
        max_history: 50,
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
        let mut el = xml(stanza);
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

// ---------------------------------------------------------------- matching

/// Does `got` match `exp` under the seed scripts' rules?
pub fn matches(
    exp: &Element,
    got: &Element,
    parent_ns: &str,
    inherited_strict: bool,
    loose: bool,
) -> bool {
    let strict = match exp.attr("scansion-strict") {
        Some("true") => true,
        Some("false") => false,
        _ => inherited_strict || (!loose && exp.ns() != parent_ns),
    };
    if exp.name() != got.name() || exp.ns() != got.ns() {
        return false;
    }
    let exp_attrs: Vec<(String, String)> = exp
        .attrs()
        .iter()
        .map(|((_, n), v)| (n.to_string(), v.clone()))
        .filter(|(n, _)| n != "scansion-strict")
        .collect();
    for (n, v) in &exp_attrs {
        match got.attr(n.as_str()) {
            Some(g) if v == "{scansion:any}" || g == v => {}
            _ => return false,
        }
    }
    if strict && got.attrs().iter().count() != exp_attrs.len() {
        return false;
    }
    let exp_children: Vec<&Element> = exp.children().collect();
    let got_children: Vec<&Element> = got.children().collect();
    let ns = exp.ns();
    if strict {
        if exp_children.len() != got_children.len() {
            return false;
        }
        if !exp_children
            .iter()
            .zip(&got_children)
            .all(|(e, g)| matches(e, g, &ns, true, loose))
        {
            return false;
        }
    } else if !exp_children.iter().all(|e| {
        got_children
            .iter()
            .any(|g| matches(e, g, &ns, false, loose))
    }) {
        return false;
    }
    if exp_children.is_empty() && exp.text().trim() != got.text().trim() {
        return false;
    }
    true
}

// ---------------------------------------------------------------- scansion

enum Step {
    Connects(String),
    Disconnects(String),
    Sends(String, String),
    Receives(String, String),
    ReceivesNothing(String),
}

pub struct Script {
    clients: Vec<(String, String)>,
    steps: Vec<Step>,
}

fn indented(line: &str) -> bool {
    line.starts_with('\t') || line.starts_with("  ")
}

pub fn parse_script(text: &str) -> Script {
    let mut clients = Vec::new();
    let mut lines = text.lines().peekable();
    let mut current: Option<String> = None;
    for line in lines.by_ref() {
        let t = line.trim();
        if t.len() >= 3 && t.chars().all(|c| c == '-') {
            break;
        }
        if let Some(name) = t.strip_prefix("[Client] ") {
            current = Some(name.trim().to_owned());
        } else if let (Some(name), Some(j)) = (&current, t.strip_prefix("jid:")) {
            clients.push((name.clone(), j.trim().to_owned()));
        }
    }
    let mut steps = Vec::new();
    while let Some(line) = lines.next() {
        let t = line.trim_end();
        if t.trim().is_empty() || t.starts_with('#') || t.starts_with("--") || t.starts_with("//") {
            continue;
        }
        let mut body = String::new();
        while let Some(next) = lines.peek() {
            if indented(next) {
                body.push_str(next);
                body.push('\n');
                lines.next();
            } else {
                break;
            }
        }
        if let Some(n) = t.strip_suffix(" connects") {
            steps.push(Step::Connects(n.into()));
        } else if let Some(n) = t.strip_suffix(" disconnects") {
            steps.push(Step::Disconnects(n.into()));
        } else if let Some(n) = t.strip_suffix(" sends:") {
            steps.push(Step::Sends(n.into(), body));
        } else if let Some(n) = t.strip_suffix(" receives: nothing") {
            steps.push(Step::ReceivesNothing(n.into()));
        } else if let Some(n) = t.strip_suffix(" receives:") {
            steps.push(Step::Receives(n.into(), body));
        } else {
            panic!("unknown scansion line: {t}");
        }
    }
    Script { clients, steps }
}

/// Splits a `sends`/`receives` body into stanzas.
fn stanzas(body: &str) -> Vec<Element> {
    let wrapped = format!(
        "<wrapper xmlns='jabber:client'>{}</wrapper>",
        body.replace("scansion:strict=", "scansion-strict=")
    );
    let root: Element = wrapped
        .parse()
        .unwrap_or_else(|e| panic!("bad XML in script: {e}\n{body}"));
    root.children().cloned().collect()
}

/// Replays a script against the state machine; panics with a report on
/// the first step that fails.
pub fn replay(path: &str, loose: bool) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let script = parse_script(&text);
    let full: HashMap<String, String> = script
        .clients
        .iter()
        .map(|(n, j)| {
            (
                n.clone(),
                if j.contains('/') {
                    j.clone()
                } else {
                    format!("{j}/scansion")
                },
            )
        })
        .collect();
    let subst = |s: &str| -> String {
        let mut s = s.to_owned();
        for (name, j) in &script.clients {
            s = s.replace(&format!("${{{name}'s full JID}}"), &full[name]);
            s = s.replace(&format!("${{{name}'s JID}}"), j.split('/').next().unwrap());
        }
        s
    };
    let mut world = World::new();
    let mut joined: HashMap<String, Vec<String>> = HashMap::new();
    let mut connected: HashMap<String, bool> = HashMap::new();
    for (i, step) in script.steps.iter().enumerate() {
        match step {
            Step::Connects(n) => {
                connected.insert(n.clone(), true);
            }
            Step::Disconnects(n) => {
                connected.insert(n.clone(), false);
                for room in joined.remove(n).unwrap_or_default() {
                    let el = format!("<presence type='unavailable' to='{room}'/>");
                    world.send(&full[n], &el);
                }
            }
            Step::Sends(n, body) => {
                if connected.get(n) != Some(&true) {
                    continue;
                }
                for el in stanzas(&subst(body)) {
                    if el.name() == "presence" {
                        if let Some(to) = el.attr("to") {
                            let room = to.split('/').next().unwrap().to_owned();
                            let rooms = joined.entry(n.clone()).or_default();
                            if !rooms.contains(&room) {
                                rooms.push(room);
                            }
                        }
                    }
                    world.send(&full[n], &String::from(&el));
                }
            }
            Step::Receives(n, body) => {
                for exp in stanzas(&subst(body)) {
                    let queue = world.inbox.entry(full[n].clone()).or_default();
                    let mut passed = Vec::new();
                    let mut found = false;
                    while let Some(got) = queue.pop_front() {
                        if matches(&exp, &got, "jabber:client", false, loose) {
                            found = true;
                            break;
                        }
                        passed.push(String::from(&got));
                    }
                    assert!(
                        found,
                        "{path}: step {} ({n} receives) failed.\nexpected: {}\npassed over:\n{}",
                        i + 1,
                        String::from(&exp),
                        passed.join("\n")
                    );
                }
            }
            Step::ReceivesNothing(n) => {
                let queue = world.inbox.entry(full[n].clone()).or_default();
                assert!(
                    queue.is_empty(),
                    "{path}: {n} expected nothing, got {:?}",
                    queue.iter().map(String::from).collect::<Vec<_>>()
                );
            }
        }
    }
}
