//! Behaviour of each group-chat feature, through the public API of the
//! state machine (stanzas in, effects out).

mod common;

use common::{codes, error_condition, item, muc_user, World, SERVICE};
use conclave_muc::{CreationPolicy, Room};

const R: &str = "romeo@localhost/a";
const J: &str = "juliet@localhost/b";
const N: &str = "nurse@localhost/c";
const ROOM: &str = "room@conference.localhost";

fn presences_from<'a>(els: &'a [minidom::Element], from: &str) -> Vec<&'a minidom::Element> {
    els.iter()
        .filter(|e| e.name() == "presence" && e.attr("from") == Some(from))
        .collect()
}

// ------------------------------------------------------------- creation

#[test]
fn creation_gives_owner_201_and_locks_until_configured() {
    let mut w = World::new();
    w.join(R, "room", "Romeo");
    let got = w.take(R);
    assert_eq!(codes(&got[0]), ["201", "110"]);
    assert_eq!(item(&got[0]).unwrap().attr("affiliation"), Some("owner"));
    assert_eq!(
        got[1]
            .get_child("subject", "jabber:client")
            .map(|s| s.text()),
        Some(String::new())
    );
    // locked: others are refused with item-not-found, by the room, with the muc <x/>
    w.join(J, "room", "Juliet");
    let err = &w.take(J)[0];
    assert_eq!(err.attr("type"), Some("error"));
    assert_eq!(error_condition(err).as_deref(), Some("item-not-found"));
    assert_eq!(
        err.get_child("error", "jabber:client").unwrap().attr("by"),
        Some(ROOM)
    );
    assert!(err
        .get_child("x", "http://jabber.org/protocol/muc")
        .is_some());
    // the first submit unlocks, result then 104
    w.configure(R, "room", "");
    let got = w.take(R);
    assert_eq!(got[0].attr("type"), Some("result"));
    assert_eq!(codes(&got[1]), ["104"]);
    w.join(J, "room", "Juliet");
    assert!(w.take(J).iter().all(|e| e.attr("type") != Some("error")));
}

#[test]
fn cancelling_the_initial_form_makes_an_instant_room() {
    let mut w = World::new();
    w.join(R, "room", "Romeo");
    w.send(R, &format!("<iq id='c' type='set' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='cancel'/></query></iq>"));
    assert_eq!(w.take(R).last().unwrap().attr("type"), Some("result"));
    w.join(J, "room", "Juliet");
    assert_eq!(
        codes(presences_from(&w.take(J), &format!("{ROOM}/Juliet"))[0]),
        ["110"]
    );
}

#[test]
fn service_admins_own_every_room_and_creation_policy_applies() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.join("admin@localhost/x", "room", "Admin");
    let me = presences_from(&w.take("admin@localhost/x"), &format!("{ROOM}/Admin"))[0].clone();
    assert_eq!(item(&me).unwrap().attr("affiliation"), Some("owner"));
    assert_eq!(item(&me).unwrap().attr("role"), Some("moderator"));
    // a remote user may not create a room by default
    w.join("stranger@elsewhere/x", "other", "S");
    let err = &w.take("stranger@elsewhere/x")[0];
    assert_eq!(error_condition(err).as_deref(), Some("forbidden"));
    assert!(!w.rooms.contains_key(
        &"other@conference.localhost"
            .parse::<jid::BareJid>()
            .unwrap()
    ));
    // only admins
    let mut c = common::config();
    c.creation = CreationPolicy::Admins;
    let mut w = World::with_config(c);
    w.join(R, "r2", "Romeo");
    assert_eq!(error_condition(&w.take(R)[0]).as_deref(), Some("forbidden"));
    w.join("admin@localhost/x", "r2", "Admin");
    assert_eq!(codes(&w.take("admin@localhost/x")[0]), ["201", "110"]);
}

// ------------------------------------------------------------- joining

#[test]
fn join_sequence_others_self_history_subject() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.send(
        R,
        &format!("<message id='m1' type='groupchat' to='{ROOM}'><body>one</body></message>"),
    );
    w.send(
        R,
        &format!("<message type='groupchat' to='{ROOM}'><subject>Plans</subject></message>"),
    );
    w.take(R);
    w.join(J, "room", "Juliet");
    let got = w.take(J);
    let kinds: Vec<String> = got
        .iter()
        .map(|e| format!("{} {}", e.name(), e.attr("from").unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            format!("presence {ROOM}/Romeo"),
            format!("presence {ROOM}/Juliet"),
            format!("message {ROOM}/Romeo"),
            format!("message {ROOM}/Romeo"),
        ]
    );
    // semi-anonymous: Juliet does not see Romeo's real JID; her own x is item + 110
    assert_eq!(item(&got[0]).unwrap().attr("jid"), None);
    let x = muc_user(&got[1]).unwrap();
    assert_eq!(x.children().count(), 2);
    assert_eq!(item(&got[1]).unwrap().attr("jid"), Some(J));
    assert!(got[2].get_child("delay", "urn:xmpp:delay").is_some());
    assert_eq!(got[2].attr("id"), Some("m1"));
    assert_eq!(
        got[3].get_child("subject", "jabber:client").unwrap().text(),
        "Plans"
    );
    // Romeo, a moderator, sees Juliet's real JID
    let r = w.take(R);
    assert_eq!(item(&r[0]).unwrap().attr("jid"), Some(J));
    assert!(r[0]
        .get_child("occupant-id", "urn:xmpp:occupant-id:0")
        .is_some());
}

