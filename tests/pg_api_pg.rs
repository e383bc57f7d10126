//! The PostgreSQL connection API on the routing and double-write connections (issue #15 item 1):
//! `build_transaction()`, `COPY FROM` / `COPY TO`, the type metadata lookup of a custom enum,
//! `LISTEN`/`NOTIFY`. Primary 55432 with its hot standby 55433; double-write destination 55434.
//! Every test asserts the node that served (its port, `pg_is_in_recovery()`), and what each
//! database holds. Tables are `pgapi_*`; rows carry the test's tag.
#![cfg(feature = "postgres")]

#[macro_use]
mod common;

use std::sync::Once;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Bool, HasSqlType, Integer, Text};
use diesel_rw::double_write::{
    DoubleWrite, DoubleWriteConnection, EntryKind, Pattern, PatternSwitch, Side,
};
use diesel_rw::pg::CopyToConnection;
use diesel_rw::{Error, Fallback, Node, Reason, RwPool};

use common::pg::{dest_url, primary_url, replica_url, wait_replayed};

diesel::table! {
    pgapi_rows (tag, id) {
        id -> Integer,
        tag -> Text,
        note -> Text,
    }
}

/// The custom enum type `pgapi_mood` (`CREATE TYPE pgapi_mood AS ENUM ...`).
#[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId)]
#[diesel(postgres_type(name = "pgapi_mood"))]
pub struct MoodType;

diesel::table! {
    use diesel::sql_types::*;
    use super::MoodType;

    pgapi_moods (tag, id) {
        id -> Integer,
        tag -> Text,
        mood -> MoodType,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = MoodType)]
pub enum Mood {
    Sad,
    Ok,
    Happy,
}

impl ToSql<MoodType, Pg> for Mood {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        use std::io::Write;
        out.write_all(match self {
            Mood::Sad => b"sad",
            Mood::Ok => b"ok",
            Mood::Happy => b"happy",
        })?;
        Ok(IsNull::No)
    }
}

impl FromSql<MoodType, Pg> for Mood {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        match bytes.as_bytes() {
            b"sad" => Ok(Mood::Sad),
            b"ok" => Ok(Mood::Ok),
            b"happy" => Ok(Mood::Happy),
            other => Err(format!("unknown pgapi_mood {:?}", String::from_utf8_lossy(other)).into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = pgapi_rows)]
#[diesel(treat_none_as_default_value = false)] // what `copy_from(..).from_insertable` needs
struct Row {
    id: i32,
    tag: String,
    note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = pgapi_moods)]
