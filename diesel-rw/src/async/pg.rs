//! The PostgreSQL connection API on [`AsyncRwConnection<AsyncPgConnection>`](AsyncRwConnection)
//! (see [`crate::pg`]): `build_transaction()` and `LISTEN`/`NOTIFY`, where diesel-async has
//! them.

use diesel::pg::PgNotification;
use diesel::result::{Error as DieselError, QueryResult};
use diesel_async::{AnsiTransactionManager, AsyncPgConnection};
use futures_util::Stream;

use super::connection::{within, AsyncRwConnection};
use crate::classify::StatementKind;
use crate::error::Error;
use crate::pg::{
    AsyncBuildPgTransaction, AsyncPgTransactionBuilder, PgTransactionSettings, ReadMode,
};

impl AsyncBuildPgTransaction for AsyncRwConnection<AsyncPgConnection> {
    /// Routed as the sync [`RwConnection`](crate::RwConnection)'s: a `READ ONLY` transaction
    /// like a read (one replica; the primary when pinned, sticky or no replica is available),
    /// `READ ONLY SERIALIZABLE` and any other on the primary.
    async fn begin_pg_transaction(&mut self, settings: PgTransactionSettings) -> QueryResult<()> {
        {
            if self.state.transaction.is_some() {
                return Err(DieselError::AlreadyInTransaction);
            }
            let sql = settings.sql();
            let node = if settings.on_a_replica() {
                self.route(StatementKind::Read, || sql.clone()).await?
            } else {
                if self.state.read_only && settings.read_mode == Some(ReadMode::ReadWrite) {
                    return Err(Error::WriteOnReadRoute { sql }.into());
                }
                self.route_transaction().await?
            };
            let cluster = self.cluster.clone();
            let begin = AnsiTransactionManager::begin_transaction_sql(self.node_conn(node), &sql);
            // Within the read deadline, as any BEGIN: it applies nothing.
            match within(&cluster.core, node, StatementKind::Read, begin).await {
                Ok(()) => {
                    self.state.transaction = Some(node);
                    self.state.transaction_wrote = false;
                    Ok(())
                }
                Err(e) => Err(self.statement_failed(node, StatementKind::Read, e).error),
            }
        }
    }
}

impl AsyncRwConnection<AsyncPgConnection> {
    /// Builds a transaction with an isolation level, a read mode and `DEFERRABLE`, as
    /// `AsyncPgConnection::build_transaction` does, routed as
    /// [`RwConnection::build_transaction`](crate::RwConnection::build_transaction) is: a
    /// `read_only()` one on one replica per the routing order, any other (and
    /// `read_only().serializable()`, which a hot standby refuses) on the primary.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::prelude::*;
    /// use diesel_async::{AsyncPgConnection, RunQueryDsl};
    /// use diesel_rw::AsyncRwPool;
    ///
    /// let pool = AsyncRwPool::<AsyncPgConnection>::builder()
    ///     .primary("postgres://127.0.0.1:55432/app")
    ///     .replica("postgres://127.0.0.1:55433/app")
    ///     .build()?;
    /// let mut conn = pool.get().await?;
    /// let on_standby: bool = conn
    ///     .build_transaction()
    ///     .read_only()
    ///     .repeatable_read()
    ///     .run(async |conn| {
    ///         diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>("pg_is_in_recovery()"))
    ///             .get_result(conn)
    ///             .await
    ///     })
    ///     .await?;
    /// assert!(on_standby);
    /// # Ok(()) }
    /// ```
    pub fn build_transaction(&mut self) -> AsyncPgTransactionBuilder<'_, Self> {
        AsyncPgTransactionBuilder::new(self)
    }

    /// The notifications of the primary connection (the one `LISTEN` ran on: a write, so on
    /// the primary), as `AsyncPgConnection::notifications_stream` gives them: it waits for the
    /// next. Pending forever if this connection holds no primary connection (no `LISTEN` ran
    /// on it). The `LISTEN` stays on the pooled primary connection: run `UNLISTEN *` before
    /// dropping this connection when the pool is shared.
    pub fn notifications_stream(&mut self) -> impl Stream<Item = QueryResult<PgNotification>> + '_ {
        match self.held_primary() {
            Some(primary) => futures_util::future::Either::Left(primary.notifications_stream()),
            None => futures_util::future::Either::Right(futures_util::stream::pending()),
        }
    }
}
