//! The routing suite on PostgreSQL (primary 55432, hot standby 55433).
#![cfg(feature = "postgres")]

#[macro_use]
mod common;

routing_suite!(pg);
busy_suite!(pg);
commit_outcome_suite!(pg);
