//! `conclave-bench`: command-line entry point of the load generator.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use conclave_bench::chat::{self, ChatLoad};
use conclave_bench::conn::Target;
use conclave_bench::muc::{self, MucLoad};
use conclave_bench::payload::Clock;
use conclave_bench::record::{Outcome, Record};
use conclave_bench::report::{self, RunRecords};
use conclave_bench::saturate::{search, StepArgs};
use conclave_bench::{idle, login, plot};

/// Load generator for XMPP servers on this machine.
#[derive(Debug, Parser)]
#[command(name = "conclave-bench", version)]
struct Cli {
    #[command(flatten)]
    target: Target,
    /// Name of the server under test, written into the JSON record.
    #[arg(long, default_value = "server", global = true)]
    label: String,
    /// Print the result as one JSON record on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Do not draw a progress bar.
    #[arg(long, global = true)]
    no_progress: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Login storm: N workers log in (connect, TLS/SASL, bind) over and over.
    Login {
        /// Concurrent clients (accounts 1..=N).
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
    },
    /// One-to-one chat: N pairs exchange messages at a set rate.
    Chat {
        /// Pairs of clients (accounts 1..=2N).
        #[arg(long, default_value_t = 50)]
        pairs: usize,
        /// Messages per second per client (the first step's, when saturating).
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        #[command(flatten)]
        flow: FlowArgs,
        #[command(flatten)]
        steps: StepArgs,
    },
    /// Group chat: R rooms of M occupants, every occupant sending at a set rate.
    Muc {
        /// Rooms.
        #[arg(long, default_value_t = 10)]
        rooms: usize,
        /// Occupants per room (accounts 1..=R*M).
        #[arg(long, default_value_t = 10)]
        occupants: usize,
        /// Messages per second per occupant (the first step's, when saturating).
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        #[command(flatten)]
        flow: FlowArgs,
        #[command(flatten)]
        steps: StepArgs,
    },
    /// Idle footprint: server RSS per connected session and per room occupant.
    Idle {
        /// Sessions to connect (accounts 1..=N).
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Rooms to spread the sessions over afterwards (0: none).
        #[arg(long, default_value_t = 10)]
        rooms: usize,
        /// Seconds to let the server settle before reading its RSS.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
        /// Process id of the server (its /proc/<pid>/status is read).
        #[arg(long)]
        server_pid: u32,
    },
    /// Writes the Markdown comparison and the SVG plot from JSON records.
    Report {
        /// Directory of JSON records (one per scenario and server).
        #[arg(long)]
        input: PathBuf,
        /// Markdown file to write.
        #[arg(long)]
        out: PathBuf,
        /// SVG plot to write (linked from the Markdown by file name).
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Title of the report.
        #[arg(long, default_value = "Conclave, Prosody and ejabberd compared")]
        title: String,
        /// Markdown file whose text goes under the title (machine, versions, settings).
        #[arg(long)]
        preamble: Option<PathBuf>,
    },
}

/// Timing and payload of a chat or group-chat step.
#[derive(Debug, Clone, clap::Args)]
struct FlowArgs {
    /// Seconds each step sends for.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds to wait for late deliveries after sending stops.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Minimum message body size in bytes.
    #[arg(long, default_value_t = 100)]
    body_size: usize,
}

fn secs(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("{what} must be a non-negative number of seconds, got {s}"))
}

/// The benchmark only ever targets this machine.
fn check_loopback(host: &str) -> Result<()> {
    if host == "localhost" {
        return Ok(());
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => Ok(()),
        Ok(ip) => bail!("refusing to load {ip}: only loopback addresses are allowed"),
        Err(_) => bail!("--host must be a loopback address or localhost, got {host:?}"),
    }
}

fn progress_bar(hidden: bool, prefix: &str) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_prefix(prefix.to_string());
    pb
}

async fn run_scenario(cli: &Cli, pb: &ProgressBar) -> Result<Outcome> {
    let target = Arc::new(cli.target.clone());
    let clock = Clock::new();
    match &cli.command {
        Command::Login { clients, duration } => {
            pb.set_prefix(format!("login storm, {clients} clients"));
            let r = login::run(&target, *clients, secs(*duration, "--duration")?, pb).await?;
            Ok(Outcome::Login(r))
        }
        Command::Chat {
            pairs,
            rate,
            flow,
            steps,
        } => {
            let setup = format!("{pairs} pairs");
            let base = ChatLoad {
                pairs: *pairs,
                rate: *rate,
                duration: secs(flow.duration, "--duration")?,
                drain: secs(flow.drain, "--drain")?,
                body_size: flow.body_size,
                p99_limit_ms: steps.p99_limit_ms,
            };
            let sat = search(setup, pairs * 2, *rate, steps, pb, |r, _| {
                let load = ChatLoad {
                    rate: r,
                    ..base.clone()
                };
                let target = Arc::clone(&target);
                let pb = pb.clone();
                async move { chat::run(&target, &load, clock, &pb).await }
            })
            .await;
            Ok(Outcome::Chat(sat))
        }
        Command::Muc {
            rooms,
            occupants,
            rate,
            flow,
            steps,
        } => {
            let setup = format!("{rooms} rooms × {occupants} occupants");
            let base = MucLoad {
                rooms: *rooms,
                occupants: *occupants,
                rate: *rate,
                duration: secs(flow.duration, "--duration")?,
                drain: secs(flow.drain, "--drain")?,
                body_size: flow.body_size,
                p99_limit_ms: steps.p99_limit_ms,
            };
            let sat = search(setup, rooms * occupants, *rate, steps, pb, |r, _| {
                let load = MucLoad {
                    rate: r,
                    ..base.clone()
                };
                let target = Arc::clone(&target);
                let pb = pb.clone();
                async move { muc::run(&target, &load, clock, &pb).await }
            })
            .await;
            Ok(Outcome::Muc(sat))
        }
        Command::Idle {
            sessions,
            rooms,
            settle,
            server_pid,
        } => {
            pb.set_prefix(format!("idle footprint, {sessions} sessions"));
            let r = idle::run(
                &target,
                *sessions,
                *rooms,
                secs(*settle, "--settle")?,
                *server_pid,
                pb,
            )
            .await?;
            Ok(Outcome::Idle(r))
        }
        Command::Report { .. } => bail!("not a scenario"),
    }
}

