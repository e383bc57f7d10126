//! Migration control (the phase in the control table, instances as processes, the barrier,
//! the gates) on MariaDB.
#![cfg(feature = "mysql")]

mod common;
#[allow(unused_macros)]
#[path = "common/migrate.rs"]
mod mig;
#[macro_use]
#[path = "common/control.rs"]
mod ctl;

control_suite!(diesel::MysqlConnection, mig::mysql_bed);
