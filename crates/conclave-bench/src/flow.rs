//! One timed load step shared by the chat and group-chat scenarios: every
//! client sends stamped messages at a fixed rate to its destination, every
//! client records what it receives, and the step ends with a drain period
//! and a tally of deliveries, latency, loss and duplicates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use conclave_scansion::client::{Client, ClientReader, ClientWriter};
use conclave_scansion::xml::escape;
use indicatif::ProgressBar;
use minidom::Element;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::payload::{Clock, Stamp};
use crate::stats::{Latencies, LatencySummary};
use crate::tracker::{Counts, Receipt, Receipts};

const NS_CLIENT: &str = "jabber:client";

/// Decides whether receiver `r` (client index) should get messages from
/// sender `s` (client index, as carried in the payload).
pub type ExpectedFrom = Arc<dyn Fn(usize, u32) -> bool + Send + Sync>;

/// What one step sends.
pub struct FlowPlan {
    /// Destination of each client's messages (same order as the clients).
    pub destinations: Vec<String>,
    /// `chat` or `groupchat`.
    pub message_type: &'static str,
    /// Deliveries each message should cause (1 for chat, the room size for
    /// group chat, since the sender gets its own message back).
    pub fanout: u64,
    /// Who may send to whom.
    pub expected_from: ExpectedFrom,
    /// Messages per second per client.
    pub rate: f64,
    /// How long clients send.
    pub duration: Duration,
    /// How long to wait for stragglers after sending stops.
    pub drain: Duration,
    /// Minimum body length in bytes.
    pub body_size: usize,
    /// p99 latency above which the step counts as not sustained.
    pub p99_limit_ms: f64,
    /// The step's run identifier.
    pub run: u32,
}

/// The figures of one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowResult {
    /// Clients taking part.
    pub clients: usize,
    /// Messages per second per client asked for.
    pub rate_per_client: f64,
    /// Messages per second all clients together asked for.
    pub offered_per_s: f64,
    /// Messages actually sent.
    pub sent: u64,
    /// Delivery totals (expected, delivered, duplicates, misrouted).
    pub counts: Counts,
    /// Expected deliveries that did not arrive.
    pub lost: u64,
    /// Messages of an earlier run that arrived during this one.
    pub stale: u64,
    /// Distinct deliveries per second, from the first send to the last
    /// delivery.
    pub deliveries_per_s: f64,
    /// Sending time in seconds.
    pub duration_s: f64,
    /// End-to-end latency of every delivery, from the sender's intended
    /// send time to the receiver reading the message.
    pub latency: LatencySummary,
    /// Connection errors during the step (the first few).
    pub errors: Vec<String>,
    /// Whether the step was sustained: nothing lost, duplicated or
    /// misrouted, no errors, and p99 latency within the limit.
    pub sustained: bool,
    /// Why not, when it was not.
    pub verdict: String,
}

struct ReaderOutcome {
    receipts: Receipts,
    latencies: Latencies,
    last_rx_us: u64,
    stale: u64,
    error: Option<String>,
    reader: ClientReader,
}

struct WriterOutcome {
    sent: u64,
    error: Option<String>,
    writer: ClientWriter,
}

