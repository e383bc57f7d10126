//! The PostgreSQL connection API on the async routing and double-write connections (issue #15
//! item 1, where diesel-async has it): `build_transaction()` and `LISTEN`/`NOTIFY`. Primary
//! 55432 with its hot standby 55433; double-write destination 55434. Each test asserts the node
//! that served (its port, `pg_is_in_recovery()`, the transaction's settings) and what each
//! database holds. The table is `pgapi_rows` (tests/pg_api_pg.rs), rows tagged per test.
#![cfg(all(feature = "async", feature = "postgres"))]

#[macro_use]
mod common;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_rw::double_write::{AsyncDoubleWrite, AsyncDoubleWriteConnection, Pattern, Side};
use diesel_rw::{AsyncRwPool, Error, Node, Reason};
use futures_util::StreamExt;

use common::pg::{dest_url, primary_url, replica_url, wait_replayed};

diesel::table! {
    pgapi_rows (tag, id) {
        id -> Integer,
        tag -> Text,
        note -> Text,
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS pgapi_rows (id INTEGER NOT NULL, tag TEXT NOT NULL, note TEXT NOT NULL, PRIMARY KEY (tag, id))";

struct PgBed {
    primary: String,
    replica: String,
    dest: String,
    tag: String,
}

fn bed(test: &str) -> Option<PgBed> {
    let urls = [primary_url(), replica_url(), dest_url()];
    for url in &urls {
        if let Err(e) = PgConnection::establish(url) {
            common::unavailable("PostgreSQL", &e.to_string());
            return None;
        }
    }
    let [primary, replica, dest] = urls;
    for url in [&primary, &dest] {
        let mut conn = PgConnection::establish(url).unwrap();
        // The sync suite may be creating it at the same moment: once more after a clash.
        if conn.batch_execute(SCHEMA).is_err() {
            conn.batch_execute(SCHEMA).unwrap();
        }
        conn.batch_execute(&format!("DELETE FROM pgapi_rows WHERE tag = '{test}'"))
            .unwrap();
    }
    wait_replayed(&primary, &replica);
    Some(PgBed {
        primary,
        replica,
        dest,
        tag: test.into(),
    })
}

fn pool(bed: &PgBed) -> AsyncRwPool<AsyncPgConnection> {
    AsyncRwPool::<AsyncPgConnection>::builder()
        .replica_timeout(Duration::from_secs(10))
        .primary(bed.primary.as_str())
        .replica(bed.replica.as_str())
        .build()
        .unwrap()
}

async fn in_recovery<C>(conn: &mut C) -> QueryResult<bool>
where
    C: AsyncConnection<Backend = diesel::pg::Pg>,
{
    diesel::select(diesel::dsl::sql::<Bool>("pg_is_in_recovery()"))
        .get_result(conn)
        .await
}

async fn port<C>(conn: &mut C) -> QueryResult<i32>
where
    C: AsyncConnection<Backend = diesel::pg::Pg>,
{
    diesel::select(diesel::dsl::sql::<Integer>("inet_server_port()"))
        .get_result(conn)
        .await
}

async fn setting<C>(conn: &mut C, name: &str) -> QueryResult<String>
where
    C: AsyncConnection<Backend = diesel::pg::Pg>,
{
    diesel::select(diesel::dsl::sql::<Text>(&format!(
        "current_setting('{name}')"
    )))
    .get_result(conn)
    .await
}

async fn insert<C>(conn: &mut C, tag: &str, id: i32) -> QueryResult<usize>
where
    C: AsyncConnection<Backend = diesel::pg::Pg>,
{
    diesel::insert_into(pgapi_rows::table)
        .values((
            pgapi_rows::id.eq(id),
            pgapi_rows::tag.eq(tag),
            pgapi_rows::note.eq("async"),
        ))
        .execute(conn)
        .await
}

fn count_at(url: &str, tag: &str) -> i64 {
    let query = pgapi_rows::table.filter(pgapi_rows::tag.eq(tag)).count();
    diesel::RunQueryDsl::get_result(query, &mut PgConnection::establish(url).unwrap()).unwrap()
}

fn port_of(url: &str) -> i32 {
    let query = diesel::select(diesel::dsl::sql::<Integer>("inet_server_port()"));
    diesel::RunQueryDsl::get_result(query, &mut PgConnection::establish(url).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_read_only_transaction_runs_on_one_replica_with_its_settings() {
    let Some(bed) = bed("pgapi_async_ro") else {
        return;
    };
    let replica_port = port_of(&bed.replica);
    let mut conn = pool(&bed).get().await.unwrap();
    let (recovery, read_only, isolation, ports) = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |c| {
            assert_eq!(c.transaction_node(), Some(Node::Replica(0)));
            Ok::<_, diesel::result::Error>((
                in_recovery(c).await?,
                setting(c, "transaction_read_only").await?,
                setting(c, "transaction_isolation").await?,
                [port(c).await?, port(c).await?],
            ))
        })
        .await
        .unwrap();
    assert!(recovery, "on the standby");
    assert_eq!(
        (read_only.as_str(), isolation.as_str()),
        ("on", "repeatable read")
    );
    assert_eq!(ports, [replica_port; 2]);
    assert_eq!(
        conn.last_route().map(|r| (r.node, r.reason)),
        Some((Node::Replica(0), Reason::Transaction))
    );
    assert_eq!(conn.transaction_node(), None, "ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_read_write_transaction_runs_on_the_primary_and_commits() {
    let Some(bed) = bed("pgapi_async_rw") else {
        return;
    };
    let mut conn = pool(&bed).get().await.unwrap();
    let tag = bed.tag.clone();
    let (recovery, isolation) = conn
        .build_transaction()
        .serializable()
        .read_write()
        .run(async |c| {
            insert(c, &tag, 1).await?;
            insert(c, &tag, 2).await?;
            Ok::<_, diesel::result::Error>((
                in_recovery(c).await?,
                setting(c, "transaction_isolation").await?,
            ))
        })
        .await
        .unwrap();
    assert_eq!((recovery, isolation.as_str()), (false, "serializable"));
    assert_eq!(count_at(&bed.primary, &bed.tag), 2);

    // A read-only serializable one: on the primary too (a hot standby refuses it).
    let (begun, recovery) = conn
        .build_transaction()
        .read_only()
        .serializable()
        .deferrable()
        .run(async |c| {
            Ok::<_, diesel::result::Error>((c.last_route().unwrap(), in_recovery(c).await?))
        })
        .await
        .unwrap();
    assert_eq!(begun.node, Node::Primary);
    assert!(!recovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_read_only_transaction_that_writes_gets_the_servers_error() {
    let Some(bed) = bed("pgapi_async_ro_write") else {
        return;
    };
    let mut conn = pool(&bed).get().await.unwrap();
    let tag = bed.tag.clone();
    let error = conn
        .build_transaction()
        .read_only()
        .run(async |c| insert(c, &tag, 1).await)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("read-only transaction"),
        "{error}"
    );
    assert_eq!(conn.transaction_node(), None);
    assert_eq!(count_at(&bed.primary, &bed.tag), 0);
    // Usable afterwards.
    insert(&mut conn, &bed.tag, 1).await.unwrap();
    assert_eq!(count_at(&bed.primary, &bed.tag), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_read_only_transaction_after_a_write_runs_on_the_primary() {
    let Some(bed) = bed("pgapi_async_ro_sticky") else {
        return;
    };
    let mut conn = pool(&bed).get().await.unwrap();
    insert(&mut conn, &bed.tag, 1).await.unwrap();
    let (begun, recovery) = conn
        .build_transaction()
        .read_only()
        .run(async |c| {
            Ok::<_, diesel::result::Error>((c.last_route().unwrap(), in_recovery(c).await?))
        })
        .await
        .unwrap();
    assert_eq!((begun.node, begun.reason), (Node::Primary, Reason::Sticky));
    assert!(!recovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_build_transaction_inside_a_transaction_and_on_a_read_only_handle() {
    let Some(bed) = bed("pgapi_async_refused") else {
        return;
    };
    let pool = pool(&bed);
    let mut conn = pool.get().await.unwrap();
    let inner = conn
        .transaction(async |c| {
            let inner = c
                .build_transaction()
                .read_only()
                .run(async |c| in_recovery(c).await)
                .await;
            Ok::<_, diesel::result::Error>(inner)
        })
        .await
        .unwrap();
    assert!(
        matches!(inner, Err(diesel::result::Error::AlreadyInTransaction)),
        "{inner:?}"
    );

    let mut ro = pool.replica().await.unwrap();
    let error = ro
        .build_transaction()
        .read_write()
        .run(async |c| in_recovery(c).await)
        .await
        .unwrap_err();
    assert!(Error::from_diesel(error).is_write_on_read_route());
    assert!(ro
        .build_transaction()
        .read_only()
        .run(async |c| in_recovery(c).await)
        .await
        .unwrap());
}

fn dw(bed: &PgBed, pattern: Pattern) -> AsyncDoubleWrite<AsyncPgConnection> {
    AsyncDoubleWrite::<AsyncPgConnection>::builder()
        .source(bed.primary.as_str())
        .destination(bed.dest.as_str())
        .pattern(pattern)
        .strict(true)
        .build()
        .unwrap()
}

/// The transaction depth of `side`'s own connection (`None`: none open).
async fn side_depth(
    conn: &mut AsyncDoubleWriteConnection<AsyncPgConnection>,
    side: Side,
) -> Option<u32> {
    conn.with_side(side, async |c: &mut AsyncPgConnection| {
        <diesel_async::AnsiTransactionManager as diesel_async::TransactionManager<
            AsyncPgConnection,
        >>::transaction_manager_status_mut(c)
        .transaction_depth()
        .unwrap()
        .map(|d| d.get())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_dw_read_write_transaction_runs_on_both_sides_with_the_same_settings() {
    let Some(bed) = bed("pgapi_async_dw_rw") else {
        return;
    };
    let pool = dw(&bed, Pattern::SrcFirst);
    let mut conn = pool.get().await.unwrap();
    let tag = bed.tag.clone();
    let (depths, isolation) = conn
        .build_transaction()
        .repeatable_read()
        .run(
            async |c: &mut AsyncDoubleWriteConnection<AsyncPgConnection>| {
                insert(c, &tag, 1).await?;
                let depths = [
                    side_depth(c, Side::Source).await,
                    side_depth(c, Side::Destination).await,
                ];
                let isolation = setting(c, "transaction_isolation").await?;
                Ok::<_, diesel::result::Error>((depths, isolation))
            },
        )
        .await
        .unwrap();
    assert_eq!(depths, [Some(1), Some(1)], "begun on both sides");
    assert_eq!(isolation, "repeatable read");
    assert_eq!(count_at(&bed.primary, &bed.tag), 1);
    assert_eq!(count_at(&bed.dest, &bed.tag), 1);
    assert!(pool.memory_journal().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_dw_read_only_transaction_runs_on_the_read_side_alone() {
    let Some(bed) = bed("pgapi_async_dw_ro") else {
        return;
    };
    for (pattern, read_url, other) in [
        (Pattern::SrcFirst, &bed.primary, Side::Destination),
        (Pattern::DstFirst, &bed.dest, Side::Source),
    ] {
        let read_port = port_of(read_url);
        let pool = dw(&bed, pattern);
        let mut conn = pool.get().await.unwrap();
        let (served, read_only, other_depth) = conn
            .build_transaction()
            .read_only()
            .run(
                async |c: &mut AsyncDoubleWriteConnection<AsyncPgConnection>| {
                    Ok::<_, diesel::result::Error>((
                        port(c).await?,
                        setting(c, "transaction_read_only").await?,
                        side_depth(c, other).await,
                    ))
                },
            )
            .await
            .unwrap();
        assert_eq!(served, read_port, "{pattern}: the read side");
        assert_eq!(read_only, "on");
        assert_eq!(other_depth, None, "{pattern}: nothing begun on the {other}");

        let tag = bed.tag.clone();
        let error = conn
            .build_transaction()
            .read_only()
            .run(
                async |c: &mut AsyncDoubleWriteConnection<AsyncPgConnection>| {
                    insert(c, &tag, 1).await
                },
            )
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("read-only transaction"),
            "{error}"
        );
        assert_eq!(count_at(&bed.primary, &bed.tag), 0);
        assert_eq!(count_at(&bed.dest, &bed.tag), 0);
        assert!(pool.memory_journal().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_listen_runs_on_the_primary_and_its_notifications_arrive() {
    let Some(bed) = bed("pgapi_async_listen") else {
        return;
    };
    let mut conn = pool(&bed).get().await.unwrap();
    {
        use diesel_async::SimpleAsyncConnection;
        conn.batch_execute("LISTEN pgapi_async_channel")
            .await
            .unwrap();
    }
    assert_eq!(
        conn.last_route().map(|r| (r.node, r.reason)),
        Some((Node::Primary, Reason::Write))
    );
    PgConnection::establish(&bed.primary)
        .unwrap()
        .batch_execute("NOTIFY pgapi_async_channel, 'hello async'")
        .unwrap();
    let notification = {
        let mut stream = std::pin::pin!(conn.notifications_stream());
        tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("a notification within 30 s")
            .expect("the stream goes on")
            .unwrap()
    };
    assert_eq!(notification.channel, "pgapi_async_channel");
    assert_eq!(notification.payload, "hello async");
    {
        use diesel_async::SimpleAsyncConnection;
        conn.batch_execute("UNLISTEN *").await.unwrap();
    }
    // A connection that never listened has no primary connection to wait on: pending.
    let mut fresh = pool(&bed).get().await.unwrap();
    let mut stream = std::pin::pin!(fresh.notifications_stream());
    let waited = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
    assert!(waited.is_err(), "nothing to receive");
}
