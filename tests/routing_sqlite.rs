//! The routing suite on SQLite (two files).
#![cfg(feature = "sqlite")]

#[macro_use]
mod common;

routing_suite!(sqlite);