#[test]
fn non_anonymous_logged_rooms_and_changed_nicks_have_status_codes() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.configure(R, "room", "<field var='muc#roomconfig_whois'><value>anyone</value></field><field var='muc#roomconfig_enablelogging'><value>1</value></field>");
    let r = w.take(R);
    assert_eq!(codes(&r[1]), ["104", "170", "172"]);
    // "Ｊuliet" (full-width J) is changed by resourceprep? It is kept; use a NBSP that maps to a space.
    w.send(J, &format!("<presence to='{ROOM}/Jul\u{00A0}iet'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let got = w.take(J);
    let me = presences_from(&got, &format!("{ROOM}/Jul iet"))[0];
    assert_eq!(codes(me), ["100", "170", "210", "110"]);
    // non-anonymous: everyone sees real JIDs
    assert_eq!(item(&got[0]).unwrap().attr("jid"), Some(R));
}

#[test]
fn join_errors() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    // nick in use
    w.join(J, "room", "Romeo");
    assert_eq!(error_condition(&w.take(J)[0]).as_deref(), Some("conflict"));
    // password
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_roomsecret'><value>s3</value></field>",
    );
    w.join(J, "room", "Juliet");
    let e = &w.take(J)[0];
    assert_eq!(error_condition(e).as_deref(), Some("not-authorized"));
    assert_eq!(
        e.get_child("error", "jabber:client").unwrap().attr("type"),
        Some("auth")
    );
    w.configure(R, "room", "<field var='muc#roomconfig_roomsecret'/><field var='muc#roomconfig_membersonly'><value>1</value></field>");
    w.join(J, "room", "Juliet");
    assert_eq!(
        error_condition(&w.take(J)[0]).as_deref(),
        Some("registration-required")
    );
    // outcast
    w.send(R, &format!("<iq id='b' type='set' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='nurse@localhost'><reason>spam</reason></item></query></iq>"));
    w.join(N, "room", "Nurse");
    assert_eq!(error_condition(&w.take(N)[0]).as_deref(), Some("forbidden"));
    // invalid nick
    w.send(J, &format!("<presence to='{ROOM}/'/>"));
    assert!(w.take(J).iter().all(|e| error_condition(e).is_some()));
}

#[test]
fn full_room_is_service_unavailable() {
    let mut c = common::config();
    c.max_occupants = 1;
    let mut w = World::with_config(c);
    w.instant_room(R, "room", "Romeo");
    w.join(J, "room", "Juliet");
    let e = &w.take(J)[0];
    assert_eq!(error_condition(e).as_deref(), Some("service-unavailable"));
}

#[test]
fn sessions_of_one_user_share_a_nick() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.join(J, "room", "Juliet");
    w.join("juliet@localhost/phone", "room", "Juliet");
    let phone = w.take("juliet@localhost/phone");
    assert!(phone.iter().all(|e| e.attr("type") != Some("error")));
    assert_eq!(
        codes(presences_from(&phone, &format!("{ROOM}/Juliet"))[0]),
        ["110"]
    );
    // a groupchat message reaches both sessions
    w.take(J);
    w.send(
        R,
        &format!("<message type='groupchat' to='{ROOM}'><body>hi</body></message>"),
    );
    assert_eq!(w.take(J).len(), 1);
    assert_eq!(w.take("juliet@localhost/phone").len(), 1);
    // one session leaving keeps the occupant for the others
    w.take(R);
    w.send(
        J,
        &format!("<presence type='unavailable' to='{ROOM}/Juliet'/>"),
    );
    assert!(presences_from(&w.take(R), &format!("{ROOM}/Juliet")).is_empty());
}

// ------------------------------------------------------------- presence

