//! Causal read-your-writes, lag exclusion and failover on MariaDB (primary 33306, GTID replica 33307).
#![cfg(all(feature = "mysql", feature = "serde"))]

#[macro_use]
mod common;

causal_suite!(mysql);
