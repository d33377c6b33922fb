//! What opening an SQLite store refuses: a database that held accounts or
//! rooms and is now missing or empty (its data marker says so), and a
//! database that cannot be written to. A new data directory, and a
//! database whose accounts were all deleted, open as before.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use conclave_store::{Credentials, OpenOptions, ScramKeys, StoreError};

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("conclave-open-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("conclave.sqlite")
    }

    fn marker(&self) -> PathBuf {
        self.0.join(".conclave.sqlite.populated")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn creds() -> Credentials {
    let keys = ScramKeys {
        salt: vec![1; 16],
        iterations: 4096,
        salted_password: vec![2; 32],
    };
    Credentials {
        sha1: keys.clone(),
        sha256: keys,
    }
}

fn location(db: &Path) -> String {
    db.display().to_string()
}

/// Removes the database and its WAL files, as a lost disk or a careless
/// `rm` would.
fn delete_database(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// A store with one account, closed again.
async fn store_with_an_account(dir: &TempDir) {
    let store = conclave_store::open(&location(&dir.db())).await.unwrap();
    assert!(!dir.marker().exists(), "no marker before any data");
    store.create_account("h", "u", &creds()).await.unwrap();
    assert!(dir.marker().exists(), "the first account writes the marker");
}

fn assert_refused_as_empty(result: conclave_store::Result<impl Sized>, dir: &TempDir) {
    match result {
        Err(e @ StoreError::EmptyDatabase { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&dir.db().display().to_string()), "{text}");
            assert!(text.contains(&dir.marker().display().to_string()), "{text}");
        }
        Err(e) => panic!("expected EmptyDatabase, got {e}"),
        Ok(_) => panic!("an empty database that held data was opened"),
    }
}

#[tokio::test]
async fn a_new_data_directory_opens_and_is_marked_once_it_holds_data() {
    let dir = TempDir::new("new");
    let store = conclave_store::open(&location(&dir.db())).await.unwrap();
    // Nothing stored yet: deleting it and starting again is no loss.
    drop(store);
    delete_database(&dir.db());
    let store = conclave_store::open(&location(&dir.db())).await.unwrap();
    assert!(!dir.marker().exists());
    store.room_save("r@c.h", "{}").await.unwrap();
    assert!(dir.marker().exists(), "a saved room writes the marker");
}

#[tokio::test]
async fn a_deleted_database_is_refused_unless_allowed() {
    let dir = TempDir::new("deleted");
    store_with_an_account(&dir).await;
    delete_database(&dir.db());

    assert_refused_as_empty(conclave_store::open(&location(&dir.db())).await, &dir);
    // Refusing created nothing.
    assert!(!dir.db().exists());

    let allowed = OpenOptions { allow_empty: true };
    let store = conclave_store::open_with(&location(&dir.db()), allowed)
        .await
        .unwrap();
    assert!(store.list_accounts("h").await.unwrap().is_empty());
    assert!(!dir.marker().exists(), "starting anew forgets the marker");
    drop(store);
    // The new, empty database is a new one: it opens without the option.
    conclave_store::open(&location(&dir.db())).await.unwrap();
}

#[tokio::test]
async fn a_zero_length_database_is_refused() {
    let dir = TempDir::new("zero");
    store_with_an_account(&dir).await;
    delete_database(&dir.db());
    std::fs::File::create(dir.db()).unwrap();

    assert_refused_as_empty(conclave_store::open(&location(&dir.db())).await, &dir);
    assert_eq!(
        std::fs::metadata(dir.db()).unwrap().len(),
        0,
        "left as found"
    );
}

#[tokio::test]
async fn a_database_without_the_schema_is_refused() {
    let dir = TempDir::new("schemaless");
    store_with_an_account(&dir).await;
    delete_database(&dir.db());
    // A valid SQLite file, but not Conclave's.
    sqlx::any::install_default_drivers();
    let other = sqlx::AnyPool::connect(&format!("sqlite://{}?mode=rwc", dir.db().display()))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE unrelated (x INTEGER)")
        .execute(&other)
        .await
        .unwrap();
    other.close().await;

    assert_refused_as_empty(conclave_store::open(&location(&dir.db())).await, &dir);
}

#[tokio::test]
async fn deleting_every_account_is_not_a_loss() {
    let dir = TempDir::new("emptied");
    store_with_an_account(&dir).await;
    let store = conclave_store::open(&location(&dir.db())).await.unwrap();
    store.delete_account("h", "u").await.unwrap();
    drop(store);
    let store = conclave_store::open(&location(&dir.db())).await.unwrap();
    assert!(store.list_accounts("h").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_database_with_data_and_no_marker_gets_one_at_open() {
    let dir = TempDir::new("unmarked");
    store_with_an_account(&dir).await;
    // As a data directory from before the marker existed.
    std::fs::remove_file(dir.marker()).unwrap();
    conclave_store::open(&location(&dir.db())).await.unwrap();
    assert!(dir.marker().exists());
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

/// Makes `file` read-only: by its mode, and, where the mode does not stop
/// this process (root), by a read-only bind mount of it onto itself.
/// Returns the bind mount to undo, or why it could not be made read-only.
fn make_read_only(file: &Path) -> Result<Option<PathBuf>, String> {
    use std::os::unix::fs::PermissionsExt;
    renew_inodes(file);
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o444)).unwrap();
    if std::fs::OpenOptions::new().write(true).open(file).is_err() {
        return Ok(None);
    }
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("mount")
            .args(args)
            .arg(file)
            .arg(file)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    };
    run(&["--bind"])?;
    if let Err(e) = run(&["-o", "remount,ro,bind"]) {
        let _ = Command::new("umount").arg(file).status();
        return Err(e);
    }
    Ok(Some(file.to_owned()))
}

#[tokio::test]
async fn a_read_only_database_is_refused_at_open() {
    use std::io::Write;
    let dir = TempDir::new("read-only");
    store_with_an_account(&dir).await;
    let mount = match make_read_only(&dir.db()) {
        Ok(mount) => mount,
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "read-only database test NOT RUN: cannot make the file read-only ({why})"
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set and the read-only database test could not run: {why}"
            );
            return;
        }
    };
    let result = conclave_store::open(&location(&dir.db())).await;
    if let Some(file) = mount {
        // Lazy: a store that opened (the failure this test looks for)
        // may still hold the file.
        let _ = Command::new("umount").arg("-l").arg(&file).status();
    }
    match result {
        Err(StoreError::Database(text)) => {
            assert!(text.contains(&dir.db().display().to_string()), "{text}");
            assert!(text.contains("read-only"), "{text}");
        }
        Err(e) => panic!("expected a database error, got {e}"),
        Ok(_) => panic!("a read-only database was opened"),
    }
}
