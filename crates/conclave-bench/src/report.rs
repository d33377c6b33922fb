//! The comparison report: reads the JSON records of one run (every
//! scenario against every server) and writes a Markdown table of figures
//! with Conclave/peer ratios, the per-step load tables, and how the figures
//! stand against the project's goals.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::conn::TlsChoice;
use crate::flow::FlowResult;
use crate::idle::IdleResult;
use crate::login::LoginResult;
use crate::record::{Outcome, Record};
use crate::saturate::Saturation;

/// The server whose figures are divided by the others'.
pub const SUBJECT: &str = "conclave";

/// Reads every `*.json` record in `dir`, in file-name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Record>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let rec: Record =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        out.push(rec);
    }
    Ok(out)
}

/// Picks one scenario's steps for a server.
pub type Getter = for<'a> fn(&'a RunRecords, &str) -> Option<&'a Saturation>;

/// All records of one run, with the servers in report order (Conclave
/// first, then the peers in order of appearance).
pub struct RunRecords {
    /// Server labels, Conclave first.
    pub servers: Vec<String>,
    records: Vec<Record>,
}

impl RunRecords {
    /// Groups records.
    pub fn new(records: Vec<Record>) -> RunRecords {
        let mut servers = vec![SUBJECT.to_string()];
        for known in ["prosody", "ejabberd"] {
            if records.iter().any(|r| r.server == known) {
                servers.push(known.to_string());
            }
        }
        for r in &records {
            if !servers.contains(&r.server) {
                servers.push(r.server.clone());
            }
        }
        RunRecords { servers, records }
    }

    /// The peers (every server but Conclave).
    pub fn peers(&self) -> impl Iterator<Item = &String> {
        self.servers.iter().filter(|s| s.as_str() != SUBJECT)
    }

