//! [`DoubleWriteTransactionManager`]: transactions on both sides, committed first side first.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use diesel::connection::{TransactionDepthChange, TransactionManager, TransactionManagerStatus};
use diesel::r2d2::R2D2Connection;
use diesel::result::QueryResult;

use super::backend::DoubleWriteBackend;
use super::connection::DoubleWriteConnection;
use super::context::DoubleWriteContext;
use super::core::{entry, record, DwCore};
use super::journal::EntryKind;
use super::pattern::{Pattern, Side};
use crate::backend::CommitStatusQueries;
use crate::commit_outcome::{Next, Outcome, Resolution, TxRef};
use crate::error::Error;

/// The transaction manager of [`DoubleWriteConnection`].
///
/// The outermost `BEGIN` reads the pattern and keeps it for the whole transaction; it begins on
/// the first side, then on the second. Savepoints are created, released and rolled back on both.
/// `COMMIT` commits the first side, then the second; `ROLLBACK` rolls back both. The status diesel
/// sees is the first side's. See [`DoubleWriteConnection`] for what happens when the second side
/// fails.
#[derive(Debug, Default, Clone, Copy)]
pub struct DoubleWriteTransactionManager;

/// The open transaction of a [`DoubleWriteConnection`].
#[derive(Debug)]
pub(crate) struct TxState {
    /// The pattern the transaction began with.
    pub(crate) pattern: Pattern,
    pub(crate) second: SecondState,
    /// The writes the first side applied, with the depth they were made at: journaled if the
    /// second side does not commit.
    writes: Vec<TxWrite>,
    /// Whether the first side applied a write (under any pattern): a lost `COMMIT` then matters.
    wrote: bool,
}

#[derive(Debug)]
struct TxWrite {
    depth: u32,
    sql: String,
    /// Its binds and returned rows, for the journal's keys.
    revealed: super::revealed::Revealed,
}

/// The second side's part of a transaction.
#[derive(Debug)]
pub(crate) enum SecondState {
    /// The pattern has no second side.
    Single,
    /// Every statement so far ran on it too.
    Intact,
    /// Something failed on it: nothing more is sent there, and its transaction is rolled back
    /// when the outermost one ends, unless the savepoint where it failed is rolled back first.
    Broken {
        /// The second side's transaction depth when it failed.
        at_depth: u32,
        /// What failed.
        error: String,
    },
}

impl TxState {
    /// The state of a transaction beginning under `pattern`.
    pub(crate) fn new(pattern: Pattern) -> Self {
        TxState {
            pattern,
            second: match pattern.second() {
                Some(_) => SecondState::Intact,
                None => SecondState::Single,
            },
            writes: Vec::new(),
            wrote: false,
        }
    }

