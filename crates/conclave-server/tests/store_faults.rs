//! The server over a failing store: a full disk (a small tmpfs as the data
//! directory, filled up), after which every write works again once space
//! returns, with no restart; and the databases it refuses to start on (a
//! lost one, a read-only one), each with a message naming the file.
//!
//! Mounting needs root. Where it is refused the test says so on standard
//! error and passes, except under CI (`CI` set), where it fails.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use conclave_server::server::{start, start_with, StoreOptions};
use minidom::Element;
use support::{error_condition, Client, TestServer};

const ROSTER: &str = "jabber:iq:roster";
const VCARD: &str = "vcard-temp";
const MUC: &str = "http://jabber.org/protocol/muc";
const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const DATA: &str = "jabber:x:data";
const ROOM: &str = "room@conference.localhost";

/// Says on standard error (past the test harness's capture) that a test
/// could not run, and fails under CI.
fn not_run(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "{test} NOT RUN: {why}");
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set and {test} could not run: {why}"
    );
}

fn mount(args: &[&str], target: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .map_err(|e| format!("running mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Something mounted for a test, unmounted on drop (lazily: the server's
/// connections may still be closing).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A tmpfs of `size` on `dir`.
fn tmpfs(dir: &Path, size: &str) -> Result<Mounted, String> {
    mount(
        &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
        dir,
    )?;
    Ok(Mounted(dir.to_owned()))
}

/// Fills the file system of `dir` with one file, until a write fails for
/// lack of space; returns the file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
            return path;
        }
    }
}

async fn roster_set(c: &mut Client, id: &str, contact: &str) -> Element {
    c.iq(
        &format!(
            "<iq type='set' id='{id}'><query xmlns='{ROSTER}'><item jid='{contact}' name='{}'/></query></iq>",
            "n".repeat(200)
        ),
        id,
    )
    .await
}

async fn vcard_set(c: &mut Client, id: &str, name: &str) -> Element {
    c.iq(
        &format!("<iq type='set' id='{id}'><vCard xmlns='{VCARD}'><FN>{name}</FN></vCard></iq>"),
        id,
    )
    .await
}

async fn rename_room(c: &mut Client, id: &str, name: &str) -> Element {
    c.iq(
        &format!(
            "<iq type='set' id='{id}' to='{ROOM}'><query xmlns='{MUC_OWNER}'><x xmlns='{DATA}' type='submit'>\
             <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
             <field var='muc#roomconfig_persistentroom'><value>1</value></field>\
             <field var='muc#roomconfig_roomname'><value>{name}</value></field></x></query></iq>"
        ),
        id,
    )
    .await
}

fn assert_result(r: &Element) {
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(r));
}

