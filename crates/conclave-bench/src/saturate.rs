//! Saturation search: run a load step at increasing rates until p99
//! latency passes the limit or a message is lost, and keep the highest
//! throughput that was sustained.

use std::future::Future;

use clap::Args;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::flow::FlowResult;
use crate::stats::LatencySummary;
use crate::tracker::Counts;

/// Flags controlling the load steps.
#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    /// Step the rate up until the server stops keeping up.
    #[arg(long)]
    pub saturate: bool,
    /// Each step's rate is the previous one times this.
    #[arg(long, default_value_t = 2.0)]
    pub step_factor: f64,
    /// Upper bound on the number of steps.
    #[arg(long, default_value_t = 8)]
    pub max_steps: usize,
    /// p99 latency, in milliseconds, above which a step is not sustained.
    #[arg(long, default_value_t = 100.0)]
    pub p99_limit_ms: f64,
}

/// All steps of a scenario and what they show.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saturation {
    /// Shape of the load (clients, rooms, ...).
    pub setup: String,
    /// Every step run, in order of increasing rate.
    pub steps: Vec<FlowResult>,
    /// Index in `steps` of the sustained step with the highest throughput.
    pub best_step: Option<usize>,
    /// Deliveries per second of that step (0 if none was sustained).
    pub highest_sustained_per_s: f64,
    /// Whether a step failed (so the saturation point lies below it);
    /// false when the step limit was reached first.
    pub saturated: bool,
}

impl Saturation {
    /// Summarises a list of steps.
    pub fn from_steps(setup: String, steps: Vec<FlowResult>) -> Saturation {
        let best_step = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.sustained)
            .max_by(|(_, a), (_, b)| a.deliveries_per_s.total_cmp(&b.deliveries_per_s))
            .map(|(i, _)| i);
        let highest_sustained_per_s = best_step
            .and_then(|i| steps.get(i))
            .map_or(0.0, |s| s.deliveries_per_s);
        let saturated = steps.iter().any(|s| !s.sustained);
        Saturation {
            setup,
            steps,
            best_step,
            highest_sustained_per_s,
            saturated,
        }
    }

    /// The best sustained step.
    pub fn best(&self) -> Option<&FlowResult> {
        self.best_step.and_then(|i| self.steps.get(i))
    }
}

/// The rates to try, from `start`.
pub fn rates(start: f64, args: &StepArgs) -> Vec<f64> {
    if !args.saturate {
        return vec![start];
    }
    let factor = if args.step_factor > 1.0 {
        args.step_factor
    } else {
        2.0
    };
    (0..args.max_steps.max(1))
        .map(|k| start * factor.powi(i32::try_from(k).unwrap_or(i32::MAX)))
        .collect()
}

/// A step that could not run at all (e.g. logins failed).
pub fn failed_step(clients: usize, rate: f64, error: String) -> FlowResult {
    FlowResult {
        clients,
        rate_per_client: rate,
        offered_per_s: rate * clients as f64,
        sent: 0,
        counts: Counts::default(),
        lost: 0,
        stale: 0,
        deliveries_per_s: 0.0,
        duration_s: 0.0,
        latency: LatencySummary::default(),
        verdict: format!("step failed: {error}"),
        errors: vec![error],
        sustained: false,
    }
}

/// Runs `step(rate, index)` for each rate, stopping after the first step
/// that is not sustained.
pub async fn search<F, Fut>(
    setup: String,
    clients: usize,
    start_rate: f64,
    args: &StepArgs,
    progress: &ProgressBar,
    mut step: F,
) -> Saturation
where
    F: FnMut(f64, usize) -> Fut,
    Fut: Future<Output = anyhow::Result<FlowResult>>,
{
    let mut steps = Vec::new();
    for (k, rate) in rates(start_rate, args).into_iter().enumerate() {
        progress.set_prefix(format!("{setup}, step {} at {rate:.2}/s per client", k + 1));
        let result = match step(rate, k).await {
            Ok(r) => r,
            Err(e) => failed_step(clients, rate, format!("{e:#}")),
        };
        let stop = !result.sustained;
        progress.println(format!(
            "  step {}: {:.2} msg/s per client, {:.0} deliveries/s, p99 {:.1} ms, lost {} {}",
            k + 1,
            rate,
            result.deliveries_per_s,
            result.latency.p99_ms,
            result.lost,
            if result.sustained {
                "sustained".to_string()
            } else {
                format!("NOT sustained ({})", result.verdict)
            }
        ));
        steps.push(result);
        if stop {
            break;
        }
    }
    Saturation::from_steps(setup, steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(saturate: bool) -> StepArgs {
        StepArgs {
            saturate,
            step_factor: 2.0,
            max_steps: 4,
            p99_limit_ms: 100.0,
        }
    }

    fn step(rate: f64, per_s: f64, sustained: bool) -> FlowResult {
        let mut s = failed_step(10, rate, String::new());
        s.deliveries_per_s = per_s;
        s.sustained = sustained;
        s
    }

    #[test]
    fn rates_are_geometric_when_saturating() {
        assert_eq!(rates(1.5, &args(false)), vec![1.5]);
        assert_eq!(rates(1.0, &args(true)), vec![1.0, 2.0, 4.0, 8.0]);
    }

    #[test]
    fn best_is_the_fastest_sustained_step() {
        let s = Saturation::from_steps(
            "x".into(),
            vec![
                step(1.0, 100.0, true),
                step(2.0, 190.0, true),
                step(4.0, 250.0, false),
            ],
        );
        assert_eq!(s.best_step, Some(1));
        assert_eq!(s.highest_sustained_per_s, 190.0);
        assert!(s.saturated);
        let none = Saturation::from_steps("x".into(), vec![step(1.0, 100.0, false)]);
        assert_eq!(none.best_step, None);
        assert_eq!(none.highest_sustained_per_s, 0.0);
    }

    #[tokio::test]
    async fn search_stops_at_the_first_unsustained_step() {
        let pb = ProgressBar::hidden();
        let mut calls = Vec::new();
        let sat = search("t".into(), 10, 1.0, &args(true), &pb, |rate, _| {
            calls.push(rate);
            async move {
                if rate > 2.0 {
                    Err(anyhow::anyhow!("refused"))
                } else {
                    Ok(step(rate, rate * 100.0, true))
                }
            }
        })
        .await;
        assert_eq!(calls, vec![1.0, 2.0, 4.0]);
        assert_eq!(sat.steps.len(), 3);
        assert_eq!(sat.best_step, Some(1));
        assert!(sat.steps[2].verdict.contains("refused"));
    }
}
