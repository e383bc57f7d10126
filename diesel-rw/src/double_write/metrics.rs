//! [`Metrics`]: per-side counters and latency histograms of a double-write pool.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::pattern::Side;

/// The upper bounds of the latency histogram's buckets, in microseconds; a last bucket holds
/// everything slower.
pub const LATENCY_BUCKETS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

const BUCKETS: usize = LATENCY_BUCKETS_US.len() + 1;

/// Live counters of both sides, shared by every connection of a pool. Lock-free: each
/// statement adds to a few atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    sides: [SideCounters; 2],
}

#[derive(Debug, Default)]
struct SideCounters {
    successes: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
    journaled: AtomicU64,
    latency: Histogram,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Metrics {
    /// Counts one statement (or transaction step) that succeeded on `side`.
    pub(crate) fn success(&self, side: Side, took: Duration) {
        let counters = &self.sides[side.index()];
        counters.successes.fetch_add(1, Ordering::Relaxed);
        counters.latency.observe(took);
    }

    /// Counts one statement (or transaction step, or connect) that failed on `side`.
    pub(crate) fn failure(&self, side: Side, took: Duration) {
        let counters = &self.sides[side.index()];
        counters.failures.fetch_add(1, Ordering::Relaxed);
        counters.latency.observe(took);
    }

    /// Counts one retry of a statement on `side`.
    pub(crate) fn retry(&self, side: Side) {
        self.sides[side.index()]
            .retries
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one journal entry naming `side`.
    pub(crate) fn journaled(&self, side: Side) {
        self.sides[side.index()]
            .journaled
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of both sides' counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            source: self.side(Side::Source),
            destination: self.side(Side::Destination),
        }
    }

    /// A snapshot of one side's counters.
    pub fn side(&self, side: Side) -> SideMetrics {
        let c = &self.sides[side.index()];
        SideMetrics {
            successes: c.successes.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            journaled: c.journaled.load(Ordering::Relaxed),
            latency: c.latency.snapshot(),
        }
    }
}

impl Histogram {
    fn observe(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US.partition_point(|&bound| bound < us);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum: Duration::from_micros(self.sum_us.load(Ordering::Relaxed)),
        }
    }
}

/// Both sides' counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// The source's counters.
    pub source: SideMetrics,
    /// The destination's counters.
    pub destination: SideMetrics,
}

impl MetricsSnapshot {
    /// One side's counters.
    pub fn side(&self, side: Side) -> &SideMetrics {
        match side {
            Side::Source => &self.source,
            Side::Destination => &self.destination,
        }
    }
}

/// One side's counters: statements and transaction steps (`BEGIN`, `COMMIT`, ...) sent to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SideMetrics {
    /// Statements that succeeded.
    pub successes: u64,
    /// Statements that failed, and failed connects.
    pub failures: u64,
    /// Retries (attempts after the first) of statements and connects.
    pub retries: u64,
    /// Journal entries naming this side.
    pub journaled: u64,
    /// How long statements took (successes and failures).
    pub latency: LatencyHistogram,
}

/// A latency histogram with the fixed buckets of [`LATENCY_BUCKETS_US`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// The count of each bucket: `counts[i]` holds latencies up to `LATENCY_BUCKETS_US[i]`
    /// microseconds (and above the previous bound); the last holds the slower ones.
    pub counts: [u64; BUCKETS],
    /// The sum of all latencies.
    pub sum: Duration,
}

impl LatencyHistogram {
    /// How many latencies were observed.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The mean latency, if any was observed.
    pub fn mean(&self) -> Option<Duration> {
        let count = self.count();
        (count > 0).then(|| self.sum / u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// An upper bound of the `q` quantile (`0.0..=1.0`): the upper bound of the bucket that holds
    /// it; `None` if nothing was observed or it falls in the last, unbounded bucket.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return LATENCY_BUCKETS_US
                    .get(i)
                    .map(|&us| Duration::from_micros(us));
            }
        }
        None
    }
}

impl fmt::Display for SideMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ok, {} failed, {} retries, {} journaled",
            self.successes, self.failures, self.retries, self.journaled
        )?;
        if let Some(p50) = self.latency.quantile(0.5) {
            write!(f, ", p50 <= {p50:?}")?;
        }
        if let Some(p99) = self.latency.quantile(0.99) {
            write!(f, ", p99 <= {p99:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_side_and_buckets() {
        let metrics = Metrics::default();
        metrics.success(Side::Source, Duration::from_micros(50));
        metrics.success(Side::Source, Duration::from_micros(100));
        metrics.success(Side::Source, Duration::from_micros(101));
        metrics.failure(Side::Destination, Duration::from_secs(10));
        metrics.retry(Side::Destination);
        metrics.journaled(Side::Destination);
        let snap = metrics.snapshot();
        assert_eq!(snap.source.successes, 3);
        assert_eq!(snap.source.failures, 0);
        assert_eq!(snap.source.latency.counts[0], 2);
        assert_eq!(snap.source.latency.counts[1], 1);
        assert_eq!(
            snap.source.latency.quantile(0.5),
            Some(Duration::from_micros(100))
        );
        assert_eq!(
            snap.source.latency.quantile(1.0),
            Some(Duration::from_micros(250))
        );
        assert_eq!(snap.destination.failures, 1);
        assert_eq!(snap.destination.retries, 1);
        assert_eq!(snap.destination.journaled, 1);
        assert_eq!(snap.destination.latency.counts[BUCKETS - 1], 1);
        assert_eq!(snap.destination.latency.quantile(0.5), None);
        assert_eq!(snap.side(Side::Destination).failures, 1);
        assert!(snap.source.to_string().starts_with("3 ok, 0 failed"));
    }
}
