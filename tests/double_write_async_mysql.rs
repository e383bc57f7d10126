//! The async double-write suite (`AsyncDoubleWriteConnection`, `AsyncDoubleWrite`) on MariaDB (`diesel_rw` -> `diesel_rw_dst` on 33306; "destination down" takes down a TCP proxy in front of the destination).
#![cfg(all(feature = "async", feature = "mysql"))]

mod common;
#[macro_use]
#[path = "common/double_write.rs"]
mod dw;

#[macro_use]
#[path = "common/dw_contract.rs"]
mod contract;

double_write_async_suite!(mysql);
dw_contract_async_suite!(mysql);
