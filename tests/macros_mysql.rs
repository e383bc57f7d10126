//! `#[read_only]` and `#[master]` at run time on MariaDB (primary 33306, GTID replica 33307).
#![cfg(feature = "mysql")]

#[macro_use]
mod common;

macros_suite!(mysql);
