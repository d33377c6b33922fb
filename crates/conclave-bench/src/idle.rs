//! Scenario 4, idle footprint: the server's resident memory per connected,
//! available session and per room occupant, from `/proc/<pid>/status`,
//! measured after the server has had time to settle.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::conn::Target;
use crate::flow::close_all;
use crate::muc::join_rooms;
use crate::payload::new_run_id;
use crate::rss::rss_kib;

/// Memory figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    /// Sessions connected (and available).
    pub sessions: usize,
    /// Rooms they then joined.
    pub rooms: usize,
    /// Occupants per room.
    pub occupants_per_room: usize,
    /// Server RSS before any session, KiB.
    pub rss_baseline_kib: u64,
    /// Server RSS with every session connected, KiB.
    pub rss_sessions_kib: u64,
    /// Server RSS with every session in a room as well, KiB.
    pub rss_rooms_kib: u64,
    /// (sessions - baseline) / sessions, KiB.
    pub per_session_kib: f64,
    /// (rooms - sessions) / occupants, KiB; 0 when no rooms were joined.
    pub per_occupant_kib: f64,
}

/// Connects `sessions` clients with initial presence, then puts them in
/// `rooms` rooms of equal size, reading the server's RSS after each phase.
pub async fn run(
    target: &Arc<Target>,
    sessions: usize,
    rooms: usize,
    settle: Duration,
    server_pid: u32,
    progress: &ProgressBar,
) -> Result<IdleResult> {
    if sessions == 0 {
        return Err(anyhow!("need at least one session"));
    }
    if rooms > 0 && !sessions.is_multiple_of(rooms) {
        return Err(anyhow!(
            "{sessions} sessions do not divide into {rooms} rooms of equal size"
        ));
    }
    let baseline = rss_kib(server_pid)?;
    progress.set_length(sessions as u64);
    progress.set_message("connecting sessions");
    let clients = target
        .login_many(1, sessions, Some("<presence/>"), progress)
        .await?;
    progress.set_message("settling");
    tokio::time::sleep(settle).await;
    let with_sessions = rss_kib(server_pid)?;
    let per_room = sessions.checked_div(rooms).unwrap_or(0);
    let clients = if rooms > 0 {
        progress.set_message("joining rooms");
        let c = join_rooms(target, clients, per_room, new_run_id()).await?;
        progress.set_message("settling");
        tokio::time::sleep(settle).await;
        c
    } else {
        clients
    };
    let with_rooms = if rooms > 0 {
        rss_kib(server_pid)?
    } else {
        with_sessions
    };
    close_all(clients.into_iter().map(|c| c.into_split().1).collect()).await;
    Ok(IdleResult {
        sessions,
        rooms,
        occupants_per_room: per_room,
        rss_baseline_kib: baseline,
        rss_sessions_kib: with_sessions,
        rss_rooms_kib: with_rooms,
        per_session_kib: per_unit(with_sessions, baseline, sessions),
        per_occupant_kib: if rooms > 0 {
            per_unit(with_rooms, with_sessions, sessions)
        } else {
            0.0
        },
    })
}

/// (after - before) / count, as a float; a shrinking RSS gives a negative
/// figure rather than being hidden.
pub fn per_unit(after: u64, before: u64, count: usize) -> f64 {
    if count == 0 {
        return 0.0;
    }
    (after as f64 - before as f64) / count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_unit_divides_the_difference() {
        assert_eq!(per_unit(1_100, 100, 1_000), 1.0);
        assert_eq!(per_unit(100, 200, 10), -10.0);
        assert_eq!(per_unit(5, 1, 0), 0.0);
    }
}
