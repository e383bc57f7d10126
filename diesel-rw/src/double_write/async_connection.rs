//! [`AsyncDoubleWriteConnection`]: the double-write connection for diesel-async.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use diesel::connection::{CacheSize, Instrumentation, TransactionManagerStatus};
use diesel::query_builder::{AsQuery, QueryFragment, QueryId};
use diesel::result::{ConnectionError, ConnectionResult, QueryResult};
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{
    AsyncConnection, AsyncConnectionCore, SimpleAsyncConnection, TransactionManager,
};
use futures_util::{Stream, StreamExt};

use super::async_transaction::AsyncDoubleWriteTransactionManager;
use super::backend::{row_image, RowImage};
use super::connection::{
    connection_lost, differ_counts, entry, first_failed, observe, record, record_tx_write, render,
    same, second_failed, SideConn,
};
use super::context::DoubleWriteContext;
use super::cursor::RowCheck;
use super::health::{HealthReport, SideHealth};
use super::journal::EntryKind;
use super::pattern::{Pattern, Side};
use super::shared_query::AsyncDoubleWriteBackend;
use super::switch::PatternSwitch;
use super::transaction::{SecondState, TxState};
use crate::classify::{classify_query, classify_sql, StatementKind};
use crate::error::Error;

/// A diesel-async connection type that [`AsyncDoubleWriteConnection`] can wrap:
/// `AsyncPgConnection` (`postgres`), `AsyncMysqlConnection` (`mysql`) and
/// `SyncConnectionWrapper<SqliteConnection>` (`sqlite`). Implemented for all of them; nothing to
/// implement.
pub trait AsyncDoubleWritable:
    AsyncConnection<Backend: AsyncDoubleWriteBackend> + Send + 'static
{
}

impl<C> AsyncDoubleWritable for C where
    C: AsyncConnection<Backend: AsyncDoubleWriteBackend> + Send + 'static
{
}

/// A boxed, `Send` future.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A statement of `C`'s backend, rendered once.
type Shared<C> = <<C as AsyncConnectionCore>::Backend as AsyncDoubleWriteBackend>::Shared;

/// The row type of `C`'s streams.
type RowOf<'conn, C> = <C as AsyncConnectionCore>::Row<'conn, 'static>;

/// One operation on one side's connection. A trait with boxed futures rather than async
/// closures: the futures of generic async closures cannot be proven `Send` as diesel-async needs.
pub(super) trait SideOp<C: AsyncDoubleWritable>: Send + Sync {
    /// What the operation gives.
    type Output: Send;

    /// Runs it once on `conn`.
    fn run<'a>(&'a self, conn: &'a mut C) -> BoxFuture<'a, QueryResult<Self::Output>>;
}

/// Nothing: makes sure the side is connected.
pub(super) struct Connect;

impl<C: AsyncDoubleWritable> SideOp<C> for Connect {
    type Output = ();
    fn run<'a>(&'a self, _: &'a mut C) -> BoxFuture<'a, QueryResult<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// `batch_execute`.
struct Batch<'q>(&'q str);

impl<C: AsyncDoubleWritable> SideOp<C> for Batch<'_> {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut C) -> BoxFuture<'a, QueryResult<()>> {
        Box::pin(conn.batch_execute(self.0))
    }
}

/// `execute_returning_count`.
struct Execute<C: AsyncDoubleWritable>(Shared<C>);

impl<C: AsyncDoubleWritable> SideOp<C> for Execute<C> {
    type Output = usize;
    fn run<'a>(&'a self, conn: &'a mut C) -> BoxFuture<'a, QueryResult<usize>> {
        Box::pin(AsyncConnectionCore::execute_returning_count(
            conn,
            self.0.clone(),
        ))
    }
}

/// `load`, every row read, their images kept for comparison.
struct Drain<C: AsyncDoubleWritable>(Shared<C>);

