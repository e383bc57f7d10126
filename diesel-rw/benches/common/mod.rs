//! Shared by the criterion benches: settings, the bench schema, the SQLite-in-memory and
//! PostgreSQL beds, and a connection that does no I/O (to time the routing alone).
//!
//! Every bench pairs diesel-rw with the hand-written equivalent in the same group, so the two
//! lines of a group are read side by side. PostgreSQL groups run when the `postgres` feature is on
//! and the test bed answers (`scripts/db up`); otherwise they print a note and are skipped.
#![allow(dead_code)]

pub mod null;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "async")]
pub mod tokio;

use std::time::Duration;

use criterion::Criterion;

diesel::table! {
    /// Rows read by primary key: ids 1..=ROWS.
    bench_kv (id) {
        id -> Integer,
        v -> Integer,
    }
}

diesel::table! {
    /// Single-row inserts land here.
    bench_writes (id) {
        id -> Integer,
        k -> Integer,
    }
}

/// How many rows `bench_kv` holds.
pub const ROWS: i32 = 1000;

/// Short groups: the machine has 2 cores shared with builds, and `cargo bench` should finish in
/// minutes. Command-line flags (`--measurement-time`, `--sample-size`) still override these.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .noise_threshold(0.03)
        .configure_from_args()
}

/// The next key to read: cycles through 1..=ROWS.
#[inline]
pub fn next_id(i: &mut i32) -> i32 {
    *i = if *i >= ROWS { 1 } else { *i + 1 };
    *i
}

/// Printed when a bed is missing: the group is skipped, the rest runs.
pub fn skip(what: &str, why: &str) {
    eprintln!("SKIPPED {what}: {why} (start the test bed with `scripts/db up`)");
}

/// How long a [`paired`] comparison runs: `DIESEL_RW_PAIRED_SECS` seconds (default 3; 0 skips
/// the paired comparisons, e.g. when a criterion filter picks a few lines). Skipped too when the
/// bench runs as a test (`cargo test --benches`: no `--bench` argument), where criterion runs
/// each line once.
pub fn paired_time() -> std::time::Duration {
    if !std::env::args().any(|a| a == "--bench") {
        return std::time::Duration::ZERO;
    }
    let secs = std::env::var("DIESEL_RW_PAIRED_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    std::time::Duration::from_secs_f64(secs.max(0.0))
}

/// A paired comparison that shrugs off drift: runs `a` and `b` alternately (a b, b a, a b, ...)
/// for [`paired_time`], times every call, and prints the median of each side, the median of the
/// per-pair differences (each `b` call minus the `a` call next to it) and the ratio that
/// difference makes against `a`'s median.
///
/// Criterion times one function after the other; on a machine whose load changes from second to
/// second (builds of other work on the same 2 cores) that can move a result by more than the few
/// percent these benches look for, and a loopback round trip is bimodal (about 25 us while the
/// CPU stays busy, about 70 us when it idles between queries), so even the medians of two
/// interleaved series can land in different modes. The two calls of a pair run back to back in
/// the same state of the machine, so the median of their differences is the robust figure; the
/// 10th percentiles (the fast mode of each side) are printed too.
pub fn paired(name: &str, a_name: &str, mut a: impl FnMut(), b_name: &str, mut b: impl FnMut()) {
    use std::time::Instant;
    let time = paired_time();
    if time.is_zero() {
        return;
    }
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    let end = Instant::now() + time;
    let mut flip = false;
    let timed = |f: &mut dyn FnMut(), into: &mut Vec<u64>| {
        let t0 = Instant::now();
        f();
        into.push(t0.elapsed().as_nanos() as u64);
    };
    while Instant::now() < end {
        for _ in 0..16 {
            if flip {
                timed(&mut b, &mut tb);
                timed(&mut a, &mut ta);
            } else {
                timed(&mut a, &mut ta);
                timed(&mut b, &mut tb);
            }
            flip = !flip;
        }
    }
    let mut diffs: Vec<i64> = ta
        .iter()
        .zip(&tb)
        .map(|(&x, &y)| y as i64 - x as i64)
        .collect();
    diffs.sort_unstable();
    let diff = diffs[diffs.len() / 2];
    ta.sort_unstable();
    tb.sort_unstable();
    let at = |v: &[u64], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    let (ma, mb) = (at(&ta, 0.5), at(&tb, 0.5));
    let (fa, fb) = (at(&ta, 0.1), at(&tb, 0.1));
    println!(
        "paired {name}: {n} pairs; median {a_name} {}, {b_name} {}; median of per-pair differences ({b_name} - {a_name}) = {diff} ns; ratio {b_name}/{a_name} {:.4}; p10 {a_name} {}, {b_name} {}, ratio {:.4}",
        fmt_ns(ma),
        fmt_ns(mb),
        (ma as f64 + diff as f64) / ma as f64,
        fmt_ns(fa),
        fmt_ns(fb),
        fb as f64 / fa as f64,
        n = ta.len(),
    );
}

/// `1234` -> `1.234 us`, `812` -> `812 ns`.
pub fn fmt_ns(ns: u64) -> String {
    if ns >= 10_000 {
        format!("{:.2} us", ns as f64 / 1000.0)
    } else {
        format!("{ns} ns")
    }
}