fn scenario_name(c: &Command) -> &'static str {
    match c {
        Command::Login { .. } => "login",
        Command::Chat { .. } => "chat",
        Command::Muc { .. } => "muc",
        Command::Idle { .. } => "idle",
        Command::Report { .. } => "report",
    }
}

fn write_report(
    input: &Path,
    out: &Path,
    plot_path: Option<&Path>,
    title: &str,
    preamble: Option<&Path>,
) -> Result<()> {
    let records = report::load_dir(input)?;
    let run = RunRecords::new(records);
    let preamble = match preamble {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => String::new(),
    };
    let plot_name = match plot_path {
        Some(p) => {
            plot::write_svg(&run, p)?;
            p.file_name().map(|n| n.to_string_lossy().into_owned())
        }
        None => None,
    };
    let md = report::render(&run, title, &preamble, plot_name.as_deref());
    std::fs::write(out, md).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn print_human(outcome: &Outcome) {
    match outcome {
        Outcome::Login(l) => println!(
            "login storm ({}), {} clients, {:.1} s: {} logins ({:.1}/s), {} failed; login time p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
            l.tls.label(),
            l.clients,
            l.duration_s,
            l.logins,
            l.logins_per_s,
            l.failures,
            l.latency.p50_ms,
            l.latency.p99_ms,
            l.latency.max_ms,
            if l.errors.is_empty() { String::new() } else { format!("\n  errors: {}", l.errors.join("; ")) }
        ),
        Outcome::Chat(s) | Outcome::Muc(s) => {
            println!("{}:", s.setup);
            for st in &s.steps {
                println!(
                    "  {:.2} msg/s per client: sent {}, delivered {}/{} ({:.0}/s), lost {}, duplicated {}, misrouted {}, latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms{}",
                    st.rate_per_client,
                    st.sent,
                    st.counts.delivered,
                    st.counts.expected,
                    st.deliveries_per_s,
                    st.lost,
                    st.counts.duplicates,
                    st.counts.misrouted,
                    st.latency.p50_ms,
                    st.latency.p99_ms,
                    st.latency.max_ms,
                    if st.sustained { String::new() } else { format!(" — NOT sustained: {}", st.verdict) }
                );
            }
            println!(
                "highest sustained: {:.0} deliveries/s{}",
                s.highest_sustained_per_s,
                if s.saturated { "" } else { " (step limit reached before saturation)" }
            );
        }
        Outcome::Idle(i) => println!(
            "idle: baseline {} KiB, {} sessions {} KiB ({:.1} KiB each), in {} rooms {} KiB ({:.1} KiB per occupant)",
            i.rss_baseline_kib,
            i.sessions,
            i.rss_sessions_kib,
            i.per_session_kib,
            i.rooms,
            i.rss_rooms_kib,
            i.per_occupant_kib
        ),
        Outcome::Failed { during, error } => println!("{during} failed: {error}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Report {
        input,
        out,
        plot,
        title,
        preamble,
    } = &cli.command
    {
        return match write_report(input, out, plot.as_deref(), title, preamble.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("conclave-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = check_loopback(&cli.target.host) {
        eprintln!("conclave-bench: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("conclave-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pb = progress_bar(cli.no_progress, scenario_name(&cli.command));
    let result = runtime.block_on(run_scenario(&cli, &pb));
    pb.finish_and_clear();
    let (outcome, code) = match result {
        Ok(o) => (o, ExitCode::SUCCESS),
        Err(e) => (
            Outcome::Failed {
                during: scenario_name(&cli.command).into(),
                error: format!("{e:#}"),
            },
            ExitCode::FAILURE,
        ),
    };
    if cli.json {
        let rec = Record {
            server: cli.label.clone(),
            outcome,
        };
        match serde_json::to_string_pretty(&rec) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("conclave-bench: cannot write JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print_human(&outcome);
    }
    // Do not wait for lingering connection tasks.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_accepted() {
        assert!(check_loopback("127.0.0.1").is_ok());
        assert!(check_loopback("127.0.0.2").is_ok());
        assert!(check_loopback("::1").is_ok());
        assert!(check_loopback("localhost").is_ok());
        assert!(check_loopback("10.0.0.1").is_err());
        assert!(check_loopback("example.org").is_err());
    }

    #[test]
    fn cli_parses_scenario_flags() {
        let cli = Cli::try_parse_from([
            "conclave-bench",
            "--port",
            "15222",
            "--tls",
            "starttls",
            "muc",
            "--rooms",
            "3",
            "--occupants",
            "4",
            "--rate",
            "2",
            "--saturate",
            "--max-steps",
            "3",
        ])
        .unwrap();
        assert_eq!(cli.target.port, 15222);
        match cli.command {
            Command::Muc {
                rooms,
                occupants,
                rate,
                steps,
                ..
            } => {
                assert_eq!((rooms, occupants, rate), (3, 4, 2.0));
                assert!(steps.saturate);
                assert_eq!(steps.max_steps, 3);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