impl<C: AsyncDoubleWritable> SideOp<C> for Drain<C> {
    type Output = Vec<RowImage>;
    fn run<'a>(&'a self, conn: &'a mut C) -> BoxFuture<'a, QueryResult<Vec<RowImage>>> {
        Box::pin(drain_images(conn, self.0.clone()))
    }
}

/// `SELECT 1`.
struct Ping;

impl<C: AsyncDoubleWritable> SideOp<C> for Ping {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut C) -> BoxFuture<'a, QueryResult<()>> {
        Box::pin(conn.batch_execute("SELECT 1"))
    }
}

/// The [`DoubleWriteConnection`](super::DoubleWriteConnection) of diesel-async: a diesel-async
/// [`AsyncConnection`] that double-writes to a source and a destination database of the same
/// backend, following the [`Pattern`] of its [`PatternSwitch`].
///
/// It behaves as the sync connection does (reads, writes, strict and lenient mode,
/// transactions, savepoints, retry, journal, metrics), with these differences:
///
/// - each statement is rendered once, before its first `.await`, into SQL text and bind values
///   (a [`SharedQuery`](super::SharedQuery)), which run on each side and again on a retry; on
///   PostgreSQL a statement that binds a value of a user-defined type is refused (its OID is
///   looked up per server);
/// - a write through `load` runs on the second side first, then on the first side, whose
///   stream is returned once its `load` completed (the statement has run then); each row is
///   compared with the second side's as it is read, and a stream dropped before its end compares
///   the rows read;
/// - retries wait with `tokio::time::sleep`, so it needs the tokio runtime diesel-async needs;
/// - a statement's future dropped before it completes (a cancelled task) may leave a write on
///   one side only, without a journal entry: the journal records what the connection saw fail,
///   and a cancelled future sees nothing more. A transaction cancelled midway leaves the
///   connection broken (an open transaction), and a pool discards it.
///
/// For SQLite, `SyncConnectionWrapper<DoubleWriteConnection<SqliteConnection>>` works too: the
/// sync double-write connection on diesel-async's blocking-thread wrapper.
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
/// use diesel_rw::double_write::{AsyncDoubleWriteConnection, Pattern};
///
/// let mut conn = AsyncDoubleWriteConnection::<AsyncPgConnection>::establish(
///     "source=postgres://127.0.0.1:55432/app destination=postgres://127.0.0.1:55434/app pattern=src_first",
/// )
/// .await?;
/// diesel::sql_query("INSERT INTO users (id, name) VALUES (1, 'ada')")
///     .execute(&mut conn)
///     .await?;
/// assert_eq!(conn.last_pattern(), Some(Pattern::SrcFirst));
/// # Ok(()) }
/// ```
pub struct AsyncDoubleWriteConnection<C: AsyncDoubleWritable> {
    pub(super) ctx: DoubleWriteContext,
    pub(super) sides: [SideConn<C>; 2],
    pub(super) status: TransactionManagerStatus,
    pub(super) tx: Option<TxState>,
    last_pattern: Option<Pattern>,
    instrumentation: Option<Box<dyn Instrumentation>>,
    cache_size: Option<CacheSize>,
}

impl<C: AsyncDoubleWritable> fmt::Debug for AsyncDoubleWriteConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncDoubleWriteConnection")
            .field("source", &self.ctx.node(Side::Source))
            .field("destination", &self.ctx.node(Side::Destination))
            .field("pattern", &self.ctx.switch().get())
            .field("transaction_pattern", &self.tx.as_ref().map(|t| t.pattern))
            .field("strict", &self.ctx.is_strict())
            .finish_non_exhaustive()
    }
}

