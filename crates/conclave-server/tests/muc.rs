//! Group chat through the real server: clients on sockets, the router, the
//! room tasks and the store. Persistence across a restart (and changes
//! refused when the store cannot save them), temporary rooms,
//! history, private messages, kicks and bans, members-only rooms and
//! invitations, destruction, the service's room list, leaving by
//! disconnecting, the creation policy, shutdown (status 332) and the stanza
//! errors for what a user may not do.

mod support;

use std::time::Duration;

use minidom::Element;
use support::muc::{
    codes, configure, create_room, field, item, join, muc_x, occupant, room_jid, try_join, CLIENT,
    DATA, DELAY, MUC_OWNER, MUC_USER, SERVICE,
};
use support::{error_condition, server_with, server_with_config, Client, TestServer};

const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

// ----------------------------------------------------------- stanza reading

fn reason(el: &Element) -> Option<String> {
    el.get_child("reason", MUC_USER)
        .or_else(|| el.get_child("reason", MUC_ADMIN))
        .map(|r| r.text())
}

fn body(el: &Element) -> Option<String> {
    el.get_child("body", CLIENT).map(|b| b.text())
}

fn is_unavailable_from(e: &Element, from: &str) -> bool {
    e.name() == "presence" && e.attr("from") == Some(from) && e.attr("type") == Some("unavailable")
}

/// The value of a data-form field in a query's form.
fn form_value(query: &Element, var: &str) -> Option<String> {
    query
        .get_child("x", DATA)?
        .children()
        .find(|f| f.name() == "field" && f.attr("var") == Some(var))?
        .children()
        .find(|v| v.name() == "value")
        .map(|v| v.text())
}

// ----------------------------------------------------------- room actions

/// An admin request (muc#admin) with these items.
async fn admin(c: &mut Client, room: &str, id: &str, kind: &str, items: &str) -> Element {
    c.iq(
        &format!(
            "<iq type='{kind}' id='{id}' to='{}'><query xmlns='{MUC_ADMIN}'>{items}</query></iq>",
            room_jid(room)
        ),
        id,
    )
    .await
}

async fn groupchat(c: &mut Client, room: &str, id: &str, text: &str) {
    c.send(&format!(
        "<message to='{}' type='groupchat' id='{id}'><body>{text}</body></message>",
        room_jid(room)
    ))
    .await;
}

/// The message with this id (an error, a private message...).
async fn message_with_id(c: &mut Client, id: &str) -> Element {
    c.expect("message by id", |e| {
        e.name() == "message" && e.attr("id") == Some(id)
    })
    .await
}

/// A server with `users`, each logged in with their initial as resource
/// and in `room` under their capitalised name: the first created the
/// room (configured with `fields`), the others joined in order. `more`
/// are accounts that exist but are not logged in.
async fn room_with<const N: usize>(
    tag: &str,
    room: &str,
    users: [&str; N],
    more: &[&str],
    fields: &[String],
) -> (TestServer, [Client; N]) {
    let mut accounts = users.to_vec();
    accounts.extend_from_slice(more);
    let s = server_with(tag, &accounts).await;
    let mut clients = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let mut c = s.login(u, Some(&u[..1])).await;
        let nick = format!("{}{}", u[..1].to_uppercase(), &u[1..]);
        if i == 0 {
            create_room(&mut c, room, &nick, fields).await;
        } else {
            join(&mut c, room, &nick).await;
        }
        clients.push(c);
    }
    let Ok(clients) = clients.try_into() else {
        unreachable!("one client per user")
    };
    (s, clients)
}

/// Waits for the room's echo of message `id`.
async fn echo(c: &mut Client, room: &str, id: &str) -> Element {
    let prefix = format!("{}/", room_jid(room));
    c.expect("groupchat echo", |e| {
        e.name() == "message"
            && e.attr("id") == Some(id)
            && e.attr("type") == Some("groupchat")
            && e.attr("from").is_some_and(|f| f.starts_with(&prefix))
    })
    .await
}

