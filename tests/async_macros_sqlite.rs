//! `#[read_only]` and `#[master]` on async functions at run time, on SQLite (two files).
#![cfg(all(feature = "async", feature = "sqlite"))]

#[macro_use]
mod common;

async_macros_suite!(sqlite);