impl<C: AsyncDoubleWritable> AsyncDoubleWriteConnection<C> {
    /// Opens a connection sharing `context`: connects the first side of the current pattern
    /// (failing if it cannot), and tries the second; a side that is not needed yet, or could
    /// not be reached, connects at its first statement.
    pub async fn connect(context: DoubleWriteContext) -> Result<Self, Error> {
        let mut conn = AsyncDoubleWriteConnection::unconnected(context);
        conn.instrumentation = diesel::connection::get_default_instrumentation();
        let pattern = conn.ctx.switch().get();
        conn.check_pattern(pattern)?;
        conn.ensure(pattern.first()).await?;
        if let Some(second) = pattern.second() {
            if let Err(e) = conn.ensure(second).await {
                tracing::warn!(target: "diesel_rw::double_write", %second, error = %e, "second side unavailable; will connect at its next statement");
            }
        }
        Ok(conn)
    }

    /// A connection that has not connected any side yet (for health checks).
    pub(crate) fn unconnected(context: DoubleWriteContext) -> Self {
        AsyncDoubleWriteConnection {
            ctx: context,
            sides: Default::default(),
            status: TransactionManagerStatus::default(),
            tx: None,
            last_pattern: None,
            instrumentation: None,
            cache_size: None,
        }
    }

    /// What this connection shares with the others of its pool: switch, journal, metrics.
    pub fn context(&self) -> &DoubleWriteContext {
        &self.ctx
    }

    /// The switch this connection follows.
    pub fn switch(&self) -> &PatternSwitch {
        self.ctx.switch()
    }

    /// The pattern the next statement will follow: the open transaction's, or the switch's.
    pub fn pattern(&self) -> Pattern {
        self.tx
            .as_ref()
            .map_or_else(|| self.ctx.switch().get(), |tx| tx.pattern)
    }

    /// The pattern the last statement (or transaction `BEGIN`) followed, if any ran.
    pub fn last_pattern(&self) -> Option<Pattern> {
        self.last_pattern
    }

    /// The pattern of the open transaction, if one is open.
    pub fn transaction_pattern(&self) -> Option<Pattern> {
        self.tx.as_ref().map(|tx| tx.pattern)
    }

    /// Whether `side`'s connection is open (and not known to be lost).
    pub fn is_connected(&self, side: Side) -> bool {
        let s = &self.sides[side.index()];
        s.conn.is_some() && !s.lost
    }

    /// Runs `f` on `side`'s own connection (connecting it if needed), bypassing the pattern: to
    /// inspect or repair one side. Nothing is mirrored, counted or journaled.
    pub async fn with_side<T>(
        &mut self,
        side: Side,
        f: impl AsyncFnOnce(&mut C) -> T,
    ) -> Result<T, Error> {
        self.ensure(side).await?;
        Ok(f(self.side_conn(side)).await)
    }

    /// Pings both sides (connecting them if needed) and says which failed.
    pub async fn health_check(&mut self) -> HealthReport {
        let source = self
            .check_side(Side::Source)
            .await
            .expect("a source is always configured");
        let destination = self.check_side(Side::Destination).await;
        HealthReport {
            source,
            destination,
        }
    }

    async fn check_side(&mut self, side: Side) -> Option<SideHealth> {
        let node = self.ctx.node(side)?.to_owned();
        let start = Instant::now();
        let result = match self.ensure(side).await {
            Ok(()) => Ping
                .run(self.side_conn(side))
                .await
                .map_err(Error::from_diesel),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if matches!(e, Error::SideUnavailable { .. })
                || crate::error::is_connection_message(&e.to_string())
            {
                self.sides[side.index()].lost = true;
            }
        }
        Some(SideHealth {
            side,
            node,
            result: result.map(|()| start.elapsed()).map_err(|e| e.to_string()),
        })
    }

    pub(super) fn side_conn(&mut self, side: Side) -> &mut C {
        self.sides[side.index()]
            .conn
            .as_mut()
            .expect("diesel-rw: the side's connection is open (ensured)")
    }

    /// Fails if `pattern` needs a destination and none is configured.
    fn check_pattern(&self, pattern: Pattern) -> Result<(), Error> {
        if self.ctx.url(Side::Destination).is_none()
            && (pattern.first() == Side::Destination || pattern.is_double())
        {
            return Err(Error::InvalidState(format!(
                "pattern `{pattern}` needs a destination and this connection has none (it was opened from a plain URL): open it with `source=URL destination=URL`, or keep the switch at `src_only`"
            )));
        }
        Ok(())
    }

