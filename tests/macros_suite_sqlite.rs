//! The shared `#[read_only]` / `#[master]` suite (tests/common/macros.rs) on the SQLite bed of
//! tests/common/sqlite.rs, beside tests/macros_sqlite.rs: the same named tests as on PostgreSQL
//! and MariaDB, runnable without a server.
#![cfg(feature = "sqlite")]

#[macro_use]
mod common;

macros_suite!(sqlite);