    /// The state of a transaction on the side `pattern` reads from alone (a read-only
    /// transaction: nothing to mirror).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn read_side(pattern: Pattern) -> Self {
        TxState {
            second: SecondState::Single,
            ..TxState::new(pattern)
        }
    }

    /// The first side applied a write.
    pub(crate) fn mark_wrote(&mut self) {
        self.wrote = true;
    }

    pub(crate) fn record_write(
        &mut self,
        depth: u32,
        sql: String,
        revealed: super::revealed::Revealed,
    ) {
        self.writes.push(TxWrite {
            depth,
            sql,
            revealed,
        });
    }

    /// Marks the second side failed at `depth` (the earliest failure is kept).
    pub(crate) fn break_second(&mut self, depth: u32, error: String) {
        match &mut self.second {
            SecondState::Intact => {
                self.second = SecondState::Broken {
                    at_depth: depth,
                    error,
                }
            }
            SecondState::Broken { at_depth, .. } => *at_depth = (*at_depth).min(depth),
            SecondState::Single => {}
        }
    }

    /// The first side of the transaction, and its second side if it has one.
    pub(crate) fn sides(&self) -> (Side, Option<Side>) {
        let second = match self.second {
            SecondState::Single => None,
            _ => self.pattern.second(),
        };
        (self.pattern.first(), second)
    }

    /// The savepoint at `depth` was released on the first side: its writes now belong to the
    /// enclosing level. Returns whether to release it on the second side too (it is intact);
    /// otherwise a failure of the second side moves to the enclosing level.
    pub(crate) fn released(&mut self, depth: u32) -> bool {
        for write in self.writes.iter_mut().filter(|w| w.depth >= depth) {
            write.depth = depth - 1;
        }
        match &mut self.second {
            SecondState::Intact => true,
            SecondState::Broken { at_depth, .. } => {
                *at_depth = (*at_depth).min(depth - 1);
                false
            }
            SecondState::Single => false,
        }
    }

    /// The level at `depth` was rolled back on the first side: its writes are gone. Returns
    /// whether the second side's failure (if any) was inside that level, so that rolling the
    /// second side back too makes it whole again.
    pub(crate) fn rolled_back(&mut self, depth: u32) -> bool {
        self.writes.retain(|w| w.depth < depth);
        matches!(self.second, SecondState::Broken { at_depth, .. } if at_depth >= depth)
    }

    /// The second side was rolled back from `depth` (`ok`: without error).
    pub(crate) fn second_rolled_back(&mut self, depth: u32, ok: bool, recover: bool) {
        if !ok {
            self.break_second(depth - 1, "its ROLLBACK failed".into());
        } else if recover && depth > 1 {
            // The failure was inside the savepoint just rolled back on both sides.
            self.second = SecondState::Intact;
        }
    }

    /// Why the second side's transaction cannot commit, if it cannot.
    pub(crate) fn second_failure(&self) -> Option<String> {
        match &self.second {
            SecondState::Broken { error, .. } => {
                Some(format!("its transaction was rolled back because {error}"))
            }
            _ => None,
        }
    }

    /// Journals each write of the transaction as lacking on `second`, with `error`.
    pub(crate) fn journal_all(&self, ctx: &DoubleWriteContext, second: Side, error: String) {
        for write in &self.writes {
            let entry = entry(
                self.pattern,
                true,
                EntryKind::PartialCommit,
                second,
                (write.sql.clone(), write.revealed.clone()),
                error.clone(),
            );
            record(ctx, entry);
        }
    }

    /// The transaction committed on the first side and not on `second` (`reason`): journals
    /// each of its writes; in strict mode returns [`Error::PartialCommit`].
    pub(crate) fn partial_commit(
        &self,
        ctx: &DoubleWriteContext,
        second: Side,
        reason: String,
    ) -> QueryResult<()> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let first = self.pattern.first();
        self.journal_all(
            ctx,
            second,
            format!("the transaction committed on the {first}; on the {second} {reason}"),
        );
        if ctx.is_strict() {
            return Err(Error::PartialCommit {
                committed: first,
                failed: second,
                writes: self.writes.len(),
                reason,
            }
            .into());
        }
        Ok(())
    }
}

/// What the caller of `BEGIN` (or of a savepoint, `depth > 0`) gets when the second side could
/// not begin and the first side's was undone: nothing is applied on either side.
pub(crate) fn begin_failed(
    second: Side,
    depth: u32,
    error: diesel::result::Error,
) -> diesel::result::Error {
    Error::NothingApplied {
        what: if depth == 0 { "BEGIN" } else { "SAVEPOINT" },
        failed: second,
        source: Box::new(Error::from_diesel(error)),
    }
    .into()
}

/// Whether a failed `COMMIT` may have committed: its connection was lost after it was sent, or
/// the side (a routing connection) reports its outcome unknown.
pub(crate) fn outcome_unknown(error: &diesel::result::Error) -> bool {
    super::connection::connection_lost(error)
        || matches!(
            error,
            diesel::result::Error::QueryBuilderError(inner)
                if matches!(inner.downcast_ref::<Error>(), Some(Error::CommitOutcomeUnknown { .. }))
        )
}

/// What the caller of `COMMIT` gets when the first side's commit failed (the second side's
/// transaction, if any, was rolled back): nothing applied, or, when the reply was lost with the
/// connection, an unknown outcome on the first side (`why`: why it could not be resolved).
pub(crate) fn first_commit_failed(
    ctx: &DoubleWriteContext,
    first: Side,
    second: Option<Side>,
    error: diesel::result::Error,
    why: Option<String>,
) -> diesel::result::Error {
    if outcome_unknown(&error) {
        let why = why.map(|w| format!("; {w}")).unwrap_or_default();
        return Error::CommitOutcomeUnknown {
            node: ctx.node(first).unwrap_or_default().to_owned(),
            detail: second
                .map(|s| format!(" (the {first}{why}); its transaction on the {s} was rolled back"))
                .unwrap_or_else(|| format!(" (the {first}{why})")),
            source: Box::new(Error::from_diesel(error)),
        }
        .into();
    }
    match second {
        Some(_) => Error::NothingApplied {
            what: "COMMIT",
            failed: first,
            source: Box::new(Error::from_diesel(error)),
        }
        .into(),
        None => error,
    }
}

