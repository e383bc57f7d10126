//! Faults under load on MariaDB (primary 33306, GTID replica 33307): hung, slow, busy, refused
//! and lost-COMMIT faults against a four-caller mixed load (see common/fault_load.rs).
#![cfg(feature = "mysql")]

#[macro_use]
mod common;

fault_load_suite!(mysql);
#[cfg(feature = "async")]
async_fault_load_suite!(mysql);
