//! The routing suite on MariaDB (primary 33306, GTID replica 33307).
#![cfg(feature = "mysql")]

#[macro_use]
mod common;

routing_suite!(mysql);
busy_suite!(mysql);
commit_outcome_suite!(mysql);