/// What the caller of `COMMIT` gets when the first side is known not to have committed although
/// its connection broke (the `COMMIT` was never sent, or the server reports the transaction
/// rolled back); the second side's transaction, if any, was rolled back.
fn not_committed(
    ctx: &DoubleWriteContext,
    first: Side,
    second: Option<Side>,
    error: diesel::result::Error,
) -> diesel::result::Error {
    let not_committed = Error::NotCommitted {
        node: ctx.node(first).unwrap_or_default().to_owned(),
        source: Box::new(Error::from_diesel(error)),
    };
    match second {
        Some(_) => Error::NothingApplied {
            what: "COMMIT",
            failed: first,
            source: Box::new(not_committed),
        }
        .into(),
        None => not_committed.into(),
    }
}

/// The depth of the open transaction; an error if none is open.
pub(crate) fn open_depth(
    status: &TransactionManagerStatus,
    tx: &Option<TxState>,
) -> QueryResult<u32> {
    match status.transaction_depth()? {
        Some(depth) if tx.is_some() => Ok(depth.get()),
        _ => Err(diesel::result::Error::NotInTransaction),
    }
}

impl<C> TransactionManager<DoubleWriteConnection<C>> for DoubleWriteTransactionManager
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    type TransactionStateData = TransactionManagerStatus;

    fn begin_transaction(conn: &mut DoubleWriteConnection<C>) -> QueryResult<()> {
        ready(begin(conn, false))
    }

    fn rollback_transaction(conn: &mut DoubleWriteConnection<C>) -> QueryResult<()> {
        ready(rollback(conn))
    }

    fn commit_transaction(conn: &mut DoubleWriteConnection<C>) -> QueryResult<()> {
        ready(commit(conn))
    }

    fn transaction_manager_status_mut(
        conn: &mut DoubleWriteConnection<C>,
    ) -> &mut TransactionManagerStatus {
        &mut conn.core.status
    }
}

/// A copy of a transaction manager status (its types cannot be built field by field).
pub(super) fn copy_status(status: &TransactionManagerStatus) -> TransactionManagerStatus {
    let TransactionManagerStatus::Valid(valid) = status else {
        return TransactionManagerStatus::InError;
    };
    let mut copy = TransactionManagerStatus::default();
    if let Some(open) = &valid.in_transaction {
        if let TransactionManagerStatus::Valid(inner) = &mut copy {
            for _ in 0..open.transaction_depth.get() {
                let _ = inner.change_transaction_depth(TransactionDepthChange::IncreaseDepth);
            }
        }
        if open.test_transaction {
            copy.set_test_transaction_flag();
        }
        copy.set_requires_rollback_maybe_up_to_top_level(
            open.requires_rollback_maybe_up_to_top_level,
        );
    }
    copy
}

/// One transaction step on one side's own connection.
#[derive(Clone, Debug)]
pub(crate) enum TxOp {
    /// `BEGIN` or a savepoint; `true` for a test transaction.
    Begin(bool),
    /// The outermost `BEGIN`, of the side connection's own kind.
    BeginWith(BeginHook),
    /// `COMMIT` or a savepoint release.
    Commit,
    /// `ROLLBACK` or a rollback to a savepoint.
    Rollback,
}

/// A `BEGIN` of the side connection's own kind (PostgreSQL's `build_transaction()`), given
/// the side's connection erased (the flow is generic over the connection type, the hook is
/// made where the type is known).
#[derive(Clone)]
pub(crate) enum BeginHook {
    /// For [`DoubleWriteConnection`].
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Sync(SyncBegin),
    /// For the async double-write connection.
    #[cfg(feature = "async")]
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Async(AsyncBegin),
}

