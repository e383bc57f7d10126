//! The key-counter gate of the async double write (`AsyncDoubleWriteConnection::key_counters`,
//! `counters_behind`, `sync_sequences`, `advance_pattern`, `advance_pattern_forced`) on
//! PostgreSQL: source 55432, destination 55434, each in its own database `diesel_rw_counters_SUITE` (see tests/common/counters.rs).
#![cfg(all(feature = "async", feature = "postgres"))]

mod common;
#[macro_use]
#[path = "common/counters.rs"]
mod counters;

counters_async_suite!(pg);
