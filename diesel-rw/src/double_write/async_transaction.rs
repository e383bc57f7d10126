//! [`AsyncDoubleWriteTransactionManager`]: the async twin of
//! [`DoubleWriteTransactionManager`](super::DoubleWriteTransactionManager).

use diesel::connection::TransactionManagerStatus;
use diesel::result::QueryResult;
use diesel_async::{AsyncConnection, TransactionManager};

use std::future::Future;
use std::time::Duration;

use crate::backend::CommitStatusQueries;

use super::async_connection::{AsyncDoubleWritable, AsyncDoubleWriteConnection, BoxFuture, SideOp};
use super::core::DwCore;
use super::pattern::Side;
use super::transaction::{begin, commit, copy_status, rollback, BeginHook, TxOp, TxSides};
use super::type_oids::TypeOids;

/// The transaction manager of [`AsyncDoubleWriteConnection`]: the outermost `BEGIN` reads the
/// pattern and keeps it for the whole transaction; it begins on the first side, then on the
/// second. Savepoints are mirrored; `COMMIT` commits the first side, then the second; `ROLLBACK`
/// rolls back both. The status diesel-async sees is the first side's. The failure semantics are
/// those of the sync [`DoubleWriteConnection`](super::DoubleWriteConnection).
#[derive(Debug, Default, Clone, Copy)]
pub struct AsyncDoubleWriteTransactionManager;

/// The inner connection's transaction manager.
type Inner<C> = <C as AsyncConnection>::TransactionManager;

impl<C: AsyncDoubleWritable> TransactionManager<AsyncDoubleWriteConnection<C>>
    for AsyncDoubleWriteTransactionManager
{
    type TransactionStateData = TransactionManagerStatus;

    async fn begin_transaction(conn: &mut AsyncDoubleWriteConnection<C>) -> QueryResult<()> {
        begin(conn, false).await
    }

    async fn rollback_transaction(conn: &mut AsyncDoubleWriteConnection<C>) -> QueryResult<()> {
        rollback(conn).await
    }

    async fn commit_transaction(conn: &mut AsyncDoubleWriteConnection<C>) -> QueryResult<()> {
        commit(conn).await
    }

    fn transaction_manager_status_mut(
        conn: &mut AsyncDoubleWriteConnection<C>,
    ) -> &mut TransactionManagerStatus {
        &mut conn.core.status
    }
}

/// A transaction step on one side's connection.
struct Step(TxOp);

impl<C: AsyncDoubleWritable> SideOp<C> for Step {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut C, _: &'a TypeOids) -> BoxFuture<'a, QueryResult<()>> {
        match &self.0 {
            TxOp::Begin(true) => Box::pin(conn.begin_test_transaction()),
            TxOp::Begin(false) => Box::pin(Inner::<C>::begin_transaction(conn)),
            TxOp::BeginWith(BeginHook::Async(hook)) => hook(conn),
            TxOp::BeginWith(BeginHook::Sync(_)) => {
                Box::pin(std::future::ready(Err(super::transaction::wrong_hook())))
            }
            TxOp::Commit => Box::pin(Inner::<C>::commit_transaction(conn)),
            TxOp::Rollback => Box::pin(Inner::<C>::rollback_transaction(conn)),
        }
    }
}

/// A query of one nullable text value on one side's connection (a lost `COMMIT`'s status).
struct TextQuery(String);

impl<C: AsyncDoubleWritable> SideOp<C> for TextQuery {
    type Output = Option<String>;
    fn run<'a>(
        &'a self,
        conn: &'a mut C,
        _: &'a TypeOids,
    ) -> BoxFuture<'a, QueryResult<Option<String>>> {
        Box::pin(super::commit_status::query_async(conn, &self.0))
    }
}

impl<C: AsyncDoubleWritable> TxSides for AsyncDoubleWriteConnection<C> {
    fn core(&mut self) -> &mut DwCore {
        &mut self.core
    }

    async fn tx_step(&mut self, side: Side, op: TxOp) -> QueryResult<()> {
        self.step(side, &Step(op)).await
    }

    fn tx_connect(&mut self, side: Side) -> impl Future<Output = QueryResult<()>> + Send {
        self.ensure_retrying(side)
    }

    fn side_depth(&mut self, side: Side) -> Option<Result<u32, ()>> {
        let conn = self.sides[side.index()].conn.as_mut()?;
        Some(
            Inner::<C>::transaction_manager_status_mut(conn)
                .transaction_depth()
                .map(|d| d.map_or(0, |d| d.get()))
                .map_err(|_| ()),
        )
    }

    fn side_status(&mut self, side: Side) -> Option<TransactionManagerStatus> {
        let conn = self.sides[side.index()].conn.as_mut()?;
        Some(copy_status(Inner::<C>::transaction_manager_status_mut(
            conn,
        )))
    }

    fn is_lost(&self, side: Side) -> bool {
        self.sides[side.index()].lost
    }

    fn mark_lost(&mut self, side: Side) {
        self.sides[side.index()].lost = true;
    }

    fn commit_status(&self) -> Option<CommitStatusQueries> {
        super::commit_status::queries_for::<C>()
    }

    async fn tx_query(&mut self, side: Side, sql: &'static str) -> QueryResult<Option<String>> {
        self.step(side, &TextQuery(sql.to_owned())).await
    }

    async fn fresh_query(&mut self, side: Side, sql: String) -> Result<Option<String>, String> {
        self.run_on(side, &TextQuery(sql))
            .await
            .map_err(|e| e.to_string())
    }

    async fn pause(&mut self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }
}
