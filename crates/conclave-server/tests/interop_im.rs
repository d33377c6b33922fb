//! Interoperability of the instant-messaging features with a real client
//! library: runs `tests/interop/slixmpp_im_scenario.py` (slixmpp, two
//! accounts with two resources each: subscription, carbons, blocking)
//! against an in-process server that requires STARTTLS. Skipped (with a
//! message) when slixmpp is not installed, unless the environment variable
//! `CI` is set.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_two_accounts_two_resources_subscription_carbons_blocking() {
    support::run_slixmpp_scenario(
        "interop-im",
        "slixmpp_im_scenario.py",
        &[
            "ok: four resources logged in over STARTTLS",
            "ok: mutual subscription, every resource sees the other account's two resources",
            "ok: carbons: sent copy on alice/two, received copy on bob/two",
            "ok: blocking: push to alice/two, bob sees alice offline, his message bounces",
            "ok: unblocking restores presence and messages",
            "ok: scenario complete",
        ],
    )
    .await;
}