/// A sync [`BeginHook`].
pub(crate) type SyncBegin =
    std::sync::Arc<dyn Fn(&mut dyn std::any::Any) -> QueryResult<()> + Send + Sync>;

/// An async [`BeginHook`].
#[cfg(feature = "async")]
pub(crate) type AsyncBegin = std::sync::Arc<
    dyn for<'a> Fn(
            &'a mut (dyn std::any::Any + Send),
        ) -> std::pin::Pin<Box<dyn Future<Output = QueryResult<()>> + Send + 'a>>
        + Send
        + Sync,
>;

impl std::fmt::Debug for BeginHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeginHook")
    }
}

/// The error of a hook made for the other stack or connection type (a bug).
#[cfg_attr(not(any(feature = "postgres", feature = "async")), allow(dead_code))]
pub(crate) fn wrong_hook() -> diesel::result::Error {
    Error::InvalidState("diesel-rw: a BEGIN hook of the other stack (sync/async)".into()).into()
}

/// What the transaction flow needs of a double-write connection, sync or async. The sync
/// connection does the work inside each call and returns a ready future; the flow below is
/// written once and decides, for both, which side does what in which order.
pub(crate) trait TxSides {
    /// The connection's shared state.
    fn core(&mut self) -> &mut DwCore;

    /// Runs `op` on `side`'s connection as it is (no reconnect), counting the outcome.
    fn tx_step(&mut self, side: Side, op: TxOp) -> impl Future<Output = QueryResult<()>> + Send;

    /// Connects `side` if needed, retrying per the policy (called outside the transaction).
    fn tx_connect(&mut self, side: Side) -> impl Future<Output = QueryResult<()>> + Send;

    /// The transaction depth of `side`'s own manager: `Ok(0)` outside a transaction, `Err` when
    /// it is in error; `None` when the side is not connected.
    fn side_depth(&mut self, side: Side) -> Option<Result<u32, ()>>;

    /// A copy of `side`'s own transaction status (`None` when it is not connected).
    fn side_status(&mut self, side: Side) -> Option<TransactionManagerStatus>;

    /// Whether `side`'s connection is known to be lost.
    fn is_lost(&self, side: Side) -> bool;

    /// Marks `side`'s connection lost: it is opened again before its next use.
    fn mark_lost(&mut self, side: Side);

    /// The queries that tell what became of a lost `COMMIT`, if the sides' connection type is
    /// one whose lost `COMMIT` this flow resolves (see [`commit_status`](super::commit_status)).
    fn commit_status(&self) -> Option<CommitStatusQueries>;

    /// Runs `sql` (one nullable text value) on `side`'s connection as it is (in its
    /// transaction), counting the outcome.
    fn tx_query(
        &mut self,
        side: Side,
        sql: &'static str,
    ) -> impl Future<Output = QueryResult<Option<String>>> + Send;

    /// Runs `sql` (one nullable text value) on `side`, connecting it again first if its
    /// connection was lost (outside a transaction); `Err` says why it failed.
    fn fresh_query(
        &mut self,
        side: Side,
        sql: String,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send;

    /// Waits `pause` (the sync connection sleeps its thread).
    fn pause(&mut self, pause: Duration) -> impl Future<Output = ()> + Send;
}

/// Runs a future that cannot wait (the sync connection's [`TxSides`] futures are ready when
/// made) to its end.
pub(crate) fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("diesel-rw: a sync transaction step never waits"),
    }
}

/// Makes the connection's status the first side's, and forgets the transaction once the first
/// side has none.
fn sync_status<S: TxSides>(s: &mut S, first: Side) {
    let status = if s.is_lost(first) {
        // The connection is gone, and its transaction with it on the server; it is opened
        // again before the next statement.
        TransactionManagerStatus::default()
    } else {
        s.side_status(first).unwrap_or_default()
    };
    let core = s.core();
    core.status = status;
    if matches!(core.status.transaction_depth(), Ok(None)) || s.is_lost(first) {
        s.core().tx = None;
    }
}

/// `BEGIN` (or a savepoint) on both sides. `test` marks a test transaction.
pub(crate) async fn begin<S: TxSides>(s: &mut S, test: bool) -> QueryResult<()> {
    begin_as(s, TxOp::Begin(test), false).await
}

