//! `async_read_only_call_vs_raw_pool`: the async counterpart of `read_only_call_vs_raw_pool`, on
//! tokio. A read-only async function that takes its connection from the pool, against
//! `replica_pool.get().await` on a raw diesel-async deadpool pool of the replica (set up as
//! diesel-rw sets up its node pools: `RecyclingMethod::Fast`) plus the same query.
//!
//! diesel-rw's side is a `#[read_only] async fn` taking the pool: the attribute awaits
//! `AsyncRouter::route(db, Role::Replica)`, which gives a fresh read-only `AsyncRwConnection` from
//! the pool, binds it to `conn`, and the body's read goes to the replica.
//!
//! Each iteration is one `block_on` of the call on a 2-worker multi-threaded runtime, the same for
//! both sides. After each backend's criterion lines, a paired comparison (the two sides
//! alternating call by call, see `common::paired`) prints the median of each side and their ratio.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::prelude::*;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::RunQueryDsl;
use diesel_rw::{read_only, AsyncRwPool};

use common::tokio::{raw_deadpool, runtime};
use common::{bench_kv, next_id};

/// The read-only call and the same read by hand, for one connection type.
macro_rules! functions {
    ($find:ident, $by_hand:ident, $conn:ty) => {
        #[read_only]
        async fn $find(db: &AsyncRwPool<$conn>, id: i32) -> QueryResult<(i32, i32)> {
            bench_kv::table.find(id).get_result(conn).await
        }

        async fn $by_hand(replica_pool: &Pool<$conn>, id: i32) -> QueryResult<(i32, i32)> {
            let mut conn = replica_pool.get().await.expect("checkout");
            bench_kv::table.find(id).get_result(&mut *conn).await
        }
    };
}

functions!(
    find_sqlite,
    by_hand_sqlite,
    diesel_async::sync_connection_wrapper::SyncConnectionWrapper<SqliteConnection>
);
#[cfg(feature = "postgres")]
functions!(find_pg, by_hand_pg, diesel_async::AsyncPgConnection);

/// The two lines of one backend and the paired comparison.
macro_rules! pair {
    ($c:expr, $name:expr, $conn:ty, $find:ident, $by_hand:ident, $primary:expr, $replica:expr) => {{
        let rt = runtime();
        let pool = AsyncRwPool::<$conn>::builder()
            .primary($primary)
            .replica($replica)
            .max_size(4)
            .build()
            .unwrap();
        let replica_pool = raw_deadpool!($conn, $replica);
        rt.block_on(async {
            $find(&pool, 1).await.unwrap();
            $by_hand(&replica_pool, 1).await.unwrap();
        });
        assert_eq!(
            pool.stats().replica_queries(),
            1,
            "the read-only call reads on the replica"
        );

        let mut g = $c.benchmark_group($name);
        let mut i = 0;
        g.bench_function("raw_pool", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                rt.block_on(async { $by_hand(&replica_pool, id).await.unwrap() })
            })
        });
        g.bench_function("read_only_call", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                rt.block_on(async { $find(&pool, id).await.unwrap() })
            })
        });
        g.finish();
        let mut j = 0;
        common::paired(
            $name,
            "raw_pool",
            || {
                let id = next_id(&mut i);
                std::hint::black_box(
                    rt.block_on(async { $by_hand(&replica_pool, id).await.unwrap() }),
                );
            },
            "read_only_call",
            || {
                let id = next_id(&mut j);
                std::hint::black_box(rt.block_on(async { $find(&pool, id).await.unwrap() }));
            },
        );
    }};
}

fn sqlite_memory(c: &mut Criterion) {
    let bed = common::sqlite::mem_bed("async_read_only");
    pair!(
        c,
        "async_read_only_call_vs_raw_pool/sqlite_memory",
        diesel_async::sync_connection_wrapper::SyncConnectionWrapper<SqliteConnection>,
        find_sqlite,
        by_hand_sqlite,
        &bed.primary,
        &bed.replica
    );
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    let Some(bed) = common::pg::bed("async_read_only_call_vs_raw_pool/postgres") else {
        return;
    };
    pair!(
        c,
        "async_read_only_call_vs_raw_pool/postgres",
        diesel_async::AsyncPgConnection,
        find_pg,
        by_hand_pg,
        &bed.primary,
        &bed.replica
    );
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {
    common::skip(
        "async_read_only_call_vs_raw_pool/postgres",
        "built without the `postgres` feature",
    );
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = sqlite_memory, postgres
}
criterion_main!(benches);
