//! The async routing suite on SQLite (two files): `AsyncRwPool` over diesel-async.
#![cfg(all(feature = "async", feature = "sqlite"))]

#[macro_use]
mod common;
#[macro_use]
#[path = "common/async_suite.rs"]
mod async_suite;

async_routing_suite!(sqlite);
async_busy_suite!(sqlite);
