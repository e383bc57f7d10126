//! The migrate suite (table description, keyset chunks, backfill) on SQLite.
#![cfg(feature = "sqlite")]

mod common;
#[macro_use]
#[path = "common/migrate.rs"]
mod mig;

migrate_backfill_suite!(diesel::SqliteConnection, mig::sqlite_bed);
