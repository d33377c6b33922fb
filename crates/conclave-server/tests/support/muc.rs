//! Group chat from the client's side: room and occupant addresses, the
//! muc#user payload of a stanza, joining a room and creating one.

use minidom::Element;

use super::Client;

pub const SERVICE: &str = "conference.localhost";
pub const CLIENT: &str = "jabber:client";
pub const MUC: &str = "http://jabber.org/protocol/muc";
pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const DATA: &str = "jabber:x:data";
pub const DELAY: &str = "urn:xmpp:delay";

pub fn room_jid(room: &str) -> String {
    format!("{room}@{SERVICE}")
}

pub fn occupant(room: &str, nick: &str) -> String {
    format!("{room}@{SERVICE}/{nick}")
}

/// A stanza's muc#user payload.
pub fn muc_x(el: &Element) -> Option<&Element> {
    el.get_child("x", MUC_USER)
}

/// The status codes of a stanza's muc#user payload, in order.
pub fn codes(el: &Element) -> Vec<String> {
    muc_x(el)
        .map(|x| {
            x.children()
                .filter(|c| c.is("status", MUC_USER))
                .filter_map(|c| c.attr("code").map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a stanza's muc#user payload has this status code.
pub fn has_status(el: &Element, code: &str) -> bool {
    codes(el).iter().any(|c| c == code)
}

/// The item of a stanza's muc#user payload.
pub fn item(el: &Element) -> &Element {
    muc_x(el)
        .and_then(|x| x.get_child("item", MUC_USER))
        .unwrap_or_else(|| panic!("no muc#user item in {}", String::from(el)))
}

/// A data-form field with one value.
pub fn field(var: &str, value: &str) -> String {
    format!("<field var='{var}'><value>{value}</value></field>")
}

/// What a successful join delivered, in order.
pub struct Joined {
    /// The joiner's own presence (status 110).
    pub me: Element,
    /// Other occupants' presences.
    pub others: Vec<Element>,
    /// History messages.
    pub history: Vec<Element>,
    /// The subject message that ends the join sequence (from the room, or
    /// from the occupant who set the subject).
    pub subject: Element,
}

/// Joins `room` as `nick` (with `extra` inside the muc `<x/>`); reads the
/// join sequence up to the subject, or returns the error presence.
pub async fn try_join(
    c: &mut Client,
    room: &str,
    nick: &str,
    extra: &str,
) -> Result<Joined, Element> {
    let me_jid = occupant(room, nick);
    let room_bare = room_jid(room);
    c.send(&format!(
        "<presence to='{me_jid}'><x xmlns='{MUC}'>{extra}</x></presence>"
    ))
    .await;
    let mut me = None;
    let mut others = Vec::new();
    let mut history = Vec::new();
    loop {
        let el = c.next().await.expect("stream open during a join");
        let from = el.attr("from").unwrap_or("");
        if el.name() == "presence" && from == me_jid && el.attr("type") == Some("error") {
            return Err(el);
        }
        if el.name() == "presence" && codes(&el).iter().any(|c| c == "110") {
            me = Some(el);
        } else if el.name() == "presence" && from.starts_with(&format!("{room_bare}/")) {
            others.push(el);
        } else if el.name() == "message"
            && (from == room_bare || from.starts_with(&format!("{room_bare}/")))
            && el.get_child("subject", CLIENT).is_some()
            && el.get_child("body", CLIENT).is_none()
        {
            let me = me.expect("own presence before the subject");
            return Ok(Joined {
                me,
                others,
                history,
                subject: el,
            });
        } else if el.name() == "message" && el.get_child("delay", DELAY).is_some() {
            history.push(el);
        }
    }
}

/// Joins `room` as `nick`; fails the test if the room refuses.
pub async fn join(c: &mut Client, room: &str, nick: &str) -> Joined {
    match try_join(c, room, nick, "").await {
        Ok(j) => j,
        Err(e) => panic!("joining {room} as {nick} failed: {}", String::from(&e)),
    }
}

/// Creates `room` (joining as `nick`, status 201) and submits the
/// configuration form with `fields`, which unlocks it.
pub async fn create_room(c: &mut Client, room: &str, nick: &str, fields: &[String]) {
    let j = join(c, room, nick).await;
    assert!(
        codes(&j.me).contains(&"201".to_owned()),
        "{room} was not created: {}",
        String::from(&j.me)
    );
    let r = configure(c, room, fields).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
}

/// Submits the room configuration form with `fields`; returns the answer.
pub async fn configure(c: &mut Client, room: &str, fields: &[String]) -> Element {
    let id = format!("cfg-{room}");
    c.iq(
        &format!(
            "<iq type='set' id='{id}' to='{}'><query xmlns='{MUC_OWNER}'><x xmlns='{DATA}' type='submit'>{}{}</x></query></iq>",
            room_jid(room),
            field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"),
            fields.concat()
        ),
        &id,
    )
    .await
}
