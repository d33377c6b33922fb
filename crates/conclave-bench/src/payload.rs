//! The benchmark payload. Every message body carries the run it belongs to,
//! its sender, a sequence number and the sender's clock at the intended send
//! time, so that latency, loss and duplicates are measured by the clients
//! themselves and never taken from the server.

use std::time::{Duration, Instant};

/// Marks a body as a benchmark payload (and its format version).
const MAGIC: &str = "cb1";

/// One process-wide monotonic clock shared by every simulated client, so a
/// receiver can compare its own reading with the sender's stamp.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Clock {
            base: Instant::now(),
        }
    }

    /// Microseconds since the clock's zero.
    pub fn now_us(&self) -> u64 {
        self.us_at(Instant::now())
    }

    /// Microseconds from the clock's zero to `t` (0 if `t` is earlier).
    pub fn us_at(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant `us` microseconds after the clock's zero.
    pub fn instant_at(&self, us: u64) -> Instant {
        self.base + Duration::from_micros(us)
    }
}

/// What a message body says about the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The run (one load step) the message belongs to.
    pub run: u32,
    /// Index of the sending client.
    pub sender: u32,
    /// The sender's sequence number, from 0.
    pub seq: u64,
    /// The sender's clock at the intended send time, in microseconds.
    pub sent_us: u64,
}

impl Stamp {
    /// The body text, padded with `x` up to `min_len` bytes.
    pub fn encode(&self, min_len: usize) -> String {
        let mut s = format!(
            "{MAGIC} {:08x} {} {} {}",
            self.run, self.sender, self.seq, self.sent_us
        );
        if s.len() + 1 < min_len {
            s.push(' ');
            let pad = min_len - s.len();
            s.extend(std::iter::repeat_n('x', pad));
        }
        s
    }

    /// Reads a body; `None` if it is not a benchmark payload.
    pub fn decode(body: &str) -> Option<Stamp> {
        let mut parts = body.split_ascii_whitespace();
        if parts.next()? != MAGIC {
            return None;
        }
        let run = u32::from_str_radix(parts.next()?, 16).ok()?;
        let sender = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let sent_us = parts.next()?.parse().ok()?;
        Some(Stamp {
            run,
            sender,
            seq,
            sent_us,
        })
    }
}

/// A run identifier unlikely to repeat between steps or invocations.
pub fn new_run_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Fold the 128-bit count into 32 bits; the low bits change fastest.
    (nanos ^ (nanos >> 32) ^ (nanos >> 64)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_and_without_padding() {
        let st = Stamp {
            run: 0xdead_beef,
            sender: 17,
            seq: 123_456,
            sent_us: 987_654_321,
        };
        let short = st.encode(0);
        assert_eq!(Stamp::decode(&short), Some(st));
        let long = st.encode(200);
        assert_eq!(long.len(), 200);
        assert_eq!(Stamp::decode(&long), Some(st));
    }

    #[test]
    fn foreign_or_broken_bodies_are_rejected() {
        assert_eq!(Stamp::decode("hello world"), None);
        assert_eq!(Stamp::decode("cb1 zz 1 2 3"), None);
        assert_eq!(Stamp::decode("cb1 0000000a 1 2"), None);
        assert_eq!(Stamp::decode("cb1 0000000a -1 2 3"), None);
        assert_eq!(Stamp::decode(""), None);
    }

    #[test]
    fn clock_maps_instants_both_ways() {
        let c = Clock::new();
        let t = c.instant_at(1_500);
        assert_eq!(c.us_at(t), 1_500);
        assert!(c.now_us() < 60_000_000);
    }
}
