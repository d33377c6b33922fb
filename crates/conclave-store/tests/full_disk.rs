//! A full disk under the SQLite store: a small tmpfs is the data
//! directory, a file fills it, and then every kind of write fails with an
//! error (never a panic); once the file is removed, every write works
//! again on the same store, without reopening it.
//!
//! Mounting needs root. Where it is refused the test says so on standard
//! error and passes, except under CI (`CI` set), where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use conclave_store::{Credentials, RosterItem, ScramKeys, StoreError, StoredStanza, Subscription};

/// A tmpfs mounted on a fresh directory, unmounted and removed on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts one of `size` (as `mount -o size=` takes it), or says why not.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = std::env::temp_dir().join(format!("conclave-full-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the store's connections may still be closing.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The tmpfs, or `None` after saying on standard error (past the test
/// harness's capture) that the test could not run; fails under CI.
fn tmpfs_or_report(size: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(size) {
        Ok(t) => Some(t),
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "full-disk test NOT RUN: cannot mount a tmpfs ({why}); it needs root"
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set and the full-disk test could not mount its tmpfs: {why}"
            );
            None
        }
    }
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

fn item(jid: &str, name_len: usize) -> RosterItem {
    RosterItem {
        jid: jid.to_owned(),
        name: Some("n".repeat(name_len)),
        subscription: Subscription::Both,
        ask: false,
        approved: false,
        groups: Vec::new(),
    }
}

fn message(len: usize) -> StoredStanza {
    StoredStanza {
        xml: format!("<message><body>{}</body></message>", "m".repeat(len)),
        stamp: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
    }
}

/// Bigger than anything written before the disk filled up: SQLite must
/// grow its files to write it.
const BIG: usize = 512 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_recovers_from_a_full_disk() {
    let Some(tmpfs) = tmpfs_or_report("4m") else {
        return;
    };
    let location = tmpfs.0.join("conclave.sqlite").display().to_string();
    let store = conclave_store::open(&location).await.unwrap();
    store.create_account("h", "u", &creds()).await.unwrap();
    store.roster_set("h", "u", &item("a@x", 1)).await.unwrap();
    store
        .offline_push("h", "u", &message(1), 1000)
        .await
        .unwrap();

    let filler = fill(&tmpfs.0);

    // More failures than the pool has connections, through every kind of
    // write: the transactions (which fail at COMMIT) and single statements.
    for i in 0..6 {
        let result = store.offline_push("h", "u", &message(BIG), 1000).await;
        assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        let result = store
            .roster_set("h", "u", &item(&format!("big{i}@x"), BIG))
            .await;
        assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        let result = store.kv_set("h", "u", "vcard", "", &"v".repeat(BIG)).await;
        assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        let result = store.room_save("r@c.h", &"s".repeat(BIG)).await;
        assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
    }
    // Reads still work, and nothing of the failed writes is there.
    assert_eq!(store.offline_count("h", "u").await.unwrap(), 1);
    assert_eq!(store.roster_get("h", "u").await.unwrap().0, 1);

    std::fs::remove_file(&filler).unwrap();

    // Space is back: every write works, on whichever pooled connection.
    for i in 0..16 {
        store
            .offline_push("h", "u", &message(100), 1000)
            .await
            .unwrap();
        let version = store
            .roster_set("h", "u", &item(&format!("c{i:02}@x"), 10))
            .await
            .unwrap();
        assert_eq!(version, 2 + i);
        store
            .kv_set("h", "u", "vcard", "", "<vCard/>")
            .await
            .unwrap();
        store.room_save("r@c.h", "{}").await.unwrap();
    }
    store
        .offline_push("h", "u", &message(BIG), 1000)
        .await
        .unwrap();
    assert_eq!(store.offline_count("h", "u").await.unwrap(), 18);
    assert_eq!(store.offline_take("h", "u").await.unwrap().len(), 18);
    drop(store);
}
