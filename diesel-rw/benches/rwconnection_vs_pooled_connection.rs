//! `rwconnection_vs_pooled_connection`: one request's worth of work, a checkout and one statement
//! (a read by primary key, or a single-row insert), through diesel-rw's `RwPool::get()` /
//! `RwConnection` against a raw r2d2 `Pool::get()` / `PooledConnection` doing the same by hand.
//!
//! The raw side is routed by hand: reads on a pool of the replica, inserts on a pool of the
//! primary. Both raw pools are set up as diesel-rw sets up each node's pool
//! (`test_on_check_out(false)`: no `SELECT 1` per checkout), so the difference is what
//! `RwConnection` adds: creating it, routing the statement, checking out the node's connection,
//! and giving it back on drop.
//!
//! After each backend's criterion lines, a paired comparison (the two sides alternating call by
//! call, see `common::paired`) prints the median of each side and their ratio.
//!
//! Backends: `null` (a connection that does no I/O: the overhead alone), SQLite in memory, and
//! the PostgreSQL pair of the test bed (with `--features postgres` and `scripts/db up`).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel_rw::RwPool;

use common::{bench_kv, bench_writes, next_id};

/// The four lines of one backend: raw read, diesel-rw read, raw insert, diesel-rw insert. `$read`
/// and `$insert` are written once and compile against both connection types.
macro_rules! pair {
    ($name:expr, $g:expr, $raw_primary:expr, $raw_replica:expr, $rw:expr,
     read($c:ident, $id:ident) => $read:expr, insert($k:ident) => $insert:expr $(,)?) => {{
        let (raw_primary, raw_replica, rw) = ($raw_primary, $raw_replica, $rw);
        let mut i = 0;
        // Warm every pool: the first checkout opens the connection.
        for id in 1..=3 {
            let ($id, $k) = (id, id);
            let mut guard = raw_replica.get().unwrap();
            let $c = &mut *guard;
            $read;
            let mut guard = raw_primary.get().unwrap();
            let $c = &mut *guard;
            $insert;
            let mut guard = rw.get().unwrap();
            let $c = &mut guard;
            $read;
            let mut guard = rw.get().unwrap();
            let $c = &mut guard;
            $insert;
        }
        $g.bench_function("raw_pooled_connection/read", |b| {
            b.iter(|| {
                let $id = next_id(&mut i);
                let mut guard = raw_replica.get().unwrap();
                let $c = &mut *guard;
                $read
            })
        });
        $g.bench_function("rwconnection/read", |b| {
            b.iter(|| {
                let $id = next_id(&mut i);
                let mut guard = rw.get().unwrap();
                let $c = &mut guard;
                $read
            })
        });
        $g.bench_function("raw_pooled_connection/insert", |b| {
            b.iter(|| {
                let $k = next_id(&mut i);
                let mut guard = raw_primary.get().unwrap();
                let $c = &mut *guard;
                $insert
            })
        });
        $g.bench_function("rwconnection/insert", |b| {
            b.iter(|| {
                let $k = next_id(&mut i);
                let mut guard = rw.get().unwrap();
                let $c = &mut guard;
                $insert
            })
        });
        let mut j = 0;
        common::paired(
            &format!("{}/read", $name),
            "raw_pooled_connection",
            || {
                let $id = next_id(&mut i);
                let mut guard = raw_replica.get().unwrap();
                let $c = &mut *guard;
                std::hint::black_box($read);
            },
            "rwconnection",
            || {
                let $id = next_id(&mut j);
                let mut guard = rw.get().unwrap();
                let $c = &mut guard;
                std::hint::black_box($read);
            },
        );
        common::paired(
            &format!("{}/insert", $name),
            "raw_pooled_connection",
            || {
                let $k = next_id(&mut i);
                let mut guard = raw_primary.get().unwrap();
                let $c = &mut *guard;
                std::hint::black_box($insert);
            },
            "rwconnection",
            || {
                let $k = next_id(&mut j);
                let mut guard = rw.get().unwrap();
                let $c = &mut guard;
                std::hint::black_box($insert);
            },
        );
    }};
}

/// A read by primary key (`get_result`) and a single-row insert, on a backend that loads rows.
macro_rules! pair_load {
    ($name:expr, $g:expr, $raw_primary:expr, $raw_replica:expr, $rw:expr) => {
        pair!($name, $g, $raw_primary, $raw_replica, $rw,
            read(c, id) => bench_kv::table.find(id).get_result::<(i32, i32)>(c).unwrap(),
            insert(k) => diesel::insert_into(bench_writes::table)
                .values(bench_writes::k.eq(k))
                .execute(c)
                .unwrap(),
        )
    };
}

fn null(c: &mut Criterion) {
    use common::null::NullConnection;
    let raw = || {
        Pool::builder()
            .max_size(4)
            .test_on_check_out(false)
            .build(ConnectionManager::<NullConnection>::new("null"))
            .unwrap()
    };
    let rw = RwPool::<NullConnection>::builder()
        .primary("null-primary")
        .replica("null-replica")
        .max_size(4)
        .build()
        .unwrap();
    let name = "rwconnection_vs_pooled_connection/null";
    let mut g = c.benchmark_group(name);
    // The null connection has no `load`: its read is an `execute` of the same SELECT.
    pair!(name, g, &raw(), &raw(), &rw,
        read(c, id) => bench_kv::table.find(id).execute(c).unwrap(),
        insert(k) => diesel::insert_into(bench_writes::table)
            .values(bench_writes::k.eq(k))
            .execute(c)
            .unwrap(),
    );
    g.finish();
}

#[cfg(feature = "sqlite")]
fn sqlite_memory(c: &mut Criterion) {
    use common::sqlite::{mem_bed, raw_pool};
    let bed = mem_bed("pooled");
    let rw = RwPool::<SqliteConnection>::builder()
        .primary(&bed.primary)
        .replica(&bed.replica)
        .max_size(4)
        .build()
        .unwrap();
    let name = "rwconnection_vs_pooled_connection/sqlite_memory";
    let mut g = c.benchmark_group(name);
    pair_load!(
        name,
        g,
        &raw_pool(&bed.primary),
        &raw_pool(&bed.replica),
        &rw
    );
    g.finish();
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    use common::pg::{bed, raw_pool};
    let Some(bed) = bed("rwconnection_vs_pooled_connection/postgres") else {
        return;
    };
    let rw = RwPool::<PgConnection>::builder()
        .primary(&bed.primary)
        .replica(&bed.replica)
        .max_size(4)
        .build()
        .unwrap();
    let name = "rwconnection_vs_pooled_connection/postgres";
    let mut g = c.benchmark_group(name);
    pair_load!(
        name,
        g,
        &raw_pool(&bed.primary),
        &raw_pool(&bed.replica),
        &rw
    );
    g.finish();
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {
    common::skip(
        "rwconnection_vs_pooled_connection/postgres",
        "built without the `postgres` feature",
    );
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = null, sqlite_memory, postgres
}
criterion_main!(benches);
