//! The key-counter gate of the async double write (`AsyncDoubleWriteConnection::key_counters`,
//! `counters_behind`, `sync_sequences`, `advance_pattern`, `advance_pattern_forced`) on
//! MariaDB: the databases `diesel_rw_counters_SUITE` (source) and `diesel_rw_counters_SUITE_dst` (destination) on 33306 (see tests/common/counters.rs).
#![cfg(all(feature = "async", feature = "mysql"))]

mod common;
#[macro_use]
#[path = "common/counters.rs"]
mod counters;

counters_async_suite!(mysql);