    fn of(&self, server: &str) -> std::vec::IntoIter<&Outcome> {
        self.records
            .iter()
            .filter(|r| r.server == server)
            .map(|r| &r.outcome)
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// The login storm of `server` with `tls`.
    pub fn login(&self, server: &str, tls: TlsChoice) -> Option<&LoginResult> {
        self.of(server).find_map(|o| match o {
            Outcome::Login(l) if l.tls == tls => Some(l),
            _ => None,
        })
    }

    /// The chat steps of `server`.
    pub fn chat(&self, server: &str) -> Option<&Saturation> {
        self.of(server).find_map(|o| match o {
            Outcome::Chat(s) => Some(s),
            _ => None,
        })
    }

    /// The group-chat steps of `server`.
    pub fn muc(&self, server: &str) -> Option<&Saturation> {
        self.of(server).find_map(|o| match o {
            Outcome::Muc(s) => Some(s),
            _ => None,
        })
    }

    /// The idle footprint of `server`.
    pub fn idle(&self, server: &str) -> Option<&IdleResult> {
        self.of(server).find_map(|o| match o {
            Outcome::Idle(i) => Some(i),
            _ => None,
        })
    }

    /// What failed for `server`.
    pub fn failures(&self, server: &str) -> Vec<(&str, &str)> {
        self.of(server)
            .filter_map(|o| match o {
                Outcome::Failed { during, error } => Some((during.as_str(), error.as_str())),
                _ => None,
            })
            .collect()
    }
}

struct Row {
    label: String,
    lower_is_better: bool,
    values: Vec<Option<f64>>,
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// Conclave's figure divided by a peer's, when both exist and the peer's is
/// not zero.
pub fn ratio(subject: Option<f64>, peer: Option<f64>) -> Option<f64> {
    match (subject, peer) {
        (Some(s), Some(p)) if p != 0.0 => Some(s / p),
        _ => None,
    }
}

fn rows(run: &RunRecords) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut add = |label: String, lower: bool, f: &dyn Fn(&str) -> Option<f64>| {
        let values: Vec<Option<f64>> = run.servers.iter().map(|s| f(s)).collect();
        if values.iter().any(Option::is_some) {
            rows.push(Row {
                label,
                lower_is_better: lower,
                values,
            });
        }
    };
    for tls in [TlsChoice::Starttls, TlsChoice::Plain] {
        let clients = run
            .servers
            .iter()
            .find_map(|s| run.login(s, tls))
            .map_or(0, |l| l.clients);
        let what = format!("Login storm, {}, {clients} concurrent", tls.label());
        add(format!("{what}: logins/s"), false, &|s| {
            run.login(s, tls).map(|l| l.logins_per_s)
        });
        add(format!("{what}: p50 login ms"), true, &|s| {
            run.login(s, tls).map(|l| l.latency.p50_ms)
        });
        add(format!("{what}: p99 login ms"), true, &|s| {
            run.login(s, tls).map(|l| l.latency.p99_ms)
        });
        add(format!("{what}: failed logins"), true, &|s| {
            run.login(s, tls).map(|l| l.failures as f64)
        });
    }
    for (name, get) in [
        ("One-to-one chat", RunRecords::chat as Getter),
        ("Group chat", RunRecords::muc),
    ] {
        let setup = run
            .servers
            .iter()
            .find_map(|s| get(run, s))
            .map(|s| s.setup.clone())
            .unwrap_or_default();
        let what = format!("{name} ({setup})");
        add(format!("{what}: first step deliveries/s"), false, &|s| {
            get(run, s)
                .and_then(|x| x.steps.first())
                .map(|st| st.deliveries_per_s)
        });
        add(format!("{what}: first step p50 ms"), true, &|s| {
            get(run, s)
                .and_then(|x| x.steps.first())
                .map(|st| st.latency.p50_ms)
        });
        add(format!("{what}: first step p99 ms"), true, &|s| {
            get(run, s)
                .and_then(|x| x.steps.first())
                .map(|st| st.latency.p99_ms)
        });
        add(format!("{what}: first step max ms"), true, &|s| {
            get(run, s)
                .and_then(|x| x.steps.first())
                .map(|st| st.latency.max_ms)
        });
        add(
            format!("{what}: **highest sustained deliveries/s**"),
            false,
            &|s| get(run, s).map(|x| x.highest_sustained_per_s),
        );
        add(format!("{what}: p99 ms at that load"), true, &|s| {
            get(run, s)
                .and_then(Saturation::best)
                .map(|st| st.latency.p99_ms)
        });
        add(
            format!("{what}: lost + duplicated, all steps"),
            true,
            &|s| {
                get(run, s).map(|x| {
                    x.steps
                        .iter()
                        .map(|st| (st.lost + st.counts.duplicates + st.counts.misrouted) as f64)
                        .sum()
                })
            },
        );
    }
    let idle_setup = run
        .servers
        .iter()
        .find_map(|s| run.idle(s))
        .map(|i| format!("{} sessions, {} rooms", i.sessions, i.rooms))
        .unwrap_or_default();
    add(
        format!("Idle ({idle_setup}): RSS KiB per session"),
        true,
        &|s| run.idle(s).map(|i| i.per_session_kib),
    );
    add(
        format!("Idle ({idle_setup}): RSS KiB per room occupant"),
        true,
        &|s| {
            run.idle(s)
                .filter(|i| i.rooms > 0)
                .map(|i| i.per_occupant_kib)
        },
    );
    add(
        format!("Idle ({idle_setup}): RSS MiB before any session"),
        true,
        &|s| run.idle(s).map(|i| i.rss_baseline_kib as f64 / 1024.0),
    );
    rows
}

/// The Markdown report.
pub fn render(run: &RunRecords, title: &str, preamble: &str, plot_file: Option<&str>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {title}\n");
    if !preamble.trim().is_empty() {
        let _ = writeln!(md, "{}\n", preamble.trim_end());
    }
    let peers: Vec<&String> = run.peers().collect();
    let subject_idx = 0;
    // Header.
    let mut header = String::from("| Figure |");
    let mut rule = String::from("|---|");
    for s in &run.servers {
        let _ = write!(header, " {s} |");
        rule.push_str("---:|");
    }
    for p in &peers {
        let _ = write!(header, " {SUBJECT}/{p} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for row in rows(run) {
        let mut line = format!(
            "| {}{} |",
            row.label,
            if row.lower_is_better {
                " (lower is better)"
            } else {
                ""
            }
        );
        for v in &row.values {
            let _ = write!(line, " {} |", fmt_value(*v));
        }
        let subject = row.values.get(subject_idx).copied().flatten();
        for p in &peers {
            let idx = run.servers.iter().position(|s| s == *p);
            let peer = idx.and_then(|i| row.values.get(i).copied().flatten());
            let cell = ratio(subject, peer).map_or("–".into(), |r| format!("{r:.2}×"));
            let _ = write!(line, " {cell} |");
        }
        let _ = writeln!(md, "{line}");
    }
    md.push('\n');

    for s in &run.servers {
        for (during, error) in run.failures(s) {
            let _ = writeln!(md, "- **{s}** could not run ({during}): {error}");
        }
    }
    md.push('\n');

    if let Some(plot) = plot_file {
        let _ = writeln!(
            md,
            "![deliveries per second and p99 latency against load]({plot})\n"
        );
    }

    for (name, get) in [
        ("One-to-one chat", RunRecords::chat as Getter),
        ("Group chat", RunRecords::muc),
    ] {
        if run.servers.iter().all(|s| get(run, s).is_none()) {
            continue;
        }
        let _ = writeln!(md, "## {name}: load steps\n");
        let _ = writeln!(
            md,
            "Each cell: deliveries/s, p99 ms; a step that lost, duplicated or misrouted a message, had a connection error or passed p99 100 ms is marked ✗ with the reason.\n"
        );
        let mut header = String::from("| msg/s per client |");
        let mut rule = String::from("|---:|");
        for s in &run.servers {
            let _ = write!(header, " {s} |");
            rule.push_str("---|");
        }
        let _ = writeln!(md, "{header}\n{rule}");
        let depth = run
            .servers
            .iter()
            .filter_map(|s| get(run, s).map(|x| x.steps.len()))
            .max()
            .unwrap_or(0);
        for k in 0..depth {
            let rate = run
                .servers
                .iter()
                .find_map(|s| get(run, s).and_then(|x| x.steps.get(k)))
                .map_or(0.0, |st| st.rate_per_client);
            let mut line = format!("| {rate:.2} |");
            for s in &run.servers {
                let cell = get(run, s)
                    .and_then(|x| x.steps.get(k))
                    .map_or("–".to_string(), step_cell);
                let _ = write!(line, " {cell} |");
            }
            let _ = writeln!(md, "{line}");
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Goals\n");
    for line in goals(run) {
        let _ = writeln!(md, "- {line}");
    }
    md
}

fn step_cell(st: &FlowResult) -> String {
    if st.sustained {
        format!("{:.0}/s, {:.1} ms", st.deliveries_per_s, st.latency.p99_ms)
    } else {
        format!(
            "✗ {:.0}/s, {:.1} ms ({})",
            st.deliveries_per_s, st.latency.p99_ms, st.verdict
        )
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**not met**",
        None => "not determined",
    }
}

/// The goals, each with the figures behind its verdict.
pub fn goals(run: &RunRecords) -> Vec<String> {
    let mut out = Vec::new();
    let muc = |s: &str| run.muc(s).map(|m| m.highest_sustained_per_s);
    let saturated = |s: &str| run.muc(s).is_some_and(|m| m.saturated);
    for (peer, factor) in [("prosody", 5.0), ("ejabberd", 2.0)] {
        let r = ratio(muc(SUBJECT), muc(peer));
        // A server that never failed a step was not driven to saturation:
        // its figure is only a lower bound.
        let met = match r {
            Some(r) if r >= factor && saturated(peer) => Some(true),
            Some(r) if r < factor && saturated(SUBJECT) => Some(false),
            _ => None,
        };
        let mut bounds = Vec::new();
        for s in [SUBJECT, peer] {
            if run.muc(s).is_some() && !saturated(s) {
                bounds.push(format!("{s} did not saturate within the step limit"));
            }
        }
        out.push(format!(
            "Group-chat deliveries/s at saturation at least {factor}× {peer}'s: {} (Conclave {}, {peer} {}, ratio {}{})",
            verdict(met),
            fmt_value(muc(SUBJECT)),
            fmt_value(muc(peer)),
            r.map_or("–".into(), |r| format!("{r:.2}×")),
            if bounds.is_empty() { String::new() } else { format!("; {}", bounds.join(", ")) },
        ));
    }
    let idle = |s: &str| run.idle(s).map(|i| i.per_session_kib);
    let r = ratio(idle(SUBJECT), idle("prosody"));
    out.push(format!(
        "Idle RSS per session at most a quarter of Prosody's: {} (Conclave {} KiB, Prosody {} KiB, ratio {})",
        verdict(r.map(|r| r <= 0.25)),
        fmt_value(idle(SUBJECT)),
        fmt_value(idle("prosody")),
        r.map_or("–".into(), |r| format!("{r:.2}")),
    ));
    for (name, get) in [
        ("one-to-one chat", RunRecords::chat as Getter),
        ("group chat", RunRecords::muc),
    ] {
        let (met, detail) = p99_goal(run, get);
        out.push(format!(
            "p99 latency below both peers' at every load level both sustain, {name}: {} ({detail})",
            verdict(met)
        ));
    }
    out
}

/// Compares Conclave's p99 with each peer's at every step index where all
/// peers sustained the load.
fn p99_goal(run: &RunRecords, get: Getter) -> (Option<bool>, String) {
    let Some(subject) = get(run, SUBJECT) else {
        return (None, "no Conclave figures".into());
    };
    let peers: Vec<&Saturation> = match run.peers().map(|p| get(run, p)).collect() {
        Some(v) => v,
        None => return (None, "a peer has no figures".into()),
    };
    let mut compared = 0;
    let mut worse = Vec::new();
    for (k, st) in subject.steps.iter().enumerate() {
        let peer_steps: Option<Vec<&FlowResult>> = peers
            .iter()
            .map(|p| p.steps.get(k).filter(|s| s.sustained))
            .collect();
        let Some(peer_steps) = peer_steps else {
            continue;
        };
        compared += 1;
        let best_peer = peer_steps
            .iter()
            .map(|s| s.latency.p99_ms)
            .fold(f64::INFINITY, f64::min);
        if !st.sustained || st.latency.p99_ms >= best_peer {
            worse.push(format!(
                "{:.2}/s per client: Conclave {:.1} ms{}, best peer {best_peer:.1} ms",
                st.rate_per_client,
                st.latency.p99_ms,
                if st.sustained { "" } else { " (not sustained)" }
            ));
        }
    }
    if compared == 0 {
        return (None, "no load level sustained by both peers".into());
    }
    if worse.is_empty() {
        (Some(true), format!("{compared} levels compared"))
    } else {
        (
            Some(false),
            format!(
                "{compared} levels compared; not below at {}",
                worse.join("; ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saturate::failed_step;

    fn step(rate: f64, per_s: f64, p99: f64, sustained: bool) -> FlowResult {
        let mut s = failed_step(10, rate, String::new());
        s.deliveries_per_s = per_s;
        s.latency.p99_ms = p99;
        s.sustained = sustained;
        s.verdict = if sustained {
            String::new()
        } else {
            "p99".into()
        };
        s
    }

    fn muc(server: &str, steps: Vec<FlowResult>) -> Record {
        Record {
            server: server.into(),
            outcome: Outcome::Muc(Saturation::from_steps("2 rooms × 5".into(), steps)),
        }
    }

    fn idle(server: &str, per_session: f64) -> Record {
        Record {
            server: server.into(),
            outcome: Outcome::Idle(IdleResult {
                sessions: 100,
                rooms: 0,
                occupants_per_room: 0,
                rss_baseline_kib: 10_000,
                rss_sessions_kib: 10_000 + (per_session * 100.0) as u64,
                rss_rooms_kib: 0,
                per_session_kib: per_session,
                per_occupant_kib: 0.0,
            }),
        }
    }

    #[test]
    fn goals_compare_saturation_idle_and_latency() {
        let run = RunRecords::new(vec![
            muc(
                "prosody",
                vec![step(1.0, 100.0, 20.0, true), step(2.0, 150.0, 300.0, false)],
            ),
            muc(
                "ejabberd",
                vec![step(1.0, 100.0, 10.0, true), step(2.0, 200.0, 50.0, true)],
            ),
            muc(
                "conclave",
                vec![
                    step(1.0, 100.0, 5.0, true),
                    step(2.0, 200.0, 4.0, true),
                    step(4.0, 400.0, 8.0, true),
                ],
            ),
            idle("conclave", 20.0),
            idle("prosody", 100.0),
        ]);
        assert_eq!(run.servers, vec!["conclave", "prosody", "ejabberd"]);
        let g = goals(&run);
        // 400 / 100 would be short of 5x Prosody, but Conclave never
        // saturated, so that is undetermined; ejabberd never saturated
        // either, so 2x ejabberd is undetermined too.
        assert!(
            g[0].contains("not determined") && g[0].contains("conclave did not saturate"),
            "{}",
            g[0]
        );
        assert!(
            g[1].contains("not determined") && g[1].contains("ejabberd did not saturate"),
            "{}",
            g[1]
        );
        // 20 / 100 = 0.2 <= 0.25.
        assert!(g[2].contains("**met**"), "{}", g[2]);
        // Chat was not measured.
        assert!(g[3].contains("not determined"), "{}", g[3]);
        // Only the first level was sustained by both peers; 5 < 10.
        assert!(
            g[4].contains("**met**") && g[4].contains("1 levels"),
            "{}",
            g[4]
        );
    }

    #[test]
    fn saturation_goal_is_decided_only_by_saturated_servers() {
        let run = RunRecords::new(vec![
            muc(
                "prosody",
                vec![step(1.0, 100.0, 20.0, true), step(2.0, 150.0, 300.0, false)],
            ),
            muc(
                "ejabberd",
                vec![step(1.0, 100.0, 10.0, true), step(2.0, 120.0, 500.0, false)],
            ),
            muc(
                "conclave",
                vec![
                    step(1.0, 100.0, 5.0, true),
                    step(2.0, 240.0, 6.0, true),
                    step(4.0, 300.0, 900.0, false),
                ],
            ),
        ]);
        let g = goals(&run);
        // 240 / 100 = 2.4x Prosody: short of 5x, and Conclave saturated.
        assert!(
            g[0].contains("**not met**") && g[0].contains("2.40×"),
            "{}",
            g[0]
        );
        // 240 / 100 = 2.4x ejabberd, which saturated.
        assert!(
            g[1].contains("**met**") && g[1].contains("2.40×"),
            "{}",
            g[1]
        );
    }

    #[test]
    fn p99_goal_fails_when_conclave_is_slower_or_not_sustained() {
        let run = RunRecords::new(vec![
            muc("prosody", vec![step(1.0, 100.0, 20.0, true)]),
            muc("ejabberd", vec![step(1.0, 100.0, 10.0, true)]),
            muc("conclave", vec![step(1.0, 100.0, 15.0, true)]),
        ]);
        let (met, detail) = p99_goal(&run, RunRecords::muc);
        assert_eq!(met, Some(false), "{detail}");
        let run = RunRecords::new(vec![
            muc("prosody", vec![step(1.0, 100.0, 20.0, true)]),
            muc("ejabberd", vec![step(1.0, 100.0, 10.0, true)]),
            muc("conclave", vec![step(1.0, 0.0, 1.0, false)]),
        ]);
        assert_eq!(p99_goal(&run, RunRecords::muc).0, Some(false));
    }

    #[test]
    fn table_has_ratios_and_reports_failures() {
        let run = RunRecords::new(vec![
            idle("prosody", 100.0),
            idle("ejabberd", 50.0),
            Record {
                server: "conclave".into(),
                outcome: Outcome::Failed {
                    during: "start".into(),
                    error: "server failed to start".into(),
                },
            },
        ]);
        let md = render(&run, "t", "", Some("p.svg"));
        assert!(
            md.contains(
                "| Figure | conclave | prosody | ejabberd | conclave/prosody | conclave/ejabberd |"
            ),
            "{md}"
        );
        assert!(
            md.contains("RSS KiB per session (lower is better) | – | 100 | 50.0 | – | – |"),
            "{md}"
        );
        assert!(md.contains("**conclave** could not run (start): server failed to start"));
        assert!(md.contains("![deliveries per second"));
    }

    #[test]
    fn ratio_needs_both_values() {
        assert_eq!(ratio(Some(4.0), Some(2.0)), Some(2.0));
        assert_eq!(ratio(Some(4.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
    }
}
