//! The async routing suite on MariaDB (primary 33306, GTID replica 33307): `AsyncRwPool` over diesel-async.
#![cfg(all(feature = "async", feature = "mysql"))]

#[macro_use]
mod common;
#[macro_use]
#[path = "common/async_suite.rs"]
mod async_suite;

async_routing_suite!(mysql);
async_busy_suite!(mysql);
async_commit_outcome_suite!(mysql);
