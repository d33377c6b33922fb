//! Logs in to a server and prints the bound JID: a smoke test for the client.
//!
//! `cargo run -p conclave-scansion --example login -- HOST PORT JID PASSWORD [auto|require|never]`

use std::process::ExitCode;

use conclave_scansion::client::{Client, ClientOptions, TlsMode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, jid, password, rest @ ..] = args.as_slice() else {
        eprintln!("usage: login HOST PORT JID PASSWORD [auto|require|never]");
        return ExitCode::from(2);
    };
    let (Ok(port), Ok(jid)) = (port.parse::<u16>(), jid.parse()) else {
        eprintln!("invalid port or JID");
        return ExitCode::from(2);
    };
    let mut opts = ClientOptions::new(host.as_str(), port, jid, password.as_str());
    opts.tls = match rest.first().map(String::as_str) {
        None | Some("auto") => TlsMode::Auto,
        Some("require") => TlsMode::Require,
        Some("never") => TlsMode::Never,
        Some(other) => {
            eprintln!("unknown TLS mode {other:?}");
            return ExitCode::from(2);
        }
    };
    match Client::connect(opts).await {
        Ok(client) => {
            println!("bound as {}", client.bound_jid());
            if let Err(e) = client.close().await {
                eprintln!("close: {e}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("login failed: {e}");
            ExitCode::FAILURE
        }
    }
}
