//! The migrate suite (table description, keyset chunks, backfill) on MariaDB.
#![cfg(feature = "mysql")]

mod common;
#[macro_use]
#[path = "common/migrate.rs"]
mod mig;

migrate_backfill_suite!(diesel::MysqlConnection, mig::mysql_bed);