#[test]
fn leaving_nick_change_and_status_updates() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.join(J, "room", "Juliet");
    w.take(R);
    w.take(J);
    w.send(
        J,
        &format!("<presence to='{ROOM}/Juliet'><show>away</show></presence>"),
    );
    let r = w.take(R);
    assert_eq!(
        r[0].get_child("show", "jabber:client").unwrap().text(),
        "away"
    );
    w.take(J);
    w.send(J, &format!("<presence to='{ROOM}/Jules'/>"));
    let r = w.take(R);
    assert_eq!(r[0].attr("type"), Some("unavailable"));
    assert_eq!(r[0].attr("from"), Some(&*format!("{ROOM}/Juliet")));
    assert_eq!(codes(&r[0]), ["303"]);
    assert_eq!(item(&r[0]).unwrap().attr("nick"), Some("Jules"));
    assert_eq!(r[1].attr("from"), Some(&*format!("{ROOM}/Jules")));
    assert_eq!(r[1].attr("type"), None);
    let j = w.take(J);
    assert_eq!(codes(&j[0]), ["303", "110"]);
    assert_eq!(codes(&j[1]), ["110"]);
    // taking a nick in use is a conflict
    w.send(J, &format!("<presence to='{ROOM}/Romeo'/>"));
    assert_eq!(error_condition(&w.take(J)[0]).as_deref(), Some("conflict"));
    // leaving: unavailable to everyone who saw her, 110 to herself
    w.send(
        J,
        &format!("<presence type='unavailable' to='{ROOM}/Jules'><status>bye</status></presence>"),
    );
    let r = w.take(R);
    assert_eq!(r[0].attr("type"), Some("unavailable"));
    assert_eq!(item(&r[0]).unwrap().attr("role"), Some("none"));
    assert_eq!(
        r[0].get_child("status", "jabber:client").unwrap().text(),
        "bye"
    );
    assert_eq!(codes(&w.take(J)[0]), ["110"]);
}

#[test]
fn bounced_errors_remove_the_occupant_with_333_and_are_never_answered() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.join(J, "room", "Juliet");
    w.take(R);
    w.take(J);
    w.send(J, &format!("<message type='error' to='{ROOM}/Romeo'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    let r = w.take(R);
    assert_eq!(codes(&r[0]), ["333"]);
    assert_eq!(r[0].attr("type"), Some("unavailable"));
    // an error from a non-occupant gets nothing back
    w.send(N, &format!("<iq type='error' id='z' to='{ROOM}'/>"));
    assert!(w.take(N).is_empty());
}

#[test]
fn presence_probe_returns_current_presence() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.join(J, "room", "Juliet");
    w.take(J);
    w.send(J, &format!("<presence type='probe' to='{ROOM}/Romeo'/>"));
    let got = w.take(J);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attr("from"), Some(&*format!("{ROOM}/Romeo")));
    assert_eq!(item(&got[0]).unwrap().attr("role"), Some("moderator"));
}

// ------------------------------------------------------------- messages

#[test]
fn groupchat_private_messages_and_subjects() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.join(J, "room", "Juliet");
    w.take(R);
    w.take(J);
    // non-occupants may not send
    w.send(
        N,
        &format!("<message type='groupchat' to='{ROOM}'><body>x</body></message>"),
    );
    assert_eq!(
        error_condition(&w.take(N)[0]).as_deref(),
        Some("not-acceptable")
    );
    // subject plus body is a message, not a subject change (and Juliet may speak)
    w.send(J, &format!("<message type='groupchat' id='k' to='{ROOM}'><subject>S</subject><body>b</body></message>"));
    let r = w.take(R);
    assert_eq!(r[0].attr("id"), Some("k"));
    w.take(J);
    // participants may not change the subject by default
    w.send(
        J,
        &format!("<message type='groupchat' to='{ROOM}'><subject>S</subject></message>"),
    );
    assert_eq!(error_condition(&w.take(J)[0]).as_deref(), Some("forbidden"));
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_changesubject'><value>1</value></field>",
    );
    w.take(R);
    w.take(J);
    w.send(
        J,
        &format!("<message type='groupchat' to='{ROOM}'><subject>S2</subject></message>"),
    );
    assert_eq!(
        w.take(R)[0]
            .get_child("subject", "jabber:client")
            .unwrap()
            .text(),
        "S2"
    );
    // private message, with a spoofed occupant-id stripped
    w.take(J);
    w.send(J, &format!("<message type='chat' to='{ROOM}/Romeo'><body>psst</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='fake'/></message>"));
    let pm = &w.take(R)[0];
    assert_eq!(pm.attr("from"), Some(&*format!("{ROOM}/Juliet")));
    assert!(muc_user(pm).is_some());
    let ids: Vec<_> = pm
        .children()
        .filter(|c| c.name() == "occupant-id")
        .collect();
    assert_eq!(ids.len(), 1);
    assert_ne!(ids[0].attr("id"), Some("fake"));
    // PMs can be turned off
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_allowpm'><value>none</value></field>",
    );
    w.send(
        J,
        &format!("<message type='chat' to='{ROOM}/Romeo'><body>psst</body></message>"),
    );
    assert_eq!(
        error_condition(w.take(J).last().unwrap()).as_deref(),
        Some("not-allowed")
    );
    // PM to nobody
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_allowpm'><value>anyone</value></field>",
    );
    w.take(J);
    w.send(
        J,
        &format!("<message type='chat' to='{ROOM}/Ghost'><body>?</body></message>"),
    );
    assert_eq!(
        error_condition(&w.take(J)[0]).as_deref(),
        Some("item-not-found")
    );
}

