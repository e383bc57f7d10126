//! `#[read_only]` and `#[master]` on async functions at run time, on PostgreSQL
//! (primary 55432, hot standby 55433).
#![cfg(all(feature = "async", feature = "postgres"))]

#[macro_use]
mod common;

async_macros_suite!(pg);
