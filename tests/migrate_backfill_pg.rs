//! The migrate suite (table description, keyset chunks, backfill) on PostgreSQL.
#![cfg(feature = "postgres")]

mod common;
#[macro_use]
#[path = "common/migrate.rs"]
mod mig;

migrate_backfill_suite!(diesel::PgConnection, mig::pg_bed);
