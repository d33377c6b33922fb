//! Scenario 1, login storm: N workers log in concurrently (connect,
//! STARTTLS+SCRAM or PLAIN, bind), close, and log in again until the
//! duration is over. Logins per second and login time come from the
//! workers' own clocks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::conn::{Target, TlsChoice};
use crate::stats::{Latencies, LatencySummary};

/// The figures of a login storm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResult {
    /// How logins were secured.
    pub tls: TlsChoice,
    /// Concurrent workers.
    pub clients: usize,
    /// Time the storm ran, in seconds.
    pub duration_s: f64,
    /// Successful logins (bound sessions).
    pub logins: u64,
    /// Failed login attempts.
    pub failures: u64,
    /// Successful logins per second.
    pub logins_per_s: f64,
    /// Time from TCP connect to bound resource.
    pub latency: LatencySummary,
    /// The first few failure messages.
    pub errors: Vec<String>,
}

struct WorkerOutcome {
    logins: u64,
    failures: u64,
    latencies: Latencies,
    errors: Vec<String>,
}

/// Runs the storm with `clients` workers (accounts 1..=clients).
pub async fn run(
    target: &Arc<Target>,
    clients: usize,
    duration: Duration,
    progress: &ProgressBar,
) -> Result<LoginResult> {
    if clients == 0 {
        return Err(anyhow!("need at least one client"));
    }
    let start = Instant::now();
    let end = start + duration;
    let mut set = JoinSet::new();
    for i in 0..clients {
        let target = Arc::clone(target);
        set.spawn(async move { worker(&target, i + 1, end).await });
    }
    progress.set_length(duration.as_secs().max(1));
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut outcomes = Vec::with_capacity(clients);
    loop {
        tokio::select! {
            joined = set.join_next() => match joined {
                Some(j) => outcomes.push(j.map_err(|e| anyhow!("login worker failed: {e}"))?),
                None => break,
            },
            _ = ticker.tick() => {
                progress.set_position(start.elapsed().as_secs().min(duration.as_secs()));
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut latencies = Latencies::new();
    let mut logins = 0;
    let mut failures = 0;
    let mut errors = Vec::new();
    for o in outcomes {
        latencies.merge(&o.latencies);
        logins += o.logins;
        failures += o.failures;
        errors.extend(o.errors);
    }
    errors.truncate(5);
    Ok(LoginResult {
        tls: target.tls,
        clients,
        duration_s: elapsed,
        logins,
        failures,
        logins_per_s: if elapsed > 0.0 {
            logins as f64 / elapsed
        } else {
            0.0
        },
        latency: latencies.summary(),
        errors,
    })
}

async fn worker(target: &Target, account: usize, end: Instant) -> WorkerOutcome {
    let mut out = WorkerOutcome {
        logins: 0,
        failures: 0,
        latencies: Latencies::new(),
        errors: Vec::new(),
    };
    while Instant::now() < end {
        match target.login(account).await {
            Ok((client, took)) => {
                out.logins += 1;
                out.latencies.record(took);
                let (_reader, writer) = client.into_split();
                let _ = tokio::time::timeout(Duration::from_secs(2), writer.shutdown()).await;
            }
            Err(e) => {
                out.failures += 1;
                if out.errors.len() < 2 {
                    out.errors.push(format!("{e:#}"));
                }
                // Do not spin on a server that refuses connections.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    out
}
