//! The double-write suite on MariaDB: the database `diesel_rw` on 33306 (source) to
//! `diesel_rw_dst` on the same server (destination). Both databases live on one server, so the
//! "destination down" tests put the destination behind a TCP proxy and take the proxy down
//! (the server keeps running for the source and the other suites).
#![cfg(feature = "mysql")]

mod common;
#[macro_use]
#[path = "common/double_write.rs"]
mod dw;

#[macro_use]
#[path = "common/dw_contract.rs"]
mod contract;

double_write_suite!(mysql);
dw_contract_suite!(mysql);