/// The outermost `BEGIN` with `hook` (a `BEGIN` of the sides' own kind, such as PostgreSQL's
/// `build_transaction()`): on both sides, or, with `read_side_only` (a read-only transaction,
/// which writes nothing to mirror), on the side the pattern reads from alone.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) async fn begin_with<S: TxSides>(
    s: &mut S,
    hook: BeginHook,
    read_side_only: bool,
) -> QueryResult<()> {
    if s.core().tx.is_some() || s.core().depth() > 0 {
        return Err(diesel::result::Error::AlreadyInTransaction);
    }
    begin_as(s, TxOp::BeginWith(hook), read_side_only).await
}

/// `BEGIN` (or a savepoint) by `op` on both sides, or (`read_side_only`, outermost only) on
/// the read side alone.
async fn begin_as<S: TxSides>(s: &mut S, op: TxOp, read_side_only: bool) -> QueryResult<()> {
    let depth = s.core().status.transaction_depth()?.map_or(0, |d| d.get());
    let tx = match s.core().tx.take() {
        Some(tx) if depth > 0 => tx,
        _ => {
            // The outermost BEGIN: the transaction keeps the pattern it begins with.
            let pattern = s.core().statement_pattern()?;
            s.tx_connect(pattern.first()).await?;
            if read_side_only {
                TxState::read_side(pattern)
            } else {
                TxState::new(pattern)
            }
        }
    };
    let first = tx.pattern.first();
    let second = tx.pattern.second();
    let intact = matches!(tx.second, SecondState::Intact);
    // Inside the transaction from here: no reconnect, no retry.
    s.core().tx = Some(tx);
    let result = s.tx_step(first, op.clone()).await;
    sync_status(s, first);
    result?;
    let Some(second) = second.filter(|_| intact) else {
        return Ok(());
    };
    let begun = if depth == 0 {
        // The second side may (re)connect before its BEGIN, which a transaction otherwise
        // never does.
        let tx = s.core().tx.take();
        let connected = s.tx_connect(second).await;
        s.core().tx = tx;
        match connected {
            Ok(()) => s.tx_step(second, op).await,
            Err(e) => Err(e),
        }
    } else {
        s.tx_step(second, op).await
    };
    let Err(error) = begun else {
        return Ok(());
    };
    if let Some(tx) = &mut s.core().tx {
        tx.break_second(depth, format!("its BEGIN failed: {error}"));
    }
    // The outermost BEGIN (in either mode), or a savepoint in strict mode: nothing was written
    // in it yet, so undo the first side's BEGIN and return the error; the caller can run the
    // whole transaction again. In lenient mode a savepoint the second side refuses inside a
    // running transaction leaves that side broken for the rest of it (its writes journaled,
    // its transaction rolled back at commit).
    if s.core().ctx.is_strict() || depth == 0 {
        let _ = s.tx_step(first, TxOp::Rollback).await;
        if depth == 0 {
            rollback_to(s, second, 0).await;
        }
        sync_status(s, first);
        return Err(begin_failed(second, depth, error));
    }
    tracing::warn!(target: "diesel_rw::double_write", %second, %error, "the second side could not open a savepoint; the rest of the transaction runs on the first side alone");
    Ok(())
}

