//! A lost first-side `COMMIT` of a double write, resolved where the side's connection allows.
//!
//! When the connection to the first side breaks after its `COMMIT` was sent, the transaction
//! may or may not have committed there. Over a plain PostgreSQL connection (`PgConnection`, or
//! diesel-async's `AsyncPgConnection`) the double write does what the routing connection does
//! (see [`commit_outcome`](crate::commit_outcome)): before the `COMMIT` of a transaction that
//! wrote, it notes the transaction's id on the first side; if the reply is lost, it asks a new
//! connection to that side what became of it. Committed: the second side is committed too, as if
//! nothing had happened. Rolled back: the second side is rolled back, nothing is applied. Still
//! unknown: [`Error::CommitOutcomeUnknown`](crate::Error::CommitOutcomeUnknown), as before.
//!
//! A side that is a routing connection (`RwConnection`, `AsyncRwConnection`) resolves its own
//! lost `COMMIT`s (its error says the outcome); MariaDB, MySQL and SQLite have no such query.

use std::any::{Any, TypeId};
use std::time::Duration;

use diesel::result::QueryResult;

use crate::backend::CommitStatusQueries;
#[cfg(feature = "postgres")]
use crate::backend::RwBackend;
use crate::error::Error;

/// How long a lost `COMMIT`'s outcome is looked for (the transaction still `in progress` on
/// the server, its orphaned session ended, its status asked again) before it is reported
/// unknown.
pub(crate) const RESOLVE_BUDGET: Duration = Duration::from_secs(10);

/// The queries that resolve a lost `COMMIT` on a connection of type `C`, if it is one whose
/// lost `COMMIT` the double write resolves itself (a plain PostgreSQL connection).
pub(crate) fn queries_for<C: 'static>() -> Option<CommitStatusQueries> {
    let ty = TypeId::of::<C>();
    #[cfg(feature = "postgres")]
    if ty == TypeId::of::<diesel::PgConnection>() {
        return <diesel::pg::Pg as RwBackend>::COMMIT_STATUS;
    }
    #[cfg(all(feature = "postgres", feature = "async"))]
    if ty == TypeId::of::<diesel_async::AsyncPgConnection>() {
        return <diesel::pg::Pg as RwBackend>::COMMIT_STATUS;
    }
    let _ = ty;
    None
}

fn unsupported<T>() -> QueryResult<T> {
    Err(Error::InvalidState(
        "diesel-rw: a commit-status query on a connection that has none".into(),
    )
    .into())
}

/// Runs `sql` (one nullable text value) on a sync side's connection of a type
/// [`queries_for`] names.
pub(crate) fn query_sync<C: 'static>(conn: &mut C, sql: &str) -> QueryResult<Option<String>> {
    let conn: &mut dyn Any = conn;
    #[cfg(feature = "postgres")]
    if let Some(pg) = conn.downcast_mut::<diesel::PgConnection>() {
        return <diesel::pg::Pg as RwBackend>::query_text(pg, sql);
    }
    let _ = (conn, sql);
    unsupported()
}

/// Runs `sql` (one nullable text value) on an async side's connection of a type
/// [`queries_for`] names.
#[cfg(feature = "async")]
pub(crate) async fn query_async<C: Send + 'static>(
    conn: &mut C,
    sql: &str,
) -> QueryResult<Option<String>> {
    let conn: &mut dyn Any = conn;
    #[cfg(feature = "postgres")]
    if let Some(pg) = conn.downcast_mut::<diesel_async::AsyncPgConnection>() {
        #[derive(diesel::QueryableByName)]
        struct TextRow {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            value: Option<String>,
        }
        let row = diesel_async::RunQueryDsl::get_result::<TextRow>(diesel::sql_query(sql), pg);
        return row.await.map(|r| r.value);
    }
    let _ = (conn, sql);
    unsupported()
}
