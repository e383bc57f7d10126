//! `route_decision`: what routing adds to one statement, with nothing else in the way.
//!
//! The routing decision is crate-internal, so it is timed through the public API: the same
//! statement on a bare [`NullConnection`] (a diesel connection that does no I/O) and on an
//! `RwConnection<NullConnection>` that already holds its node connections. The difference is the
//! routing path of one statement: classification (a per-thread cache hit: the queries here have a
//! static `QueryId`), the decision (transaction, write, sticky, policy), the replica pick
//! (round-robin atomic), the held-connection check, the per-node counter and the tracing check.
//!
//! `rw/read_to_replica_with_writing_functions` and `rw/read_calling_a_function_with_writing_functions`
//! route through a pool that knows functions that write (`writing_functions`, as one that learned
//! its catalog): the cached classification then checks the calls a query makes against the set.
//!
//! A second group reads by primary key (`get_result`) on SQLite in memory, where the statement
//! really runs, on a held connection: the difference next to the cost of a real (fast) query.

mod common;

use std::borrow::BorrowMut;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::prelude::*;
use diesel_rw::{Node, Reason, Role, Router, RwConnection};

use common::null::NullConnection;
use common::{bench_kv, bench_writes, next_id};

fn read<C>(conn: &mut C, id: i32) -> usize
where
    C: Connection<Backend = diesel::sqlite::Sqlite>,
{
    bench_kv::table.find(id).execute(conn).unwrap()
}

fn load_read<C>(conn: &mut C, id: i32) -> (i32, i32)
where
    C: diesel::connection::LoadConnection<Backend = diesel::sqlite::Sqlite>,
{
    bench_kv::table.find(id).get_result(conn).unwrap()
}

fn write<C>(conn: &mut C, k: i32) -> usize
where
    C: Connection<Backend = diesel::sqlite::Sqlite>,
{
    diesel::insert_into(bench_writes::table)
        .values(bench_writes::k.eq(k))
        .execute(conn)
        .unwrap()
}

/// An `RwConnection` over null connections: a primary and one replica, default settings
/// (`Policy::RoundRobin`, `Consistency::UnitOfWork`).
fn rw_null() -> RwConnection<NullConnection> {
    RwConnection::establish("primary=null-primary replica=null-replica").unwrap()
}

fn null_backend(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_decision");
    let mut i = 0;

    let mut raw = NullConnection::default();
    g.bench_function("raw/read", |b| b.iter(|| read(&mut raw, next_id(&mut i))));

    let mut rw = rw_null();
    read(&mut rw, 1);
    assert_eq!(rw.last_route().unwrap().node, Node::Replica(0));
    assert_eq!(rw.last_route().unwrap().reason, Reason::Policy);
    g.bench_function("rw/read_to_replica", |b| {
        b.iter(|| read(&mut rw, next_id(&mut i)))
    });

    g.bench_function("raw/write", |b| b.iter(|| write(&mut raw, next_id(&mut i))));

    let mut rw = rw_null();
    g.bench_function("rw/write_to_primary", |b| {
        b.iter(|| write(&mut rw, next_id(&mut i)))
    });
    assert_eq!(rw.last_route().unwrap().reason, Reason::Write);

    // After a write, `UnitOfWork` keeps this connection's reads on the primary.
    read(&mut rw, 1);
    assert_eq!(rw.last_route().unwrap().reason, Reason::Sticky);
    g.bench_function("rw/read_sticky_to_primary", |b| {
        b.iter(|| read(&mut rw, next_id(&mut i)))
    });

    // A read through the Router guard (what `#[read_only]` applies to a `conn` it is given):
    // set the read-only route, run the read, restore the route.
    let mut rw = rw_null();
    g.bench_function("rw/read_via_router_guard", |b| {
        b.iter(|| {
            let mut routed = (&mut rw).route(Role::Replica).unwrap();
            let conn: &mut RwConnection<NullConnection> = routed.borrow_mut();
            read(conn, next_id(&mut i))
        })
    });

    // A pool that knows functions that write (as one that learned its catalog does): a read
    // that calls no function pays one more branch; one that calls a function outside the set,
    // a look-up in the set.
    let pool = diesel_rw::RwPool::<NullConnection>::builder()
        .primary("null-primary")
        .replica("null-replica")
        .writing_functions(["audit_log", "app.bump"])
        .build()
        .unwrap();
    let mut rw = pool.get().unwrap();
    read(&mut rw, 1);
    assert_eq!(rw.last_route().unwrap().node, Node::Replica(0));
    g.bench_function("rw/read_to_replica_with_writing_functions", |b| {
        b.iter(|| read(&mut rw, next_id(&mut i)))
    });
    let calls = |conn: &mut RwConnection<NullConnection>, id: i32| {
        diesel::select(lower(id.to_string())).execute(conn).unwrap()
    };
    calls(&mut rw, 1);
    assert_eq!(rw.last_route().unwrap().node, Node::Replica(0));
    g.bench_function("rw/read_calling_a_function_with_writing_functions", |b| {
        b.iter(|| calls(&mut rw, next_id(&mut i)))
    });
    diesel::select(audit_log("x".to_owned()))
        .execute(&mut rw)
        .unwrap();
    assert_eq!(rw.last_route().unwrap().reason, Reason::Write);
    g.finish();
}

diesel::define_sql_function! {
    /// A function the pool does not know to write.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}
diesel::define_sql_function! {
    /// A function the pool's builder names as one that writes.
    fn audit_log(x: diesel::sql_types::Text) -> diesel::sql_types::Integer;
}

fn sqlite_memory(c: &mut Criterion) {
    let bed = common::sqlite::mem_bed("route");
    let mut g = c.benchmark_group("route_decision_sqlite_memory");
    let mut i = 0;

    let mut raw = SqliteConnection::establish(&bed.replica).unwrap();
    g.bench_function("raw/read", |b| {
        b.iter(|| load_read(&mut raw, next_id(&mut i)))
    });

    let spec = format!("primary={} replica={}", bed.primary, bed.replica);
    let mut rw = RwConnection::<SqliteConnection>::establish(&spec).unwrap();
    load_read(&mut rw, 1);
    assert_eq!(rw.last_route().unwrap().node, Node::Replica(0));
    g.bench_function("rw/read_to_replica", |b| {
        b.iter(|| load_read(&mut rw, next_id(&mut i)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = null_backend, sqlite_memory
}
criterion_main!(benches);