    /// The pattern of the next statement, checked.
    pub(super) fn statement_pattern(&mut self) -> Result<Pattern, Error> {
        let pattern = self.pattern();
        self.check_pattern(pattern)?;
        self.last_pattern = Some(pattern);
        Ok(pattern)
    }

    /// Makes sure `side` has a usable connection: opens it if it is not open, or (outside a
    /// transaction) was lost or left broken.
    pub(super) async fn ensure(&mut self, side: Side) -> Result<(), Error> {
        let in_transaction = self.tx.is_some();
        let slot = &mut self.sides[side.index()];
        if let Some(conn) = &mut slot.conn {
            let usable = !slot.lost
                && (in_transaction
                    || !<C::TransactionManager as TransactionManager<C>>::is_broken_transaction_manager(conn));
            if usable {
                return Ok(());
            }
            if in_transaction {
                return Err(Error::InvalidState(format!(
                    "the connection to the {side} was lost during the open transaction; roll the transaction back and run it again"
                )));
            }
        }
        *slot = SideConn::default();
        let url = self
            .ctx
            .url(side)
            .ok_or_else(|| {
                Error::InvalidState(format!("this connection has no {side} configured"))
            })?
            .clone();
        let start = Instant::now();
        let mut conn = match C::establish(url.expose()).await {
            Ok(conn) => conn,
            Err(source) => {
                self.ctx.metrics().failure(side, start.elapsed());
                return Err(Error::SideUnavailable {
                    side,
                    node: url.redacted().to_owned(),
                    source,
                });
            }
        };
        if let Some(size) = self.cache_size {
            conn.set_prepared_statement_cache_size(size);
        }
        self.sides[side.index()].conn = Some(conn);
        Ok(())
    }

    /// Runs `op` once on `side`'s connection as it is (no reconnect: for transaction steps),
    /// counting the outcome and marking the connection lost if the error says so.
    pub(super) async fn step<O: SideOp<C>>(
        &mut self,
        side: Side,
        op: &O,
    ) -> QueryResult<O::Output> {
        let start = Instant::now();
        let result = match self.sides[side.index()].conn.as_mut() {
            Some(conn) => op.run(conn).await,
            None => Err(Error::InvalidState(format!("the {side} is not connected")).into()),
        };
        observe(
            &self.ctx,
            &mut self.sides[side.index()],
            side,
            start,
            &result,
        );
        result
    }

