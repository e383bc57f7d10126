//! PostgreSQL user-defined types on the async stack (and the sync double write): an enum (and an array of it) bound by
//! ordinary diesel-async code runs unchanged on `AsyncRwConnection` (the first statement of a
//! connection, which must wait for a node's connection, and a read outside a transaction,
//! which is collected before it is routed) and on `AsyncDoubleWriteConnection`, whose source
//! (55432) and destination (55434) give the type different OIDs. Each test asserts the node or
//! side that served and what each database holds. The table is `ctypes_people`, rows tagged
//! per test.
#![cfg(all(feature = "async", feature = "postgres"))]

#[macro_use]
mod common;

use std::io::Write;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Integer;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_rw::double_write::{AsyncDoubleWrite, Pattern, PatternSwitch};
use diesel_rw::{AsyncRwPool, Node};

use common::pg::{dest_url, primary_url, replica_url, wait_replayed};

/// The SQL type `ctypes_mood`, a PostgreSQL enum.
#[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId)]
#[diesel(postgres_type(name = "ctypes_mood"))]
pub struct CtypesMood;

diesel::table! {
    use diesel::sql_types::*;
    use super::CtypesMood;

    ctypes_people (id) {
        id -> Integer,
        tag -> Text,
        mood -> CtypesMood,
        moods -> Array<CtypesMood>,
    }
}

/// The Rust side of `ctypes_mood`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = CtypesMood)]
enum Mood {
    Sad,
    Ok,
    Happy,
}

impl ToSql<CtypesMood, Pg> for Mood {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(match self {
            Mood::Sad => b"sad",
            Mood::Ok => b"ok",
            Mood::Happy => b"happy",
        })?;
        Ok(IsNull::No)
    }
}

impl FromSql<CtypesMood, Pg> for Mood {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        match bytes.as_bytes() {
            b"sad" => Ok(Mood::Sad),
            b"ok" => Ok(Mood::Ok),
            b"happy" => Ok(Mood::Happy),
            other => Err(format!("not a mood: {:?}", String::from_utf8_lossy(other)).into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = ctypes_people)]
struct Person {
    id: i32,
    tag: String,
    mood: Mood,
    moods: Vec<Mood>,
}

const SCHEMA: &str = "DO $$ BEGIN \
      CREATE TYPE ctypes_mood AS ENUM ('sad', 'ok', 'happy'); \
    EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
    CREATE TABLE IF NOT EXISTS ctypes_people (id INTEGER PRIMARY KEY, tag TEXT NOT NULL, \
      mood ctypes_mood NOT NULL, moods ctypes_mood[] NOT NULL)";

struct PgBed {
    primary: String,
    replica: String,
    dest: String,
}

/// The OID of `ctypes_mood` at `url`.
fn mood_oid(url: &str) -> i64 {
    let query = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "'ctypes_mood'::regtype::oid::bigint",
    ));
    diesel::RunQueryDsl::get_result(query, &mut PgConnection::establish(url).unwrap()).unwrap()
}

/// One `bed` at a time: the first one may make the destination's type again.
static BED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn bed(tag: &str) -> Option<PgBed> {
    let _one = BED.lock().unwrap_or_else(|e| e.into_inner());
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
        // The other test may be creating it at the same moment: once more after a clash.
        if conn.batch_execute(SCHEMA).is_err() {
            conn.batch_execute(SCHEMA).unwrap();
        }
        conn.batch_execute(&format!("DELETE FROM ctypes_people WHERE tag = '{tag}'"))
            .unwrap();
    }
    // The destination's type gets an OID of its own (two servers set up alike may agree):
    // made again there, after a type made and dropped, until they differ. Under `BED`, so at
    // most the first test's bed does it, before any test uses the table.
    let mut guard = 0;
    while mood_oid(&primary) == mood_oid(&dest) {
        guard += 1;
        assert!(
            guard < 100,
            "the destination's OIDs keep matching the source's"
        );
        PgConnection::establish(&dest)
            .unwrap()
            .batch_execute(
                "DROP TABLE ctypes_people; DROP TYPE ctypes_mood; \
                 CREATE TYPE ctypes_pad AS ENUM ('x'); DROP TYPE ctypes_pad;",
            )
            .unwrap();
        PgConnection::establish(&dest)
            .unwrap()
            .batch_execute(SCHEMA)
            .unwrap();
    }
    wait_replayed(&primary, &replica);
    Some(PgBed {
        primary,
        replica,
        dest,
    })
}

