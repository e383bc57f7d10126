//! Compile-time behaviour of `#[read_only]` and `#[master]`: what compiles (`tests/ui/pass`) and
//! the one error each misuse gets, at its span (`tests/ui/fail/*.stderr`).
//!
//! After changing a message, regenerate with `TRYBUILD=overwrite cargo test --test macros_ui`
//! and read each changed `.stderr`: it must show one error, at the offending token.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
