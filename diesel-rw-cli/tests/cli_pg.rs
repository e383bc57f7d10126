//! The `diesel-rw` CLI on PostgreSQL: a migration walked from the CLI under load, exit codes,
//! JSON, no password printed.

mod common;
#[macro_use]
#[path = "common/suite.rs"]
mod suite;

cli_suite!(diesel::PgConnection, common::pg_bed);
