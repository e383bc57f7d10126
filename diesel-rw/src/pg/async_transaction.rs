//! `build_transaction()` on the async routing and double-write connections over
//! `AsyncPgConnection`: diesel-async's builder (the same methods and SQL as diesel's), routed as
//! the sync [`PgTransactionBuilder`](super::PgTransactionBuilder) is.

use std::fmt;
use std::future::Future;

use diesel::pg::Pg;
use diesel::result::{Error as DieselError, QueryResult};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, TransactionManager,
};

use super::transaction::{settings_methods, IsolationLevel, PgTransactionSettings, ReadMode};

/// An async PostgreSQL connection that can begin a transaction with [`PgTransactionSettings`]:
/// the connections [`AsyncPgTransactionBuilder`] runs on. Implemented for `AsyncPgConnection`,
/// [`AsyncRwConnection<AsyncPgConnection>`](crate::AsyncRwConnection) and the
/// [`AsyncDoubleWriteConnection`](crate::AsyncDoubleWriteConnection)s over either; nothing to
/// implement.
pub trait AsyncBuildPgTransaction: AsyncConnection<Backend = Pg> + Send {
    /// Begins the outermost transaction with `settings`; diesel's `AlreadyInTransaction`
    /// inside an open one.
    #[doc(hidden)]
    fn begin_pg_transaction(
        &mut self,
        settings: PgTransactionSettings,
    ) -> impl Future<Output = QueryResult<()>> + Send;
}

impl AsyncBuildPgTransaction for AsyncPgConnection {
    async fn begin_pg_transaction(&mut self, settings: PgTransactionSettings) -> QueryResult<()> {
        AnsiTransactionManager::begin_transaction_sql(self, &settings.sql()).await
    }
}

/// The async twin of [`PgTransactionBuilder`](super::PgTransactionBuilder): made by
/// `build_transaction()` on [`AsyncRwConnection<AsyncPgConnection>`](crate::AsyncRwConnection)
/// and the [`AsyncDoubleWriteConnection`](crate::AsyncDoubleWriteConnection)s over PostgreSQL;
/// `run` takes an async closure.
#[must_use = "a transaction builder does nothing until `run` is called"]
pub struct AsyncPgTransactionBuilder<'a, C> {
    connection: &'a mut C,
    settings: PgTransactionSettings,
}

impl<C> fmt::Debug for AsyncPgTransactionBuilder<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPgTransactionBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<'a, C> AsyncPgTransactionBuilder<'a, C> {
    pub(crate) fn new(connection: &'a mut C) -> Self {
        AsyncPgTransactionBuilder {
            connection,
            settings: PgTransactionSettings::default(),
        }
    }

    settings_methods!();
}

impl<C: AsyncBuildPgTransaction> AsyncPgTransactionBuilder<'_, C> {
    /// Begins the transaction, runs `f` in it, and commits if `f` returns `Ok`, or rolls back
    /// if it returns `Err` (returning `f`'s error, or the rollback's if that failed too), as
    /// diesel-async's builder does, through the connection's own transaction manager.
    pub async fn run<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut C) -> Result<T, E>,
        E: From<DieselError>,
    {
        self.connection.begin_pg_transaction(self.settings).await?;
        match f(&mut *self.connection).await {
            Ok(value) => {
                C::TransactionManager::commit_transaction(&mut *self.connection).await?;
                Ok(value)
            }
            Err(user_error) => {
                match C::TransactionManager::rollback_transaction(&mut *self.connection).await {
                    Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(user_error),
                    Err(rollback_error) => Err(rollback_error.into()),
                }
            }
        }
    }
}