    /// Runs `op` once on `side`, connecting it first if needed.
    pub(super) async fn attempt<O: SideOp<C>>(
        &mut self,
        side: Side,
        op: &O,
    ) -> QueryResult<O::Output> {
        match self.ensure(side).await {
            Ok(()) => self.step(side, op).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `op` on `side`, retrying what provably did not apply (never inside a transaction).
    pub(super) async fn run_on<O: SideOp<C>>(
        &mut self,
        side: Side,
        op: &O,
    ) -> QueryResult<O::Output> {
        let retry = self.ctx.retry();
        let allowed = self.tx.is_none();
        let start = Instant::now();
        let mut retries = 0;
        loop {
            if retries > 0 {
                self.ctx.metrics().retry(side);
            }
            let error = match self.attempt(side, op).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let Some((_, delay)) = retry.next_attempt(allowed, retries, start, &error) else {
                return Err(error);
            };
            retries += 1;
            tokio::time::sleep(delay).await;
        }
    }

    /// Makes sure `side` is connected, retrying a failed connect per the retry policy.
    pub(super) async fn ensure_retrying(&mut self, side: Side) -> QueryResult<()> {
        self.run_on(side, &Connect).await
    }

    /// The depth of the open transaction (0 outside one).
    pub(super) fn depth(&self) -> u32 {
        match &self.status {
            TransactionManagerStatus::Valid(valid) => {
                valid.transaction_depth().map_or(0, |d| d.get())
            }
            TransactionManagerStatus::InError => 0,
        }
    }

    /// Whether a write should also go to the second side: the pattern has one and, inside a
    /// transaction, the second side's transaction has not failed.
    fn second_of(&self, pattern: Pattern) -> Option<Side> {
        let second = pattern.second()?;
        match &self.tx {
            Some(tx) if !matches!(tx.second, SecondState::Intact) => None,
            _ => Some(second),
        }
    }

    /// Runs a write on the first side, then on the second if the first applied it.
    async fn write<O: SideOp<C>>(
        &mut self,
        pattern: Pattern,
        sql: String,
        op: &O,
        differ: fn(Side, Side, &O::Output, &O::Output) -> Option<String>,
    ) -> QueryResult<O::Output> {
        let first = pattern.first();
        let value = self.run_on(first, op).await?;
        let depth = self.depth();
        let Some(second) = self.second_of(pattern) else {
            record_tx_write(&mut self.tx, depth, &|| sql.clone());
            return Ok(value);
        };
        let other = self.run_on(second, op).await;
        record_tx_write(&mut self.tx, depth, &|| sql.clone());
        match other {
            Ok(other) => {
                if let Some(difference) = differ(first, second, &value, &other) {
                    let in_transaction = self.tx.is_some();
                    let entry = entry(
                        pattern,
                        in_transaction,
                        EntryKind::Divergence,
                        second,
                        sql,
                        difference,
                    );
                    record(&self.ctx, entry);
                }
                Ok(value)
            }
            Err(error) => {
                second_failed(&self.ctx, &mut self.tx, depth, pattern, second, sql, error)?;
                Ok(value)
            }
        }
    }

    /// Runs a statement of `kind` under `pattern`.
    async fn run<O: SideOp<C>>(
        &mut self,
        kind: StatementKind,
        pattern: Pattern,
        sql: String,
        op: &O,
        differ: fn(Side, Side, &O::Output, &O::Output) -> Option<String>,
    ) -> QueryResult<O::Output> {
        match kind {
            StatementKind::Read => self.run_on(pattern.reads_from(), op).await,
            StatementKind::Write => self.write(pattern, sql, op, differ).await,
        }
    }

    /// `load` of a rendered statement.
    async fn load_shared<'conn>(
        &'conn mut self,
        pattern: Pattern,
        double: bool,
        sql: String,
        query: Shared<C>,
    ) -> QueryResult<DoubleWriteStream<'conn, C>> {
        let first = pattern.first();
        if !double {
            self.ensure_retrying(first).await?;
            let AsyncDoubleWriteConnection { ctx, sides, .. } = self;
            let stream = load_side(ctx, sides, first, query).await?;
            return Ok(DoubleWriteStream::new(stream, None));
        }
        let depth = self.depth();
        // `None` inside a transaction whose second side failed: the first side alone.
        let second = self.second_of(pattern);
        // The second side first, drained, so that the first side's stream can be returned.
        let expected = match second {
            Some(second) => Some(self.run_on(second, &Drain::<C>(query.clone())).await),
            None => None,
        };
        if let Err(error) = self.ensure_retrying(first).await {
            return Err(first_failed(
                &self.ctx,
                &mut self.tx,
                depth,
                (pattern, second),
                &sql,
                error,
                expected,
            ));
        }
        let AsyncDoubleWriteConnection { ctx, sides, tx, .. } = self;
        let stream = match load_side(ctx, sides, first, query).await {
            Ok(stream) => stream,
            Err(error) => {
                return Err(first_failed(
                    ctx,
                    tx,
                    depth,
                    (pattern, second),
                    &sql,
                    error,
                    expected,
                ))
            }
        };
        record_tx_write(tx, depth, &|| sql.clone());
        match (second, expected) {
            (Some(second), Some(Ok(rows))) => {
                let entry = entry(
                    pattern,
                    tx.is_some(),
                    EntryKind::Divergence,
                    second,
                    sql,
                    String::new(),
                );
                let check = RowCheck::new(ctx.clone(), entry, first, rows);
                Ok(DoubleWriteStream::new(stream, Some(check)))
            }
            (Some(second), Some(Err(error))) => {
                // The first side's `load` completed: the statement is applied there.
                second_failed(ctx, tx, depth, pattern, second, sql, error)?;
                Ok(DoubleWriteStream::new(stream, None))
            }
            _ => Ok(DoubleWriteStream::new(stream, None)),
        }
    }
}

