//! The command line as other tools use it: `check` exit codes and
//! messages, and `user add/passwd/del/list` on a throwaway data directory.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn conclave(dir: &PathBuf, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("conclave-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_accepts_defaults_and_lists_every_problem() {
    let dir = temp_dir("check");
    let ok = conclave(&dir, &["check"], None);
    assert!(ok.status.success());

    std::fs::write(
        dir.join("bad.toml"),
        "[server]\nhosts = []\nbogus = 1\n[[listener]]\naddr = \"nowhere\"\n[muc]\nroom_creation = \"everybody\"\n",
    )
    .unwrap();
    let bad = conclave(&dir, &["--config", "bad.toml", "check"], None);
    assert_eq!(bad.status.code(), Some(1));
    let out = stdout(&bad);
    for key in [
        "server.bogus",
        "server.hosts",
        "listener[0].addr",
        "muc.room_creation",
    ] {
        assert!(out.contains(key), "{key} missing from:\n{out}");
    }
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one-line error expected: {err}"
    );

    // Every value of the wrong type, not just the first.
    std::fs::write(
        dir.join("types.toml"),
        "[limits]\nmax_depth = -5\nsession_queue = \"big\"\n[muc]\nmax_history = \"many\"\n",
    )
    .unwrap();
    let types = conclave(&dir, &["--config", "types.toml", "check"], None);
    assert_eq!(types.status.code(), Some(1));
    let out = stdout(&types);
    assert_eq!(
        out,
        "limits.max_depth: invalid value: integer `-5`, expected usize\n\
         limits.session_queue: invalid type: string \"big\", expected usize\n\
         muc.max_history: invalid type: string \"many\", expected usize\n"
    );
    let err = String::from_utf8_lossy(&types.stderr);
    assert!(err.contains("3 problem(s) found"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_commands_manage_accounts() {
    let dir = temp_dir("user");
    let add = conclave(
        &dir,
        &["user", "add", "alice@localhost", "--password", "pw"],
        None,
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    // Password from standard input.
    let add = conclave(&dir, &["user", "add", "bob@localhost"], Some("secret\n"));
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let dup = conclave(
        &dir,
        &["user", "add", "bob@localhost", "--password", "x"],
        None,
    );
    assert_eq!(dup.status.code(), Some(1));
    let foreign = conclave(
        &dir,
        &["user", "add", "carol@elsewhere", "--password", "x"],
        None,
    );
    assert_eq!(foreign.status.code(), Some(1));

    let list = conclave(&dir, &["user", "list"], None);
    assert_eq!(stdout(&list), "alice@localhost\nbob@localhost\n");

    let passwd = conclave(
        &dir,
        &["user", "passwd", "bob@localhost", "--password", "new"],
        None,
    );
    assert!(passwd.status.success());
    let del = conclave(&dir, &["user", "del", "bob@localhost"], None);
    assert!(del.status.success());
    let del_again = conclave(&dir, &["user", "del", "bob@localhost"], None);
    assert_eq!(del_again.status.code(), Some(1));
    let list = conclave(&dir, &["user", "list", "localhost"], None);
    assert_eq!(stdout(&list), "alice@localhost\n");
    assert!(dir.join("data/conclave.sqlite").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits for `child` up to `limit`; kills it and fails when it is still
/// running then.
fn wait_or_kill(mut child: std::process::Child, limit: std::time::Duration) -> Output {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_lost_database_is_refused_until_allowed() {
    let dir = temp_dir("lost");
    let add = conclave(
        &dir,
        &["user", "add", "alice@localhost", "--password", "pw"],
        None,
    );
    assert!(add.status.success());
    let db = dir.join("data/conclave.sqlite");
    // As `rm data/conclave.sqlite*` would.
    for entry in std::fs::read_dir(dir.join("data")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("conclave.sqlite") {
            std::fs::remove_file(&path).unwrap();
        }
    }

    // The server does not start on it: a one-line error naming the file
    // and the option.
    std::fs::write(
        dir.join("c.toml"),
        "[[listener]]\naddr = \"127.0.0.1:0\"\n[proxy65]\nenabled = false\n",
    )
    .unwrap();
    let serve = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["--config", "c.toml", "serve"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let serve = wait_or_kill(serve, std::time::Duration::from_secs(60));
    assert_eq!(serve.status.code(), Some(1));
    let err = String::from_utf8_lossy(&serve.stderr);
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{err}");
    assert!(last.contains("data/conclave.sqlite"), "{err}");
    assert!(last.contains("--allow-empty-store"), "{err}");
    assert!(!db.exists(), "refusing created the database");

    // Nor do the account commands.
    let list = conclave(&dir, &["user", "list"], None);
    assert_eq!(list.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&list.stderr).contains("--allow-empty-store"));

    // With the option, it begins anew; after that, no option is needed.
    let list = conclave(&dir, &["user", "list", "--allow-empty-store"], None);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert_eq!(stdout(&list), "");
    let list = conclave(&dir, &["user", "list"], None);
    assert!(list.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
