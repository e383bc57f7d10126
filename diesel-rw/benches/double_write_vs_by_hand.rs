//! `double_write_vs_by_hand`: a single-row insert through a `DoubleWriteConnection` (pattern
//! `SrcFirst`: the source, then the destination) against the same insert executed on a source
//! connection and then on a destination connection by hand.
//!
//! Both sides hold their connections for the whole bench (the wrapper is checked out of its pool
//! once), so the difference is what the wrapper adds to a write: reading the pattern switch,
//! classifying the statement, running it on both sides in order, the per-side metrics (two clock
//! reads) and the journal check. Backends: SQLite in memory (two databases), and PostgreSQL (the
//! test bed's primary 55432 as the source, its independent second primary 55434 as the
//! destination) with `--features postgres` and `scripts/db up`.
//!
//! After the criterion lines of each backend, a paired comparison (the two sides alternating
//! call by call, see `common::paired`) prints the median of each side and their ratio.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::prelude::*;
use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch};

use common::{bench_writes, next_id};

/// The insert of this bench, on any connection of the backend.
macro_rules! insert {
    ($conn:expr, $k:expr) => {
        diesel::insert_into(bench_writes::table)
            .values(bench_writes::k.eq($k))
            .execute($conn)
            .unwrap()
    };
}

/// The two lines of one backend and the paired comparison.
macro_rules! pair {
    ($c:expr, $name:expr, $conn:ty, $source:expr, $destination:expr) => {{
        let (source, destination) = ($source, $destination);
        let pool = DoubleWrite::<$conn>::builder()
            .source(source)
            .destination(destination)
            .pattern(PatternSwitch::new(Pattern::SrcFirst))
            .max_size(1)
            .build()
            .unwrap();
        let mut dw = pool.get().unwrap();
        let mut src = <$conn>::establish(source).unwrap();
        let mut dst = <$conn>::establish(destination).unwrap();
        insert!(&mut *dw, 0);
        assert_eq!(
            pool.metrics().destination.successes,
            1,
            "the wrapper writes both sides"
        );

        let mut g = $c.benchmark_group($name);
        let mut i = 0;
        g.bench_function("by_hand", |b| {
            b.iter(|| {
                let k = next_id(&mut i);
                insert!(&mut src, k) + insert!(&mut dst, k)
            })
        });
        g.bench_function("double_write_connection", |b| {
            b.iter(|| insert!(&mut *dw, next_id(&mut i)))
        });
        g.finish();
        let mut j = 0;
        common::paired(
            $name,
            "by_hand",
            || {
                let k = next_id(&mut i);
                std::hint::black_box(insert!(&mut src, k) + insert!(&mut dst, k));
            },
            "double_write_connection",
            || {
                std::hint::black_box(insert!(&mut *dw, next_id(&mut j)));
            },
        );
        assert!(
            pool.memory_journal().is_none_or(|j| j.is_empty()),
            "no write reached one side only"
        );
    }};
}

fn sqlite_memory(c: &mut Criterion) {
    let bed = common::sqlite::mem_bed("double_write");
    pair!(
        c,
        "double_write_vs_by_hand/sqlite_memory",
        SqliteConnection,
        &bed.primary,
        &bed.replica
    );
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    let Some((source, destination)) = common::pg::dest_pair("double_write_vs_by_hand/postgres")
    else {
        return;
    };
    pair!(
        c,
        "double_write_vs_by_hand/postgres",
        PgConnection,
        &source,
        &destination
    );
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {
    common::skip(
        "double_write_vs_by_hand/postgres",
        "built without the `postgres` feature",
    );
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = sqlite_memory, postgres
}
criterion_main!(benches);
