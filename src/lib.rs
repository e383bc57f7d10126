//! The test suite's package of diesel-rw: its integration tests are in `tests/`, two examples
//! that need heavy dependencies (`examples/axum_service.rs`, `examples/loadbench.rs`) beside
//! them. This library holds nothing but, with every feature on (as `scripts/test` runs it), the
//! README's Rust snippets as doctests, so the README cannot drift from the API.
//!
//! It also makes the package's features reach trybuild's ui projects (`tests/macros_ui.rs`):
//! trybuild builds them against this library with the features of the test run, so the
//! `async` feature turns on diesel-rw's async stack there without the dev-dependency on
//! diesel-rw having to (which would build the async stack into every example).
#![cfg_attr(
    all(
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "async",
        feature = "serde"
    ),
    doc = include_str!("../README.md")
)]
