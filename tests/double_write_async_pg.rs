//! The async double-write suite (`AsyncDoubleWriteConnection`, `AsyncDoubleWrite`) on PostgreSQL (source 55432, destination 55434; "destination down" stops the real server).
#![cfg(all(feature = "async", feature = "postgres"))]

mod common;
#[macro_use]
#[path = "common/double_write.rs"]
mod dw;

#[macro_use]
#[path = "common/dw_contract.rs"]
mod contract;

double_write_async_suite!(pg);
dw_contract_async_suite!(pg);
