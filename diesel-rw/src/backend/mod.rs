//! What diesel-rw needs to know of each database backend.
//!
//! [`RwBackend`] is implemented for diesel's [`Pg`](diesel::pg::Pg),
//! [`Mysql`](diesel::mysql::Mysql) and [`Sqlite`](diesel::sqlite::Sqlite) backends (behind the
//! `postgres`, `mysql` and `sqlite` features), so every connection type of those backends works:
//! `PgConnection`, `PooledConnection`s, diesel-async's connections, and diesel-rw's own wrappers.

use diesel::backend::Backend;
use diesel::connection::LoadConnection;
use diesel::result::QueryResult;

use crate::consistency::Position;
use crate::error::Error;
use crate::url::NodeUrl;

/// The `query_text` method and its row type, the same for every backend; written once here
/// because the bounds a generic version needs differ per backend.
macro_rules! query_text_impl {
    () => {
        fn query_text<C: diesel::connection::LoadConnection<Backend = Self>>(
            conn: &mut C,
            sql: &str,
        ) -> diesel::result::QueryResult<Option<String>> {
            #[derive(diesel::QueryableByName)]
            struct TextRow {
                #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
                value: Option<String>,
            }
            diesel::RunQueryDsl::get_result::<TextRow>(diesel::sql_query(sql), conn)
                .map(|r| r.value)
        }
    };
}

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

/// A diesel backend that diesel-rw can route for.
pub trait RwBackend: Backend<QueryBuilder: Default> + Default {
    /// The backend's name, for messages.
    const NAME: &'static str;

    /// The SQL grammar its statements are classified under (see [`crate::classify_sql_in`]).
    const DIALECT: crate::SqlDialect = crate::SqlDialect::Any;

    /// SQL that makes every later transaction of the session read-only. Run once on every new
    /// replica connection, so that a write that reached a replica by mistake would fail there.
    const READ_ONLY_SESSION: &'static str;

    /// SQL run once on every new node connection, primary and replicas (before
    /// [`READ_ONLY_SESSION`](Self::READ_ONLY_SESSION) on a replica); empty for none. SQLite:
    /// `PRAGMA busy_timeout = 5000`, so that a statement waits up to 5 s for another
    /// connection's lock on the file instead of failing at once with "database is locked"
    /// (diesel sets no busy timeout, and a pool's connections share the file).
    const SESSION_SETUP: &'static str = "";

    /// The statements a new connection of a node of `role` runs, in order.
    #[doc(hidden)]
    fn session_statements(role: crate::Role) -> impl Iterator<Item = &'static str> + Send {
        let read_only = (role == crate::Role::Replica).then_some(Self::READ_ONLY_SESSION);
        [Some(Self::SESSION_SETUP), read_only]
            .into_iter()
            .flatten()
            .filter(|sql| !sql.is_empty())
    }

    /// Whether a statement can fail because its connection to a server broke (the server went
    /// away), so that a read outside a transaction is prepared to run a second time on another
    /// node. `false` for SQLite, which runs in process: its reads skip that preparation (a
    /// shared copy of the statement for `load`), which is measurable at its speed.
    const CONNECTIONS_CAN_BREAK: bool = true;

    /// Checks a connection URL before it is used, with a message that says what is wrong.
    fn check_url(url: &NodeUrl) -> Result<(), Error>;

    /// The backend's replication-position queries, if it has replication positions. Without
    /// them, [`Consistency::Causal`](crate::Consistency::Causal) behaves as `UnitOfWork` and
    /// lag cannot be measured.
    const POSITIONS: Option<PositionQueries> = None;

    /// How the backend tells the outcome of a transaction whose `COMMIT` reply was lost, if it
    /// can (PostgreSQL: `txid_status`). Without them, such a commit is
    /// [`Error::CommitOutcomeUnknown`].
    const COMMIT_STATUS: Option<CommitStatusQueries> = None;

    /// How the backend's catalog lists the application's functions that may write, if it has
    /// one (see [`crate::functions`]). Without it, a pool's
    /// [`WritingFunctions`](crate::WritingFunctions) hold only the names its builder gave.
    const FUNCTION_CATALOG: Option<crate::functions::FunctionCatalog> = None;

    /// Runs `sql`, a query returning one nullable text value, on a sync connection.
    fn query_text<C: LoadConnection<Backend = Self>>(
        conn: &mut C,
        sql: &str,
    ) -> QueryResult<Option<String>>;
}

/// How a backend tells, from any session, whether a transaction committed: for a `COMMIT`
/// whose reply was lost (the connection broke after it was sent).
#[derive(Clone, Copy, Debug)]
pub struct CommitStatusQueries {
    /// In the transaction, just before its `COMMIT`: `"<transaction id>:<server process id>"`,
    /// or NULL when the transaction has no id (it changed nothing, so its outcome does not
    /// matter). Run only for transactions that wrote.
    pub capture: &'static str,
    /// Any session: the status of transaction `xid`, one of `committed`, `aborted` and
    /// `in progress`, or NULL when the server no longer knows it.
    pub status: fn(xid: u64) -> String,
    /// Any session: ends server process `pid` if it still runs transaction `xid` (its client
    /// is gone), so that the transaction ends (rolled back, unless its commit was under way).
    pub terminate: fn(xid: u64, pid: i64) -> String,
}

/// How a backend reports replication positions.
#[derive(Clone, Copy, Debug)]
pub struct PositionQueries {
    /// On the primary, in the session that wrote, right after the commit: the write's position.
    pub after_write: &'static str,
    /// On the primary, any session: the position of everything committed so far.
    pub primary: &'static str,
    /// On a replica: the position it has replayed.
    pub replayed: &'static str,
    /// Parses what those queries return.
    pub parse: fn(&str) -> Option<Position>,
    /// On a replica: SQL that waits up to `timeout` for `position` and returns `0` when reached,
    /// if the backend can wait server-side (MariaDB `MASTER_GTID_WAIT`); otherwise the wait
    /// polls `replayed`.
    pub wait: Option<fn(&Position, std::time::Duration) -> String>,
}
