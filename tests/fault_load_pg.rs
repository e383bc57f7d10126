//! Faults under load on PostgreSQL (primary 55432, hot standby 55433): hung, slow, busy,
//! refused and lost-COMMIT faults against a four-caller mixed load (see common/fault_load.rs).
#![cfg(feature = "postgres")]

#[macro_use]
mod common;

fault_load_suite!(pg);
#[cfg(feature = "async")]
async_fault_load_suite!(pg);
