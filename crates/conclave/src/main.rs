//! The `conclave` binary: `serve`, `user add|passwd|del|list` and `check`,
//! all reading the same TOML configuration (embedded defaults when none is
//! given). Exit status 0 on success, 1 with a one-line message on error.

mod cli;
mod user;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use conclave_server::config::Config;
use conclave_server::server::StoreOptions;

use cli::{Cli, Command};

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    Config::load(path).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        anyhow::anyhow!("{}: {}", path.display(), list.join("; "))
    })
}

/// `conclave check`: prints every problem; fails when there is one.
fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let name = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "embedded defaults".into());
    let problems = match path {
        None => Config::default().validate(),
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => Config::check_text(&text),
            Err(e) => anyhow::bail!("cannot read {}: {e}", p.display()),
        },
    };
    if problems.is_empty() {
        println!("{name}: configuration OK");
        return Ok(());
    }
    for p in &problems {
        println!("{}: {}", p.key, p.message);
    }
    anyhow::bail!("{name}: {} problem(s) found", problems.len())
}

async fn serve(config: Config, store: StoreOptions) -> anyhow::Result<()> {
    let server = conclave_server::server::start_with(config, store).await?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config_path = cli.config.as_deref();
    let store = StoreOptions {
        allow_empty: cli.allow_empty_store,
    };
    match cli.command {
        Command::Check => check(config_path),
        Command::Serve => serve(load_config(config_path)?, store).await,
        Command::User { action } => user::run(load_config(config_path)?, store, action).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs at info by default; the one-shot commands only warn.
    let default_level = if matches!(cli.command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