/// Loads `query` on `side` (connected already), counting the outcome.
async fn load_side<'conn, C: AsyncDoubleWritable>(
    ctx: &DoubleWriteContext,
    sides: &'conn mut [SideConn<C>; 2],
    side: Side,
    query: Shared<C>,
) -> QueryResult<<C as AsyncConnectionCore>::Stream<'conn, 'static>> {
    let start = Instant::now();
    let slot = &mut sides[side.index()];
    let conn = slot
        .conn
        .as_mut()
        .expect("diesel-rw: the side's connection is open (ensured)");
    let result = AsyncConnectionCore::load(conn, query).await;
    match &result {
        Ok(_) => ctx.metrics().success(side, start.elapsed()),
        Err(error) => {
            ctx.metrics().failure(side, start.elapsed());
            if connection_lost(error) {
                slot.lost = true;
            }
        }
    }
    result
}

/// Runs `query` on `conn` and reads every row, keeping their images for comparison.
async fn drain_images<C: AsyncDoubleWritable>(
    conn: &mut C,
    query: Shared<C>,
) -> QueryResult<Vec<RowImage>> {
    let stream = AsyncConnectionCore::load(conn, query).await?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await {
        rows.push(row_image::<C::Backend, _>(&row?));
    }
    Ok(rows)
}

/// The stream of [`AsyncDoubleWriteConnection`]'s `load`: the rows of the side that served the
/// statement (for a write, the first side), each compared, for a write that both sides ran, with
/// the row the second side returned at the same position.
pub struct DoubleWriteStream<'conn, C: AsyncDoubleWritable> {
    inner: Pin<Box<<C as AsyncConnectionCore>::Stream<'conn, 'static>>>,
    check: Option<RowCheck>,
}

impl<'conn, C: AsyncDoubleWritable> DoubleWriteStream<'conn, C> {
    fn new(
        inner: <C as AsyncConnectionCore>::Stream<'conn, 'static>,
        check: Option<RowCheck>,
    ) -> Self {
        DoubleWriteStream {
            inner: Box::pin(inner),
            check,
        }
    }
}

impl<'conn, C: AsyncDoubleWritable> Stream for DoubleWriteStream<'conn, C> {
    type Item = QueryResult<RowOf<'conn, C>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Both fields are `Unpin`.
        let this = self.get_mut();
        let item = std::task::ready!(this.inner.as_mut().poll_next(cx));
        if let Some(check) = &mut this.check {
            match &item {
                Some(Ok(row)) => check.observe(row_image::<C::Backend, _>(row)),
                Some(Err(_)) => check.abandon(),
                None => check.finish(),
            }
        }
        Poll::Ready(item)
    }
}

impl<C: AsyncDoubleWritable> Drop for DoubleWriteStream<'_, C> {
    fn drop(&mut self) {
        if let Some(check) = &mut self.check {
            check.finish_partial();
        }
    }
}

impl<C: AsyncDoubleWritable> SimpleAsyncConnection for AsyncDoubleWriteConnection<C> {
    async fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        let pattern = self.statement_pattern()?;
        self.run(
            classify_sql(query),
            pattern,
            query.to_owned(),
            &Batch(query),
            same,
        )
        .await
    }
}