fn person(id: i32, tag: &str, mood: Mood, moods: Vec<Mood>) -> Person {
    Person {
        id,
        tag: tag.to_owned(),
        mood,
        moods,
    }
}

async fn insert<C>(conn: &mut C, p: &Person) -> QueryResult<usize>
where
    C: AsyncConnection<Backend = Pg>,
{
    diesel::insert_into(ctypes_people::table)
        .values((
            ctypes_people::id.eq(p.id),
            ctypes_people::tag.eq(&p.tag),
            ctypes_people::mood.eq(p.mood),
            ctypes_people::moods.eq(&p.moods),
        ))
        .execute(conn)
        .await
}

/// The rows of `tag` whose mood is `mood` or among `any`: both binds of the user type.
async fn with_mood<C>(
    conn: &mut C,
    tag: &str,
    mood: Mood,
    any: Vec<Mood>,
) -> QueryResult<Vec<Person>>
where
    C: AsyncConnection<Backend = Pg>,
{
    ctypes_people::table
        .filter(ctypes_people::tag.eq(tag))
        .filter(
            ctypes_people::mood
                .eq(mood)
                .or(ctypes_people::mood.eq_any(any)),
        )
        .order(ctypes_people::id)
        .select(Person::as_select())
        .load(conn)
        .await
}

/// The rows of `tag` at `url`, read by the sync connection.
fn rows_at(url: &str, tag: &str) -> Vec<Person> {
    let query = ctypes_people::table
        .filter(ctypes_people::tag.eq(tag))
        .order(ctypes_people::id)
        .select(Person::as_select());
    diesel::RunQueryDsl::load(query, &mut PgConnection::establish(url).unwrap()).unwrap()
}

async fn server_port<C>(conn: &mut C) -> i32
where
    C: AsyncConnection<Backend = Pg>,
{
    diesel::select(diesel::dsl::sql::<Integer>("inet_server_port()"))
        .get_result(conn)
        .await
        .unwrap()
}

