//! `build_transaction()`: PostgreSQL transactions with an isolation level, a read mode and
//! `DEFERRABLE`, on the routing and double-write connections.
//!
//! diesel's own `TransactionBuilder` only runs on connections whose transaction manager is
//! diesel's `AnsiTransactionManager`; [`PgTransactionBuilder`] is the same builder (the same
//! methods, the same `BEGIN TRANSACTION ...` text) for connections that route their
//! transactions: [`RwConnection<PgConnection>`](crate::RwConnection) and the
//! [`DoubleWriteConnection`](crate::DoubleWriteConnection)s over PostgreSQL.

use std::fmt;

use diesel::connection::{AnsiTransactionManager, Connection, TransactionManager};
use diesel::pg::{Pg, PgConnection};
use diesel::result::{Error as DieselError, QueryResult};

use crate::classify::StatementKind;
use crate::error::Error;
use crate::sync::RwConnection;

/// A transaction's isolation level (`ISOLATION LEVEL ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IsolationLevel {
    /// `READ COMMITTED` (PostgreSQL's default).
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`.
    Serializable,
}

/// A transaction's access mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadMode {
    /// `READ ONLY`: the server refuses writes in it. On a routing connection it runs on a
    /// replica.
    ReadOnly,
    /// `READ WRITE`.
    ReadWrite,
}

/// The settings of a transaction that [`PgTransactionBuilder`] begins: what follows
/// `BEGIN TRANSACTION`. Unset parts are the server's defaults.
///
/// ```
/// use diesel_rw::pg::{IsolationLevel, PgTransactionSettings, ReadMode};
///
/// let settings = PgTransactionSettings {
///     isolation: Some(IsolationLevel::Serializable),
///     read_mode: Some(ReadMode::ReadOnly),
///     deferrable: Some(true),
/// };
/// assert_eq!(
///     settings.sql(),
///     "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE"
/// );
/// assert!(settings.is_read_only());
/// assert!(!settings.on_a_replica()); // a hot standby refuses SERIALIZABLE
/// assert_eq!(PgTransactionSettings::default().sql(), "BEGIN TRANSACTION");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PgTransactionSettings {
    /// `ISOLATION LEVEL ...`, if set.
    pub isolation: Option<IsolationLevel>,
    /// `READ ONLY` or `READ WRITE`, if set.
    pub read_mode: Option<ReadMode>,
    /// `DEFERRABLE` (`true`) or `NOT DEFERRABLE` (`false`), if set.
    pub deferrable: Option<bool>,
}

impl PgTransactionSettings {
    /// The statement that begins the transaction, as diesel's builder renders it.
    pub fn sql(&self) -> String {
        let mut sql = String::from("BEGIN TRANSACTION");
        if let Some(level) = self.isolation {
            sql.push_str(match level {
                IsolationLevel::ReadCommitted => " ISOLATION LEVEL READ COMMITTED",
                IsolationLevel::RepeatableRead => " ISOLATION LEVEL REPEATABLE READ",
                IsolationLevel::Serializable => " ISOLATION LEVEL SERIALIZABLE",
            });
        }
        if let Some(mode) = self.read_mode {
            sql.push_str(match mode {
                ReadMode::ReadOnly => " READ ONLY",
                ReadMode::ReadWrite => " READ WRITE",
            });
        }
        if let Some(deferrable) = self.deferrable {
            sql.push_str(if deferrable {
                " DEFERRABLE"
            } else {
                " NOT DEFERRABLE"
            });
        }
        sql
    }

    /// Whether the transaction is `READ ONLY`.
    pub fn is_read_only(&self) -> bool {
        self.read_mode == Some(ReadMode::ReadOnly)
    }

    /// Whether a hot standby runs it: `READ ONLY`, and not `SERIALIZABLE` (a standby refuses
    /// that: "cannot use serializable mode in a hot standby").
    pub fn on_a_replica(&self) -> bool {
        self.is_read_only() && self.isolation != Some(IsolationLevel::Serializable)
    }
}