struct MoodRow {
    id: i32,
    tag: String,
    mood: Mood,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS pgapi_rows (id INTEGER NOT NULL, tag TEXT NOT NULL, note TEXT NOT NULL, PRIMARY KEY (tag, id));
    DO $$ BEGIN
        CREATE TYPE pgapi_mood AS ENUM ('sad', 'ok', 'happy');
    EXCEPTION WHEN duplicate_object THEN NULL;
    END $$;
    CREATE TABLE IF NOT EXISTS pgapi_moods (id INTEGER NOT NULL, tag TEXT NOT NULL, mood pgapi_mood NOT NULL, PRIMARY KEY (tag, id));
";

/// On the destination, `pgapi_rows` refuses notes longer than 10 characters: a write the
/// source applies and the destination rejects.
const DEST_CHECK: &str = "
    DO $$ BEGIN
        ALTER TABLE pgapi_rows ADD CONSTRAINT pgapi_rows_short_note CHECK (length(note) <= 10);
    EXCEPTION WHEN duplicate_object THEN NULL;
    END $$;
";

/// The primary, its standby and the destination, or `None` (skipped; a failure under CI=true).
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
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        PgConnection::establish(&primary)
            .unwrap()
            .batch_execute(SCHEMA)
            .unwrap();
        let mut d = PgConnection::establish(&dest).unwrap();
        d.batch_execute(SCHEMA).unwrap();
        d.batch_execute(DEST_CHECK).unwrap();
    });
    for url in [&primary, &dest] {
        PgConnection::establish(url)
            .unwrap()
            .batch_execute(&format!(
                "DELETE FROM pgapi_rows WHERE tag = '{test}'; DELETE FROM pgapi_moods WHERE tag = '{test}'"
            ))
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

/// The port of the server that evaluates it.
fn port<C: Connection<Backend = Pg> + diesel::connection::LoadConnection>(conn: &mut C) -> i32 {
    diesel::select(diesel::dsl::sql::<Integer>("inet_server_port()"))
        .get_result(conn)
        .unwrap()
}

fn in_recovery<C>(conn: &mut C) -> QueryResult<bool>
where
    C: Connection<Backend = Pg> + diesel::connection::LoadConnection,
{
    diesel::select(diesel::dsl::sql::<Bool>("pg_is_in_recovery()")).get_result(conn)
}

fn setting<C>(conn: &mut C, name: &str) -> QueryResult<String>
where
    C: Connection<Backend = Pg> + diesel::connection::LoadConnection,
{
    diesel::select(diesel::dsl::sql::<Text>(&format!(
        "current_setting('{name}')"
    )))
    .get_result(conn)
}

fn port_of(url: &str) -> i32 {
    port(&mut PgConnection::establish(url).unwrap())
}

fn pool(bed: &PgBed) -> RwPool<PgConnection> {
    RwPool::<PgConnection>::builder()
        .primary(bed.primary.as_str())
        .replica(bed.replica.as_str())
        .build()
        .unwrap()
}

fn rows(tag: &str, ids: std::ops::Range<i32>, note: &str) -> Vec<Row> {
    ids.map(|id| Row {
        id,
        tag: tag.into(),
        note: note.into(),
    })
    .collect()
}

/// The tag's rows in the database at `url`, by id.
fn rows_at(url: &str, tag: &str) -> Vec<Row> {
    pgapi_rows::table
        .filter(pgapi_rows::tag.eq(tag))
        .order(pgapi_rows::id)
        .select(Row::as_select())
        .load(&mut PgConnection::establish(url).unwrap())
        .unwrap()
}

fn crate_error(error: diesel::result::Error) -> Error {
    Error::from_diesel(error)
}

// ---------------------------------------------------------------------------------------------
// build_transaction()

#[test]
fn builder_renders_the_same_sql_as_diesels() {
    let Some(bed) = bed("pgapi_sql") else { return };
    let mut pg = PgConnection::establish(&bed.primary).unwrap();
    let mut conn = pool(&bed).get().unwrap();
    macro_rules! same {
        ($($m:ident).*) => {{
            let ours = conn.build_transaction()$(.$m())*.sql();
            let diesels = diesel::debug_query::<Pg, _>(&pg.build_transaction()$(.$m())*)
                .to_string()
                .replace(" -- binds: []", "");
            assert_eq!(ours, diesels);
            ours
        }};
    }
    assert_eq!(same!(), "BEGIN TRANSACTION");
    same!(read_only);
    same!(read_write);
    same!(deferrable);
    same!(not_deferrable);
    same!(read_committed);
    same!(repeatable_read);
    same!(serializable);
    assert_eq!(
        same!(serializable.read_only.deferrable),
        "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE"
    );
    same!(
        read_only
            .read_write
            .repeatable_read
            .read_committed
            .deferrable
            .not_deferrable
    );
}

#[test]
fn read_only_transaction_runs_on_one_replica_with_its_settings() {
    let Some(bed) = bed("pgapi_ro_replica") else {
        return;
    };
    let replica_port = port_of(&bed.replica);
    let mut conn = pool(&bed).get().unwrap();
    let (recovery, read_only, isolation, deferrable, ports) = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .deferrable()
        .run(|c| {
            assert_eq!(c.transaction_node(), Some(Node::Replica(0)));
            Ok::<_, diesel::result::Error>((
                in_recovery(c)?,
                setting(c, "transaction_read_only")?,
                setting(c, "transaction_isolation")?,
                setting(c, "transaction_deferrable")?,
                [port(c), port(c)],
            ))
        })
        .unwrap();
    assert!(recovery, "the read-only transaction ran on the standby");
    assert_eq!(
        (read_only.as_str(), isolation.as_str(), deferrable.as_str()),
        ("on", "repeatable read", "on")
    );
    assert_eq!(
        ports, [replica_port; 2],
        "every statement on the same replica"
    );
    assert_eq!(
        conn.last_route().map(|r| (r.node, r.reason)),
        Some((Node::Replica(0), Reason::Transaction))
    );
    assert_eq!(conn.transaction_node(), None, "ended");
    // Committed and unpinned: an ordinary write goes to the primary again.
    diesel::insert_into(pgapi_rows::table)
        .values(&rows(&bed.tag, 1..2, "after"))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(conn.last_route().unwrap().node, Node::Primary);
}

#[test]
fn serializable_read_only_transaction_runs_on_the_primary_which_a_standby_refuses() {
    let Some(bed) = bed("pgapi_ro_serializable") else {
        return;
    };
    let mut conn = pool(&bed).get().unwrap();
    let (begun, recovery, isolation, read_only) = conn
        .build_transaction()
        .read_only()
        .serializable()
        .deferrable()
        .run(|c| {
            Ok::<_, diesel::result::Error>((
                c.last_route().unwrap(),
                in_recovery(c)?,
                setting(c, "transaction_isolation")?,
                setting(c, "transaction_read_only")?,
            ))
        })
        .unwrap();
    assert_eq!(begun.node, Node::Primary);
    assert!(!recovery);
    assert_eq!(
        (isolation.as_str(), read_only.as_str()),
        ("serializable", "on")
    );
    // What the standby itself says of it.
    let refused = PgConnection::establish(&bed.replica)
        .unwrap()
        .build_transaction()
        .read_only()
        .serializable()
        .run(in_recovery)
        .unwrap_err();
    assert!(refused.to_string().contains("hot standby"), "{refused}");
}

#[test]
fn read_write_transaction_runs_on_the_primary_with_its_settings() {
    let Some(bed) = bed("pgapi_rw_primary") else {
        return;
    };
    let mut conn = pool(&bed).get().unwrap();
    let tag = bed.tag.clone();
    let (recovery, read_only, isolation) = conn
        .build_transaction()
        .repeatable_read()
        .read_write()
        .run(|c| {
            assert_eq!(c.transaction_node(), Some(Node::Primary));
            diesel::insert_into(pgapi_rows::table)
                .values(&rows(&tag, 1..3, "in tx"))
                .execute(c)?;
            // A read inside sees the transaction's own write: it runs on the same connection.
            let seen: i64 = pgapi_rows::table
                .filter(pgapi_rows::tag.eq(&tag))
                .count()
                .get_result(c)?;
            assert_eq!(seen, 2);
            Ok::<_, diesel::result::Error>((
                in_recovery(c)?,
                setting(c, "transaction_read_only")?,
                setting(c, "transaction_isolation")?,
            ))
        })
        .unwrap();
    assert_eq!(
        (recovery, read_only.as_str(), isolation.as_str()),
        (false, "off", "repeatable read")
    );
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 2, "committed");
    // A transaction with no settings at all (`BEGIN TRANSACTION`) also runs on the primary.
    let recovery = conn.build_transaction().run(in_recovery).unwrap();
    assert!(!recovery);
}

