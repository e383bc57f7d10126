//! Causal read-your-writes, lag exclusion and failover on PostgreSQL (primary 55432, hot standby
//! 55433), through the async stack: `AsyncRwPool` over diesel-async.
#![cfg(all(feature = "async", feature = "postgres", feature = "serde"))]

#[macro_use]
mod common;

async_causal_suite!(pg);