fn port_of(url: &str) -> i32 {
    let query = diesel::select(diesel::dsl::sql::<Integer>("inet_server_port()"));
    diesel::RunQueryDsl::get_result(query, &mut PgConnection::establish(url).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enum_bound_by_the_first_statements_of_async_rw_connections_round_trips() {
    let tag = "ctypes_rw";
    let Some(bed) = bed(tag) else {
        return;
    };
    let pool = AsyncRwPool::<AsyncPgConnection>::builder()
        .replica_timeout(Duration::from_secs(10))
        .primary(bed.primary.as_str())
        .replica(bed.replica.as_str())
        .build()
        .unwrap();
    let ada = person(1, tag, Mood::Happy, vec![Mood::Sad, Mood::Ok]);
    let bob = person(2, tag, Mood::Sad, vec![]);

    // A write as a connection's first statement: it waits for the primary's connection,
    // collected before, its type's OIDs looked up there.
    let mut conn = pool.get().await.unwrap();
    assert_eq!(insert(&mut conn, &ada).await.unwrap(), 1);
    assert_eq!(conn.last_route().unwrap().node, Node::Primary);
    let mut conn = pool.get().await.unwrap();
    assert_eq!(insert(&mut conn, &bob).await.unwrap(), 1);
    let updated = diesel::update(ctypes_people::table.find(2))
        .set(ctypes_people::moods.eq(vec![Mood::Happy]))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(updated, 1);
    drop(conn);
    assert_eq!(
        rows_at(&bed.primary, tag),
        vec![ada.clone(), person(2, tag, Mood::Sad, vec![Mood::Happy])]
    );

    // A read outside a transaction as a fresh connection's first statement: collected,
    // routed to the replica, its OIDs looked up there.
    wait_replayed(&bed.primary, &bed.replica);
    let mut conn = pool.get().await.unwrap();
    let found = with_mood(&mut conn, tag, Mood::Happy, vec![Mood::Sad])
        .await
        .unwrap();
    assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
    assert_eq!(server_port(&mut conn).await, port_of(&bed.replica));
    assert_eq!(found, rows_at(&bed.replica, tag));
    assert_eq!(found.len(), 2);
    let happy_only = with_mood(&mut conn, tag, Mood::Happy, vec![])
        .await
        .unwrap();
    assert_eq!(happy_only, vec![ada]);
    assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));

    // Inside a transaction (the connection is held: diesel-async looks the type up itself).
    let mut conn = pool.get().await.unwrap();
    let in_tx = conn
        .transaction::<_, diesel::result::Error, _>(async |c| {
            with_mood(c, tag, Mood::Sad, vec![Mood::Ok]).await
        })
        .await
        .unwrap();
    assert_eq!(in_tx.iter().map(|p| p.id).collect::<Vec<_>>(), vec![2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enum_is_double_written_with_each_sides_own_oids() {
    let tag = "ctypes_dw";
    let Some(bed) = bed(tag) else {
        return;
    };
    assert_ne!(mood_oid(&bed.primary), mood_oid(&bed.dest));
    let switch = PatternSwitch::new(Pattern::SrcFirst);
    let pool = AsyncDoubleWrite::<AsyncPgConnection>::builder()
        .source(bed.primary.as_str())
        .destination(bed.dest.as_str())
        .pattern(switch.clone())
        .strict(true)
        .build()
        .unwrap();
    let ada = person(11, tag, Mood::Happy, vec![Mood::Sad, Mood::Ok]);
    let bob = person(12, tag, Mood::Ok, vec![Mood::Happy]);

    let mut conn = pool.get().await.unwrap();
    // execute: each side with its own OIDs.
    assert_eq!(insert(&mut *conn, &ada).await.unwrap(), 1);
    // load of a write (RETURNING): the first side's rows read, then the second side's.
    let returned: Person = diesel::insert_into(ctypes_people::table)
        .values((
            ctypes_people::id.eq(bob.id),
            ctypes_people::tag.eq(&bob.tag),
            ctypes_people::mood.eq(bob.mood),
            ctypes_people::moods.eq(&bob.moods),
        ))
        .returning(Person::as_returning())
        .get_result(&mut *conn)
        .await
        .unwrap();
    assert_eq!(returned, bob);
    let updated = diesel::update(ctypes_people::table.filter(ctypes_people::tag.eq(tag)))
        .filter(ctypes_people::mood.eq_any(vec![Mood::Ok]))
        .set(ctypes_people::mood.eq(Mood::Sad))
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let expected = vec![ada.clone(), person(12, tag, Mood::Sad, vec![Mood::Happy])];
    assert_eq!(rows_at(&bed.primary, tag), expected);
    assert_eq!(rows_at(&bed.dest, tag), expected);
    let journal = pool.memory_journal().unwrap();
    assert!(journal.is_empty(), "{:?}", journal.entries());

    // Reads with the enum bound, from the source, then (DstFirst) from the destination.
    let from_source = with_mood(&mut *conn, tag, Mood::Happy, vec![Mood::Sad])
        .await
        .unwrap();
    assert_eq!(server_port(&mut *conn).await, port_of(&bed.primary));
    assert_eq!(from_source, expected);
    switch.set(Pattern::DstFirst).unwrap();
    let mut conn = pool.get().await.unwrap();
    let from_dest = with_mood(&mut *conn, tag, Mood::Sad, vec![]).await.unwrap();
    assert_eq!(server_port(&mut *conn).await, port_of(&bed.dest));
    assert_eq!(from_dest, vec![expected[1].clone()]);
}

/// The sync double write compares the rows both sides return: an array of the enum names the
/// element type's OID inside its bytes, which differs between the sides, and is no divergence.
#[test]
fn the_sync_double_write_returns_an_enum_array_without_a_divergence() {
    let tag = "ctypes_sync_dw";
    let Some(bed) = bed(tag) else {
        return;
    };
    assert_ne!(mood_oid(&bed.primary), mood_oid(&bed.dest));
    let pool = diesel_rw::DoubleWrite::<PgConnection>::builder()
        .source(bed.primary.as_str())
        .destination(bed.dest.as_str())
        .pattern(Pattern::SrcFirst)
        .strict(true)
        .build()
        .unwrap();
    let mut conn = pool.get().unwrap();
    let eve = person(21, tag, Mood::Ok, vec![Mood::Happy, Mood::Sad]);
    let returned: Person = diesel::RunQueryDsl::get_result(
        diesel::insert_into(ctypes_people::table)
            .values((
                ctypes_people::id.eq(eve.id),
                ctypes_people::tag.eq(&eve.tag),
                ctypes_people::mood.eq(eve.mood),
                ctypes_people::moods.eq(&eve.moods),
            ))
            .returning(Person::as_returning()),
        &mut *conn,
    )
    .unwrap();
    assert_eq!(returned, eve);
    let journal = pool.memory_journal().unwrap();
    assert!(journal.is_empty(), "{:?}", journal.entries());
    assert_eq!(rows_at(&bed.primary, tag), vec![eve.clone()]);
    assert_eq!(rows_at(&bed.dest, tag), vec![eve]);
}
