//! [`AsyncDoubleWriteTransactionManager`]: the async twin of
//! [`DoubleWriteTransactionManager`](super::DoubleWriteTransactionManager).

use diesel::connection::TransactionManagerStatus;
use diesel::result::QueryResult;
use diesel_async::{AsyncConnection, TransactionManager};

use super::async_connection::{AsyncDoubleWritable, AsyncDoubleWriteConnection, BoxFuture, SideOp};
use super::pattern::Side;
use super::transaction::{
    begin_failed, copy_status, first_commit_failed, open_depth, SecondState, TxState,
};

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
        conn.begin(false).await
    }

    async fn rollback_transaction(conn: &mut AsyncDoubleWriteConnection<C>) -> QueryResult<()> {
        conn.rollback().await
    }

    async fn commit_transaction(conn: &mut AsyncDoubleWriteConnection<C>) -> QueryResult<()> {
        conn.commit().await
    }

    fn transaction_manager_status_mut(
        conn: &mut AsyncDoubleWriteConnection<C>,
    ) -> &mut TransactionManagerStatus {
        &mut conn.core.status
    }
}

/// `BEGIN` (or a savepoint); `true` for a test transaction.
struct Begin(bool);

impl<C: AsyncDoubleWritable> SideOp<C> for Begin {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut C) -> BoxFuture<'a, QueryResult<()>> {
        if self.0 {
            Box::pin(conn.begin_test_transaction())
        } else {
            Box::pin(Inner::<C>::begin_transaction(conn))
        }
    }
}

/// `COMMIT` (or a savepoint release).
struct Commit;

impl<C: AsyncDoubleWritable> SideOp<C> for Commit {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut C) -> BoxFuture<'a, QueryResult<()>> {
        Box::pin(Inner::<C>::commit_transaction(conn))
    }
}

/// `ROLLBACK` (or a rollback to a savepoint).
struct Rollback;

impl<C: AsyncDoubleWritable> SideOp<C> for Rollback {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut C) -> BoxFuture<'a, QueryResult<()>> {
        Box::pin(Inner::<C>::rollback_transaction(conn))
    }
}

impl<C: AsyncDoubleWritable> AsyncDoubleWriteConnection<C> {
    /// Makes this connection's status the first side's, and forgets the transaction once the
    /// first side has none.
    fn sync_status(&mut self, first: Side) {
        if self.sides[first.index()].lost {
            // The connection is gone, and its transaction with it on the server; it is opened
            // again before the next statement.
            self.core.status = TransactionManagerStatus::default();
            self.core.tx = None;
            return;
        }
        self.core.status = match self.sides[first.index()].conn.as_mut() {
            Some(conn) => copy_status(Inner::<C>::transaction_manager_status_mut(conn)),
            None => TransactionManagerStatus::default(),
        };
        if matches!(self.core.status.transaction_depth(), Ok(None)) {
            self.core.tx = None;
        }
    }

    /// `BEGIN` (or a savepoint) on both sides. `test` marks a test transaction.
    pub(super) async fn begin(&mut self, test: bool) -> QueryResult<()> {
        let depth = self.core.status.transaction_depth()?.map_or(0, |d| d.get());
        let tx = match self.core.tx.take() {
            Some(tx) if depth > 0 => tx,
            _ => {
                // The outermost BEGIN: the transaction keeps the pattern it begins with.
                let pattern = self.core.statement_pattern()?;
                self.ensure_retrying(pattern.first()).await?;
                TxState::new(pattern)
            }
        };
        let first = tx.pattern.first();
        let second = tx.pattern.second();
        let intact = matches!(tx.second, SecondState::Intact);
        // Inside the transaction from here: no reconnect, no retry.
        self.core.tx = Some(tx);
        let result = self.step(first, &Begin(test)).await;
        self.sync_status(first);
        result?;
        let Some(second) = second.filter(|_| intact) else {
            return Ok(());
        };
        let begun = if depth == 0 {
            // The second side may (re)connect before its BEGIN.
            let tx = self.core.tx.take();
            let connected = self.ensure_retrying(second).await;
            self.core.tx = tx;
            match connected {
                Ok(()) => self.step(second, &Begin(test)).await,
                Err(e) => Err(e),
            }
        } else {
            self.step(second, &Begin(test)).await
        };
        let Err(error) = begun else {
            return Ok(());
        };
        if let Some(tx) = &mut self.core.tx {
            tx.break_second(depth, format!("its BEGIN failed: {error}"));
        }
        // The outermost BEGIN (in either mode), or a savepoint in strict mode: nothing was
        // written in it yet, so undo the first side's BEGIN and return the error; the caller
        // can run the whole transaction again. In lenient mode a savepoint the second side
        // refuses inside a running transaction leaves that side broken for the rest of it
        // (its writes journaled, its transaction rolled back at commit).
        if self.core.ctx.is_strict() || depth == 0 {
            let _ = self.step(first, &Rollback).await;
            if depth == 0 {
                self.rollback_to(second, 0).await;
            }
            self.sync_status(first);
            return Err(begin_failed(second, depth, error));
        }
        tracing::warn!(target: "diesel_rw::double_write", %second, %error, "the second side could not open a savepoint; the rest of the transaction runs on the first side alone");
        Ok(())
    }

