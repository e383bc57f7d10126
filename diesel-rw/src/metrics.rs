//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`), in
//! addition to [`Stats`](crate::Stats). Handles are registered when the pool is built, so
//! install the recorder first.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `diesel_rw_queries_total` | counter | `node` (redacted URL), `role` |
//! | `diesel_rw_fallbacks_total` | counter | |
//! | `diesel_rw_ejections_total` | counter | |
//! | `diesel_rw_causal_waits_total` | counter | |
//! | `diesel_rw_read_retries_total` | counter | |
//! | `diesel_rw_replica_lag_seconds` | gauge | `node` |

use std::time::Duration;

use crate::route::Node;
use crate::url::NodeUrl;

/// The metric handles of one pool (empty without the `metrics` feature).
#[derive(Debug)]
pub(crate) struct Metrics {
    #[cfg(feature = "metrics")]
    inner: inner::Handles,
}

impl Metrics {
    #[allow(unused_variables)]
    pub(crate) fn new(primary: &NodeUrl, replicas: &[NodeUrl]) -> Self {
        Metrics {
            #[cfg(feature = "metrics")]
            inner: inner::Handles::new(primary, replicas),
        }
    }

    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn query(&self, node: Node) {
        #[cfg(feature = "metrics")]
        match node {
            Node::Primary => self.inner.primary_queries.increment(1),
            Node::Replica(i) => self.inner.replica_queries[i].increment(1),
        }
    }

    #[inline]
    pub(crate) fn fallback(&self) {
        #[cfg(feature = "metrics")]
        self.inner.fallbacks.increment(1);
    }

    #[inline]
    pub(crate) fn ejection(&self) {
        #[cfg(feature = "metrics")]
        self.inner.ejections.increment(1);
    }

    #[inline]
    pub(crate) fn causal_wait(&self) {
        #[cfg(feature = "metrics")]
        self.inner.causal_waits.increment(1);
    }

    #[inline]
    pub(crate) fn read_retry(&self) {
        #[cfg(feature = "metrics")]
        self.inner.read_retries.increment(1);
    }

    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn lag(&self, replica: usize, lag: Duration) {
        #[cfg(feature = "metrics")]
        self.inner.lag[replica].set(lag.as_secs_f64());
    }
}

#[cfg(feature = "metrics")]
mod inner {
    use metrics::{counter, gauge, Counter, Gauge};

    use crate::url::NodeUrl;

    pub(super) struct Handles {
        pub(super) primary_queries: Counter,
        pub(super) replica_queries: Vec<Counter>,
        pub(super) fallbacks: Counter,
        pub(super) ejections: Counter,
        pub(super) causal_waits: Counter,
        pub(super) read_retries: Counter,
        pub(super) lag: Vec<Gauge>,
    }

    impl std::fmt::Debug for Handles {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Handles")
        }
    }

    impl Handles {
        pub(super) fn new(primary: &NodeUrl, replicas: &[NodeUrl]) -> Self {
            Handles {
                primary_queries: counter!("diesel_rw_queries_total", "role" => "primary", "node" => primary.redacted().to_owned()),
                replica_queries: replicas
                    .iter()
                    .map(|r| counter!("diesel_rw_queries_total", "role" => "replica", "node" => r.redacted().to_owned()))
                    .collect(),
                fallbacks: counter!("diesel_rw_fallbacks_total"),
                ejections: counter!("diesel_rw_ejections_total"),
                causal_waits: counter!("diesel_rw_causal_waits_total"),
                read_retries: counter!("diesel_rw_read_retries_total"),
                lag: replicas
                    .iter()
                    .map(|r| gauge!("diesel_rw_replica_lag_seconds", "node" => r.redacted().to_owned()))
                    .collect(),
            }
        }
    }
}
