//! `#[read_only]` and `#[master]` on async functions at run time, on MariaDB
//! (primary 33306, GTID replica 33307).
#![cfg(all(feature = "async", feature = "mysql"))]

#[macro_use]
mod common;

async_macros_suite!(mysql);