#[test]
fn history_honours_maxstanzas_maxchars_seconds_since() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    for i in 0..5 {
        w.now = common::at(i * 100).now;
        w.send(
            R,
            &format!("<message type='groupchat' to='{ROOM}'><body>m{i}</body></message>"),
        );
    }
    w.now = common::at(1000).now;
    let bodies = |w: &mut World, jid: &str, hist: &str| -> Vec<String> {
        w.send(jid, &format!("<presence to='{ROOM}/{}'><x xmlns='http://jabber.org/protocol/muc'>{hist}</x></presence>", jid.split('@').next().unwrap()));
        let got = w.take(jid);
        w.send(jid, &format!("<presence type='unavailable' to='{ROOM}'/>"));
        w.take(jid);
        got.iter()
            .filter_map(|e| e.get_child("body", "jabber:client"))
            .map(|b| b.text())
            .collect()
    };
    assert_eq!(bodies(&mut w, J, ""), ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(bodies(&mut w, J, "<history maxstanzas='2'/>"), ["m3", "m4"]);
    assert_eq!(
        bodies(&mut w, J, "<history maxstanzas='0'/>"),
        Vec::<String>::new()
    );
    assert_eq!(bodies(&mut w, J, "<history seconds='650'/>"), ["m4"]);
    assert_eq!(
        bodies(&mut w, J, "<history since='2023-11-14T22:17:30Z'/>"),
        ["m3", "m4"]
    );
    assert_eq!(
        bodies(&mut w, J, "<history maxchars='0'/>"),
        Vec::<String>::new()
    );
    assert_eq!(
        bodies(&mut w, J, "<history maxstanzas='999999999999999999999'/>").len(),
        5
    );
}

// ------------------------------------------------------------- configuration

#[test]
fn config_form_and_errors() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.send(R, &format!("<iq id='g' type='get' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"));
    let form = w.take(R).remove(0);
    let x = form
        .get_child("query", "http://jabber.org/protocol/muc#owner")
        .unwrap()
        .get_child("x", "jabber:x:data")
        .unwrap();
    let vars: Vec<&str> = x.children().filter_map(|f| f.attr("var")).collect();
    for v in [
        "muc#roomconfig_roomname",
        "muc#roomconfig_roomdesc",
        "muc#roomconfig_persistentroom",
        "muc#roomconfig_publicroom",
        "muc#roomconfig_membersonly",
        "muc#roomconfig_moderatedroom",
        "muc#roomconfig_passwordprotectedroom",
        "muc#roomconfig_roomsecret",
        "muc#roomconfig_whois",
        "muc#roomconfig_changesubject",
        "muc#roomconfig_allowinvites",
        "muc#roomconfig_allowpm",
        "muc#roomconfig_presencebroadcast",
        "muc#roomconfig_historylength",
        "muc#roomconfig_defaulthistorymessages",
        "muc#roomconfig_roomlang",
    ] {
        assert!(vars.contains(&v), "missing {v}");
    }
    w.join(J, "room", "Juliet");
    w.take(J);
    w.send(J, &format!("<iq id='g' type='get' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"));
    assert_eq!(error_condition(&w.take(J)[0]).as_deref(), Some("forbidden"));
    w.take(R);
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_whois'><value>everybody</value></field>",
    );
    assert_eq!(
        error_condition(&w.take(R)[0]).as_deref(),
        Some("not-acceptable")
    );
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_historylength'><value>lots</value></field>",
    );
    assert_eq!(
        error_condition(&w.take(R)[0]).as_deref(),
        Some("not-acceptable")
    );
    w.send(R, &format!("<iq id='f' type='set' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:wrong</value></field></x></query></iq>"));
    assert_eq!(
        error_condition(&w.take(R)[0]).as_deref(),
        Some("bad-request")
    );
    // becoming members-only removes non-members with 322
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_membersonly'><value>1</value></field>",
    );
    let j = w.take(J);
    assert_eq!(codes(&j[0]), ["104"]);
    assert_eq!(codes(&j[1]), ["322", "110"]);
}

#[test]
fn destroying_a_room() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.join(J, "room", "Juliet");
    w.take(J);
    w.take(R);
    w.send(R, &format!("<iq id='d' type='set' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='new@conference.localhost'><reason>moving</reason></destroy></query></iq>"));
    let j = w.take(J);
    assert_eq!(j[0].attr("type"), Some("unavailable"));
    let d = muc_user(&j[0])
        .unwrap()
        .get_child("destroy", "http://jabber.org/protocol/muc#user")
        .unwrap();
    assert_eq!(d.attr("jid"), Some("new@conference.localhost"));
    assert_eq!(d.children().next().unwrap().text(), "moving");
    let r = w.take(R);
    assert_eq!(r.last().unwrap().attr("type"), Some("result"));
    assert_eq!(w.log.last().map(String::as_str), Some("remove"));
    assert!(w.rooms.is_empty());
}