impl fmt::Display for PgTransactionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// A PostgreSQL connection that can begin a transaction with [`PgTransactionSettings`]: the
/// connections [`PgTransactionBuilder`] runs on. Implemented for `PgConnection`,
/// [`RwConnection<PgConnection>`](crate::RwConnection) and the
/// [`DoubleWriteConnection`](crate::DoubleWriteConnection)s over either; nothing to implement.
pub trait BuildPgTransaction: Connection<Backend = Pg> {
    /// Begins the outermost transaction with `settings` (where it runs is the connection's
    /// own choice: see [`PgTransactionBuilder`]). Fails with diesel's
    /// `AlreadyInTransaction` inside an open transaction, as diesel's builder does.
    #[doc(hidden)]
    fn begin_pg_transaction(&mut self, settings: &PgTransactionSettings) -> QueryResult<()>;
}

impl BuildPgTransaction for PgConnection {
    fn begin_pg_transaction(&mut self, settings: &PgTransactionSettings) -> QueryResult<()> {
        AnsiTransactionManager::begin_transaction_sql(self, &settings.sql())
    }
}

impl BuildPgTransaction for RwConnection<PgConnection> {
    /// A `READ ONLY` transaction is routed like a read (routing steps 1, 4 and 5): to one
    /// replica chosen by the policy, or to the primary when this connection is pinned there or
    /// sticky after a write, or when no replica is available (per the
    /// [`Fallback`](crate::Fallback)). A `READ ONLY` transaction at `SERIALIZABLE` goes to the
    /// primary: a hot standby refuses serializable transactions. Any other transaction begins
    /// where [`Connection::transaction`] begins one: the primary (a replica on a read-only
    /// handle, where an explicit `read_write()` is refused before anything is sent, and
    /// `SERIALIZABLE` gets the standby's refusal).
    fn begin_pg_transaction(&mut self, settings: &PgTransactionSettings) -> QueryResult<()> {
        if self.state.transaction.is_some() {
            return Err(DieselError::AlreadyInTransaction);
        }
        let sql = settings.sql();
        let node = if settings.on_a_replica() {
            self.route(StatementKind::Read, || sql.clone())?
        } else {
            if self.state.read_only && settings.read_mode == Some(ReadMode::ReadWrite) {
                return Err(Error::WriteOnReadRoute { sql }.into());
            }
            self.route_transaction()?
        };
        let begun = AnsiTransactionManager::begin_transaction_sql(self.node_conn(node), &sql);
        match begun {
            Ok(()) => {
                self.state.transaction = Some(node);
                self.state.transaction_wrote = false;
                Ok(())
            }
            Err(e) => Err(self.statement_failed(node, StatementKind::Read, e).error),
        }
    }
}

impl RwConnection<PgConnection> {
    /// Builds a transaction with an isolation level, a read mode and `DEFERRABLE`, as
    /// `PgConnection::build_transaction` does: the same methods, the same SQL.
    ///
    /// A `read_only()` transaction runs on one replica, chosen per the routing order (the
    /// primary when this connection is pinned there, sticky after a write, or no replica is
    /// available); any other on the primary, and so does a `read_only().serializable()` one (a
    /// hot standby refuses `SERIALIZABLE`). Every statement of it goes to that node, like any
    /// transaction's ([`Reason::Transaction`](crate::Reason::Transaction)).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::prelude::*;
    /// use diesel_rw::{Node, RwPool};
    ///
    /// let pool = RwPool::<PgConnection>::builder()
    ///     .primary("postgres://127.0.0.1:55432/app")
    ///     .replica("postgres://127.0.0.1:55433/app")
    ///     .build()?;
    /// let mut conn = pool.get()?;
    /// let on_standby = conn
    ///     .build_transaction()
    ///     .read_only()
    ///     .repeatable_read()
    ///     .run(|conn| {
    ///         diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>("pg_is_in_recovery()"))
    ///             .get_result::<bool>(conn)
    ///     })?;
    /// assert!(on_standby);
    /// assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
    /// # Ok(()) }
    /// ```
    pub fn build_transaction(&mut self) -> PgTransactionBuilder<'_, Self> {
        PgTransactionBuilder::new(self)
    }
}

