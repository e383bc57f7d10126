//! The async routing suite on PostgreSQL (primary 55432, hot standby 55433): `AsyncRwPool` over diesel-async.
#![cfg(all(feature = "async", feature = "postgres"))]

#[macro_use]
mod common;
#[macro_use]
#[path = "common/async_suite.rs"]
mod async_suite;
#[macro_use]
#[path = "common/async_stream.rs"]
mod async_stream;

async_routing_suite!(pg);
async_busy_suite!(pg);
async_commit_outcome_suite!(pg);
async_stream_suite!();
