//! `read_only_call_vs_raw_pool`: a read-only function call that takes its connection from the
//! pool, against `replica_pool.get()` plus the same query written by hand.
//!
//! diesel-rw's side is a `#[read_only]` function taking the pool: the macro takes a fresh
//! read-only `RwConnection` from the pool (`Router::route(db, Role::Replica)`), binds it to
//! `conn`, and the body's read goes to the replica.
//!
//! After the criterion lines of each backend, a paired comparison (the two sides alternating
//! call by call, see `common::paired`) prints the median of each side and their ratio.
//!
//! The hand-written side checks a connection out of a raw r2d2 pool of the replica, set up as
//! diesel-rw sets up its node pools (no test query on checkout), and runs the same query.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel_rw::{read_only, RwPool};

use common::{bench_kv, next_id};

#[read_only]
fn find_sqlite(db: &RwPool<SqliteConnection>, id: i32) -> QueryResult<(i32, i32)> {
    bench_kv::table.find(id).get_result(conn)
}

#[cfg(feature = "postgres")]
#[read_only]
fn find_pg(db: &RwPool<PgConnection>, id: i32) -> QueryResult<(i32, i32)> {
    bench_kv::table.find(id).get_result(conn)
}

/// The same read by hand: a checkout from the replica's raw pool and the query.
macro_rules! by_hand_fn {
    ($name:ident, $conn:ty) => {
        fn $name(
            replica_pool: &Pool<ConnectionManager<$conn>>,
            id: i32,
        ) -> QueryResult<(i32, i32)> {
            let mut conn = replica_pool.get().expect("checkout");
            bench_kv::table.find(id).get_result(&mut *conn)
        }
    };
}

by_hand_fn!(by_hand_sqlite, SqliteConnection);
#[cfg(feature = "postgres")]
by_hand_fn!(by_hand_pg, PgConnection);

fn sqlite_memory(c: &mut Criterion) {
    let bed = common::sqlite::mem_bed("read_only");
    let pool = RwPool::<SqliteConnection>::builder()
        .primary(&bed.primary)
        .replica(&bed.replica)
        .max_size(4)
        .build()
        .unwrap();
    let replica_pool = common::sqlite::raw_pool(&bed.replica);
    find_sqlite(&pool, 1).unwrap();
    assert_eq!(
        pool.stats().replica_queries(),
        1,
        "the read-only call reads on the replica"
    );
    by_hand_sqlite(&replica_pool, 1).unwrap();

    let mut g = c.benchmark_group("read_only_call_vs_raw_pool/sqlite_memory");
    let mut i = 0;
    g.bench_function("raw_pool", |b| {
        b.iter(|| by_hand_sqlite(&replica_pool, next_id(&mut i)).unwrap())
    });
    g.bench_function("read_only_call", |b| {
        b.iter(|| find_sqlite(&pool, next_id(&mut i)).unwrap())
    });
    g.finish();
    let mut j = 0;
    common::paired(
        "read_only_call_vs_raw_pool/sqlite_memory",
        "raw_pool",
        || {
            std::hint::black_box(by_hand_sqlite(&replica_pool, next_id(&mut i)).unwrap());
        },
        "read_only_call",
        || {
            std::hint::black_box(find_sqlite(&pool, next_id(&mut j)).unwrap());
        },
    );
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    let Some(bed) = common::pg::bed("read_only_call_vs_raw_pool/postgres") else {
        return;
    };
    let pool = RwPool::<PgConnection>::builder()
        .primary(&bed.primary)
        .replica(&bed.replica)
        .max_size(4)
        .build()
        .unwrap();
    let replica_pool = common::pg::raw_pool(&bed.replica);
    find_pg(&pool, 1).unwrap();
    assert_eq!(
        pool.stats().replica_queries(),
        1,
        "the read-only call reads on the replica"
    );
    by_hand_pg(&replica_pool, 1).unwrap();

    let mut g = c.benchmark_group("read_only_call_vs_raw_pool/postgres");
    let mut i = 0;
    g.bench_function("raw_pool", |b| {
        b.iter(|| by_hand_pg(&replica_pool, next_id(&mut i)).unwrap())
    });
    g.bench_function("read_only_call", |b| {
        b.iter(|| find_pg(&pool, next_id(&mut i)).unwrap())
    });
    g.finish();
    let mut j = 0;
    common::paired(
        "read_only_call_vs_raw_pool/postgres",
        "raw_pool",
        || {
            std::hint::black_box(by_hand_pg(&replica_pool, next_id(&mut i)).unwrap());
        },
        "read_only_call",
        || {
            std::hint::black_box(find_pg(&pool, next_id(&mut j)).unwrap());
        },
    );
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {
    common::skip(
        "read_only_call_vs_raw_pool/postgres",
        "built without the `postgres` feature",
    );
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = sqlite_memory, postgres
}
criterion_main!(benches);