// ------------------------------------------------------------- admin

fn admin_set(w: &mut World, from: &str, items: &str) -> Vec<minidom::Element> {
    w.send(from, &format!("<iq id='a' type='set' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'>{items}</query></iq>"));
    w.take(from)
}

#[test]
fn affiliation_lists_permissions_and_reasons() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    let got = admin_set(&mut w, R, "<item affiliation='member' jid='a@localhost'/><item affiliation='outcast' jid='b@localhost'><reason>rude</reason></item><item affiliation='admin' jid='juliet@localhost'/>");
    assert_eq!(got.last().unwrap().attr("type"), Some("result"));
    w.send(R, &format!("<iq id='l' type='get' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast'/></query></iq>"));
    let list = w.take(R).remove(0);
    let it = list
        .get_child("query", "http://jabber.org/protocol/muc#admin")
        .unwrap()
        .children()
        .next()
        .unwrap()
        .clone();
    assert_eq!(it.attr("jid"), Some("b@localhost"));
    assert_eq!(it.children().next().unwrap().text(), "rude");
    // an admin may not touch owners or make admins
    w.join(J, "room", "Juliet");
    w.take(J);
    assert_eq!(
        error_condition(
            &admin_set(
                &mut w,
                J,
                "<item affiliation='none' jid='romeo@localhost'/>"
            )[0]
        )
        .as_deref(),
        Some("not-allowed")
    );
    assert_eq!(
        error_condition(&admin_set(&mut w, J, "<item affiliation='admin' jid='c@localhost'/>")[0])
            .as_deref(),
        Some("not-allowed")
    );
    // a non-affiliated user may change nothing nor read lists
    w.join(N, "room", "Nurse");
    w.take(N);
    assert_eq!(
        error_condition(&admin_set(&mut w, N, "<item affiliation='member' jid='c@localhost'/>")[0])
            .as_deref(),
        Some("forbidden")
    );
    w.send(N, &format!("<iq id='l' type='get' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query></iq>"));
    assert_eq!(error_condition(&w.take(N)[0]).as_deref(), Some("forbidden"));
    // the last owner stays
    let e = admin_set(
        &mut w,
        R,
        "<item affiliation='admin' jid='romeo@localhost'/>",
    );
    assert_eq!(
        error_condition(e.last().unwrap()).as_deref(),
        Some("conflict")
    );
    // bad input
    assert_eq!(
        error_condition(&admin_set(&mut w, R, "<item affiliation='king' jid='c@localhost'/>")[0])
            .as_deref(),
        Some("bad-request")
    );
    assert_eq!(
        error_condition(&admin_set(&mut w, R, "<item affiliation='member' jid='@@bad'/>")[0])
            .as_deref(),
        Some("jid-malformed")
    );
    assert_eq!(
        error_condition(&admin_set(&mut w, R, "")[0]).as_deref(),
        Some("bad-request")
    );
}

#[test]
fn members_may_read_lists_in_non_anonymous_rooms() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    admin_set(
        &mut w,
        R,
        "<item affiliation='member' jid='juliet@localhost'/>",
    );
    w.join(J, "room", "Juliet");
    w.take(J);
    let get = format!("<iq id='l' type='get' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query></iq>");
    w.send(J, &get);
    assert_eq!(error_condition(&w.take(J)[0]).as_deref(), Some("forbidden"));
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_whois'><value>anyone</value></field>",
    );
    w.take(J);
    w.send(J, &get);
    assert_eq!(w.take(J)[0].attr("type"), Some("result"));
}

