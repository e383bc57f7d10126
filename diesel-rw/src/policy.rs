//! Replica selection policies.
//!
//! A [`Policy`] picks the replica that serves the next read among the replicas that are
//! available (not ejected). The pick costs a few nanoseconds: an atomic counter for
//! [`RoundRobin`](Policy::RoundRobin), a thread-local generator for
//! [`Random`](Policy::Random) and [`Weighted`](Policy::Weighted), a scan of in-flight counters
//! for [`LeastInFlight`](Policy::LeastInFlight).

use std::sync::atomic::{AtomicUsize, Ordering};

/// How a read chooses among the available replicas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Each read takes the next available replica in turn. The default.
    #[default]
    RoundRobin,
    /// Each read takes an available replica uniformly at random.
    Random,
    /// Each read takes an available replica at random, in proportion to the weights given with
    /// [`RwPoolBuilder::replica_weighted`](crate::RwPoolBuilder::replica_weighted) (default 1).
    Weighted,
    /// Each read takes the available replica with the fewest connections checked out through
    /// this pool (ties broken round-robin).
    LeastInFlight,
}

/// What a policy needs to know of the replicas.
pub(crate) trait Candidates {
    /// How many replicas there are.
    fn len(&self) -> usize;
    /// Whether replica `i` may serve a read now.
    fn available(&self, i: usize) -> bool;
    /// Replica `i`'s weight for [`Policy::Weighted`].
    fn weight(&self, i: usize) -> u32;
    /// Connections of replica `i` checked out now, for [`Policy::LeastInFlight`].
    fn in_flight(&self, i: usize) -> usize;
}

/// A policy with its state (the round-robin counter).
#[derive(Debug, Default)]
pub(crate) struct Selector {
    policy: Policy,
    next: AtomicUsize,
}

impl Selector {
    pub(crate) fn new(policy: Policy) -> Self {
        Selector {
            policy,
            next: AtomicUsize::new(0),
        }
    }

    /// Picks an available replica, or `None` if none is available.
    pub(crate) fn pick(&self, replicas: &impl Candidates) -> Option<usize> {
        let n = replicas.len();
        if n == 0 {
            return None;
        }
        match self.policy {
            Policy::RoundRobin => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|k| (start + k) % n)
                    .find(|&i| replicas.available(i))
            }
            Policy::Random => {
                let start = fastrand::usize(..n);
                (0..n)
                    .map(|k| (start + k) % n)
                    .find(|&i| replicas.available(i))
            }
            Policy::Weighted => {
                let total: u64 = (0..n)
                    .filter(|&i| replicas.available(i))
                    .map(|i| u64::from(replicas.weight(i)))
                    .sum();
                if total == 0 {
                    return None;
                }
                let mut point = fastrand::u64(..total);
                (0..n).filter(|&i| replicas.available(i)).find(|&i| {
                    let w = u64::from(replicas.weight(i));
                    if point < w {
                        true
                    } else {
                        point -= w;
                        false
                    }
                })
            }
            Policy::LeastInFlight => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| replicas.available(i))
                    .min_by_key(|&i| replicas.in_flight(i))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        up: Vec<bool>,
        weights: Vec<u32>,
        in_flight: Vec<usize>,
    }

    impl Candidates for Fake {
        fn len(&self) -> usize {
            self.up.len()
        }
        fn available(&self, i: usize) -> bool {
            self.up[i]
        }
        fn weight(&self, i: usize) -> u32 {
            self.weights[i]
        }
        fn in_flight(&self, i: usize) -> usize {
            self.in_flight[i]
        }
    }

    fn fake(up: &[bool]) -> Fake {
        Fake {
            up: up.to_vec(),
            weights: vec![1; up.len()],
            in_flight: vec![0; up.len()],
        }
    }

    #[test]
    fn round_robin_cycles_and_skips_unavailable() {
        let s = Selector::new(Policy::RoundRobin);
        let r = fake(&[true, false, true]);
        let picks: Vec<_> = (0..6).map(|_| s.pick(&r).unwrap()).collect();
        assert_eq!(picks, [0, 2, 2, 0, 2, 2]);
    }

    #[test]
    fn none_available_gives_none() {
        for p in [
            Policy::RoundRobin,
            Policy::Random,
            Policy::Weighted,
            Policy::LeastInFlight,
        ] {
            assert_eq!(Selector::new(p).pick(&fake(&[false, false])), None);
            assert_eq!(Selector::new(p).pick(&fake(&[])), None);
        }
    }

    #[test]
    fn weighted_follows_weights() {
        let s = Selector::new(Policy::Weighted);
        let mut r = fake(&[true, true]);
        r.weights = vec![1, 3];
        let mut counts = [0u32; 2];
        for _ in 0..40_000 {
            counts[s.pick(&r).unwrap()] += 1;
        }
        let share = f64::from(counts[1]) / 40_000.0;
        assert!((0.72..0.78).contains(&share), "share of weight 3: {share}");
    }

    #[test]
    fn weight_zero_is_never_picked() {
        let s = Selector::new(Policy::Weighted);
        let mut r = fake(&[true, true]);
        r.weights = vec![0, 1];
        assert!((0..1000).all(|_| s.pick(&r) == Some(1)));
    }

    #[test]
    fn least_in_flight_picks_the_idlest() {
        let s = Selector::new(Policy::LeastInFlight);
        let mut r = fake(&[true, true, true]);
        r.in_flight = vec![3, 1, 2];
        assert!((0..10).all(|_| s.pick(&r) == Some(1)));
    }

    #[test]
    fn random_reaches_every_replica() {
        let s = Selector::new(Policy::Random);
        let r = fake(&[true, true, true]);
        let mut seen = [false; 3];
        for _ in 0..300 {
            seen[s.pick(&r).unwrap()] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