async fn disco_items(c: &mut Client, id: &str) -> Vec<(String, Option<String>)> {
    let r = c
        .iq(
            &format!("<iq type='get' id='{id}' to='{SERVICE}'><query xmlns='{DISCO_ITEMS}'/></iq>"),
            id,
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    r.get_child("query", DISCO_ITEMS)
        .expect("disco#items query")
        .children()
        .map(|i| {
            (
                i.attr("jid").unwrap_or_default().to_owned(),
                i.attr("name").map(String::from),
            )
        })
        .collect()
}

/// Waits until the service runs `n` rooms (tasks end asynchronously).
async fn wait_for_room_count(s: &TestServer, n: usize) {
    for _ in 0..100 {
        if s.handle.muc().room_count() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {n} rooms, the service runs {}",
        s.handle.muc().room_count()
    );
}

fn assert_error(el: &Element, from: &str, cond: &str) {
    assert_eq!(el.attr("type"), Some("error"), "{}", String::from(el));
    assert_eq!(el.attr("from"), Some(from), "{}", String::from(el));
    assert_eq!(
        error_condition(el).as_deref(),
        Some(cond),
        "{}",
        String::from(el)
    );
}

// ----------------------------------------------------------- persistence

/// Makes the server's database refuse every write to the saved rooms (as
/// a full disk would), until [`accept_room_writes`].
async fn refuse_room_writes(s: &TestServer) {
    use sqlx::{Connection, Executor};
    let db = s.data_dir.join("conclave.sqlite");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for event in ["INSERT", "UPDATE", "DELETE"] {
        conn.execute(
            format!(
                "CREATE TRIGGER refuse_room_{event} BEFORE {event} ON rooms \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
            .as_str(),
        )
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
}

async fn accept_room_writes(s: &TestServer) {
    use sqlx::{Connection, Executor};
    let db = s.data_dir.join("conclave.sqlite");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for event in ["INSERT", "UPDATE", "DELETE"] {
        conn.execute(format!("DROP TRIGGER refuse_room_{event}").as_str())
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

/// Everything `c` receives up to and including the first element that
/// satisfies `pred`.
async fn read_until(c: &mut Client, what: &str, pred: impl Fn(&Element) -> bool) -> Vec<Element> {
    let mut seen = Vec::new();
    loop {
        let el = c
            .next()
            .await
            .unwrap_or_else(|| panic!("stream closed while waiting for {what}"));
        let done = pred(&el);
        seen.push(el);
        if done {
            return seen;
        }
    }
}

/// `c`'s own presence leaving `room` with status 332.
async fn removed_by_the_system(c: &mut Client, room: &str, nick: &str) -> Vec<Element> {
    let me = occupant(room, nick);
    read_until(c, "status 332", |e| {
        is_unavailable_from(e, &me) && codes(e).contains(&"332".to_owned())
    })
    .await
}

/// The room's configured name, as its owner's configuration form shows it.
async fn room_name(c: &mut Client, room: &str, id: &str) -> Option<String> {
    let r = c
        .iq(
            &format!(
                "<iq type='get' id='{id}' to='{}'><query xmlns='{MUC_OWNER}'/></iq>",
                room_jid(room)
            ),
            id,
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    form_value(r.get_child("query", MUC_OWNER)?, "muc#roomconfig_roomname")
}

/// A new server on the data directory of `s`, which is shut down.
async fn restart(s: TestServer, tag: &str) -> TestServer {
    let data_dir = s.data_dir.clone();
    s.handle.shutdown().await;
    let mut config = support::test_config(tag);
    let _ = std::fs::remove_dir_all(&config.server.data_dir);
    config.server.data_dir = data_dir;
    TestServer::start_with(config).await
}

#[tokio::test]
async fn a_room_change_that_cannot_be_saved_is_refused_and_undone() {
    let (s, [mut a, mut b]) = room_with(
        "muc-save-fails",
        "kept",
        ["alice", "bob"],
        &[],
        &[
            field("muc#roomconfig_persistentroom", "1"),
            field("muc#roomconfig_roomname", "Before"),
        ],
    )
    .await;
    refuse_room_writes(&s).await;

    let r = configure(&mut a, "kept", &[field("muc#roomconfig_roomname", "After")]).await;
    assert_error(&r, &room_jid("kept"), "internal-server-error");
    // Nobody is told of the change; everyone is told they left the room,
    // which is back to its saved state.
    let changed = |e: &Element| e.name() == "message" && codes(e).contains(&"104".to_owned());
    for (c, nick) in [(&mut a, "Alice"), (&mut b, "Bob")] {
        let seen = removed_by_the_system(c, "kept", nick).await;
        assert!(!seen.iter().any(changed), "{nick} was told of the change");
    }
    assert_eq!(
        room_name(&mut a, "kept", "n1").await.as_deref(),
        Some("Before")
    );

    // What survives a restart is what the owner was told.
    let s = restart(s, "muc-save-fails-restarted").await;
    let mut a = s.login("alice", Some("a")).await;
    assert_eq!(
        room_name(&mut a, "kept", "n2").await.as_deref(),
        Some("Before")
    );
    let j = join(&mut a, "kept", "Alice").await;
    assert!(
        !codes(&j.me).contains(&"201".to_owned()),
        "room created anew"
    );

    // Once the database takes writes again, so does the room.
    accept_room_writes(&s).await;
    let r = configure(&mut a, "kept", &[field("muc#roomconfig_roomname", "Later")]).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    assert_eq!(
        room_name(&mut a, "kept", "n3").await.as_deref(),
        Some("Later")
    );
    s.stop().await;
}

#[tokio::test]
async fn a_subject_that_cannot_be_saved_is_refused() {
    let (s, [mut a, mut b]) = room_with(
        "muc-subject-fails",
        "topic",
        ["alice", "bob"],
        &[],
        &[field("muc#roomconfig_persistentroom", "1")],
    )
    .await;
    refuse_room_writes(&s).await;
    a.send(&format!(
        "<message to='{}' type='groupchat' id='subj'><subject>Unsaved</subject></message>",
        room_jid("topic")
    ))
    .await;
    let e = message_with_id(&mut a, "subj").await;
    assert_error(&e, &room_jid("topic"), "internal-server-error");
    let subject = |e: &Element| {
        e.name() == "message"
            && e.get_child("subject", CLIENT)
                .is_some_and(|s| s.text() == "Unsaved")
    };
    for (c, nick) in [(&mut a, "Alice"), (&mut b, "Bob")] {
        let seen = removed_by_the_system(c, "topic", nick).await;
        assert!(!seen.iter().any(subject), "{nick} saw the unsaved subject");
    }
    let j = join(&mut a, "topic", "Alice").await;
    assert!(!subject(&j.subject), "{}", String::from(&j.subject));
    s.stop().await;
}

#[tokio::test]
async fn a_ban_that_cannot_be_saved_is_refused() {
    let (s, [mut a, mut b]) = room_with(
        "muc-ban-fails",
        "club",
        ["alice", "bob"],
        &[],
        &[field("muc#roomconfig_persistentroom", "1")],
    )
    .await;
    refuse_room_writes(&s).await;
    let r = admin(
        &mut a,
        "club",
        "ban",
        "set",
        "<item affiliation='outcast' jid='bob@localhost'/>",
    )
    .await;
    assert_error(&r, &room_jid("club"), "internal-server-error");
    // Bob, whom the room had already let go, is told he is out; Alice too.
    let bob = occupant("club", "Bob");
    read_until(&mut b, "Bob leaving", |e| is_unavailable_from(e, &bob)).await;
    removed_by_the_system(&mut a, "club", "Alice").await;
    // The ban was not saved: Bob may come back.
    accept_room_writes(&s).await;
    let j = join(&mut b, "club", "Bob").await;
    assert_eq!(item(&j.me).attr("affiliation"), Some("none"));
    s.stop().await;
}

#[tokio::test]
async fn a_room_whose_first_save_fails_is_gone() {
    // A temporary room, made persistent while the database refuses it.
    let (s, [mut a]) = room_with("muc-first-save-fails", "fresh", ["alice"], &[], &[]).await;
    refuse_room_writes(&s).await;
    let r = configure(
        &mut a,
        "fresh",
        &[field("muc#roomconfig_persistentroom", "1")],
    )
    .await;
    assert_error(&r, &room_jid("fresh"), "internal-server-error");
    removed_by_the_system(&mut a, "fresh", "Alice").await;
    // Never saved, it is gone, as it would be after a restart.
    wait_for_room_count(&s, 0).await;
    let j = join(&mut a, "fresh", "Alice").await;
    assert!(
        codes(&j.me).contains(&"201".to_owned()),
        "{}",
        String::from(&j.me)
    );
    s.stop().await;
}

#[tokio::test]
async fn destroying_a_room_that_cannot_be_deleted_is_refused() {
    let (s, [mut a]) = room_with(
        "muc-delete-fails",
        "stays",
        ["alice"],
        &[],
        &[field("muc#roomconfig_persistentroom", "1")],
    )
    .await;
    refuse_room_writes(&s).await;
    let r = a
        .iq(
            &format!(
                "<iq type='set' id='d1' to='{}'><query xmlns='{MUC_OWNER}'><destroy/></query></iq>",
                room_jid("stays")
            ),
            "d1",
        )
        .await;
    assert_error(&r, &room_jid("stays"), "internal-server-error");
    // Out of the room in memory, and told so.
    let me = occupant("stays", "Alice");
    read_until(&mut a, "leaving", |e| is_unavailable_from(e, &me)).await;
    let s = restart(s, "muc-delete-fails-restarted").await;
    assert_eq!(s.handle.muc().room_count(), 1);
    let mut a = s.login("alice", Some("a")).await;
    let j = join(&mut a, "stays", "Alice").await;
    assert!(
        !codes(&j.me).contains(&"201".to_owned()),
        "room created anew"
    );
    s.stop().await;
}

#[tokio::test]
async fn persistent_room_survives_a_restart() {
    let config = support::test_config("muc-restart");
    let data_dir = config.server.data_dir.clone();
    let s = server_with_config(config, &["alice", "carol", "dave"]).await;
    let mut a = s.login("alice", Some("a")).await;
    create_room(
        &mut a,
        "keep",
        "Alice",
        &[
            field("muc#roomconfig_persistentroom", "1"),
            field("muc#roomconfig_roomname", "Kept Room"),
            field("muc#roomconfig_historylength", "7"),
        ],
    )
    .await;
    let r = admin(
        &mut a,
        "keep",
        "aff",
        "set",
        "<item affiliation='member' jid='bob@localhost' nick='Bobby'><reason>Trusted friend</reason></item>\
         <item affiliation='outcast' jid='carol@localhost'><reason>Spam</reason></item>",
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    a.send(&format!(
        "<message to='{}' type='groupchat' id='subj'><subject>Plans for Friday</subject></message>",
        room_jid("keep")
    ))
    .await;
    echo(&mut a, "keep", "subj").await;
    s.handle.shutdown().await;

    // A new server on the same data directory.
    let mut config = support::test_config("muc-restart-again");
    let _ = std::fs::remove_dir_all(&config.server.data_dir);
    config.server.data_dir = data_dir;
    let s = TestServer::start_with(config).await;
    assert_eq!(s.handle.muc().room_count(), 1);

    let mut a = s.login("alice", Some("a")).await;
    let j = join(&mut a, "keep", "Alice").await;
    assert!(
        !codes(&j.me).contains(&"201".to_owned()),
        "room created anew"
    );
    assert_eq!(item(&j.me).attr("affiliation"), Some("owner"));
    assert_eq!(
        j.subject.get_child("subject", CLIENT).map(|s| s.text()),
        Some("Plans for Friday".to_owned())
    );

    // The configuration.
    let r = a
        .iq(
            &format!(
                "<iq type='get' id='form' to='{}'><query xmlns='{MUC_OWNER}'/></iq>",
                room_jid("keep")
            ),
            "form",
        )
        .await;
    let q = r.get_child("query", MUC_OWNER).expect("config form");
    assert_eq!(
        form_value(q, "muc#roomconfig_persistentroom").as_deref(),
        Some("1")
    );
    assert_eq!(
        form_value(q, "muc#roomconfig_roomname").as_deref(),
        Some("Kept Room")
    );
    assert_eq!(
        form_value(q, "muc#roomconfig_historylength").as_deref(),
        Some("7")
    );

    // The affiliations, with their reasons and reserved nickname.
    let r = admin(&mut a, "keep", "m", "get", "<item affiliation='member'/>").await;
    let members: Vec<&Element> = r
        .get_child("query", MUC_ADMIN)
        .expect("member list")
        .children()
        .collect();
    assert_eq!(members.len(), 1, "{}", String::from(&r));
    assert_eq!(members[0].attr("jid"), Some("bob@localhost"));
    assert_eq!(members[0].attr("nick"), Some("Bobby"));
    assert_eq!(reason(members[0]).as_deref(), Some("Trusted friend"));
    let r = admin(&mut a, "keep", "o", "get", "<item affiliation='outcast'/>").await;
    let outcasts: Vec<&Element> = r
        .get_child("query", MUC_ADMIN)
        .expect("outcast list")
        .children()
        .collect();
    assert_eq!(outcasts.len(), 1, "{}", String::from(&r));
    assert_eq!(outcasts[0].attr("jid"), Some("carol@localhost"));
    assert_eq!(reason(outcasts[0]).as_deref(), Some("Spam"));

    // ... and they are enforced.
    let mut c = s.login("carol", None).await;
    let e = try_join(&mut c, "keep", "Carol", "")
        .await
        .err()
        .expect("banned");
    assert_error(&e, &occupant("keep", "Carol"), "forbidden");
    let mut d = s.login("dave", None).await;
    let e = try_join(&mut d, "keep", "Bobby", "")
        .await
        .err()
        .expect("reserved");
    assert_error(&e, &occupant("keep", "Bobby"), "conflict");

    // Listed with its name.
    assert_eq!(
        disco_items(&mut d, "items").await,
        [(room_jid("keep"), Some("Kept Room".to_owned()))]
    );
    s.stop().await;
}

#[tokio::test]
async fn temporary_room_vanishes_when_empty() {
    let (s, [mut a, mut b]) = room_with("muc-temp", "brief", ["alice", "bob"], &[], &[]).await;
    assert_eq!(disco_items(&mut b, "i1").await.len(), 1);
    wait_for_room_count(&s, 1).await;

    a.send(&format!(
        "<presence type='unavailable' to='{}'/>",
        occupant("brief", "Alice")
    ))
    .await;
    let left = b
        .expect("Alice leaves", |e| {
            is_unavailable_from(e, &occupant("brief", "Alice"))
        })
        .await;
    assert_eq!(item(&left).attr("role"), Some("none"));
    b.send(&format!(
        "<presence type='unavailable' to='{}'/>",
        occupant("brief", "Bob")
    ))
    .await;
    let me = b
        .expect("own unavailable", |e| {
            is_unavailable_from(e, &occupant("brief", "Bob"))
        })
        .await;
    assert!(codes(&me).contains(&"110".to_owned()));

    wait_for_room_count(&s, 0).await;
    assert!(disco_items(&mut b, "i2").await.is_empty());
    assert!(s
        .handle
        .store()
        .room_list(SERVICE)
        .await
        .unwrap()
        .is_empty());
    // The next join creates a new room, owned by its creator.
    let j = join(&mut b, "brief", "Bob").await;
    assert!(codes(&j.me).contains(&"201".to_owned()));
    assert_eq!(item(&j.me).attr("affiliation"), Some("owner"));
    s.stop().await;
}

// ----------------------------------------------------------- history

#[tokio::test]
async fn history_on_join_honours_maxstanzas_and_seconds() {
    let s = server_with("muc-history", &["alice", "bob", "carol", "dave", "erin"]).await;
    let mut a = s.login("alice", Some("a")).await;
    create_room(&mut a, "hist", "Alice", &[]).await;
    for (id, text) in [("h1", "one"), ("h2", "two"), ("h3", "three")] {
        groupchat(&mut a, "hist", id, text).await;
        echo(&mut a, "hist", id).await;
    }

    let mut b = s.login("bob", None).await;
    let j = try_join(&mut b, "hist", "Bob", "<history maxstanzas='2'/>")
        .await
        .unwrap();
    let bodies: Vec<_> = j.history.iter().filter_map(body).collect();
    assert_eq!(bodies, ["two", "three"]);
    for h in &j.history {
        assert_eq!(h.attr("from"), Some(occupant("hist", "Alice").as_str()));
        assert_eq!(h.attr("to"), Some(b.jid.as_str()));
        let delay = h.get_child("delay", DELAY).unwrap();
        assert_eq!(delay.attr("from"), Some(room_jid("hist").as_str()));
        let stamp = chrono::DateTime::parse_from_rfc3339(delay.attr("stamp").unwrap()).unwrap();
        assert!((chrono::Utc::now() - stamp.with_timezone(&chrono::Utc)).num_seconds() < 60);
    }
    let mut c = s.login("carol", None).await;
    let j = try_join(&mut c, "hist", "Carol", "<history maxstanzas='0'/>")
        .await
        .unwrap();
    assert!(j.history.is_empty());

    // Let the first three age, then one more.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    groupchat(&mut a, "hist", "h4", "four").await;
    echo(&mut a, "hist", "h4").await;
    let mut d = s.login("dave", None).await;
    let j = try_join(&mut d, "hist", "Dave", "<history seconds='1'/>")
        .await
        .unwrap();
    let bodies: Vec<_> = j.history.iter().filter_map(body).collect();
    assert_eq!(bodies, ["four"]);
    // No request: the room's default (everything it keeps here).
    let mut e = s.login("erin", None).await;
    let j = join(&mut e, "hist", "Erin").await;
    let bodies: Vec<_> = j.history.iter().filter_map(body).collect();
    assert_eq!(bodies, ["one", "two", "three", "four"]);
    // Joins are not history.
    assert_eq!(j.others.len(), 4);
    s.stop().await;
}

// ----------------------------------------------------------- messages

#[tokio::test]
async fn private_messages_between_occupants() {
    let (s, [mut a, mut b]) = room_with("muc-pm", "pm", ["alice", "bob"], &["carol"], &[]).await;

    a.send(&format!(
        "<message to='{}' type='chat' id='p1'><body>psst</body></message>",
        occupant("pm", "Bob")
    ))
    .await;
    let m = message_with_id(&mut b, "p1").await;
    assert_eq!(m.attr("from"), Some(occupant("pm", "Alice").as_str()));
    assert_eq!(m.attr("to"), Some(b.jid.as_str()));
    assert_eq!(m.attr("type"), Some("chat"));
    assert_eq!(body(&m).as_deref(), Some("psst"));
    assert!(
        muc_x(&m).is_some(),
        "a private message carries muc#user <x/>"
    );

    b.send(&format!(
        "<message to='{}' type='chat' id='p2'><body>what?</body></message>",
        occupant("pm", "Alice")
    ))
    .await;
    let m = message_with_id(&mut a, "p2").await;
    assert_eq!(m.attr("from"), Some(occupant("pm", "Bob").as_str()));
    assert_eq!(body(&m).as_deref(), Some("what?"));

    // To a nickname nobody holds.
    a.send(&format!(
        "<message to='{}' type='chat' id='p3'><body>hello?</body></message>",
        occupant("pm", "Nobody")
    ))
    .await;
    let e = message_with_id(&mut a, "p3").await;
    assert_error(&e, &occupant("pm", "Nobody"), "item-not-found");

    // From someone who is not in the room.
    let mut c = s.login("carol", Some("c")).await;
    c.send(&format!(
        "<message to='{}' type='chat' id='p4'><body>let me in</body></message>",
        occupant("pm", "Bob")
    ))
    .await;
    let e = message_with_id(&mut c, "p4").await;
    assert_error(&e, &occupant("pm", "Bob"), "not-acceptable");
    // The room handles carol's stanzas in order and carries out all the
    // effects of one before the next: once it answered her ping, whatever
    // it did with p4 is in Bob's queue, ahead of his barrier's result.
    c.sync_via(&room_jid("pm")).await;
    b.nothing("message relayed from a non-occupant", |el| {
        el.attr("id") == Some("p4")
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn groupchat_from_a_non_occupant_is_rejected() {
    let s = server_with("muc-outsider", &["alice", "bob"]).await;
    let mut a = s.login("alice", Some("a")).await;
    let mut b = s.login("bob", Some("b")).await;
    create_room(&mut a, "talk", "Alice", &[]).await;
    groupchat(&mut b, "talk", "g1", "intruder").await;
    let e = message_with_id(&mut b, "g1").await;
    assert_error(&e, &room_jid("talk"), "not-acceptable");
    // Once the room answered bob's ping it has handled g1 entirely (see
    // `private_messages_between_occupants`).
    b.sync_via(&room_jid("talk")).await;
    a.nothing("groupchat from a non-occupant", |el| {
        body(el).as_deref() == Some("intruder")
    })
    .await;
    // To a room that does not exist.
    groupchat(&mut b, "nowhere", "g2", "anyone?").await;
    let e = message_with_id(&mut b, "g2").await;
    assert_error(&e, &room_jid("nowhere"), "item-not-found");
    s.stop().await;
}

// ----------------------------------------------------------- moderation

#[tokio::test]
async fn kick_and_ban_carry_actor_and_reason() {
    let (s, [mut a, mut b, mut c]) =
        room_with("muc-kick", "mod", ["alice", "bob", "carol"], &[], &[]).await;

    let r = admin(
        &mut a,
        "mod",
        "k1",
        "set",
        "<item nick='Bob' role='none'><reason>Be nice</reason></item>",
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    let bob = occupant("mod", "Bob");
    for (who, client) in [("Bob", &mut b), ("Carol", &mut c), ("Alice", &mut a)] {
        let p = client
            .expect("kick presence", |e| is_unavailable_from(e, &bob))
            .await;
        let cs = codes(&p);
        assert!(cs.contains(&"307".to_owned()), "{who}: {cs:?}");
        assert_eq!(
            cs.contains(&"110".to_owned()),
            who == "Bob",
            "{who}: {cs:?}"
        );
        let it = item(&p);
        assert_eq!(it.attr("role"), Some("none"));
        let actor = it.get_child("actor", MUC_USER).expect("actor");
        assert_eq!(actor.attr("nick"), Some("Alice"), "{who}");
        assert_eq!(reason(it).as_deref(), Some("Be nice"), "{who}");
    }
    // A kick is not a ban.
    join(&mut b, "mod", "Bob").await;

    let r = admin(
        &mut a,
        "mod",
        "b1",
        "set",
        "<item affiliation='outcast' jid='carol@localhost'><reason>Spam</reason></item>",
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    let carol = occupant("mod", "Carol");
    let p = c
        .expect("ban presence", |e| is_unavailable_from(e, &carol))
        .await;
    assert_eq!(codes(&p), ["301", "110"]);
    assert_eq!(item(&p).attr("affiliation"), Some("outcast"));
    assert_eq!(reason(item(&p)).as_deref(), Some("Spam"));
    assert_eq!(
        item(&p)
            .get_child("actor", MUC_USER)
            .and_then(|a| a.attr("nick")),
        Some("Alice")
    );
    let p = b
        .expect("ban seen by others", |e| is_unavailable_from(e, &carol))
        .await;
    assert_eq!(codes(&p), ["301"]);
    let e = try_join(&mut c, "mod", "Carol", "")
        .await
        .err()
        .expect("banned");
    assert_error(&e, &carol, "forbidden");
    s.stop().await;
}

#[tokio::test]
async fn members_only_room_admits_invited_members() {
    let s = server_with("muc-members", &["alice", "bob", "carol"]).await;
    let mut a = s.login("alice", Some("a")).await;
    let mut b = s.login("bob", Some("b")).await;
    let mut c = s.login("carol", Some("c")).await;
    b.available().await;
    c.available().await;
    create_room(
        &mut a,
        "club",
        "Alice",
        &[field("muc#roomconfig_membersonly", "1")],
    )
    .await;

    let e = try_join(&mut b, "club", "Bob", "")
        .await
        .err()
        .expect("refused");
    assert_error(&e, &occupant("club", "Bob"), "registration-required");

    a.send(&format!(
        "<message to='{}' id='inv1'><x xmlns='{MUC_USER}'><invite to='bob@localhost'><reason>Come in</reason></invite></x></message>",
        room_jid("club")
    ))
    .await;
    let m = b
        .expect("invitation", |e| {
            e.name() == "message" && e.attr("from") == Some(room_jid("club").as_str())
        })
        .await;
    let invite = muc_x(&m)
        .and_then(|x| x.get_child("invite", MUC_USER))
        .expect("invite");
    assert_eq!(invite.attr("from"), Some(a.jid.as_str()));
    assert_eq!(reason(invite).as_deref(), Some("Come in"));

    // The owner's invitation made Bob a member.
    let r = admin(&mut a, "club", "m", "get", "<item affiliation='member'/>").await;
    let members: Vec<_> = r
        .get_child("query", MUC_ADMIN)
        .expect("member list")
        .children()
        .filter_map(|i| i.attr("jid").map(String::from))
        .collect();
    assert_eq!(members, ["bob@localhost"]);
    let j = join(&mut b, "club", "Bob").await;
    assert_eq!(item(&j.me).attr("affiliation"), Some("member"));

    // A member may not invite (invitations are not open to occupants).
    b.send(&format!(
        "<message to='{}' id='inv2'><x xmlns='{MUC_USER}'><invite to='carol@localhost'/></x></message>",
        room_jid("club")
    ))
    .await;
    let e = message_with_id(&mut b, "inv2").await;
    assert_error(&e, &room_jid("club"), "forbidden");
    // Once the room answered bob's ping it has handled inv2 entirely (see
    // `private_messages_between_occupants`): carol got nothing at all.
    b.sync_via(&room_jid("club")).await;
    c.nothing("stanza after a refused invitation", |_| true)
        .await;
    let e = try_join(&mut c, "club", "Carol", "")
        .await
        .err()
        .expect("refused");
    assert_error(&e, &occupant("club", "Carol"), "registration-required");
    s.stop().await;
}

#[tokio::test]
async fn destroy_sends_the_alternate_venue_and_forgets_the_room() {
    let s = server_with("muc-destroy", &["alice", "bob"]).await;
    let mut a = s.login("alice", Some("a")).await;
    let mut b = s.login("bob", Some("b")).await;
    create_room(
        &mut a,
        "old",
        "Alice",
        &[field("muc#roomconfig_persistentroom", "1")],
    )
    .await;
    join(&mut b, "old", "Bob").await;
    assert_eq!(s.handle.store().room_list(SERVICE).await.unwrap().len(), 1);

    let r = a
        .iq(
            &format!(
                "<iq type='set' id='d1' to='{}'><query xmlns='{MUC_OWNER}'><destroy jid='new@{SERVICE}'><reason>Moved</reason></destroy></query></iq>",
                room_jid("old")
            ),
            "d1",
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    for (nick, client) in [("Bob", &mut b), ("Alice", &mut a)] {
        let p = client
            .expect("destroy presence", |e| {
                is_unavailable_from(e, &occupant("old", nick))
            })
            .await;
        let destroy = muc_x(&p)
            .and_then(|x| x.get_child("destroy", MUC_USER))
            .expect("destroy element");
        assert_eq!(destroy.attr("jid"), Some(format!("new@{SERVICE}").as_str()));
        assert_eq!(reason(destroy).as_deref(), Some("Moved"));
        assert_eq!(item(&p).attr("role"), Some("none"));
        assert_eq!(item(&p).attr("affiliation"), Some("none"));
    }
    wait_for_room_count(&s, 0).await;
    assert!(s
        .handle
        .store()
        .room_list(SERVICE)
        .await
        .unwrap()
        .is_empty());
    assert!(disco_items(&mut b, "i").await.is_empty());
    let j = join(&mut b, "old", "Bob").await;
    assert!(codes(&j.me).contains(&"201".to_owned()), "a new room");
    s.stop().await;
}

// ----------------------------------------------------------- the service

#[tokio::test]
async fn service_disco_items_lists_public_rooms_only() {
    let s = server_with("muc-disco", &["alice", "bob"]).await;
    let mut a = s.login("alice", Some("a")).await;
    create_room(
        &mut a,
        "open",
        "Alice",
        &[field("muc#roomconfig_roomname", "Open Room")],
    )
    .await;
    create_room(&mut a, "plain", "Alice", &[]).await;
    create_room(
        &mut a,
        "hidden",
        "Alice",
        &[field("muc#roomconfig_publicroom", "0")],
    )
    .await;
    // Created but not configured yet: locked, so not listed.
    join(&mut a, "pending", "Alice").await;
    let mut b = s.login("bob", Some("b")).await;
    let items = disco_items(&mut b, "i").await;
    assert_eq!(
        items,
        [
            (room_jid("open"), Some("Open Room".to_owned())),
            (room_jid("plain"), None)
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn disconnecting_leaves_the_room() {
    let (s, [mut a, b, c]) =
        room_with("muc-disconnect", "bye", ["alice", "bob", "carol"], &[], &[]).await;

    // A clean close of the stream.
    b.close().await;
    let p = a
        .expect("Bob leaves", |e| {
            is_unavailable_from(e, &occupant("bye", "Bob"))
        })
        .await;
    assert_eq!(item(&p).attr("role"), Some("none"));
    // A dropped connection.
    drop(c);
    a.expect("Carol leaves", |e| {
        is_unavailable_from(e, &occupant("bye", "Carol"))
    })
    .await;
    // Alice is alone: a new occupant sees only her.
    let mut b = s.login("bob", Some("b2")).await;
    let j = join(&mut b, "bye", "Bob").await;
    let others: Vec<_> = j.others.iter().filter_map(|p| p.attr("from")).collect();
    assert_eq!(others, [occupant("bye", "Alice")]);
    s.stop().await;
}

#[tokio::test]
async fn room_creation_restricted_to_admins() {
    let mut config = support::test_config("muc-creation");
    config.muc.room_creation = "admins".into();
    let s = server_with_config(config, &["alice", "admin"]).await;
    let mut a = s.login("alice", Some("a")).await;
    let e = try_join(&mut a, "mine", "Alice", "")
        .await
        .err()
        .expect("refused");
    assert_error(&e, &occupant("mine", "Alice"), "forbidden");
    wait_for_room_count(&s, 0).await;

    let mut adm = s.login("admin", Some("x")).await;
    create_room(&mut adm, "mine", "Admin", &[]).await;
    // Joining an existing room is not creating one.
    let j = join(&mut a, "mine", "Alice").await;
    assert_eq!(item(&j.me).attr("affiliation"), Some("none"));
    s.stop().await;
}

#[tokio::test]
async fn unauthorised_operations_get_stanza_errors() {
    let (s, [mut a, mut b]) = room_with("muc-forbidden", "guard", ["alice", "bob"], &[], &[]).await;
    let room = room_jid("guard");

    // Bob is a participant without affiliation: each request is refused.
    // Kicking, a role change, is refused as Prosody refuses it:
    // cancel/not-allowed (he is no moderator).
    let r = b
        .iq(
            &format!("<iq type='set' id='f3' to='{room}'><query xmlns='{MUC_ADMIN}'><item nick='Alice' role='none'/></query></iq>"),
            "f3",
        )
        .await;
    assert_error(&r, &room, "not-allowed");
    let refused = [
        ("f1", "get", MUC_OWNER, ""),
        ("f2", "set", MUC_OWNER, "<destroy/>"),
        (
            "f4",
            "set",
            MUC_ADMIN,
            "<item affiliation='member' jid='carol@localhost'/>",
        ),
        ("f5", "get", MUC_ADMIN, "<item affiliation='outcast'/>"),
    ];
    for (id, kind, ns, payload) in refused {
        let r = b
            .iq(
                &format!("<iq type='{kind}' id='{id}' to='{room}'><query xmlns='{ns}'>{payload}</query></iq>"),
                id,
            )
            .await;
        assert_error(&r, &room, "forbidden");
    }
    b.send(&format!(
        "<message to='{room}' type='groupchat' id='f6'><subject>Mine now</subject></message>"
    ))
    .await;
    let e = message_with_id(&mut b, "f6").await;
    assert_error(&e, &room, "forbidden");
    // Even an owner may not leave the room without one.
    let r = admin(
        &mut a,
        "guard",
        "f7",
        "set",
        "<item affiliation='none' jid='alice@localhost'/>",
    )
    .await;
    assert_error(&r, &room, "conflict");
    // Nothing changed: Alice is still in charge and the room still there.
    let r = admin(&mut a, "guard", "f8", "get", "<item affiliation='owner'/>").await;
    assert_eq!(r.attr("type"), Some("result"));
    let owners: Vec<_> = r
        .get_child("query", MUC_ADMIN)
        .unwrap()
        .children()
        .filter_map(|i| i.attr("jid").map(String::from))
        .collect();
    assert!(owners.contains(&"alice@localhost".to_owned()), "{owners:?}");
    s.stop().await;
}

#[tokio::test]
async fn shutdown_tells_occupants_332() {
    let (s, [mut a, mut b]) = room_with("muc-shutdown", "down", ["alice", "bob"], &[], &[]).await;
    let muc = s.handle.muc().clone();
    // The whole server stops: the rooms' presences are written before the
    // sessions close their streams.
    s.stop().await;
    for (nick, client) in [("Alice", &mut a), ("Bob", &mut b)] {
        let p = client
            .expect("shutdown presence", |e| {
                is_unavailable_from(e, &occupant("down", nick))
            })
            .await;
        assert_eq!(codes(&p), ["332", "110"], "{nick}");
        assert_eq!(item(&p).attr("role"), Some("none"));
    }
    // Each was told about themself only: everything up to the end of the
    // stream, which the server closes once it has written what was queued.
    while let Some(el) = a.next().await {
        assert_ne!(el.attr("from"), Some(occupant("down", "Bob").as_str()));
    }
    assert_eq!(muc.room_count(), 0);
    // The service takes nothing more.
    let join: Element = format!(
        "<presence xmlns='jabber:client' from='bob@localhost/b' to='{}'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        occupant("down", "Bob")
    )
    .parse()
    .unwrap();
    let replies = muc.dispatch(join, &occupant("down", "Bob").parse::<jid::Jid>().unwrap());
    assert_eq!(replies.len(), 1);
    assert_error(&replies[0], &occupant("down", "Bob"), "service-unavailable");
}
