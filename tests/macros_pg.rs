//! `#[read_only]` and `#[master]` at run time on PostgreSQL (primary 55432, hot standby 55433).
#![cfg(feature = "postgres")]

#[macro_use]
mod common;

macros_suite!(pg);