/// `COMMIT` (or a savepoint release): the first side, then the second.
///
/// Before the outermost `COMMIT` of a transaction that wrote, on sides whose lost `COMMIT` can
/// be resolved (see [`commit_status`](super::commit_status)), the first side's transaction id is
/// noted; if the reply to its `COMMIT` is then lost, a new connection to it tells the outcome:
/// committed goes on to the second side, rolled back rolls the second side back.
pub(crate) async fn commit<S: TxSides>(s: &mut S) -> QueryResult<()> {
    let core = s.core();
    let depth = open_depth(&core.status, &core.tx)?;
    let (first, second) = open_sides(core);
    let wrote = core.tx.as_ref().is_some_and(|tx| tx.wrote);
    let queries = s.commit_status().filter(|_| depth == 1 && wrote);
    let captured = match queries {
        Some(q) => match s.tx_query(first, q.capture).await {
            Ok(answer) => answer.as_deref().and_then(TxRef::parse),
            Err(error) => return capture_failed(s, first, second, error).await,
        },
        None => None,
    };
    let result = s.tx_step(first, TxOp::Commit).await;
    if depth > 1 {
        sync_status(s, first);
        result?;
        let release = s.core().tx.as_mut().is_some_and(|tx| tx.released(depth));
        if let (true, Some(second)) = (release, second) {
            if let Err(error) = s.tx_step(second, TxOp::Commit).await {
                if let Some(tx) = &mut s.core().tx {
                    tx.break_second(depth - 1, format!("its RELEASE SAVEPOINT failed: {error}"));
                }
            }
        }
        return Ok(());
    }
    let tx = s
        .core()
        .tx
        .take()
        .expect("an open transaction has its state");
    sync_status(s, first);
    if let Err(error) = result {
        let outcome = match (queries, captured) {
            (Some(queries), Some(txref)) if super::connection::connection_lost(&error) => {
                Some(resolve(s, first, queries, txref).await)
            }
            _ => None,
        };
        if let Some(Outcome::Aborted) = outcome {
            if let Some(second) = second {
                rollback_to(s, second, 0).await;
            }
            return Err(not_committed(&s.core().ctx, first, second, error));
        }
        // Committed on the first side: on to the second, as if the reply had come. Otherwise:
        let committed = matches!(outcome, Some(Outcome::Committed));
        if !committed {
            let why = match outcome {
                Some(Outcome::Unknown(why)) => Some(why),
                _ => None,
            };
            // Nothing committed on the first side (diesel rolled it back, or its status is in
            // error), or it may have: roll the second back either way.
            if let Some(second) = second {
                rollback_to(s, second, 0).await;
            }
            let core = s.core();
            if let (Some(second), true) = (second, outcome_unknown(&error)) {
                // The first side may have committed: the second side, rolled back, may lack it.
                tx.journal_all(
                    &core.ctx,
                    second,
                    format!("outcome unknown: the reply to COMMIT on the {first} was lost (it may have committed there); the {second} was rolled back: {error}"),
                );
            }
            if matches!(core.status.transaction_depth(), Ok(Some(_))) {
                core.tx = Some(tx);
            }
            return Err(first_commit_failed(&core.ctx, first, second, error, why));
        }
        tracing::info!(target: "diesel_rw::double_write", %first, %error, "the reply to COMMIT was lost, and the server reports the transaction committed");
    }
    let Some(second) = second else {
        return Ok(());
    };
    let reason = match tx.second_failure() {
        Some(reason) => reason,
        None => match s.tx_step(second, TxOp::Commit).await {
            Ok(()) => return Ok(()),
            Err(error) => format!("its COMMIT failed: {error}"),
        },
    };
    rollback_to(s, second, 0).await;
    tx.partial_commit(&s.core().ctx, second, reason)
}

/// Noting the first side's transaction id before its `COMMIT` failed, so the `COMMIT` was never
/// sent: both sides are rolled back (the first side's connection, if it broke, took its
/// transaction with it) and nothing is applied.
async fn capture_failed<S: TxSides>(
    s: &mut S,
    first: Side,
    second: Option<Side>,
    error: diesel::result::Error,
) -> QueryResult<()> {
    let lost = super::connection::connection_lost(&error);
    if !lost {
        // The server refused it (a statement timeout, say): on PostgreSQL that aborts the
        // transaction, whose COMMIT would then roll back and report success.
        let _ = s.tx_step(first, TxOp::Rollback).await;
    }
    if let Some(second) = second {
        rollback_to(s, second, 0).await;
    }
    sync_status(s, first);
    let core = s.core();
    core.tx = None;
    if lost {
        return Err(not_committed(&core.ctx, first, second, error));
    }
    Err(first_commit_failed(&core.ctx, first, second, error, None))
}

/// Finds what became of the first side's transaction `txref` whose `COMMIT` reply was lost,
/// on new connections to that side.
async fn resolve<S: TxSides>(
    s: &mut S,
    side: Side,
    queries: CommitStatusQueries,
    txref: TxRef,
) -> Outcome {
    let mut resolution = Resolution::new(queries, txref, super::commit_status::RESOLVE_BUDGET);
    let mut next = resolution.start();
    loop {
        next = match next {
            Next::Done(outcome) => {
                tracing::warn!(target: "diesel_rw::double_write", %side, ?outcome, check = %resolution.how_to_check(), "resolved a lost COMMIT");
                return outcome;
            }
            Next::Sleep(pause) => {
                s.pause(pause).await;
                resolution.resume()
            }
            Next::Query(sql) => {
                let answer = s.fresh_query(side, sql).await;
                resolution.answer(answer)
            }
        };
    }
}