/// Runs one step with already logged-in (and, for group chat, joined)
/// clients, then closes them.
pub async fn run_step(
    clients: Vec<Client>,
    plan: FlowPlan,
    clock: Clock,
    progress: &ProgressBar,
) -> Result<FlowResult> {
    let n = clients.len();
    if plan.destinations.len() != n {
        return Err(anyhow!(
            "{} destinations for {} clients",
            plan.destinations.len(),
            n
        ));
    }
    if !(plan.rate > 0.0 && plan.rate.is_finite()) {
        return Err(anyhow!("rate must be a positive number, got {}", plan.rate));
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut readers = JoinSet::new();
    let mut writers = Vec::with_capacity(n);
    for (i, client) in clients.into_iter().enumerate() {
        let (reader, writer) = client.into_split();
        writers.push(writer);
        readers.spawn(read_loop(
            i,
            reader,
            plan.run,
            Arc::clone(&plan.expected_from),
            clock,
            Arc::clone(&delivered),
            stop_rx.clone(),
        ));
    }

    // Everyone starts together shortly from now; each client's schedule is
    // offset by a fraction of the period so that sends are spread out.
    let period = Duration::from_secs_f64(1.0 / plan.rate);
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + plan.duration;
    let mut writer_set = JoinSet::new();
    for (i, (writer, to)) in writers
        .into_iter()
        .zip(plan.destinations.iter())
        .enumerate()
    {
        let offset = period.mul_f64(i as f64 / n.max(1) as f64);
        let sender = u32::try_from(i).map_err(|_| anyhow!("too many clients"))?;
        writer_set.spawn(write_loop(
            writer,
            WriteSchedule {
                sender,
                run: plan.run,
                to: to.clone(),
                message_type: plan.message_type,
                first: start + offset,
                period,
                end,
                body_size: plan.body_size,
            },
            clock,
        ));
    }

    progress.set_length(plan.duration.as_secs().max(1));
    progress.set_position(0);
    let mut outcomes = Vec::with_capacity(n);
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            joined = writer_set.join_next() => match joined {
                Some(j) => outcomes.push(j.map_err(|e| anyhow!("sender task failed: {e}"))?),
                None => break,
            },
            _ = ticker.tick() => {
                let secs = Instant::now().saturating_duration_since(start).as_secs();
                progress.set_position(secs.min(plan.duration.as_secs()));
                progress.set_message(format!("{} delivered", delivered.load(Ordering::Relaxed)));
            }
        }
    }
    let sent: u64 = outcomes.iter().map(|o| o.sent).sum();
    let expected = sent * plan.fanout;

    // Drain: wait for every expected delivery, or give up after the limit.
    let drain_deadline = Instant::now() + plan.drain;
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A short grace period so that late duplicates are seen too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop_tx.send(true);

    let mut counts = Counts {
        expected,
        ..Counts::default()
    };
    let mut latencies = Latencies::new();
    let mut last_rx_us = 0;
    let mut stale = 0;
    let mut errors: Vec<String> = outcomes.iter().filter_map(|o| o.error.clone()).collect();
    let mut halves = Vec::with_capacity(n);
    while let Some(joined) = readers.join_next().await {
        let r = joined.map_err(|e| anyhow!("receiver task failed: {e}"))?;
        counts.add(r.receipts.totals());
        latencies.merge(&r.latencies);
        last_rx_us = last_rx_us.max(r.last_rx_us);
        stale += r.stale;
        errors.extend(r.error);
        halves.push(r.reader);
    }
    counts.expected = expected;
    close_all(outcomes.into_iter().map(|o| o.writer).collect()).await;
    drop(halves);

    let start_us = clock.us_at(start);
    let span_s = last_rx_us.saturating_sub(start_us) as f64 / 1e6;
    let deliveries_per_s = if span_s > 0.0 {
        counts.delivered as f64 / span_s
    } else {
        0.0
    };
    let latency = latencies.summary();
    let error_count = errors.len();
    errors.truncate(5);
    let verdict = verdict(&counts, error_count, &latency, plan.p99_limit_ms);
    Ok(FlowResult {
        clients: n,
        rate_per_client: plan.rate,
        offered_per_s: plan.rate * n as f64,
        sent,
        lost: counts.lost(),
        counts,
        stale,
        deliveries_per_s,
        duration_s: plan.duration.as_secs_f64(),
        latency,
        errors,
        sustained: verdict.is_empty(),
        verdict,
    })
}

/// Why a step was not sustained (empty when it was).
pub fn verdict(
    counts: &Counts,
    errors: usize,
    latency: &LatencySummary,
    p99_limit_ms: f64,
) -> String {
    let mut why = Vec::new();
    if counts.lost() > 0 {
        why.push(format!("{} lost", counts.lost()));
    }
    if counts.duplicates > 0 {
        why.push(format!("{} duplicated", counts.duplicates));
    }
    if counts.misrouted > 0 {
        why.push(format!("{} misrouted", counts.misrouted));
    }
    if errors > 0 {
        why.push(format!("{errors} connection errors"));
    }
    if latency.p99_ms > p99_limit_ms {
        why.push(format!("p99 {:.1} ms > {p99_limit_ms} ms", latency.p99_ms));
    }
    why.join(", ")
}

struct WriteSchedule {
    sender: u32,
    run: u32,
    to: String,
    message_type: &'static str,
    first: Instant,
    period: Duration,
    end: Instant,
    body_size: usize,
}

