//! Latency statistics: an HDR histogram of microseconds per task, merged at
//! the end and summarised as count, mean, p50, p99 and max in milliseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency the histogram tracks exactly (one hour, in microseconds);
/// anything longer is recorded as this value.
const MAX_MICROS: u64 = 3_600_000_000;

/// Latencies recorded by one task.
#[derive(Debug, Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty histogram with three significant digits from 1 µs to 1 h.
    pub fn new() -> Self {
        // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low,
        // 3 significant digits); no input reaches this call.
        let hist = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .expect("constant histogram bounds are valid");
        Latencies { hist }
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        self.hist.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Records a latency given in microseconds.
    pub fn record_micros(&mut self, micros: u64) {
        self.hist.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Both histograms have the same bounds, so adding cannot fail; if it
        // ever did, fall back to adding value by value.
        if self.hist.add(&other.hist).is_err() {
            for v in other.hist.iter_recorded() {
                let _ = self
                    .hist
                    .record_n(v.value_iterated_to().min(MAX_MICROS), v.count_at_value());
            }
        }
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The summary in milliseconds (all zero when nothing was recorded).
    pub fn summary(&self) -> LatencySummary {
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: self.hist.len(),
            mean_ms: self.hist.mean() / 1000.0,
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            max_ms: ms(self.hist.max()),
        }
    }
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// How many latencies were measured.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut l = Latencies::new();
        // 1 ms .. 100 ms, one value each.
        for i in 1..=100u64 {
            l.record(Duration::from_millis(i));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "p50 {}", s.p50_ms);
        assert!((s.p99_ms - 99.0).abs() < 0.1, "p99 {}", s.p99_ms);
        assert!((s.max_ms - 100.0).abs() < 0.1, "max {}", s.max_ms);
        assert!((s.mean_ms - 50.5).abs() < 0.1, "mean {}", s.mean_ms);
    }

    #[test]
    fn merging_combines_counts_and_extremes() {
        let mut a = Latencies::new();
        let mut b = Latencies::new();
        for _ in 0..99 {
            a.record_micros(1_000);
        }
        b.record_micros(500_000);
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 1.0).abs() < 0.01);
        assert!((s.max_ms - 500.0).abs() < 1.0);
    }

    #[test]
    fn empty_summary_is_zero_and_huge_values_saturate() {
        assert_eq!(Latencies::new().summary(), LatencySummary::default());
        let mut l = Latencies::new();
        l.record(Duration::from_secs(10 * 3600));
        assert_eq!(l.count(), 1);
        assert!(l.summary().max_ms >= 3_599_000.0);
    }
}
