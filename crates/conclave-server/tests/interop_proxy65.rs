//! A file transfer through the bytestreams proxy with a real client
//! library: runs `tests/interop/slixmpp_proxy65_scenario.py` (slixmpp's
//! xep_0065 plugin) against an in-process server. Skipped (with a message)
//! when slixmpp is not installed, unless the environment variable `CI` is
//! set.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_sends_a_file_through_the_proxy() {
    support::run_slixmpp_scenario(
        "interop-proxy65",
        "slixmpp_proxy65_scenario.py",
        &[
            "ok: proxy discovered with its streamhost 127.0.0.1:",
            "ok: bytestream negotiated and activated through the proxy",
            "ok: 1048576 bytes received intact",
            "ok: the stream closed on both sides",
            "ok: scenario complete",
        ],
    )
    .await;
}
