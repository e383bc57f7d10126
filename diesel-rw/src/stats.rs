//! Counters of what a pool routed where: [`Stats`], from `pool.stats()`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::health::Health;

/// A snapshot of a pool's routing counters since it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The primary's counters.
    pub primary: NodeStats,
    /// Each replica's counters, in the builder's order.
    pub replicas: Vec<NodeStats>,
    /// Reads that should have gone to a replica and went to the primary because none was
    /// available.
    pub fallbacks: u64,
    /// Times a replica was ejected (it was up and failed).
    pub ejections: u64,
    /// Reads after a write that waited for a replica to replay it (`Consistency::Causal`).
    pub causal_waits: u64,
    /// Reads after a write that went to the primary because no replica had replayed it.
    pub causal_primary_reads: u64,
    /// Reads retried on another node after a connection error on a replica.
    pub read_retries: u64,
}

/// One node's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// The node's URL, password redacted.
    pub name: String,
    /// Statements routed to this node.
    pub queries: u64,
    /// Failed connects or checkouts of this node.
    pub failures: u64,
    /// Whether the node is ejected now (replicas only).
    pub ejected: bool,
    /// Whether the node is excluded for lagging now (replicas only).
    pub lagging: bool,
    /// Replication lag at the lag monitor's last sample (replicas only; 0 without monitor):
    /// WAL bytes or GTID transactions.
    pub lag_distance: u64,
    /// Replication lag in time at the lag monitor's last sample (replicas only).
    pub lag: std::time::Duration,
}

impl Stats {
    /// Statements routed to any replica.
    pub fn replica_queries(&self) -> u64 {
        self.replicas.iter().map(|r| r.queries).sum()
    }
}

/// The live counters behind [`Stats`].
#[derive(Debug)]
pub(crate) struct Counters {
    primary_queries: AtomicU64,
    primary_failures: AtomicU64,
    replica_queries: Vec<AtomicU64>,
    replica_failures: Vec<AtomicU64>,
    fallbacks: AtomicU64,
    ejections: AtomicU64,
    causal_waits: AtomicU64,
    causal_primary_reads: AtomicU64,
    read_retries: AtomicU64,
}

impl Counters {
    pub(crate) fn new(replicas: usize) -> Self {
        Counters {
            primary_queries: AtomicU64::new(0),
            primary_failures: AtomicU64::new(0),
            replica_queries: (0..replicas).map(|_| AtomicU64::new(0)).collect(),
            replica_failures: (0..replicas).map(|_| AtomicU64::new(0)).collect(),
            fallbacks: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            causal_waits: AtomicU64::new(0),
            causal_primary_reads: AtomicU64::new(0),
            read_retries: AtomicU64::new(0),
        }
    }

    pub(crate) fn query(&self, node: crate::Node) {
        match node {
            crate::Node::Primary => &self.primary_queries,
            crate::Node::Replica(i) => &self.replica_queries[i],
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failure(&self, node: crate::Node) {
        match node {
            crate::Node::Primary => &self.primary_failures,
            crate::Node::Replica(i) => &self.replica_failures[i],
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fallback(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn ejection(&self) {
        self.ejections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn causal_wait(&self) {
        self.causal_waits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn causal_primary_read(&self) {
        self.causal_primary_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read_retry(&self) {
        self.read_retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, primary: &str, replicas: &[&str], health: &Health) -> Stats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            primary: NodeStats {
                name: primary.to_owned(),
                queries: load(&self.primary_queries),
                failures: load(&self.primary_failures),
                ..NodeStats::default()
            },
            replicas: replicas
                .iter()
                .enumerate()
                .map(|(i, name)| NodeStats {
                    name: (*name).to_owned(),
                    queries: load(&self.replica_queries[i]),
                    failures: load(&self.replica_failures[i]),
                    ejected: health.is_ejected(i),
                    lagging: health.is_lagging(i),
                    lag_distance: health.lag(i).0,
                    lag: health.lag(i).1,
                })
                .collect(),
            fallbacks: load(&self.fallbacks),
            ejections: load(&self.ejections),
            causal_waits: load(&self.causal_waits),
            causal_primary_reads: load(&self.causal_primary_reads),
            read_retries: load(&self.read_retries),
        }
    }
}
