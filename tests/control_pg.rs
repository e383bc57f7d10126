//! Migration control (the phase in the control table, instances as processes, the barrier,
//! the gates) on PostgreSQL.
#![cfg(feature = "postgres")]

mod common;
#[allow(unused_macros)]
#[path = "common/migrate.rs"]
mod mig;
#[macro_use]
#[path = "common/control.rs"]
mod ctl;

control_suite!(diesel::PgConnection, mig::pg_bed);