impl<C: AsyncDoubleWritable> AsyncConnectionCore for AsyncDoubleWriteConnection<C> {
    type ExecuteFuture<'conn, 'query> = BoxFuture<'conn, QueryResult<usize>>;
    type LoadFuture<'conn, 'query> = BoxFuture<'conn, QueryResult<Self::Stream<'conn, 'query>>>;
    type Stream<'conn, 'query> = DoubleWriteStream<'conn, C>;
    type Row<'conn, 'query> = RowOf<'conn, C>;
    type Backend = C::Backend;

    fn load<'conn, 'query, T>(&'conn mut self, source: T) -> Self::LoadFuture<'conn, 'query>
    where
        T: AsQuery + 'query,
        T::Query: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        let query = source.as_query();
        // `INSERT ... RETURNING` arrives here: the classification makes it a write.
        let kind = classify_query::<C::Backend, T::Query>(&query);
        let pattern = match self.statement_pattern() {
            Ok(pattern) => pattern,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let double = kind.is_write() && pattern.is_double();
        let sql = if double {
            render::<C::Backend, T::Query>(&query)
        } else {
            String::new()
        };
        match <C::Backend as AsyncDoubleWriteBackend>::share(&query) {
            Ok(shared) => Box::pin(self.load_shared(pattern, double, sql, shared)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    fn execute_returning_count<'conn, 'query, T>(
        &'conn mut self,
        source: T,
    ) -> Self::ExecuteFuture<'conn, 'query>
    where
        T: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        let kind = classify_query::<C::Backend, T>(&source);
        let pattern = match self.statement_pattern() {
            Ok(pattern) => pattern,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let sql = if kind.is_write() && pattern.is_double() {
            render::<C::Backend, T>(&source)
        } else {
            String::new()
        };
        let shared = match <C::Backend as AsyncDoubleWriteBackend>::share(&source) {
            Ok(shared) => shared,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        Box::pin(async move {
            self.run(kind, pattern, sql, &Execute::<C>(shared), differ_counts)
                .await
        })
    }
}

impl<C: AsyncDoubleWritable> AsyncConnection for AsyncDoubleWriteConnection<C> {
    type TransactionManager = AsyncDoubleWriteTransactionManager;

    /// Connects from a connection string, as
    /// [`DoubleWriteConnection::establish`](super::DoubleWriteConnection): `source=URL
    /// destination=URL [pattern=NAME] [strict=true|false]`, `shared=NAME`, or a plain URL.
    async fn establish(spec: &str) -> ConnectionResult<Self> {
        let context = super::spec::context_from_spec::<C::Backend>(spec)
            .map_err(|e| ConnectionError::InvalidConnectionUrl(e.to_string()))?;
        AsyncDoubleWriteConnection::connect(context)
            .await
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))
    }

    async fn begin_test_transaction(&mut self) -> QueryResult<()> {
        match &self.status {
            TransactionManagerStatus::Valid(valid) => {
                assert_eq!(None, valid.transaction_depth());
            }
            TransactionManagerStatus::InError => panic!("Transaction manager in error"),
        }
        self.begin(true).await
    }

    fn transaction_state(&mut self) -> &mut TransactionManagerStatus {
        &mut self.status
    }

    fn instrumentation(&mut self) -> &mut dyn Instrumentation {
        &mut self.instrumentation
    }

    fn set_instrumentation(&mut self, instrumentation: impl Instrumentation) {
        self.instrumentation = Some(Box::new(instrumentation));
    }

    fn set_prepared_statement_cache_size(&mut self, size: CacheSize) {
        self.cache_size = Some(size);
        for conn in self.sides.iter_mut().filter_map(|s| s.conn.as_mut()) {
            conn.set_prepared_statement_cache_size(size);
        }
    }
}

/// Lets an `AsyncDoubleWriteConnection` live in a diesel-async pool: broken when its transaction
/// state is (an open transaction, or one in error).
impl<C: AsyncDoubleWritable> PoolableConnection for AsyncDoubleWriteConnection<C> {
    fn is_broken(&mut self) -> bool {
        <AsyncDoubleWriteTransactionManager as TransactionManager<Self>>::is_broken_transaction_manager(self)
    }
}