async fn write_loop(mut writer: ClientWriter, s: WriteSchedule, clock: Clock) -> WriterOutcome {
    let head = format!(
        "<message type='{}' to='{}' id='",
        s.message_type,
        escape(&s.to)
    );
    let mut seq: u64 = 0;
    let mut error = None;
    loop {
        // The intended send time; stamping it (rather than the time the
        // write happened) keeps a slow server from hiding its own delay.
        let due = s.first + s.period.mul_f64(seq as f64);
        if due >= s.end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let stamp = Stamp {
            run: s.run,
            sender: s.sender,
            seq,
            sent_us: clock.us_at(due),
        };
        let xml = format!(
            "{head}{:x}-{}-{}'><body>{}</body></message>",
            s.run,
            s.sender,
            seq,
            stamp.encode(s.body_size)
        );
        if let Err(e) = writer.send_raw(&xml).await {
            error = Some(format!("client {} send: {e}", s.sender));
            break;
        }
        seq += 1;
    }
    WriterOutcome {
        sent: seq,
        error,
        writer,
    }
}

async fn read_loop(
    me: usize,
    mut reader: ClientReader,
    run: u32,
    expected_from: ExpectedFrom,
    clock: Clock,
    delivered: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> ReaderOutcome {
    let mut receipts = Receipts::default();
    let mut latencies = Latencies::new();
    let mut last_rx_us = 0;
    let mut stale = 0;
    let mut error = None;
    loop {
        let el = tokio::select! {
            _ = stop.changed() => break,
            r = reader.recv() => match r {
                Ok(Some(el)) => el,
                Ok(None) => {
                    error = Some(format!("client {me}: the server closed the stream"));
                    break;
                }
                Err(e) => {
                    error = Some(format!("client {me} receive: {e}"));
                    break;
                }
            },
        };
        let Some(stamp) = stamp_of(&el) else { continue };
        let now = clock.now_us();
        if stamp.run != run {
            stale += 1;
            continue;
        }
        let expected = expected_from(me, stamp.sender);
        if receipts.record(stamp.sender, stamp.seq, expected) == Receipt::New {
            latencies.record_micros(now.saturating_sub(stamp.sent_us));
            last_rx_us = now;
            delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
    ReaderOutcome {
        receipts,
        latencies,
        last_rx_us,
        stale,
        error,
        reader,
    }
}

/// The payload of a `<message/>` with a benchmark body, if it is one.
pub fn stamp_of(el: &Element) -> Option<Stamp> {
    if !el.is("message", NS_CLIENT) {
        return None;
    }
    if el.attr("type") == Some("error") {
        return None;
    }
    let body = el.get_child("body", NS_CLIENT)?;
    Stamp::decode(&body.text())
}

/// Ends every stream (without waiting for the server's reply).
pub async fn close_all(writers: Vec<ClientWriter>) {
    let mut set = JoinSet::new();
    for w in writers {
        set.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), w.shutdown()).await;
        });
    }
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_is_read_from_message_bodies_only() {
        let st = Stamp {
            run: 5,
            sender: 2,
            seq: 9,
            sent_us: 100,
        };
        let msg: Element = format!(
            "<message xmlns='jabber:client' type='groupchat'><body>{}</body></message>",
            st.encode(50)
        )
        .parse()
        .unwrap();
        assert_eq!(stamp_of(&msg), Some(st));
        let err: Element = format!(
            "<message xmlns='jabber:client' type='error'><body>{}</body></message>",
            st.encode(0)
        )
        .parse()
        .unwrap();
        assert_eq!(stamp_of(&err), None);
        let pres: Element = "<presence xmlns='jabber:client'/>".parse().unwrap();
        assert_eq!(stamp_of(&pres), None);
        let subject: Element =
            "<message xmlns='jabber:client' type='groupchat'><subject/></message>"
                .parse()
                .unwrap();
        assert_eq!(stamp_of(&subject), None);
    }

    #[test]
    fn verdict_names_every_failure() {
        let ok = Counts {
            expected: 10,
            delivered: 10,
            ..Counts::default()
        };
        let fast = LatencySummary {
            p99_ms: 5.0,
            ..LatencySummary::default()
        };
        assert_eq!(verdict(&ok, 0, &fast, 100.0), "");
        let slow = LatencySummary {
            p99_ms: 150.0,
            ..LatencySummary::default()
        };
        let v = verdict(&ok, 0, &slow, 100.0);
        assert!(v.contains("p99 150.0 ms"), "{v}");
        let lossy = Counts {
            expected: 10,
            delivered: 8,
            duplicates: 1,
            misrouted: 0,
        };
        let v = verdict(&lossy, 2, &fast, 100.0);
        assert!(
            v.contains("2 lost") && v.contains("1 duplicated") && v.contains("2 connection errors"),
            "{v}"
        );
    }
}
