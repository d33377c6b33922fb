//! Interoperability with a real client library: runs
//! `tests/interop/slixmpp_scenario.py` (slixmpp) against an in-process
//! server that requires STARTTLS and refuses plaintext authentication.
//! Skipped (with a message) when slixmpp is not installed, unless the
//! environment variable `CI` is set.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_logs_in_subscribes_chats_and_gets_offline_messages() {
    support::run_slixmpp_scenario(
        "interop",
        "slixmpp_scenario.py",
        &[
            "ok: alice@localhost logged in with SCRAM-SHA-256 over STARTTLS",
            "ok: bob@localhost logged in with SCRAM-SHA-1 over STARTTLS",
            "ok: mutual subscription, both see each other online",
            "ok: messages exchanged",
            "ok: offline message delivered at next login with a delay stamp",
            "ok: scenario complete",
        ],
    )
    .await;
}
