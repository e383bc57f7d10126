//! Replica health: ejection after a failure, re-admission after a cooldown.
//!
//! When a replica cannot be reached (its connect or checkout fails), it is *ejected*: reads skip
//! it until its cooldown has passed. After the cooldown the next read that the policy sends to
//! it is a probe: if it succeeds the replica is up again, if it fails it is ejected for another
//! cooldown. Reading the state costs one atomic load on the fast path (no clock read while the
//! replica is up).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::policy::Candidates;

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
}

/// The health of every replica of a pool.
#[derive(Debug)]
pub(crate) struct Health {
    epoch: Instant,
    cooldown: Duration,
    replicas: Vec<ReplicaHealth>,
}

impl Health {
    pub(crate) fn new(weights: impl IntoIterator<Item = u32>, cooldown: Duration) -> Self {
        Health {
            epoch: Instant::now(),
            cooldown,
            replicas: weights
                .into_iter()
                .map(|weight| ReplicaHealth {
                    ejected_until: AtomicU64::new(0),
                    failures: AtomicU32::new(0),
                    in_flight: AtomicUsize::new(0),
                    weight,
                })
                .collect(),
        }
    }

    fn now_nanos(&self) -> u64 {
        // Never 0, so 0 can mean "up".
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }

    /// Ejects replica `i` for one cooldown. Returns true if it was up before.
    pub(crate) fn eject(&self, i: usize) -> bool {
        let r = &self.replicas[i];
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

    /// Whether replica `i` is ejected now (its cooldown has not passed).
    pub(crate) fn is_ejected(&self, i: usize) -> bool {
        let until = self.replicas[i].ejected_until.load(Ordering::Acquire);
        until != 0 && self.now_nanos() < until
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
        !self.is_ejected(i)
    }
    fn weight(&self, i: usize) -> u32 {
        self.replicas[i].weight
    }
    fn in_flight(&self, i: usize) -> usize {
        self.replicas[i].in_flight.load(Ordering::Relaxed)
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
