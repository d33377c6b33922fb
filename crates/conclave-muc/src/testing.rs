//! Unit-test helpers: a room with an owner in it, a fixed clock, and a
//! comparison of elements as they look once serialised and parsed again
//! (what a client receives).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use minidom::Element;

use crate::room::Room;
use crate::{Context, CreationPolicy, Effect, ServiceConfig};

pub(crate) const ROOM: &str = "room@conference.localhost";
pub(crate) const ROMEO: &str = "romeo@localhost/balcony";
pub(crate) const JULIET: &str = "juliet@localhost/garden";

pub(crate) fn service() -> Arc<ServiceConfig> {
    Arc::new(ServiceConfig {
        domain: "conference.localhost".into(),
        admins: vec!["admin@localhost".parse().unwrap()],
        creation: CreationPolicy::LocalUsers,
        local_hosts: vec!["localhost".into()],
        max_history: 50,
        max_history_bytes: 1 << 20,
        max_occupants: 0,
    })
}

/// 2023-11-14T22:13:20Z plus `secs`.
pub(crate) fn ctx(secs: i64) -> Context {
    Context {
        now: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
    }
}

pub(crate) fn parse(s: &str) -> Element {
    s.parse()
        .unwrap_or_else(|e| panic!("bad XML in test: {e}: {s}"))
}

/// `stanza` (in `jabber:client`) sent by `from`.
pub(crate) fn from(from: &str, stanza: &str) -> Element {
    let mut el = parse(stanza);
    crate::xml::set_attr(&mut el, "from", from);
    el
}

/// An unlocked room owned by Romeo (in it as "Romeo"), with a fixed salt
/// for occupant ids; the effects of its creation are dropped.
pub(crate) fn open_room() -> Room {
    let mut room = Room::new(ROOM.parse().unwrap(), service());
    room.salt = "salt".into();
    room.handle(
        from(
            ROMEO,
            "<presence xmlns='jabber:client' to='room@conference.localhost/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        ),
        &ctx(0),
    );
    room.locked = false;
    room
}

/// The stanzas `effects` deliver, in order (a broadcast once, without `to`).
pub(crate) fn stanzas(effects: Vec<Effect>) -> Vec<Element> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send(s) | Effect::Broadcast { stanza: s, .. } => Some(s),
            _ => None,
        })
        .collect()
}

/// `actual` is `expected` once serialised and parsed again.
#[track_caller]
pub(crate) fn assert_wire(actual: &Element, expected: &str) {
    let got = parse(&String::from(actual));
    let want = parse(expected);
    assert!(
        got == want,
        "on the wire:\n  got:  {}\n  want: {}",
        String::from(&got),
        String::from(&want)
    );
}
