//! The seed scripts (`tests/scansion/*.scs`, unchanged copies of the
//! project's founding acceptance scripts) and the project's own scripts
//! (`tests/scansion/<area>/*.scs`, written from Prosody's modules) run
//! against Conclave.
//!
//! Each script gets a fresh in-process server configured as
//! `examples/scansion.toml` says, except for free ports and a throwaway
//! data directory, and with the accounts named in the script's header.

use std::path::{Path, PathBuf};
use std::time::Duration;

use conclave_scansion::{run_script, RunOptions, Script};
use conclave_server::config::Config;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn run_seed_script(file: &str, loose: bool) {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("tests/scansion").join(file))
        .unwrap_or_else(|e| panic!("reading {file}: {e}"));
    let script = Script::parse(&text).unwrap_or_else(|e| panic!("parsing {file}: {e}"));

    let config_text = std::fs::read_to_string(root.join("examples/scansion.toml"))
        .expect("examples/scansion.toml");
    let mut config = Config::from_toml_str(&config_text).expect("examples/scansion.toml is valid");
    let data = tempfile::tempdir().expect("temporary directory");
    config.server.data_dir = data.path().to_path_buf();
    assert_eq!(
        config.listener.len(),
        1,
        "examples/scansion.toml has one listener"
    );
    config.listener[0].addr = "127.0.0.1:0".into();
    config.proxy65.addr = "127.0.0.1:0".into();

    let server = conclave_server::server::start(config)
        .await
        .expect("server starts");
    let store = server.store();
    // Clients may be several resources of one account: each account once.
    let mut created = std::collections::HashSet::new();
    for client in script.clients() {
        let jid = client.jid.to_bare();
        if !created.insert(jid.clone()) {
            continue;
        }
        conclave_server::server::add_user(store.as_ref(), &jid, &client.password)
            .await
            .unwrap_or_else(|e| panic!("creating {jid}: {e}"));
    }
    let port = server.c2s_addrs()[0].port();

    let opts = RunOptions {
        host: "127.0.0.1".into(),
        port,
        timeout: Duration::from_secs(5),
        loose,
        ..RunOptions::default()
    };
    let outcome = run_script(&script, &opts).await;
    server.shutdown().await;
    if let Some(failure) = outcome.failure {
        panic!("{file}: {}\n{failure}", outcome.title);
    }
    assert!(outcome.passed, "{file}: {} did not pass", outcome.title);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muc_password() {
    run_seed_script("muc_password.scs", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muc_affiliation_notify() {
    run_seed_script("muc_affiliation_notify.scs", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muc_register() {
    run_seed_script("muc_register.scs", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muc_register_2018() {
    run_seed_script("muc_register_2018.scs", true).await;
}

/// Runs every script of `tests/scansion/<area>/`, and fails naming each
/// script that failed.
async fn run_area(area: &str) {
    let dir = repo_root().join("tests/scansion").join(area);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".scs"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scripts in {}", dir.display());
    for f in files {
        run_seed_script(&format!("{area}/{f}"), false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_scripts_proxy65() {
    run_area("proxy65").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_scripts_im() {
    run_area("im").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_scripts_muc() {
    run_area("muc").await;
}

/// The seed copies must stay byte-for-byte identical to the originals
/// when those are present beside the repository.
#[test]
fn seed_scripts_are_unchanged_copies() {
    let shared = repo_root().join("../shared/scansion");
    if !shared.is_dir() {
        eprintln!("skipped: {} not present", shared.display());
        return;
    }
    for entry in std::fs::read_dir(&shared).expect("shared scripts") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "scs") {
            let name = path.file_name().expect("file name");
            let copy = repo_root().join("tests/scansion").join(name);
            assert_eq!(
                std::fs::read(&path).expect("original"),
                std::fs::read(&copy).unwrap_or_else(|e| panic!("{}: {e}", copy.display())),
                "{} differs from its original",
                copy.display()
            );
        }
    }
}