fn assert_internal_error(r: &Element) {
    assert_eq!(r.attr("type"), Some("error"), "{}", String::from(r));
    assert_eq!(
        error_condition(r).as_deref(),
        Some("internal-server-error"),
        "{}",
        String::from(r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_recovers_from_a_full_disk_without_a_restart() {
    let mut config = support::test_config("full-disk");
    let mounted = match tmpfs(&config.server.data_dir, "8m") {
        Ok(m) => m,
        Err(why) => {
            return not_run(
                "the full-disk test",
                &format!("cannot mount a tmpfs ({why}); it needs root"),
            )
        }
    };
    config.server.data_dir = mounted.0.clone();
    let s = TestServer::start_with(config).await;
    s.add_user("alice", "secret").await;
    let mut a = s.login("alice", Some("a")).await;
    a.send(&format!(
        "<presence to='{ROOM}/Alice'><x xmlns='{MUC}'/></presence>"
    ))
    .await;
    a.expect("own presence", |e| {
        e.name() == "presence" && e.attr("from") == Some(&format!("{ROOM}/Alice"))
    })
    .await;
    assert_result(&rename_room(&mut a, "r0", "Before").await);

    let filler = fill(&s.data_dir);

    // Every kind of write fails with an error, more times than the store
    // has connections; the server goes on answering.
    for i in 0..6 {
        assert_internal_error(&roster_set(&mut a, &format!("ro{i}"), &format!("c{i}@x")).await);
        assert_internal_error(&vcard_set(&mut a, &format!("vc{i}"), "Full").await);
    }
    assert_internal_error(&rename_room(&mut a, "r1", "Unsaved").await);

    std::fs::remove_file(&filler).unwrap();

    // Space is back: every write works again, on whichever connection.
    for i in 0..12 {
        assert_result(&roster_set(&mut a, &format!("ok{i}"), &format!("d{i}@x")).await);
        assert_result(&vcard_set(&mut a, &format!("vk{i}"), "Alice").await);
    }
    let a_room =
        |e: &Element| e.name() == "presence" && e.attr("from") == Some(&format!("{ROOM}/Alice"));
    a.send(&format!(
        "<presence to='{ROOM}/Alice'><x xmlns='{MUC}'/></presence>"
    ))
    .await;
    a.expect("own presence again", |e| {
        a_room(e) && e.attr("type").is_none()
    })
    .await;
    assert_result(&rename_room(&mut a, "r2", "After").await);
    s.handle.shutdown().await;
    drop(mounted);
    let _ = std::fs::remove_dir_all(&s.data_dir);
}

#[tokio::test]
async fn a_lost_database_is_refused_at_start_unless_allowed() {
    let config = support::test_config("lost-db");
    let data_dir = config.server.data_dir.clone();
    let s = TestServer::start_with(config.clone()).await;
    s.add_user("alice", "secret").await;
    s.handle.shutdown().await;
    let db = data_dir.join("conclave.sqlite");

    for (case, make_empty) in [
        (
            "deleted",
            (|db: &Path| {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
                }
            }) as fn(&Path),
        ),
        ("zero-length", |db: &Path| {
            std::fs::File::create(db).unwrap();
        }),
    ] {
        make_empty(&db);
        let Err(e) = start(config.clone()).await else {
            panic!("{case}: the server started on an empty database");
        };
        let text = format!("{e:#}");
        assert!(text.contains(&db.display().to_string()), "{case}: {text}");
        assert!(text.contains("--allow-empty-store"), "{case}: {text}");
    }

    // Allowed: it begins anew, and from then on starts without the option.
    let allowed = StoreOptions { allow_empty: true };
    let s = start_with(config.clone(), allowed).await.unwrap();
    assert!(s
        .store()
        .list_accounts("localhost")
        .await
        .unwrap()
        .is_empty());
    s.shutdown().await;
    start(config).await.unwrap().shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Gives the database files new inodes, with the same contents: SQLite
/// reuses a file descriptor this process still holds for an inode (the
/// pool of a store just dropped may not have closed yet), which would
/// bypass the read-only file made next.
fn renew_inodes(db: &Path) {
    let _ = std::fs::remove_file(format!("{}-shm", db.display()));
    for suffix in ["", "-wal"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(bytes) = std::fs::read(&path) {
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, bytes).unwrap();
        }
    }
}

#[tokio::test]
async fn a_read_only_database_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let config = support::test_config("read-only-db");
    let data_dir = config.server.data_dir.clone();
    let s = TestServer::start_with(config.clone()).await;
    s.add_user("alice", "secret").await;
    s.handle.shutdown().await;
    let db = data_dir.join("conclave.sqlite");

    renew_inodes(&db);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    // The mode does not stop root: then a read-only bind mount does.
    let mut mounted = None;
    if std::fs::OpenOptions::new().write(true).open(&db).is_ok() {
        let bound = mount(&["--bind", &db.display().to_string()], &db).and_then(|()| {
            let m = Mounted(db.clone());
            mount(&["-o", "remount,ro,bind"], &db).map(|()| m)
        });
        match bound {
            Ok(m) => mounted = Some(m),
            Err(why) => {
                return not_run(
                    "the read-only database test",
                    &format!("cannot make the file read-only ({why})"),
                )
            }
        }
    }
    let result = start(config).await;
    drop(mounted);
    let Err(e) = result else {
        panic!("the server started on a read-only database");
    };
    let text = format!("{e:#}");
    assert!(text.contains(&db.display().to_string()), "{text}");
    assert!(text.contains("read-only"), "{text}");
    let _ = std::fs::remove_dir_all(&data_dir);
}
