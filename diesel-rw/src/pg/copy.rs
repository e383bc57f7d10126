//! PostgreSQL `COPY` on the routing connection: `COPY ... FROM STDIN` on the primary, and
//! `COPY ... TO STDOUT` where a read goes.
//!
//! - `diesel::copy_from(table).from_insertable(rows).execute(&mut conn)` (and `from_raw_data`)
//!   runs on [`RwConnection<PgConnection>`](crate::RwConnection) as a write: on the primary
//!   (refused before anything is sent on a read-only handle), and makes the connection sticky.
//! - diesel's `copy_to(..).load(..)` and `load_raw(..)` take a connection through a trait diesel
//!   does not export (it cannot be implemented outside diesel), so they run on the node
//!   connection a read is routed to, in a closure: [`CopyToConnection::with_copy_to`] (a
//!   replica by default; in a transaction, its node; the primary when sticky or pinned). It
//!   also ends the `COPY` on that connection afterwards: diesel 2.3 leaves a connection that ran
//!   `copy_to` waiting for the end of the `COPY`, and its next statement fails with "another
//!   command is already in progress"; a node connection that goes back to its pool must not.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::prelude::*;
//! use diesel_rw::{Node, RwPool};
//!
//! diesel::table! { users (id) { id -> Integer, name -> Text } }
//!
//! #[derive(Insertable, Queryable, Selectable)]
//! #[diesel(table_name = users, treat_none_as_default_value = false)]
//! struct User { id: i32, name: String }
//!
//! let pool = RwPool::<PgConnection>::builder()
//!     .primary("postgres://127.0.0.1:55432/app")
//!     .replica("postgres://127.0.0.1:55433/app")
//!     .build()?;
//! let mut conn = pool.get()?;
//! let rows = vec![User { id: 1, name: "ada".into() }];
//! let copied = diesel::copy_from(users::table).from_insertable(&rows).execute(&mut conn)?;
//! assert_eq!((copied, conn.last_route().unwrap().node), (1, Node::Primary));
//!
//! use diesel_rw::pg::CopyToConnection;
//! let mut fresh = pool.get()?; // not sticky: COPY TO runs on the replica
//! let back: Vec<User> = fresh.with_copy_to(|pg| {
//!     diesel::copy_to(users::table).load::<User, _>(pg)?.collect()
//! })?;
//! # Ok(()) }
//! ```

use diesel::connection::SimpleConnection;
use diesel::pg::{CopyFromQuery, PgConnection};
use diesel::result::{Error as DieselError, QueryResult};
use diesel::ExecuteCopyFromDsl;

use crate::classify::StatementKind;
use crate::sync::RwConnection;

/// What a `COPY ... FROM STDIN` is called in errors (diesel renders it only inside the node
/// connection).
pub(crate) const COPY_FROM: &str = "COPY ... FROM STDIN (diesel::copy_from)";

/// `COPY ... FROM STDIN` on the primary: a write.
impl<T, A> ExecuteCopyFromDsl<RwConnection<PgConnection>> for CopyFromQuery<T, A>
where
    CopyFromQuery<T, A>: ExecuteCopyFromDsl<PgConnection>,
    <CopyFromQuery<T, A> as ExecuteCopyFromDsl<PgConnection>>::Error: From<DieselError>,
{
    type Error = <CopyFromQuery<T, A> as ExecuteCopyFromDsl<PgConnection>>::Error;

    fn execute(self, conn: &mut RwConnection<PgConnection>) -> Result<usize, Self::Error> {
        let node = conn
            .route(StatementKind::Write, || COPY_FROM.to_owned())
            .map_err(DieselError::from)?;
        <Self as ExecuteCopyFromDsl<PgConnection>>::execute(self, conn.node_conn(node))
    }
}

/// A connection on which `diesel::copy_to(..)` runs, through a closure given the
/// `PgConnection` that serves it: `PgConnection` itself,
/// [`RwConnection<PgConnection>`](crate::RwConnection) (where a read is routed) and the
/// [`DoubleWriteConnection`](crate::DoubleWriteConnection)s over either (the side the pattern
/// reads from). Nothing to implement.
pub trait CopyToConnection {
    /// Runs `f` (a `diesel::copy_to(..).load(..)` or `load_raw(..)` whose result it consumes)
    /// on the `PgConnection` that serves reads, then ends the `COPY` on that connection (one
    /// more round trip), so that it runs the next statement. `f`'s error comes first; if `f`
    /// succeeded and ending the `COPY` failed, that error.
    fn with_copy_to<T>(
        &mut self,
        f: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> QueryResult<T>;
}

/// What ends a `COPY TO` that diesel left open: libpq's `PQexec` first reads and drops what is
/// left of the previous command, which diesel's prepared statements do not.
const END_COPY: &str = "SELECT 1";

impl CopyToConnection for PgConnection {
    fn with_copy_to<T>(
        &mut self,
        f: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let result = f(self);
        let ended = self.batch_execute(END_COPY);
        let value = result?;
        ended.map(|()| value)
    }
}

/// `COPY TO` where a read is routed: a replica by default; in a transaction, its node; the
/// primary when the connection is pinned there or sticky.
impl CopyToConnection for RwConnection<PgConnection> {
    fn with_copy_to<T>(
        &mut self,
        f: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> QueryResult<T> {
        self.with_read_route(|pg| pg.with_copy_to(f))
    }
}