#[test]
fn read_only_transaction_that_writes_gets_the_servers_error_and_rolls_back() {
    let Some(bed) = bed("pgapi_ro_write") else {
        return;
    };
    let mut conn = pool(&bed).get().unwrap();
    let tag = bed.tag.clone();
    let error = conn
        .build_transaction()
        .read_only()
        .run(|c| {
            diesel::insert_into(pgapi_rows::table)
                .values(&rows(&tag, 1..2, "refused"))
                .execute(c)
        })
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("read-only transaction"),
        "the server's own refusal: {text}"
    );
    assert_eq!(conn.transaction_node(), None, "rolled back and unpinned");
    assert!(rows_at(&bed.primary, &bed.tag).is_empty());
    // The connection is usable: a read, then a write on the primary.
    in_recovery(&mut conn).unwrap();
    diesel::insert_into(pgapi_rows::table)
        .values(&rows(&bed.tag, 1..2, "ok"))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 1);
}

#[test]
fn read_only_transaction_after_a_write_runs_on_the_primary() {
    let Some(bed) = bed("pgapi_ro_sticky") else {
        return;
    };
    let mut conn = pool(&bed).get().unwrap();
    diesel::insert_into(pgapi_rows::table)
        .values(&rows(&bed.tag, 1..2, "written"))
        .execute(&mut conn)
        .unwrap();
    let tag = bed.tag.clone();
    let (begun, recovery, seen) = conn
        .build_transaction()
        .read_only()
        .run(|c| {
            let begun = c.last_route().unwrap();
            let seen: i64 = pgapi_rows::table
                .filter(pgapi_rows::tag.eq(&tag))
                .count()
                .get_result(c)?;
            Ok::<_, diesel::result::Error>((begun, in_recovery(c)?, seen))
        })
        .unwrap();
    assert_eq!((begun.node, begun.reason), (Node::Primary, Reason::Sticky));
    assert!(!recovery);
    assert_eq!(seen, 1, "reads its own write");
}

#[test]
fn read_only_transaction_falls_back_to_the_primary_without_a_usable_replica() {
    let Some(bed) = bed("pgapi_ro_fallback") else {
        return;
    };
    let pool = RwPool::<PgConnection>::builder()
        .primary(bed.primary.as_str())
        .replica("postgres://diesel_rw:diesel_rw_pw@127.0.0.1:1/diesel_rw")
        .build()
        .unwrap();
    let mut conn = pool.get().unwrap();
    let (begun, recovery) = conn
        .build_transaction()
        .read_only()
        .run(|c| Ok::<_, diesel::result::Error>((c.last_route().unwrap(), in_recovery(c)?)))
        .unwrap();
    assert_eq!(
        (begun.node, begun.reason),
        (Node::Primary, Reason::Fallback)
    );
    assert!(!recovery);

    // With Fallback::Error the transaction is refused before anything is sent.
    let pool = RwPool::<PgConnection>::builder()
        .primary(bed.primary.as_str())
        .replica("postgres://diesel_rw:diesel_rw_pw@127.0.0.1:1/diesel_rw")
        .fallback(Fallback::Error)
        .build()
        .unwrap();
    let mut conn = pool.get().unwrap();
    let error = conn
        .build_transaction()
        .read_only()
        .run(in_recovery)
        .unwrap_err();
    assert!(
        matches!(crate_error(error), Error::NoReplicaAvailable { .. }),
        "no replica, no fallback"
    );
    assert_eq!(conn.transaction_node(), None);
}