#[test]
fn kick_ban_voice_and_lost_membership() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_moderatedroom'><value>1</value></field>",
    );
    w.join(J, "room", "Juliet");
    w.join(N, "room", "Nurse");
    w.take(R);
    let j = w.take(J);
    assert_eq!(
        item(presences_from(&j, &format!("{ROOM}/Juliet"))[0])
            .unwrap()
            .attr("role"),
        Some("visitor")
    );
    // visitors may not speak
    w.send(
        J,
        &format!("<message type='groupchat' to='{ROOM}'><body>hi</body></message>"),
    );
    assert_eq!(error_condition(&w.take(J)[0]).as_deref(), Some("forbidden"));
    // voice
    admin_set(&mut w, R, "<item role='participant' nick='Juliet'/>");
    let j = w.take(J);
    assert_eq!(item(&j[0]).unwrap().attr("role"), Some("participant"));
    assert_eq!(
        item(&j[0]).unwrap().children().next().unwrap().attr("nick"),
        Some("Romeo")
    );
    // kick with reason: actor jid to moderators only
    w.take(N);
    let r = admin_set(
        &mut w,
        R,
        "<item role='none' nick='Juliet'><reason>out</reason></item>",
    );
    assert_eq!(codes(&r[0]), ["307"]);
    let it = item(&r[0]).unwrap();
    let actor = it.children().next().unwrap();
    assert_eq!(
        (actor.name(), actor.attr("jid"), actor.attr("nick")),
        ("actor", Some(R), Some("Romeo"))
    );
    assert_eq!(it.children().nth(1).unwrap().text(), "out");
    let n = w.take(N);
    assert_eq!(
        item(&n[0]).unwrap().children().next().unwrap().attr("jid"),
        None
    );
    let j = w.take(J);
    assert_eq!(codes(&j[0]), ["307", "110"]);
    // ban
    let r = admin_set(
        &mut w,
        R,
        "<item affiliation='outcast' jid='nurse@localhost'><reason>bad</reason></item>",
    );
    assert_eq!(codes(&r[0]), ["301"]);
    assert_eq!(codes(&w.take(N)[0]), ["301", "110"]);
    // moderator grant needs an admin; lost membership in members-only (321)
    w.join(J, "room", "Juliet");
    admin_set(
        &mut w,
        R,
        "<item affiliation='member' jid='juliet@localhost'/>",
    );
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_membersonly'><value>1</value></field>",
    );
    w.take(J);
    w.take(R);
    let r = admin_set(
        &mut w,
        R,
        "<item affiliation='none' jid='juliet@localhost'/>",
    );
    assert_eq!(codes(&r[0]), ["321"]);
}

#[test]
fn out_of_room_changes_are_announced_to_everyone_in_non_anonymous_rooms() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.join(J, "room", "Juliet");
    w.take(J);
    admin_set(
        &mut w,
        R,
        "<item affiliation='member' jid='nurse@localhost'/>",
    );
    assert!(w.take(J).is_empty(), "semi-anonymous: only moderators");
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_whois'><value>anyone</value></field>",
    );
    w.take(J);
    w.take(R);
    let r = admin_set(
        &mut w,
        R,
        "<item affiliation='admin' jid='nurse@localhost' nick='Nursie'/>",
    );
    assert_eq!(r[0].name(), "message");
    let it = item(&r[0]).unwrap();
    assert_eq!(it.attrs().iter().count(), 2, "only jid and affiliation");
    assert_eq!(w.take(J)[0].name(), "message");
}

// ------------------------------------------------------------- registration

#[test]
fn registration_and_unregistration() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    let reg = |nick: &str| {
        format!("<iq id='r' type='set' to='{ROOM}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick'><value>{nick}</value></field></x></query></iq>")
    };
    w.send(J, &reg("Juliet"));
    assert_eq!(
        error_condition(&w.take(J)[0]).as_deref(),
        Some("registration-required")
    );
    admin_set(
        &mut w,
        R,
        "<item affiliation='member' jid='juliet@localhost'/>",
    );
    // missing nickname
    w.send(J, &reg(""));
    assert_eq!(
        error_condition(&w.take(J)[0]).as_deref(),
        Some("not-acceptable")
    );
    w.send(J, &reg("Juliet"));
    assert_eq!(w.take(J)[0].attr("type"), Some("result"));
    // Romeo cannot take that nick
    w.send(R, &reg("Juliet"));
    assert_eq!(error_condition(&w.take(R)[0]).as_deref(), Some("conflict"));
    // unregister: none, announced
    w.send(J, &format!("<iq id='u' type='set' to='{ROOM}'><query xmlns='jabber:iq:register'><remove/></query></iq>"));
    assert_eq!(w.take(J)[0].attr("type"), Some("result"));
    let r = w.take(R);
    assert_eq!(item(&r[0]).unwrap().attr("affiliation"), Some("none"));
    w.join(N, "room", "Juliet");
    assert!(w.take(N).iter().all(|e| e.attr("type") != Some("error")));
}

// ------------------------------------------------------------- invitations

#[test]
fn mediated_invites_declines_and_membership() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_membersonly'><value>1</value></field>",
    );
    w.take(R);
    w.send(R, &format!("<message to='{ROOM}'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='juliet@localhost'><reason>come</reason></invite></x></message>"));
    let inv = w.take("juliet@localhost").remove(0);
    let i = muc_user(&inv)
        .unwrap()
        .get_child("invite", "http://jabber.org/protocol/muc#user")
        .unwrap();
    assert_eq!(i.attr("from"), Some(R));
    assert_eq!(i.children().next().unwrap().text(), "come");
    // the invitee became a member and may enter
    w.join(J, "room", "Juliet");
    assert!(w.take(J).iter().all(|e| e.attr("type") != Some("error")));
    // decline goes back to the inviter
    w.send(N, &format!("<message to='{ROOM}'><x xmlns='http://jabber.org/protocol/muc#user'><decline to='romeo@localhost'/></x></message>"));
    let d = w.take("romeo@localhost").remove(0);
    assert_eq!(
        muc_user(&d)
            .unwrap()
            .get_child("decline", "http://jabber.org/protocol/muc#user")
            .unwrap()
            .attr("from"),
        Some(N)
    );
    // participants may not invite unless allowed
    w.send(J, &format!("<message to='{ROOM}'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='x@localhost'/></x></message>"));
    assert_eq!(error_condition(&w.take(J)[0]).as_deref(), Some("forbidden"));
    // direct invites (XEP-0249) pass through as private messages
    w.take(R);
    w.send(
        J,
        &format!(
            "<message to='{ROOM}/Romeo'><x xmlns='jabber:x:conference' jid='{ROOM}'/></message>"
        ),
    );
    let r = w.take(R);
    assert!(r[0].get_child("x", "jabber:x:conference").is_some());
}