/// `ROLLBACK` (or a rollback to a savepoint) on both sides.
pub(crate) async fn rollback<S: TxSides>(s: &mut S) -> QueryResult<()> {
    let core = s.core();
    let depth = open_depth(&core.status, &core.tx)?;
    let (first, second) = open_sides(core);
    let result = s.tx_step(first, TxOp::Rollback).await;
    let recover = s.core().tx.as_mut().is_some_and(|tx| tx.rolled_back(depth));
    if let Some(second) = second {
        let ok = rollback_to(s, second, depth - 1).await;
        if let Some(tx) = &mut s.core().tx {
            tx.second_rolled_back(depth, ok, recover);
        }
    }
    sync_status(s, first);
    result
}

/// Rolls `side` back until its depth is at most `depth`; `false` if a rollback failed (the
/// connection is then treated as lost and opened again before its next use).
async fn rollback_to<S: TxSides>(s: &mut S, side: Side, depth: u32) -> bool {
    loop {
        match s.side_depth(side) {
            None => return true,
            Some(Ok(d)) if d > depth => {}
            Some(Ok(_)) => return true,
            Some(Err(())) => {
                // In error: its transaction cannot be trusted.
                s.mark_lost(side);
                return false;
            }
        }
        if s.tx_step(side, TxOp::Rollback).await.is_err() {
            s.mark_lost(side);
            return false;
        }
    }
}

/// The sides of the open transaction.
fn open_sides(core: &DwCore) -> (Side, Option<Side>) {
    core.tx.as_ref().expect("checked by open_depth").sides()
}

impl<C> TxSides for DoubleWriteConnection<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    fn core(&mut self) -> &mut DwCore {
        &mut self.core
    }

    fn tx_step(&mut self, side: Side, op: TxOp) -> impl Future<Output = QueryResult<()>> + Send {
        std::future::ready(self.step(side, |c: &mut C| match op {
            TxOp::Begin(true) => c.begin_test_transaction(),
            TxOp::Begin(false) => C::TransactionManager::begin_transaction(c),
            TxOp::BeginWith(BeginHook::Sync(hook)) => hook(c),
            #[cfg(feature = "async")]
            TxOp::BeginWith(BeginHook::Async(_)) => Err(wrong_hook()),
            TxOp::Commit => C::TransactionManager::commit_transaction(c),
            TxOp::Rollback => C::TransactionManager::rollback_transaction(c),
        }))
    }

    fn tx_connect(&mut self, side: Side) -> impl Future<Output = QueryResult<()>> + Send {
        std::future::ready(self.run_on(side, |_| Ok(())))
    }

    fn side_depth(&mut self, side: Side) -> Option<Result<u32, ()>> {
        let conn = self.sides[side.index()].conn.as_mut()?;
        Some(
            C::TransactionManager::transaction_manager_status_mut(conn)
                .transaction_depth()
                .map(|d| d.map_or(0, |d| d.get()))
                .map_err(|_| ()),
        )
    }

    fn side_status(&mut self, side: Side) -> Option<TransactionManagerStatus> {
        let conn = self.sides[side.index()].conn.as_mut()?;
        Some(copy_status(
            C::TransactionManager::transaction_manager_status_mut(conn),
        ))
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

    fn tx_query(
        &mut self,
        side: Side,
        sql: &'static str,
    ) -> impl Future<Output = QueryResult<Option<String>>> + Send {
        std::future::ready(self.step(side, |c| super::commit_status::query_sync(c, sql)))
    }

    fn fresh_query(
        &mut self,
        side: Side,
        sql: String,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send {
        let answer = self.run_on(side, |c| super::commit_status::query_sync(c, &sql));
        std::future::ready(answer.map_err(|e| e.to_string()))
    }

    fn pause(&mut self, pause: Duration) -> impl Future<Output = ()> + Send {
        std::thread::sleep(pause);
        std::future::ready(())
    }
}