#[test]
fn build_transaction_inside_an_open_transaction_is_refused() {
    let Some(bed) = bed("pgapi_nested") else {
        return;
    };
    let mut conn = pool(&bed).get().unwrap();
    let outer = conn.transaction(|c| {
        let inner = c.build_transaction().read_only().run(in_recovery);
        assert!(
            matches!(inner, Err(diesel::result::Error::AlreadyInTransaction)),
            "diesel's own error: {inner:?}"
        );
        in_recovery(c)
    });
    assert!(
        !outer.unwrap(),
        "the outer transaction went on, on the primary"
    );
}

#[test]
fn read_write_transaction_on_a_read_only_handle_is_refused_before_sending() {
    let Some(bed) = bed("pgapi_ro_handle") else {
        return;
    };
    let pool = pool(&bed);
    let mut conn = pool.replica().unwrap();
    let error = conn
        .build_transaction()
        .read_write()
        .run(in_recovery)
        .unwrap_err();
    assert!(crate_error(error).is_write_on_read_route());
    // A read-only one runs on the replica.
    assert!(conn
        .build_transaction()
        .read_only()
        .run(in_recovery)
        .unwrap());
}

// ---------------------------------------------------------------------------------------------
// COPY FROM / COPY TO

#[test]
fn copy_from_runs_on_the_primary_and_copy_to_on_the_replica() {
    let Some(bed) = bed("pgapi_copy") else { return };
    let pool = pool(&bed);
    let mut conn = pool.get().unwrap();
    let written = rows(&bed.tag, 1..101, "copied");
    let copied = diesel::copy_from(pgapi_rows::table)
        .from_insertable(&written)
        .execute(&mut conn)
        .unwrap();
    assert_eq!(copied, 100);
    assert_eq!(
        conn.last_route().map(|r| (r.node, r.reason)),
        Some((Node::Primary, Reason::Write))
    );
    assert!(conn.is_sticky(), "a COPY FROM is a write");
    assert_eq!(rows_at(&bed.primary, &bed.tag), written);

    wait_replayed(&bed.primary, &bed.replica);
    let mut fresh = pool.get().unwrap();
    let tag = bed.tag.clone();
    let (recovery, mut back) = fresh
        .with_copy_to(|pg| {
            let recovery = in_recovery(pg)?;
            let back = diesel::copy_to(pgapi_rows::table)
                .load::<Row, _>(pg)?
                .filter(|r| r.as_ref().map_or(true, |r| r.tag == tag))
                .collect::<QueryResult<Vec<_>>>()?;
            Ok((recovery, back))
        })
        .unwrap();
    assert!(recovery, "COPY TO ran on the standby");
    assert_eq!(fresh.last_route().unwrap().node, Node::Replica(0));
    back.sort_by_key(|r| r.id);
    assert_eq!(back, written);
    // The COPY is ended on the replica's connection: its next statement runs (diesel 2.3 alone
    // leaves the connection waiting for the COPY's end: "another command is already in progress").
    assert!(in_recovery(&mut fresh).unwrap());
    assert_eq!(fresh.last_route().unwrap().node, Node::Replica(0));

    // After the write, the same connection's COPY TO sticks to the primary.
    let (recovery, count) = conn
        .with_copy_to(|pg| {
            let recovery = in_recovery(pg)?;
            Ok((
                recovery,
                diesel::copy_to(pgapi_rows::table)
                    .load::<Row, _>(pg)?
                    .count(),
            ))
        })
        .unwrap();
    assert!(!recovery);
    assert!(count >= 100);
    assert_eq!(conn.last_route().unwrap().reason, Reason::Sticky);
    // `load_raw`, read to its end, in text format.
    let text = conn
        .with_copy_to(|pg| {
            use std::io::Read;
            let mut out = String::new();
            diesel::copy_to(pgapi_rows::table)
                .with_format(diesel::pg::CopyFormat::Csv)
                .load_raw(pg)?
                .read_to_string(&mut out)
                .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
            Ok(out)
        })
        .unwrap();
    assert!(text.contains(&format!("1,{},copied", bed.tag)), "{text}");
    assert!(!in_recovery(&mut conn).unwrap());
}

