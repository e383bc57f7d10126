//! Replica health: ejection after a failure, re-admission after a cooldown.
//!
//! When a replica cannot be reached (its connect or checkout fails), it is *ejected*: reads skip
//! it until its cooldown has passed. After the cooldown the next read that the policy sends to
//! it is a probe: if it succeeds the replica is up again, if it fails it is ejected for another
//! cooldown. Reading the state costs one atomic load on the fast path (no clock read while the
//! replica is up).
//!
//! The lag monitor's bookkeeping ([`LagMonitor`]) lives here too, shared by the sync monitor
//! thread and the async monitor task, which differ only in how they query the nodes and wait.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::consistency::Position;
use crate::error::Error;
use crate::policy::Candidates;
use crate::route::RoutingCore;

/// How far behind the primary a replica may be and still serve reads
/// ([`RwPoolBuilder::max_replica_lag`](crate::RwPoolBuilder::max_replica_lag)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaxLag {
    /// Replication distance: bytes of WAL (PostgreSQL) or transactions (MariaDB GTID).
    Distance(u64),
    /// Time: how long ago the primary was at the oldest position the replica has not replayed.
    Time(Duration),
}

impl MaxLag {
    /// Whether a replica with this lag exceeds the limit.
    pub(crate) fn exceeded_by(self, distance: u64, lag: Duration) -> bool {
        match self {
            MaxLag::Distance(max) => distance > max,
            MaxLag::Time(max) => lag > max,
        }
    }
}

/// The state of one replica.
#[derive(Debug)]
pub(crate) struct ReplicaHealth {
    /// Nanoseconds since `Health::epoch` until which the replica is ejected; 0 when up.
    ejected_until: AtomicU64,
    /// Consecutive failures.
    failures: AtomicU32,
    /// Connections checked out now.
    in_flight: AtomicUsize,
    /// Weight for `Policy::Weighted`.
    weight: u32,
    /// The position it had replayed at the lag monitor's last sample.
    replayed: Mutex<Option<Position>>,
    /// Lag at the last sample: WAL bytes / GTID transactions behind the primary.
    lag_distance: AtomicU64,
    /// Lag at the last sample, in milliseconds (age of the oldest primary position it lacks).
    lag_millis: AtomicU64,
    /// Excluded from reads by `max_replica_lag`.
    lagging: AtomicBool,
    /// Bumped when its connections must not be reused (a connection error was seen).
    generation: AtomicU64,
    /// Smoothed latency of its reads, in microseconds; 0 before the first sample (and after
    /// an ejection for slowness).
    latency_us: AtomicU64,
}

/// The health of every replica of a pool.
#[derive(Debug)]
pub(crate) struct Health {
    /// Bumped when the primary's connections must not be reused.
    primary_generation: AtomicU64,
    epoch: Instant,
    cooldown: Duration,
    replicas: Vec<ReplicaHealth>,
}

