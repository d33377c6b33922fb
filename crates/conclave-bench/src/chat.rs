//! Scenario 2, one-to-one chat: N pairs of clients, each client sending
//! stamped messages to its partner's full JID at a set rate.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use indicatif::ProgressBar;

use crate::conn::Target;
use crate::flow::{run_step, FlowPlan, FlowResult};
use crate::payload::{new_run_id, Clock};

/// Shape and pace of one chat step.
#[derive(Debug, Clone)]
pub struct ChatLoad {
    /// Number of pairs (accounts 1..=2N).
    pub pairs: usize,
    /// Messages per second per client.
    pub rate: f64,
    /// Sending time.
    pub duration: Duration,
    /// Time allowed for stragglers.
    pub drain: Duration,
    /// Minimum body size.
    pub body_size: usize,
    /// p99 limit for a sustained step.
    pub p99_limit_ms: f64,
}

/// Client `i`'s partner: 0<->1, 2<->3, ...
pub fn partner(i: usize) -> usize {
    i ^ 1
}

/// Runs one step: log in, exchange messages, log out.
pub async fn run(
    target: &Arc<Target>,
    load: &ChatLoad,
    clock: Clock,
    progress: &ProgressBar,
) -> Result<FlowResult> {
    let n = load.pairs * 2;
    progress.set_message("logging in");
    let clients = target
        .login_many(1, n, Some("<presence/>"), progress)
        .await?;
    let bound: Vec<String> = clients.iter().map(|c| c.bound_jid().to_string()).collect();
    let destinations = (0..n)
        .map(|i| bound.get(partner(i)).cloned().unwrap_or_default())
        .collect();
    let plan = FlowPlan {
        destinations,
        message_type: "chat",
        fanout: 1,
        expected_from: Arc::new(|me, sender| sender as usize == partner(me)),
        rate: load.rate,
        duration: load.duration,
        drain: load.drain,
        body_size: load.body_size,
        p99_limit_ms: load.p99_limit_ms,
        run: new_run_id(),
    };
    run_step(clients, plan, clock, progress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partners_are_symmetric_and_distinct() {
        for i in 0..10 {
            assert_ne!(partner(i), i);
            assert_eq!(partner(partner(i)), i);
        }
        assert_eq!(partner(0), 1);
        assert_eq!(partner(5), 4);
    }
}
