//! Causal read-your-writes, lag exclusion and failover on PostgreSQL (primary 55432, hot standby 55433).
#![cfg(all(feature = "postgres", feature = "serde"))]

#[macro_use]
mod common;

causal_suite!(pg);
