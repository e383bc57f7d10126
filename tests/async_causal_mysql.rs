//! Causal read-your-writes, lag exclusion and failover on MariaDB (primary 33306, GTID replica
//! 33307), through the async stack: `AsyncRwPool` over diesel-async.
#![cfg(all(feature = "async", feature = "mysql", feature = "serde"))]

#[macro_use]
mod common;

async_causal_suite!(mysql);