#[test]
fn copy_to_inside_a_transaction_runs_on_its_node() {
    let Some(bed) = bed("pgapi_copy_tx") else {
        return;
    };
    let mut conn = pool(&bed).get().unwrap();
    let tag = bed.tag.clone();
    let seen = conn
        .transaction(|c| {
            diesel::insert_into(pgapi_rows::table)
                .values(&rows(&tag, 1..4, "uncommitted"))
                .execute(c)?;
            c.with_copy_to(|pg| {
                diesel::copy_to(pgapi_rows::table)
                    .load::<Row, _>(pg)?
                    .filter(|r| r.as_ref().map_or(true, |r| r.tag == tag))
                    .collect::<QueryResult<Vec<_>>>()
            })
        })
        .unwrap();
    assert_eq!(
        seen.len(),
        3,
        "the transaction's uncommitted rows: same connection"
    );
    assert_eq!(conn.last_route().unwrap().reason, Reason::Transaction);
}

#[test]
fn copy_from_on_a_read_only_handle_is_refused_and_a_bad_copy_gets_the_servers_error() {
    let Some(bed) = bed("pgapi_copy_bad") else {
        return;
    };
    let pool = pool(&bed);
    let mut ro = pool.replica().unwrap();
    let error = diesel::copy_from(pgapi_rows::table)
        .from_insertable(&rows(&bed.tag, 1..2, "no"))
        .execute(&mut ro)
        .unwrap_err();
    assert!(crate_error(error).is_write_on_read_route());

    // A duplicate key: the primary refuses the whole COPY; nothing of it is applied.
    let mut conn = pool.get().unwrap();
    diesel::insert_into(pgapi_rows::table)
        .values(&rows(&bed.tag, 5..6, "first"))
        .execute(&mut conn)
        .unwrap();
    let error = diesel::copy_from(pgapi_rows::table)
        .from_insertable(&rows(&bed.tag, 1..10, "dup"))
        .execute(&mut conn)
        .unwrap_err();
    assert!(
        error.to_string().contains("duplicate key"),
        "the server's error: {error}"
    );
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 1);
    // And the connection goes on.
    assert!(!in_recovery(&mut conn).unwrap());
}

// ---------------------------------------------------------------------------------------------
// The double write

fn dw(bed: &PgBed, pattern: Pattern, strict: bool) -> DoubleWrite<PgConnection> {
    DoubleWrite::<PgConnection>::builder()
        .source(bed.primary.as_str())
        .destination(bed.dest.as_str())
        .pattern(PatternSwitch::new(pattern))
        .strict(strict)
        .build()
        .unwrap()
}

fn depth(conn: &mut PgConnection) -> Option<u32> {
    AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .unwrap()
        .map(|d| d.get())
}

#[test]
fn dw_read_write_transaction_runs_on_both_sides_with_the_same_settings() {
    let Some(bed) = bed("pgapi_dw_tx") else {
        return;
    };
    let pool = dw(&bed, Pattern::SrcFirst, false);
    let mut conn = pool.get().unwrap();
    let tag = bed.tag.clone();
    let settings = conn
        .build_transaction()
        .serializable()
        .read_write()
        .run(|c: &mut DoubleWriteConnection<PgConnection>| {
            diesel::insert_into(pgapi_rows::table)
                .values(&rows(&tag, 1..3, "both"))
                .execute(c)?;
            let mut each = Vec::new();
            for side in [Side::Source, Side::Destination] {
                each.push(
                    c.with_side(side, |pg| {
                        Ok::<_, diesel::result::Error>((
                            depth(pg),
                            setting(pg, "transaction_isolation")?,
                            setting(pg, "transaction_read_only")?,
                        ))
                    })
                    .unwrap()?,
                );
            }
            Ok::<_, diesel::result::Error>(each)
        })
        .unwrap();
    let expected = (Some(1), "serializable".to_owned(), "off".to_owned());
    assert_eq!(settings, vec![expected.clone(), expected]);
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 2);
    assert_eq!(rows_at(&bed.dest, &bed.tag).len(), 2);
    assert!(pool.memory_journal().unwrap().is_empty());
}

#[test]
fn dw_read_only_transaction_runs_on_the_read_side_alone() {
    let Some(bed) = bed("pgapi_dw_ro") else {
        return;
    };
    let (source_port, dest_port) = (port_of(&bed.primary), port_of(&bed.dest));
    for (pattern, read_port, other) in [
        (Pattern::SrcFirst, source_port, Side::Destination),
        (Pattern::DstFirst, dest_port, Side::Source),
    ] {
        let pool = dw(&bed, pattern, true);
        let mut conn = pool.get().unwrap();
        let (served, read_only, other_depth) = conn
            .build_transaction()
            .read_only()
            .repeatable_read()
            .run(|c: &mut DoubleWriteConnection<PgConnection>| {
                let served = port(c);
                let read_only = setting(c, "transaction_read_only")?;
                let other_depth = c.with_side(other, depth).unwrap();
                Ok::<_, diesel::result::Error>((served, read_only, other_depth))
            })
            .unwrap();
        assert_eq!(served, read_port, "{pattern}: the read side");
        assert_eq!(read_only, "on");
        assert_eq!(
            other_depth, None,
            "{pattern}: no transaction on the {other}"
        );
        assert_eq!(conn.transaction_pattern(), None);

        // A write in it: the read side refuses it, the other side never sees it.
        let tag = bed.tag.clone();
        let error = conn
            .build_transaction()
            .read_only()
            .run(|c: &mut DoubleWriteConnection<PgConnection>| {
                diesel::insert_into(pgapi_rows::table)
                    .values(&rows(&tag, 1..2, "refused"))
                    .execute(c)
            })
            .unwrap_err();
        assert!(
            error.to_string().contains("read-only transaction"),
            "{error}"
        );
        assert!(rows_at(&bed.primary, &bed.tag).is_empty());
        assert!(rows_at(&bed.dest, &bed.tag).is_empty());
        assert!(
            pool.memory_journal().unwrap().is_empty(),
            "nothing to repair"
        );
    }
}