    /// `COMMIT` (or a savepoint release): the first side, then the second.
    pub(super) async fn commit(&mut self) -> QueryResult<()> {
        let depth = open_depth(&self.core.status, &self.core.tx)?;
        let (first, second) = self.open_sides();
        let result = self.step(first, &Commit).await;
        if depth > 1 {
            self.sync_status(first);
            result?;
            let release = self.core.tx.as_mut().is_some_and(|tx| tx.released(depth));
            if let (true, Some(second)) = (release, second) {
                let released = self.step(second, &Commit).await;
                if let (Err(error), Some(tx)) = (released, &mut self.core.tx) {
                    tx.break_second(depth - 1, format!("its RELEASE SAVEPOINT failed: {error}"));
                }
            }
            return Ok(());
        }
        let tx = self
            .core
            .tx
            .take()
            .expect("an open transaction has its state");
        self.sync_status(first);
        if let Err(error) = result {
            // Nothing committed on the first side: roll the second back too.
            if let Some(second) = second {
                self.rollback_to(second, 0).await;
            }
            if matches!(self.core.status.transaction_depth(), Ok(Some(_))) {
                self.core.tx = Some(tx);
            }
            return Err(first_commit_failed(&self.core.ctx, first, second, error));
        }
        let Some(second) = second else {
            return Ok(());
        };
        let reason = match tx.second_failure() {
            Some(reason) => reason,
            None => match self.step(second, &Commit).await {
                Ok(()) => return Ok(()),
                Err(error) => format!("its COMMIT failed: {error}"),
            },
        };
        self.rollback_to(second, 0).await;
        tx.partial_commit(&self.core.ctx, second, reason)
    }

    /// `ROLLBACK` (or a rollback to a savepoint) on both sides.
    pub(super) async fn rollback(&mut self) -> QueryResult<()> {
        let depth = open_depth(&self.core.status, &self.core.tx)?;
        let (first, second) = self.open_sides();
        let result = self.step(first, &Rollback).await;
        let recover = self
            .core
            .tx
            .as_mut()
            .is_some_and(|tx| tx.rolled_back(depth));
        if let Some(second) = second {
            let ok = self.rollback_to(second, depth - 1).await;
            if let Some(tx) = &mut self.core.tx {
                tx.second_rolled_back(depth, ok, recover);
            }
        }
        self.sync_status(first);
        result
    }

    /// Rolls `side` back until its depth is at most `depth`; `false` if a rollback failed (the
    /// connection is then treated as lost and opened again before its next use).
    async fn rollback_to(&mut self, side: Side, depth: u32) -> bool {
        loop {
            let Some(conn) = self.sides[side.index()].conn.as_mut() else {
                return true;
            };
            match Inner::<C>::transaction_manager_status_mut(conn).transaction_depth() {
                Ok(Some(d)) if d.get() > depth => {}
                Ok(_) => return true,
                Err(_) => {
                    self.sides[side.index()].lost = true;
                    return false;
                }
            }
            let rolled_back = self.step(side, &Rollback).await;
            if rolled_back.is_err() {
                self.sides[side.index()].lost = true;
                return false;
            }
        }
    }

    /// The sides of the open transaction.
    fn open_sides(&self) -> (Side, Option<Side>) {
        self.core
            .tx
            .as_ref()
            .expect("checked by open_depth")
            .sides()
    }
}