impl Health {
    pub(crate) fn new(weights: impl IntoIterator<Item = u32>, cooldown: Duration) -> Self {
        Health {
            primary_generation: AtomicU64::new(0),
            epoch: Instant::now(),
            cooldown,
            replicas: weights
                .into_iter()
                .map(|weight| ReplicaHealth {
                    ejected_until: AtomicU64::new(0),
                    latency_us: AtomicU64::new(0),
                    failures: AtomicU32::new(0),
                    in_flight: AtomicUsize::new(0),
                    weight,
                    replayed: Mutex::new(None),
                    lag_distance: AtomicU64::new(0),
                    lag_millis: AtomicU64::new(0),
                    lagging: AtomicBool::new(false),
                    generation: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    fn now_nanos(&self) -> u64 {
        // Never 0, so 0 can mean "up".
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }

    /// Ejects replica `i` for one cooldown. Returns true if it was up before. Its last known
    /// replayed position is forgotten: a replica that went away may come back behind it (a
    /// restarted standby replays again from its last restartpoint), and `Causal` must not trust
    /// it until it is sampled again.
    pub(crate) fn eject(&self, i: usize) -> bool {
        let r = &self.replicas[i];
        self.forget_replayed(i);
        r.failures.fetch_add(1, Ordering::Relaxed);
        let until = self.now_nanos() + self.cooldown.as_nanos() as u64;
        r.ejected_until.swap(until, Ordering::AcqRel) == 0
    }

    /// Marks replica `i` as up after a successful checkout.
    pub(crate) fn mark_up(&self, i: usize) {
        let r = &self.replicas[i];
        if r.ejected_until.load(Ordering::Relaxed) != 0 {
            r.ejected_until.store(0, Ordering::Release);
            r.failures.store(0, Ordering::Relaxed);
            tracing::info!(target: "diesel_rw", replica = i, "replica re-admitted");
        }
    }

    /// Adds a read latency of replica `i` to its smoothed latency (an exponential moving
    /// average, 30 % weight for the new sample) and returns it.
    pub(crate) fn record_latency(&self, i: usize, took: Duration) -> Duration {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let r = &self.replicas[i];
        let old = r.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old.saturating_mul(7) / 10).saturating_add(sample.saturating_mul(3) / 10)
        };
        r.latency_us.store(new.max(1), Ordering::Relaxed);
        Duration::from_micros(new)
    }

    /// Forgets replica `i`'s smoothed latency (it starts afresh when re-admitted).
    pub(crate) fn reset_latency(&self, i: usize) {
        self.replicas[i].latency_us.store(0, Ordering::Relaxed);
    }

    /// Replica `i`'s smoothed read latency, if it has one.
    pub(crate) fn latency(&self, i: usize) -> Option<Duration> {
        match self.replicas[i].latency_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Whether replica `i` is ejected now (its cooldown has not passed).
    pub(crate) fn is_ejected(&self, i: usize) -> bool {
        let until = self.replicas[i].ejected_until.load(Ordering::Acquire);
        until != 0 && self.now_nanos() < until
    }

    /// Counts a failure of replica `i` without ejecting it; returns the streak. Its last known
    /// replayed position is forgotten, as on [`Self::eject`].
    pub(crate) fn count_failure(&self, i: usize) -> u32 {
        self.forget_replayed(i);
        self.replicas[i].failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records the lag monitor's sample of replica `i`.
    pub(crate) fn record_sample(
        &self,
        i: usize,
        replayed: Position,
        distance: u64,
        lag: Duration,
        lagging: bool,
    ) {
        let r = &self.replicas[i];
        r.failures.store(0, Ordering::Relaxed);
        *r.replayed.lock().unwrap_or_else(|e| e.into_inner()) = Some(replayed);
        r.lag_distance.store(distance, Ordering::Relaxed);
        r.lag_millis.store(
            lag.as_millis().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
        if r.lagging.swap(lagging, Ordering::Relaxed) != lagging {
            tracing::info!(target: "diesel_rw", replica = i, lagging, distance, lag_ms = lag.as_millis() as u64, "replica lag state changed");
        }
    }

    /// Whether replica `i` had replayed `target` at the last sample.
    pub(crate) fn has_reached(&self, i: usize, target: &Position) -> bool {
        self.replicas[i]
            .replayed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|p| p.has_reached(target))
    }

    /// Forgets replica `i`'s replayed position: unknown until the next sample or check.
    fn forget_replayed(&self, i: usize) {
        *self.replicas[i]
            .replayed
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Notes a fresher replayed position of replica `i` (from an active check).
    pub(crate) fn note_replayed(&self, i: usize, replayed: Position) {
        let mut slot = self.replicas[i]
            .replayed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(|p| !p.has_reached(&replayed)) {
            *slot = Some(replayed);
        }
    }

    /// Replica `i`'s lag at the last sample: (distance, time).
    pub(crate) fn lag(&self, i: usize) -> (u64, Duration) {
        let r = &self.replicas[i];
        (
            r.lag_distance.load(Ordering::Relaxed),
            Duration::from_millis(r.lag_millis.load(Ordering::Relaxed)),
        )
    }

    /// Whether replica `i` is excluded for lagging.
    pub(crate) fn is_lagging(&self, i: usize) -> bool {
        self.replicas[i].lagging.load(Ordering::Relaxed)
    }

    /// The generation of a node's connections.
    pub(crate) fn generation_of(&self, node: crate::Node) -> u64 {
        match node {
            crate::Node::Primary => &self.primary_generation,
            crate::Node::Replica(i) => &self.replicas[i].generation,
        }
        .load(Ordering::Acquire)
    }

    /// The generation of replica `i`'s connections.
    pub(crate) fn generation(&self, i: usize) -> u64 {
        self.generation_of(crate::Node::Replica(i))
    }

    /// Marks every connection of a node made so far as not to be reused.
    pub(crate) fn retire(&self, node: crate::Node) {
        match node {
            crate::Node::Primary => &self.primary_generation,
            crate::Node::Replica(i) => &self.replicas[i].generation,
        }
        .fetch_add(1, Ordering::AcqRel);
    }

    /// Marks every connection of replica `i` made so far as not to be reused.
    pub(crate) fn retire_connections(&self, i: usize) {
        self.retire(crate::Node::Replica(i));
    }

    /// Counts a checked-out connection of replica `i`; the guard uncounts it when dropped.
    pub(crate) fn enter(self: &std::sync::Arc<Self>, i: usize) -> InFlight {
        self.replicas[i].in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            health: self.clone(),
            replica: i,
        }
    }
}

impl Candidates for Health {
    fn len(&self) -> usize {
        self.replicas.len()
    }
    fn available(&self, i: usize) -> bool {
        !self.is_ejected(i) && !self.is_lagging(i)
    }
    fn weight(&self, i: usize) -> u32 {
        self.replicas[i].weight
    }
    fn in_flight(&self, i: usize) -> usize {
        self.replicas[i].in_flight.load(Ordering::Relaxed)
    }
}

/// The replicas that had replayed a position at the last sample (for `Consistency::Causal`).
pub(crate) struct CaughtUp<'a> {
    pub(crate) health: &'a Health,
    pub(crate) target: &'a Position,
}

impl Candidates for CaughtUp<'_> {
    fn len(&self) -> usize {
        self.health.len()
    }
    fn available(&self, i: usize) -> bool {
        self.health.available(i) && self.health.has_reached(i, self.target)
    }
    fn weight(&self, i: usize) -> u32 {
        self.health.weight(i)
    }
    fn in_flight(&self, i: usize) -> usize {
        self.health.in_flight(i)
    }
}

/// Primary positions the lag monitor keeps to turn a position gap into a time lag.
const HISTORY: usize = 4096;

/// The lag monitor's decisions, shared by the sync monitor thread and the async monitor task:
/// they only run the queries and wait between rounds. Each round, every `health_interval`:
/// [`primary_sampled`](Self::primary_sampled) with the primary's position, then, for each
/// replica that is [`due`](Self::due), [`replica_probed`](Self::replica_probed) with what its
/// probe gave. A replica's lag is its distance to the primary's position (WAL bytes, GTID
/// transactions) and how long ago the primary was at the oldest position it lacks; a probe
/// that succeeds re-admits an ejected replica (its cooldown has passed, or it would not be
/// due), and `eject_after` failed probes in a row eject it.
#[derive(Debug, Default)]
pub(crate) struct LagMonitor {
    /// When the primary was at which position, oldest first.
    history: VecDeque<(Instant, Position)>,
    /// The primary's position this round, if it could be read.
    primary: Option<Position>,
}

impl LagMonitor {
    /// Starts a round with the primary's position (`None`: not known this round; replicas are
    /// still probed, but their lag is not updated).
    pub(crate) fn primary_sampled(&mut self, primary: Option<Position>) {
        if let Some(p) = &primary {
            if self.history.back().is_none_or(|(_, last)| last != p) {
                self.history.push_back((Instant::now(), p.clone()));
                if self.history.len() > HISTORY {
                    self.history.pop_front();
                }
            }
        }
        self.primary = primary;
    }

    /// Whether replica `i` is probed this round: not while it is ejected (until its cooldown
    /// has passed).
    pub(crate) fn due(core: &RoutingCore, i: usize) -> bool {
        !core.health.is_ejected(i)
    }

    /// Records replica `i`'s probe: its replayed position (`None` for a backend without
    /// positions), or the error. Returns whether the monitor keeps its connection to it.
    pub(crate) fn replica_probed(
        &self,
        core: &RoutingCore,
        i: usize,
        probe: Result<Option<Position>, Error>,
    ) -> bool {
        match probe {
            Ok(replayed) => {
                core.replica_ok(i);
                if let (Some(replayed), Some(primary)) = (replayed, &self.primary) {
                    let distance = replayed.distance_to(primary);
                    let lag = self.time_lag(&replayed);
                    let lagging = core
                        .max_replica_lag
                        .is_some_and(|max| max.exceeded_by(distance, lag));
                    core.health
                        .record_sample(i, replayed, distance, lag, lagging);
                    core.metrics.lag(i, lag);
                }
                true
            }
            Err(e) => {
                if core.health.count_failure(i) >= core.eject_after {
                    core.health.retire_connections(i);
                    core.replica_failed(i, &e);
                }
                false
            }
        }
    }

    /// How long ago the primary was at the oldest position `replayed` lacks.
    fn time_lag(&self, replayed: &Position) -> Duration {
        self.history
            .iter()
            .find(|(_, p)| !replayed.has_reached(p))
            .map_or(Duration::ZERO, |(at, _)| at.elapsed())
    }
}

/// One checked-out replica connection, counted for [`Policy::LeastInFlight`](crate::Policy).
#[derive(Debug)]
pub(crate) struct InFlight {
    health: std::sync::Arc<Health>,
    replica: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.health.replicas[self.replica]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejected_until_cooldown_then_available() {
        let h = Health::new([1, 1], Duration::from_millis(30));
        assert!(h.available(0));
        assert!(h.eject(0));
        assert!(!h.eject(0), "second ejection is not a new one");
        assert!(!h.available(0));
        assert!(h.available(1));
        std::thread::sleep(Duration::from_millis(40));
        assert!(h.available(0), "probe allowed after cooldown");
        h.mark_up(0);
        assert!(h.available(0));
    }

    fn core(max_lag: Option<MaxLag>) -> RoutingCore {
        let config = crate::config::Config {
            replicas: vec![(crate::url::NodeUrl::new("r"), 1)],
            max_replica_lag: max_lag,
            eject_after: 2,
            ..Default::default()
        };
        RoutingCore::new(&config, &crate::url::NodeUrl::new("p"))
    }

    #[test]
    fn lag_monitor_measures_lag_and_ejects_after_failed_probes() {
        let core = core(Some(MaxLag::Distance(5)));
        let mut monitor = LagMonitor::default();
        monitor.primary_sampled(Some(Position::Lsn(100)));
        assert!(monitor.replica_probed(&core, 0, Ok(Some(Position::Lsn(100)))));
        assert_eq!(core.health.lag(0).0, 0);
        assert!(core.health.has_reached(0, &Position::Lsn(100)));
        std::thread::sleep(Duration::from_millis(20));
        monitor.primary_sampled(Some(Position::Lsn(110)));
        assert!(monitor.replica_probed(&core, 0, Ok(Some(Position::Lsn(100)))));
        let (distance, lag) = core.health.lag(0);
        assert_eq!(distance, 10);
        assert!(
            lag < Duration::from_millis(20),
            "lacks only the newest position: {lag:?}"
        );
        assert!(core.health.is_lagging(0), "10 > max 5");
        assert!(LagMonitor::due(&core, 0));
        let failed = || Err(Error::InvalidState("down".into()));
        assert!(!monitor.replica_probed(&core, 0, failed()));
        assert!(!core.health.is_ejected(0), "one failure is not enough");
        assert!(!monitor.replica_probed(&core, 0, failed()));
        assert!(
            core.health.is_ejected(0),
            "ejected after eject_after failures"
        );
        assert!(!LagMonitor::due(&core, 0), "not probed while ejected");
    }

    #[test]
    fn a_replica_that_failed_is_not_trusted_with_its_old_position() {
        let h = Health::new([1, 1], Duration::from_millis(30));
        let at = |n| Position::Lsn(n);
        for i in 0..2 {
            h.record_sample(i, at(100), 0, Duration::ZERO, false);
            assert!(h.has_reached(i, &at(90)));
        }
        // A statement's connection failure ejects replica 0; a failed probe counts against 1.
        h.eject(0);
        h.count_failure(1);
        for i in 0..2 {
            assert!(
                !h.has_reached(i, &at(90)),
                "replica {i} may have restarted behind"
            );
        }
        h.record_sample(0, at(95), 0, Duration::ZERO, false);
        assert!(h.has_reached(0, &at(90)));
    }

    #[test]
    fn in_flight_counts_guards() {
        let h = std::sync::Arc::new(Health::new([1], Duration::from_secs(1)));
        let a = h.enter(0);
        let b = h.enter(0);
        assert_eq!(h.in_flight(0), 2);
        drop(a);
        drop(b);
        assert_eq!(h.in_flight(0), 0);
    }
}