#[test]
fn dw_copy_from_runs_on_the_one_side_of_a_single_pattern_and_is_refused_under_a_double_one() {
    let Some(bed) = bed("pgapi_dw_copy") else {
        return;
    };
    let src_only = dw(&bed, Pattern::SrcOnly, false);
    let mut conn = src_only.get().unwrap();
    let copied = diesel::copy_from(pgapi_rows::table)
        .from_insertable(&rows(&bed.tag, 1..4, "src"))
        .execute(&mut *conn)
        .unwrap();
    assert_eq!(copied, 3);
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 3);
    assert!(rows_at(&bed.dest, &bed.tag).is_empty());

    let double = dw(&bed, Pattern::SrcFirst, false);
    let mut conn = double.get().unwrap();
    let error = diesel::copy_from(pgapi_rows::table)
        .from_insertable(&rows(&bed.tag, 10..12, "double"))
        .execute(&mut *conn)
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("cannot be double-written") && text.contains("copy_from_each"),
        "says why and what to do: {text}"
    );
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 3, "nothing sent");
    assert!(rows_at(&bed.dest, &bed.tag).is_empty(), "nothing sent");
    assert!(double.memory_journal().unwrap().is_empty());
}

#[test]
fn dw_copy_from_each_writes_the_first_side_then_the_second() {
    let Some(bed) = bed("pgapi_dw_copy_each") else {
        return;
    };
    let pool = dw(&bed, Pattern::DstFirst, false);
    let mut conn = pool.get().unwrap();
    let written = rows(&bed.tag, 1..51, "each");
    let before = pool.metrics();
    let copied = conn
        .copy_from_each(|| diesel::copy_from(pgapi_rows::table).from_insertable(&written))
        .unwrap();
    assert_eq!(copied, 50);
    assert_eq!(rows_at(&bed.dest, &bed.tag), written);
    assert_eq!(rows_at(&bed.primary, &bed.tag), written);
    let after = pool.metrics();
    assert_eq!(after.source.successes, before.source.successes + 1);
    assert_eq!(
        after.destination.successes,
        before.destination.successes + 1
    );
    assert!(pool.memory_journal().unwrap().is_empty());

    // A COPY the first side (the destination) rejects never reaches the second.
    let error = conn
        .copy_from_each(|| {
            diesel::copy_from(pgapi_rows::table).from_insertable(rows(
                &bed.tag,
                100..101,
                "far too long for the destination",
            ))
        })
        .unwrap_err();
    assert!(
        error.to_string().contains("pgapi_rows_short_note"),
        "{error}"
    );
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 50);
}

#[test]
fn dw_copy_from_each_rejected_by_the_second_side_is_journaled_when_lenient() {
    let Some(bed) = bed("pgapi_dw_copy_lenient") else {
        return;
    };
    let pool = dw(&bed, Pattern::SrcFirst, false);
    let mut conn = pool.get().unwrap();
    let copied = conn
        .copy_from_each(|| {
            diesel::copy_from(pgapi_rows::table).from_insertable(rows(
                &bed.tag,
                1..3,
                "far too long for the destination",
            ))
        })
        .unwrap();
    assert_eq!(copied, 2, "the first side's result");
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 2);
    assert!(rows_at(&bed.dest, &bed.tag).is_empty());
    let entries = pool.memory_journal().unwrap().entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0].kind, entries[0].side),
        (EntryKind::WriteFailed, Side::Destination)
    );
    assert!(entries[0].sql.contains("COPY"), "{}", entries[0].sql);
    assert!(entries[0].error.contains("pgapi_rows_short_note"));
}

