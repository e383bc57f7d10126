//! `async_rwconnection_vs_pooled_connection`: the async counterpart of
//! `rwconnection_vs_pooled_connection`, on tokio. One request's worth of work, a checkout and one
//! statement (a read by primary key, or a single-row insert), through `AsyncRwPool::get()` /
//! `AsyncRwConnection` against a raw diesel-async deadpool `Pool::get()` doing the same by hand
//! (reads on a pool of the replica, inserts on a pool of the primary; both raw pools set up as
//! diesel-rw sets up its node pools: `RecyclingMethod::Fast`, no `SELECT 1` per checkout).
//!
//! Each iteration is one `block_on` of the request on a 2-worker multi-threaded runtime, the same
//! for both sides. Backends: SQLite in memory through diesel-async's `SyncConnectionWrapper`
//! (which runs each statement on tokio's blocking pool), and the PostgreSQL pair of the test bed
//! through `AsyncPgConnection` (with `--features postgres` and `scripts/db up`).
//!
//! After each backend's criterion lines, a paired comparison (the two sides alternating call by
//! call, see `common::paired`) prints the median of each side and their ratio.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use diesel_rw::AsyncRwPool;

use common::tokio::{raw_deadpool, runtime};
use common::{bench_kv, bench_writes, next_id};

/// Reads `bench_kv` by key on any async connection of the backend.
macro_rules! read {
    ($conn:expr, $id:expr) => {
        std::hint::black_box(
            bench_kv::table
                .find($id)
                .get_result::<(i32, i32)>($conn)
                .await
                .unwrap(),
        )
    };
}

/// Inserts one row into `bench_writes`.
macro_rules! insert {
    ($conn:expr, $k:expr) => {
        diesel::insert_into(bench_writes::table)
            .values(bench_writes::k.eq($k))
            .execute($conn)
            .await
            .unwrap()
    };
}

/// The four lines of one backend and the two paired comparisons.
macro_rules! pair {
    ($c:expr, $name:expr, $conn:ty, $primary:expr, $replica:expr) => {{
        let rt = runtime();
        let (primary, replica) = ($primary, $replica);
        let raw_primary = raw_deadpool!($conn, primary);
        let raw_replica = raw_deadpool!($conn, replica);
        let rw = AsyncRwPool::<$conn>::builder()
            .primary(primary)
            .replica(replica)
            .max_size(4)
            .build()
            .unwrap();
        // Warm every pool: the first checkout opens the connection.
        rt.block_on(async {
            read!(&mut *raw_replica.get().await.unwrap(), 1);
            insert!(&mut *raw_primary.get().await.unwrap(), 0);
            read!(&mut rw.get().await.unwrap(), 1);
            insert!(&mut rw.get().await.unwrap(), 0);
        });
        assert_eq!(
            rw.stats().replica_queries(),
            1,
            "the read went to the replica"
        );

        let mut g = $c.benchmark_group($name);
        let mut i = 0;
        g.bench_function("raw_pooled_connection/read", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                rt.block_on(async { read!(&mut *raw_replica.get().await.unwrap(), id) })
            })
        });
        g.bench_function("rwconnection/read", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                rt.block_on(async { read!(&mut rw.get().await.unwrap(), id) })
            })
        });
        g.bench_function("raw_pooled_connection/insert", |b| {
            b.iter(|| {
                let k = next_id(&mut i);
                rt.block_on(async { insert!(&mut *raw_primary.get().await.unwrap(), k) })
            })
        });
        g.bench_function("rwconnection/insert", |b| {
            b.iter(|| {
                let k = next_id(&mut i);
                rt.block_on(async { insert!(&mut rw.get().await.unwrap(), k) })
            })
        });
        g.finish();

        let mut j = 0;
        common::paired(
            &format!("{}/read", $name),
            "raw_pooled_connection",
            || {
                let id = next_id(&mut i);
                rt.block_on(async { read!(&mut *raw_replica.get().await.unwrap(), id) });
            },
            "rwconnection",
            || {
                let id = next_id(&mut j);
                rt.block_on(async { read!(&mut rw.get().await.unwrap(), id) });
            },
        );
        common::paired(
            &format!("{}/insert", $name),
            "raw_pooled_connection",
            || {
                let k = next_id(&mut i);
                rt.block_on(async { insert!(&mut *raw_primary.get().await.unwrap(), k) });
            },
            "rwconnection",
            || {
                let k = next_id(&mut j);
                rt.block_on(async { insert!(&mut rw.get().await.unwrap(), k) });
            },
        );
    }};
}

fn sqlite_memory(c: &mut Criterion) {
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    let bed = common::sqlite::mem_bed("async_pooled");
    pair!(
        c,
        "async_rwconnection_vs_pooled_connection/sqlite_memory",
        SyncConnectionWrapper<SqliteConnection>,
        &bed.primary,
        &bed.replica
    );
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    let Some(bed) = common::pg::bed("async_rwconnection_vs_pooled_connection/postgres") else {
        return;
    };
    pair!(
        c,
        "async_rwconnection_vs_pooled_connection/postgres",
        diesel_async::AsyncPgConnection,
        &bed.primary,
        &bed.replica
    );
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {
    common::skip(
        "async_rwconnection_vs_pooled_connection/postgres",
        "built without the `postgres` feature",
    );
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = sqlite_memory, postgres
}
criterion_main!(benches);
