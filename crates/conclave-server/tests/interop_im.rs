//! Interoperability of the instant-messaging features with a real client
//! library: runs `tests/interop/slixmpp_im_scenario.py` (slixmpp, two
//! accounts with two resources each: subscription, carbons, blocking)
//! against an in-process server that requires STARTTLS. Skipped (with a
//! message) when slixmpp is not installed, unless the environment variable
//! `CI` is set.

mod support;

use std::path::PathBuf;
use std::process::Command;

fn slixmpp_available() -> bool {
    Command::new("python3")
        .args(["-c", "import slixmpp"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_two_accounts_two_resources_subscription_carbons_blocking() {
    if !slixmpp_available() {
        if std::env::var_os("CI").is_some() {
            panic!("slixmpp is required in CI (pip install slixmpp)");
        }
        println!("skipped: slixmpp not installed (pip install slixmpp)");
        return;
    }
    let mut config = support::test_config("interop-im");
    config.server.require_encryption = true;
    config.server.allow_plaintext_auth = false;
    let server = support::TestServer::start_with(config).await;
    server.add_user("alice", "secret").await;
    server.add_user("bob", "secret").await;

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop/slixmpp_im_scenario.py");
    let port = server.addr.port().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args(["--port", &port])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "scenario failed:\n{stdout}\n{stderr}"
    );
    for step in [
        "ok: four resources logged in over STARTTLS",
        "ok: mutual subscription, every resource sees the other account's two resources",
        "ok: carbons: sent copy on alice/two, received copy on bob/two",
        "ok: blocking: push to alice/two, bob sees alice offline, his message bounces",
        "ok: unblocking restores presence and messages",
        "ok: scenario complete",
    ] {
        assert!(stdout.contains(step), "missing step {step:?} in:\n{stdout}");
    }
    server.stop().await;
}