#[test]
fn dw_copy_from_each_rejected_by_the_second_side_says_what_holds_when_strict() {
    let Some(bed) = bed("pgapi_dw_copy_strict") else {
        return;
    };
    let pool = dw(&bed, Pattern::SrcFirst, true);
    let mut conn = pool.get().unwrap();
    let error = conn
        .copy_from_each(|| {
            diesel::copy_from(pgapi_rows::table).from_insertable(rows(
                &bed.tag,
                1..3,
                "far too long for the destination",
            ))
        })
        .unwrap_err();
    match crate_error(error) {
        Error::SecondaryWriteFailed {
            applied,
            failed,
            in_transaction,
            ..
        } => assert_eq!(
            (applied, failed, in_transaction),
            (Side::Source, Side::Destination, false)
        ),
        other => panic!("expected SecondaryWriteFailed, got {other}"),
    }
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 2);
    assert!(rows_at(&bed.dest, &bed.tag).is_empty());

    // In a transaction: nothing committed on either side.
    let error = (*conn)
        .transaction(|c: &mut DoubleWriteConnection<PgConnection>| {
            c.copy_from_each(|| {
                diesel::copy_from(pgapi_rows::table).from_insertable(rows(
                    &bed.tag,
                    10..12,
                    "far too long for the destination",
                ))
            })
        })
        .unwrap_err();
    assert!(matches!(
        crate_error(error),
        Error::SecondaryWriteFailed {
            in_transaction: true,
            ..
        }
    ));
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 2, "rolled back");
}

#[test]
fn dw_copy_to_runs_on_the_read_side() {
    let Some(bed) = bed("pgapi_dw_copy_to") else {
        return;
    };
    PgConnection::establish(&bed.dest)
        .unwrap()
        .batch_execute(&format!(
            "INSERT INTO pgapi_rows VALUES (1, '{}', 'dest only')",
            bed.tag
        ))
        .unwrap();
    for (pattern, expected) in [(Pattern::SrcFirst, 0), (Pattern::DstFirst, 1)] {
        let pool = dw(&bed, pattern, false);
        let mut conn = pool.get().unwrap();
        let tag = bed.tag.clone();
        let seen = conn
            .with_copy_to(|pg| {
                Ok(diesel::copy_to(pgapi_rows::table)
                    .load::<Row, _>(pg)?
                    .filter(|r| r.as_ref().map_or(true, |r| r.tag == tag))
                    .count())
            })
            .unwrap();
        assert_eq!(seen, expected, "{pattern}");
    }
}

// ---------------------------------------------------------------------------------------------
// Custom types

#[test]
fn custom_enum_round_trips_through_the_routing_connection_and_its_metadata_lookup() {
    let Some(bed) = bed("pgapi_enum") else { return };
    let pool = pool(&bed);
    let mut conn = pool.get().unwrap();
    let written = vec![
        MoodRow {
            id: 1,
            tag: bed.tag.clone(),
            mood: Mood::Happy,
        },
        MoodRow {
            id: 2,
            tag: bed.tag.clone(),
            mood: Mood::Sad,
        },
    ];
    diesel::insert_into(pgapi_moods::table)
        .values(&written)
        .execute(&mut conn)
        .unwrap();
    assert_eq!(conn.last_route().unwrap().node, Node::Primary);

    wait_replayed(&bed.primary, &bed.replica);
    let mut fresh = pool.get().unwrap();
    let back: Vec<MoodRow> = pgapi_moods::table
        .filter(pgapi_moods::tag.eq(&bed.tag))
        .filter(
            pgapi_moods::mood
                .eq(Mood::Happy)
                .or(pgapi_moods::mood.eq(Mood::Sad)),
        )
        .order(pgapi_moods::id)
        .select(MoodRow::as_select())
        .load(&mut fresh)
        .unwrap();
    assert_eq!(back, written);
    assert_eq!(fresh.last_route().unwrap().node, Node::Replica(0));

    // The lookup itself, as `HasSqlType::metadata` asks it: the oid the catalog has, looked up
    // where a read goes (the replica).
    let oid: i32 = diesel::select(diesel::dsl::sql::<Integer>(
        "'pgapi_mood'::regtype::oid::int",
    ))
    .get_result(&mut PgConnection::establish(&bed.primary).unwrap())
    .unwrap();
    let metadata = <Pg as HasSqlType<MoodType>>::metadata(&mut fresh);
    assert_eq!(metadata.oid().unwrap(), oid as u32);
    assert_eq!(fresh.last_route().unwrap().node, Node::Replica(0));
    // A type that does not exist: diesel's lookup error, not a panic.
    let missing = diesel::pg::PgMetadataLookup::lookup_type(&mut fresh, "pgapi_no_such_type", None);
    assert!(missing.oid().is_err());

    // The double write looks it up on its read side, and writes the enum on both sides.
    let dw_pool = dw(&bed, Pattern::SrcFirst, true);
    let mut dw_conn = dw_pool.get().unwrap();
    assert!(<Pg as HasSqlType<MoodType>>::metadata(&mut *dw_conn)
        .oid()
        .is_ok());
    diesel::insert_into(pgapi_moods::table)
        .values(MoodRow {
            id: 3,
            tag: bed.tag.clone(),
            mood: Mood::Ok,
        })
        .execute(&mut *dw_conn)
        .unwrap();
    for url in [&bed.primary, &bed.dest] {
        let mood: Mood = pgapi_moods::table
            .filter(pgapi_moods::id.eq(3).and(pgapi_moods::tag.eq(&bed.tag)))
            .select(pgapi_moods::mood)
            .get_result(&mut PgConnection::establish(url).unwrap())
            .unwrap();
        assert_eq!(mood, Mood::Ok);
    }
}