// ------------------------------------------------------------- discovery

#[test]
fn disco_of_service_and_room() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.join(R, "hidden", "Romeo");
    w.configure(
        R,
        "hidden",
        "<field var='muc#roomconfig_publicroom'><value>0</value></field>",
    );
    w.take(R);
    w.send(J, &format!("<iq id='i' type='get' to='{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"));
    let items = w.take(J).remove(0);
    let jids: Vec<&str> = items
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .unwrap()
        .children()
        .filter_map(|c| c.attr("jid"))
        .collect();
    assert_eq!(jids, [ROOM]);
    w.send(J, &format!("<iq id='i' type='get' to='{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    let info = w.take(J).remove(0);
    let q = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert_eq!(
        q.get_child("identity", "http://jabber.org/protocol/disco#info")
            .unwrap()
            .attr("category"),
        Some("conference")
    );
    w.send(
        J,
        &format!("<iq id='i' type='set' to='{SERVICE}'><query xmlns='jabber:iq:version'/></iq>"),
    );
    assert_eq!(
        error_condition(&w.take(J)[0]).as_deref(),
        Some("service-unavailable")
    );
    w.send(J, &format!("<iq id='i' type='get' to='{ROOM}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    let info = w.take(J).remove(0);
    let q = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    let feats: Vec<&str> = q.children().filter_map(|c| c.attr("var")).collect();
    for f in [
        "http://jabber.org/protocol/muc",
        "muc_temporary",
        "muc_public",
        "muc_open",
        "muc_unmoderated",
        "muc_unsecured",
        "muc_semianonymous",
        "urn:xmpp:occupant-id:0",
    ] {
        assert!(feats.contains(&f), "missing {f}");
    }
    assert!(q.get_child("x", "jabber:x:data").is_some());
    // missing rooms
    w.send(J, &format!("<iq id='i' type='get' to='nope@{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    assert_eq!(
        error_condition(&w.take(J)[0]).as_deref(),
        Some("item-not-found")
    );
}

// ------------------------------------------------------------- persistence

#[test]
fn persistent_rooms_survive_a_restart_temporary_ones_vanish() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    assert!(w.saved.is_empty(), "temporary rooms are not saved");
    w.configure(R, "room", "<field var='muc#roomconfig_persistentroom'><value>1</value></field><field var='muc#roomconfig_roomname'><value>Balcony</value></field>");
    admin_set(&mut w, R, "<item affiliation='member' jid='juliet@localhost' nick='Juliet'/><item affiliation='outcast' jid='nurse@localhost'><reason>noisy</reason></item>");
    let json = w.saved.values().next().expect("saved").clone();
    // the room stays when empty
    w.send(R, &format!("<presence type='unavailable' to='{ROOM}'/>"));
    assert!(!w.log.contains(&"remove".to_string()));
    // restart
    let svc = std::sync::Arc::new(common::config());
    let room = Room::restore(ROOM.parse().unwrap(), &json, svc).unwrap();
    assert_eq!(room.listing().unwrap().name.as_deref(), Some("Balcony"));
    let mut w2 = World::new();
    w2.rooms.insert(ROOM.parse().unwrap(), room);
    w2.join(N, "room", "Nurse");
    assert_eq!(
        error_condition(&w2.take(N)[0]).as_deref(),
        Some("forbidden")
    );
    w2.join("x@localhost/y", "room", "Juliet");
    assert_eq!(
        error_condition(&w2.take("x@localhost/y")[0]).as_deref(),
        Some("conflict")
    );
    w2.join(R, "room", "Romeo");
    let me = presences_from(&w2.take(R), &format!("{ROOM}/Romeo"))[0].clone();
    assert_eq!(item(&me).unwrap().attr("affiliation"), Some("owner"));
    assert!(Room::restore(
        ROOM.parse().unwrap(),
        "{not json",
        std::sync::Arc::new(common::config())
    )
    .is_err());
    // temporary room: removed when the last occupant leaves
    let mut w3 = World::new();
    w3.instant_room(R, "tmp", "Romeo");
    w3.send(
        R,
        &format!("<presence type='unavailable' to='tmp@{SERVICE}'/>"),
    );
    assert_eq!(w3.log.last().map(String::as_str), Some("remove"));
    assert!(w3.rooms.is_empty());
}

// ------------------------------------------------------------- robustness

#[test]
fn garbage_never_panics_and_gets_errors() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    let junk = [
        format!("<iq type='get' to='{ROOM}'/>"),
        format!("<iq type='set' id='1' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'><item/></query></iq>"),
        format!("<iq type='set' id='1' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'><item role='none'/></query></iq>"),
        format!("<iq type='set' id='1' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'><item role='boss' nick='Romeo'/></query></iq>"),
        format!("<iq type='set' id='1' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"),
        format!("<iq type='set' id='1' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='weird'/></query></iq>"),
        format!("<iq type='set' id='1' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='@@'/></query></iq>"),
        format!("<iq type='set' id='1' to='{ROOM}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'/></query></iq>"),
        format!("<iq type='get' id='1' to='{ROOM}'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>"),
        format!("<iq type='get' id='1' to='{ROOM}'><unknown xmlns='urn:x'/></iq>"),
        format!("<message to='{ROOM}'><x xmlns='http://jabber.org/protocol/muc#user'><invite/></x></message>"),
        format!("<message to='{ROOM}'><x xmlns='http://jabber.org/protocol/muc#user'/></message>"),
        format!("<message to='{ROOM}'><body>no type</body></message>"),
        format!("<message type='groupchat' to='{ROOM}/Romeo'><body>x</body></message>"),
        format!("<presence to='{ROOM}/Romeo'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='-1' maxchars='x' seconds='1e99' since='yesterday'/></x></presence>"),
        format!("<presence type='subscribe' to='{ROOM}/Romeo'/>"),
        format!("<presence to='{ROOM}'/>"),
    ];
    for j in &junk {
        w.send(R, j);
    }
    let got = w.take(R);
    let errors = got
        .iter()
        .filter(|e| e.attr("type") == Some("error"))
        .count();
    assert!(
        errors >= 14,
        "expected errors, got {errors}: {:?}",
        got.iter().map(String::from).collect::<Vec<_>>()
    );
    // stanzas without a usable sender are dropped
    let mut el = common::xml(&format!(
        "<message type='groupchat' to='{ROOM}'><body>x</body></message>"
    ));
    el.set_attr(
        minidom::rxml::Namespace::NONE,
        minidom::rxml::NcName::try_from("from").unwrap(),
        "@@@".to_string(),
    );
    w.inject(el);
    w.inject(common::xml(&format!("<presence to='{ROOM}/X'/>")));
    // the room still works
    w.send(
        R,
        &format!("<message type='groupchat' to='{ROOM}'><body>still here</body></message>"),
    );
    assert_eq!(w.take(R).len(), 1);
}

// ------------------------------------------------------------- shutdown

#[test]
fn shutdown_sends_each_session_its_own_332_and_keeps_the_saved_state() {
    let mut w = World::new();
    w.instant_room(R, "room", "Romeo");
    w.configure(
        R,
        "room",
        "<field var='muc#roomconfig_persistentroom'><value>1</value></field>",
    );
    w.join(J, "room", "Juliet");
    // A second session of Juliet's under the same nick.
    let j2 = "juliet@localhost/other";
    w.join(j2, "room", "Juliet");
    w.take(R);
    w.take(J);
    w.take(j2);
    let room: jid::BareJid = ROOM.parse().unwrap();
    let saved = w.saved.get(&room).cloned();
    assert!(saved.is_some(), "a persistent room was saved");

    let effects = w.rooms.get_mut(&room).unwrap().shutdown();
    let mut sent = Vec::new();
    for e in effects {
        match e {
            conclave_muc::Effect::Send(s) => sent.push(s),
            other => panic!("shutdown must only send, got {other:?}"),
        }
    }
    let nick_of = |to: &str| if to == R { "Romeo" } else { "Juliet" };
    let mut recipients: Vec<&str> = sent.iter().map(|s| s.attr("to").unwrap()).collect();
    recipients.sort();
    assert_eq!(recipients, [J, j2, R]);
    for s in &sent {
        let to = s.attr("to").unwrap();
        assert_eq!(s.name(), "presence");
        assert_eq!(s.attr("type"), Some("unavailable"));
        assert_eq!(
            s.attr("from"),
            Some(format!("{ROOM}/{}", nick_of(to)).as_str())
        );
        assert_eq!(codes(s), ["332", "110"]);
        assert_eq!(item(s).unwrap().attr("role"), Some("none"));
    }
    assert!(w.rooms[&room].is_empty());
    assert_eq!(w.saved.get(&room).cloned(), saved);
    // A second shutdown has nobody left to tell.
    assert!(w.rooms.get_mut(&room).unwrap().shutdown().is_empty());
}
