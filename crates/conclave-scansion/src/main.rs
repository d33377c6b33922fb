//! The `conclave-scansion` command: runs scansion scripts against a server
//! and prints one line per script, the failure reports, and a summary line
//! `N passed, N failed`. Exits with status 1 if any script fails.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use conclave_scansion::{run_script, RunOptions, Script};

/// Runs scansion scripts (XMPP acceptance tests) against a server.
#[derive(Debug, Parser)]
#[command(name = "conclave-scansion", version)]
struct Args {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port (client-to-server).
    #[arg(long, default_value_t = 5222)]
    port: u16,
    /// Seconds a `receives` step waits for a matching stanza.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Loose matching: only `scansion:strict='true'` makes an element strict.
    #[arg(long)]
    loose: bool,
    /// Print every step and stanza to standard error.
    #[arg(long)]
    verbose: bool,
    /// Scripts to run, in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let timeout = match Duration::try_from_secs_f64(args.timeout) {
        Ok(t) if !t.is_zero() => t,
        _ => {
            eprintln!("--timeout must be a positive number of seconds");
            return ExitCode::from(2);
        }
    };
    let opts = RunOptions {
        host: args.host,
        port: args.port,
        timeout,
        loose: args.loose,
        verbose: args.verbose,
        ..RunOptions::default()
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &args.files {
        let shown = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                println!("FAIL {shown}: cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        let script = match Script::parse(&text) {
            Ok(s) => s,
            Err(e) => {
                println!("FAIL {shown}: cannot parse: {e}");
                failed += 1;
                continue;
            }
        };
        let outcome = run_script(&script, &opts).await;
        if outcome.passed {
            println!("ok   {shown}: {}", outcome.title);
            passed += 1;
        } else {
            println!("FAIL {shown}: {}", outcome.title);
            if let Some(failure) = &outcome.failure {
                println!("{failure}");
            }
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