// ---------------------------------------------------------------------------------------------
// LISTEN / NOTIFY

#[test]
fn listen_runs_on_the_primary_and_its_notifications_arrive_there() {
    let Some(bed) = bed("pgapi_listen") else {
        return;
    };
    let mut conn = pool(&bed).get().unwrap();
    assert_eq!(conn.notifications_iter().count(), 0, "nothing listened yet");
    conn.batch_execute("LISTEN pgapi_channel").unwrap();
    assert_eq!(
        conn.last_route().map(|r| (r.node, r.reason)),
        Some((Node::Primary, Reason::Write))
    );
    PgConnection::establish(&bed.primary)
        .unwrap()
        .batch_execute("NOTIFY pgapi_channel, 'hello from the primary'")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let notification = loop {
        if let Some(n) = conn.notifications_iter().next() {
            break n.unwrap();
        }
        assert!(Instant::now() < deadline, "no notification within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(notification.channel, "pgapi_channel");
    assert_eq!(notification.payload, "hello from the primary");

    // The standby refuses LISTEN itself: that is why it must go to the primary.
    let refused = PgConnection::establish(&bed.replica)
        .unwrap()
        .batch_execute("LISTEN pgapi_channel")
        .unwrap_err();
    assert!(refused.to_string().contains("recovery"), "{refused}");
    conn.batch_execute("UNLISTEN *").unwrap();
}

// ---------------------------------------------------------------------------------------------
// The double write over two clusters

#[test]
fn dw_over_clusters_read_only_runs_on_the_read_sides_replica_and_read_write_on_both_primaries() {
    let Some(bed) = bed("pgapi_dw_cluster") else {
        return;
    };
    let Some(dest_replica) = common::pg::dest_replica() else {
        return;
    };
    wait_replayed(&bed.dest, &dest_replica);
    let cluster = |primary: &str, replica: &str| {
        RwPool::<PgConnection>::builder()
            .primary(primary)
            .replica(replica)
            .build()
            .unwrap()
    };
    let pool = DoubleWrite::<diesel_rw::RwConnection<PgConnection>>::builder()
        .source_cluster(cluster(&bed.primary, &bed.replica))
        .destination_cluster(cluster(&bed.dest, &dest_replica))
        .pattern(PatternSwitch::new(Pattern::DstFirst))
        .strict(true)
        .build()
        .unwrap();
    let dest_replica_port = port_of(&dest_replica);
    let mut conn = pool.get().unwrap();
    let (served, recovery) = conn
        .build_transaction()
        .read_only()
        .run(|c| Ok::<_, diesel::result::Error>((port(c), in_recovery(c)?)))
        .unwrap();
    assert_eq!(
        served, dest_replica_port,
        "DstFirst reads the destination's replica"
    );
    assert!(recovery);

    let tag = bed.tag.clone();
    let (ports, isolation) = conn
        .build_transaction()
        .serializable()
        .run(|c| {
            diesel::insert_into(pgapi_rows::table)
                .values(&rows(&tag, 1..3, "cluster"))
                .execute(c)?;
            let mut ports = Vec::new();
            for side in [Side::Destination, Side::Source] {
                ports.push(c.with_side(side, port).unwrap());
            }
            Ok::<_, diesel::result::Error>((ports, setting(c, "transaction_isolation")?))
        })
        .unwrap();
    assert_eq!(
        ports,
        vec![port_of(&bed.dest), port_of(&bed.primary)],
        "each side's primary"
    );
    assert_eq!(isolation, "serializable");
    assert_eq!(rows_at(&bed.dest, &bed.tag).len(), 2);
    assert_eq!(rows_at(&bed.primary, &bed.tag).len(), 2);

    // COPY TO on the read side, through that side's routing (its replica once replayed).
    wait_replayed(&bed.dest, &dest_replica);
    let mut fresh = pool.get().unwrap();
    let tag = bed.tag.clone();
    let (recovery, seen) = fresh
        .with_copy_to(|pg| {
            let recovery = in_recovery(pg)?;
            let seen = diesel::copy_to(pgapi_rows::table)
                .load::<Row, _>(pg)?
                .filter(|r| r.as_ref().map_or(true, |r| r.tag == tag))
                .count();
            Ok((recovery, seen))
        })
        .unwrap();
    assert!(recovery, "the destination's replica");
    assert_eq!(seen, 2);
}
