//! The JSON record each scenario run writes (`--json`) and the report reads:
//! the server's label plus the scenario's figures, or why it could not run.

use serde::{Deserialize, Serialize};

use crate::idle::IdleResult;
use crate::login::LoginResult;
use crate::saturate::Saturation;

/// One scenario run against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Which server (`conclave`, `prosody`, `ejabberd`, ...).
    pub server: String,
    /// The figures.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The figures of one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "lowercase")]
pub enum Outcome {
    /// Scenario 1.
    Login(LoginResult),
    /// Scenario 2.
    Chat(Saturation),
    /// Scenario 3.
    Muc(Saturation),
    /// Scenario 4.
    Idle(IdleResult),
    /// The server or the scenario could not run (written by the script or
    /// by the load generator when a scenario fails as a whole).
    Failed {
        /// What was being attempted.
        #[serde(default)]
        during: String,
        /// What went wrong.
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_records_written_by_a_script_are_read() {
        let r: Record = serde_json::from_str(
            r#"{"server":"conclave","scenario":"failed","during":"start","error":"no binary"}"#,
        )
        .unwrap();
        assert_eq!(r.server, "conclave");
        match r.outcome {
            Outcome::Failed { during, error } => {
                assert_eq!(during, "start");
                assert_eq!(error, "no binary");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn records_round_trip_through_json() {
        let r = Record {
            server: "prosody".into(),
            outcome: Outcome::Idle(IdleResult {
                sessions: 10,
                rooms: 2,
                occupants_per_room: 5,
                rss_baseline_kib: 1000,
                rss_sessions_kib: 1500,
                rss_rooms_kib: 1600,
                per_session_kib: 50.0,
                per_occupant_kib: 10.0,
            }),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""scenario":"idle""#));
        let back: Record = serde_json::from_str(&text).unwrap();
        match back.outcome {
            Outcome::Idle(i) => assert_eq!(i.rss_sessions_kib, 1500),
            other => panic!("unexpected {other:?}"),
        }
    }
}