/// Builds and runs a PostgreSQL transaction with custom settings on a routing or double-write
/// connection: made by `build_transaction()` on
/// [`RwConnection<PgConnection>`](crate::RwConnection) and on the
/// [`DoubleWriteConnection`](crate::DoubleWriteConnection)s over PostgreSQL. Its methods are
/// those of diesel's `TransactionBuilder`; the last one called of each pair wins.
#[must_use = "a transaction builder does nothing until `run` is called"]
pub struct PgTransactionBuilder<'a, C> {
    connection: &'a mut C,
    settings: PgTransactionSettings,
}

impl<C> fmt::Debug for PgTransactionBuilder<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTransactionBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The setters both builders share: diesel's, one per clause.
macro_rules! settings_methods {
    () => {
        /// `READ ONLY`: the server refuses writes; on a routing connection the transaction runs on
        /// a replica (unless it is also `SERIALIZABLE`).
        pub fn read_only(mut self) -> Self {
            self.settings.read_mode = Some(ReadMode::ReadOnly);
            self
        }

        /// `READ WRITE`.
        pub fn read_write(mut self) -> Self {
            self.settings.read_mode = Some(ReadMode::ReadWrite);
            self
        }

        /// `DEFERRABLE` (effective for a `SERIALIZABLE READ ONLY` transaction: it waits for a
        /// snapshot that cannot fail).
        pub fn deferrable(mut self) -> Self {
            self.settings.deferrable = Some(true);
            self
        }

        /// `NOT DEFERRABLE`.
        pub fn not_deferrable(mut self) -> Self {
            self.settings.deferrable = Some(false);
            self
        }

        /// `ISOLATION LEVEL READ COMMITTED`.
        pub fn read_committed(mut self) -> Self {
            self.settings.isolation = Some(IsolationLevel::ReadCommitted);
            self
        }

        /// `ISOLATION LEVEL REPEATABLE READ`.
        pub fn repeatable_read(mut self) -> Self {
            self.settings.isolation = Some(IsolationLevel::RepeatableRead);
            self
        }

        /// `ISOLATION LEVEL SERIALIZABLE`.
        pub fn serializable(mut self) -> Self {
            self.settings.isolation = Some(IsolationLevel::Serializable);
            self
        }

        /// The settings so far.
        pub fn settings(&self) -> PgTransactionSettings {
            self.settings
        }

        /// The `BEGIN TRANSACTION ...` statement `run` sends (diesel's text for the same settings).
        pub fn sql(&self) -> String {
            self.settings.sql()
        }
    };
}

#[cfg(feature = "async")]
pub(crate) use settings_methods;

impl<'a, C> PgTransactionBuilder<'a, C> {
    pub(crate) fn new(connection: &'a mut C) -> Self {
        PgTransactionBuilder {
            connection,
            settings: PgTransactionSettings::default(),
        }
    }

    settings_methods!();
}

impl<C: BuildPgTransaction> PgTransactionBuilder<'_, C> {
    /// Begins the transaction, runs `f` in it, and commits if `f` returns `Ok`, or rolls back
    /// if it returns `Err` (returning `f`'s error, or the rollback's if that failed too), as
    /// diesel's builder does. Commit and rollback go through the connection's own transaction
    /// manager, with all it guarantees (a lost `COMMIT` reply resolved, both sides of a double
    /// write). Inside an open transaction it fails with diesel's `AlreadyInTransaction`.
    pub fn run<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut C) -> Result<T, E>,
        E: From<DieselError>,
    {
        self.connection.begin_pg_transaction(&self.settings)?;
        match f(&mut *self.connection) {
            Ok(value) => {
                C::TransactionManager::commit_transaction(&mut *self.connection)?;
                Ok(value)
            }
            Err(user_error) => {
                match C::TransactionManager::rollback_transaction(&mut *self.connection) {
                    // The original error says more than a transaction manager that is broken.
                    Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(user_error),
                    Err(rollback_error) => Err(rollback_error.into()),
                }
            }
        }
    }
}
