//! The `#[read_only]` and `#[master]` attributes of diesel-rw (coming with the macros issue).
