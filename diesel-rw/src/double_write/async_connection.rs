//! [`AsyncDoubleWriteConnection`]: the double-write connection for diesel-async.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use diesel::associations::HasTable;
use diesel::connection::{CacheSize, Instrumentation, TransactionManagerStatus};
use diesel::query_builder::{AsQuery, QueryFragment, QueryId};
use diesel::result::{ConnectionError, ConnectionResult, QueryResult};
use diesel::Identifiable;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{
    AsyncConnection, AsyncConnectionCore, SimpleAsyncConnection, TransactionManager,
    UpdateAndFetchResults,
};
use futures_util::{Stream, StreamExt};

use super::async_transaction::AsyncDoubleWriteTransactionManager;
use super::backend::{row_image, RowImage};
use super::connection::{count, render, split, SideConn};
use super::context::DoubleWriteContext;
use super::core::{differ_counts, differ_rows, same, DwCore, SideEnv};
use super::health::{HealthReport, SideHealth};
use super::pattern::{Pattern, Side};
use super::revealed::{Eager, Revealed};
use super::shared_query::AsyncDoubleWriteBackend;
use super::switch::PatternSwitch;
use super::type_oids::TypeOids;
use crate::classify::StatementKind;
use crate::error::Error;

/// A diesel-async connection type that [`AsyncDoubleWriteConnection`] can wrap:
/// `AsyncPgConnection` (`postgres`), `AsyncMysqlConnection` (`mysql`) and
/// `SyncConnectionWrapper<SqliteConnection>` (`sqlite`). Implemented for all of them; nothing to
/// implement.
pub trait AsyncDoubleWritable:
    AsyncConnection<Backend: AsyncDoubleWriteBackend> + Send + 'static
{
    /// The rows of a write that both sides run, read from the first side before the second
    /// runs it (`Send`, so the connection's futures are).
    #[doc(hidden)]
    type Buffer<'conn>: Default
        + Extend<RowOf<'conn, Self>>
        + Iterator<Item = RowOf<'conn, Self>>
        + Send
        + Unpin;
}

impl<C> AsyncDoubleWritable for C
where
    C: AsyncConnection<Backend: AsyncDoubleWriteBackend> + Send + 'static,
    for<'conn> RowOf<'conn, C>: Send + Unpin,
{
    type Buffer<'conn> = RowBuffer<RowOf<'conn, C>>;
}

/// Rows read ahead of the caller, handed out in order.
#[doc(hidden)]
#[derive(Debug)]
pub struct RowBuffer<R>(std::collections::VecDeque<R>);

impl<R> Default for RowBuffer<R> {
    fn default() -> Self {
        RowBuffer(std::collections::VecDeque::new())
    }
}

impl<R> Extend<R> for RowBuffer<R> {
    fn extend<I: IntoIterator<Item = R>>(&mut self, rows: I) {
        self.0.extend(rows);
    }
}

impl<R> Iterator for RowBuffer<R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        self.0.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.0.len(), Some(self.0.len()))
    }
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

    /// Runs it once on `conn`, whose server's type OIDs `oids` keeps.
    fn run<'a>(
        &'a self,
        conn: &'a mut C,
        oids: &'a TypeOids,
    ) -> BoxFuture<'a, QueryResult<Self::Output>>;
}

/// Nothing: makes sure the side is connected.
pub(super) struct Connect;

impl<C: AsyncDoubleWritable> SideOp<C> for Connect {
    type Output = ();
    fn run<'a>(&'a self, _: &'a mut C, _: &'a TypeOids) -> BoxFuture<'a, QueryResult<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// `batch_execute`.
struct Batch<'q>(&'q str);

impl<C: AsyncDoubleWritable> SideOp<C> for Batch<'_> {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut C, _: &'a TypeOids) -> BoxFuture<'a, QueryResult<()>> {
        Box::pin(conn.batch_execute(self.0))
    }
}

/// `execute_returning_count`.
struct Execute<C: AsyncDoubleWritable>(Shared<C>);

impl<C: AsyncDoubleWritable> SideOp<C> for Execute<C> {
    type Output = usize;
    fn run<'a>(&'a self, conn: &'a mut C, oids: &'a TypeOids) -> BoxFuture<'a, QueryResult<usize>> {
        Box::pin(async move {
            let query = resolved::<C>(&self.0, conn, oids).await?;
            let result = AsyncConnectionCore::execute_returning_count(conn, query).await;
            forget_on_error::<C, _>(&self.0, oids, &result);
            result
        })
    }
}

/// `load`, every row read, their images kept for comparison.
struct Drain<C: AsyncDoubleWritable>(Shared<C>);

impl<C: AsyncDoubleWritable> SideOp<C> for Drain<C> {
    type Output = Vec<RowImage>;
    fn run<'a>(
        &'a self,
        conn: &'a mut C,
        oids: &'a TypeOids,
    ) -> BoxFuture<'a, QueryResult<Vec<RowImage>>> {
        Box::pin(async move {
            let query = resolved::<C>(&self.0, conn, oids).await?;
            let result = drain_images(conn, query).await;
            forget_on_error::<C, _>(&self.0, oids, &result);
            result
        })
    }
}

/// `SELECT 1`.
struct Ping;

impl<C: AsyncDoubleWritable> SideOp<C> for Ping {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut C, _: &'a TypeOids) -> BoxFuture<'a, QueryResult<()>> {
        Box::pin(conn.batch_execute("SELECT 1"))
    }
}

/// A copy of `query` for `conn`'s server, with the OIDs of the PostgreSQL user-defined types it
/// binds looked up there (or in `oids`); the sides of a double write are independent servers,
/// whose OIDs differ.
async fn resolved<C: AsyncDoubleWritable>(
    query: &Shared<C>,
    conn: &mut C,
    oids: &TypeOids,
) -> QueryResult<Shared<C>> {
    let query = <C::Backend as AsyncDoubleWriteBackend>::fresh(query);
    if let Some(lookup) = <C::Backend as AsyncDoubleWriteBackend>::resolve(&query, conn, oids) {
        lookup.await?;
    }
    Ok(query)
}

/// After a failed statement, forgets the OIDs of its user-defined types (one may have been
/// dropped and made again).
fn forget_on_error<C: AsyncDoubleWritable, T>(
    query: &Shared<C>,
    oids: &TypeOids,
    result: &QueryResult<T>,
) {
    if result.is_err() {
        <C::Backend as AsyncDoubleWriteBackend>::forget(query, oids);
    }
}

/// `update_and_fetch` (`save_changes`).
struct SaveChanges<Changes, Output>(Changes, std::marker::PhantomData<fn() -> Output>);

impl<C, Changes, Output> SideOp<C> for SaveChanges<Changes, Output>
where
    C: AsyncDoubleWritable + UpdateAndFetchResults<Changes, Output>,
    Changes: Identifiable + HasTable + Copy + Send + Sync,
    Output: Send,
{
    type Output = Output;
    fn run<'a>(&'a self, conn: &'a mut C, _: &'a TypeOids) -> BoxFuture<'a, QueryResult<Output>> {
        conn.update_and_fetch(self.0)
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
///   PostgreSQL the OIDs of the user-defined types it binds (enums, domains) are looked up on
///   each side, whose OIDs differ, once per type and side for the pool;
/// - a write through `load` reads the first side's whole stream (buffered: a `RETURNING`
///   result is as large as the rows written) before the second side runs it, then the caller
///   gets the first side's rows;
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
    pub(super) core: DwCore,
    pub(super) sides: [SideConn<C>; 2],
}

impl<C: AsyncDoubleWritable> fmt::Debug for AsyncDoubleWriteConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("AsyncDoubleWriteConnection", f)
    }
}

impl<C: AsyncDoubleWritable> AsyncDoubleWriteConnection<C> {
    /// Opens a connection sharing `context`: connects the first side of the current pattern
    /// (failing if it cannot), and tries the second; a side that is not needed yet, or could
    /// not be reached, connects at its first statement.
    pub async fn connect(context: DoubleWriteContext) -> Result<Self, Error> {
        let mut conn = AsyncDoubleWriteConnection::unconnected(context);
        let pattern = conn.core.pattern();
        conn.core.check_pattern(pattern)?;
        conn.ensure(pattern.first()).await?;
        if let Some(second) = pattern.second() {
            if let Err(e) = conn.ensure(second).await {
                tracing::warn!(target: "diesel_rw::double_write", %second, error = %e, "second side unavailable; will connect at its next statement");
            }
        }
        Ok(conn)
    }

    /// A connection that has not connected any side yet.
    pub(crate) fn unconnected(context: DoubleWriteContext) -> Self {
        AsyncDoubleWriteConnection {
            core: DwCore::new(context),
            sides: Default::default(),
        }
    }

    super::core::dw_accessors!();

    /// Runs `f` on `side`'s own connection (connecting it if needed), bypassing the pattern: to
    /// inspect or repair one side. Nothing is mirrored, counted or journaled. For a double write
    /// over two clusters, the side's connection is that cluster's
    /// [`AsyncRwConnection`](crate::AsyncRwConnection), which routes as usual.
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
        let node = self.core.ctx.node(side)?.to_owned();
        let start = Instant::now();
        let result = match self.ensure(side).await {
            Ok(()) => Ping
                .run(self.side_conn(side), &TypeOids::default())
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

    /// Makes sure `side` has a usable connection: opens it if it is not open, or (outside a
    /// transaction) was lost or left broken.
    pub(super) async fn ensure(&mut self, side: Side) -> Result<(), Error> {
        ensure(&self.core.env(), &mut self.sides[side.index()], side).await
    }

    /// Runs `op` once on `side`'s connection as it is (no reconnect: for transaction steps),
    /// counting the outcome and marking the connection lost if the error says so.
    pub(super) async fn step<O: SideOp<C>>(
        &mut self,
        side: Side,
        op: &O,
    ) -> QueryResult<O::Output> {
        step(&self.core.env(), &mut self.sides[side.index()], side, op).await
    }

    /// Runs `op` on `side`, retrying what provably did not apply (never inside a transaction).
    pub(super) async fn run_on<O: SideOp<C>>(
        &mut self,
        side: Side,
        op: &O,
    ) -> QueryResult<O::Output> {
        run_on(&self.core.env(), &mut self.sides[side.index()], side, op).await
    }

    /// Makes sure `side` is connected, retrying a failed connect per the retry policy.
    pub(super) async fn ensure_retrying(&mut self, side: Side) -> QueryResult<()> {
        self.run_on(side, &Connect).await
    }

    /// Routes a statement of `kind` per the contract in [`core`](super::core), as the sync
    /// connection does.
    async fn run<O: SideOp<C>>(
        &mut self,
        kind: StatementKind,
        (sql, revealed): (String, Revealed),
        op: &O,
        differ: fn(Side, Side, &O::Output, &O::Output) -> Option<String>,
    ) -> QueryResult<O::Output> {
        let stmt = Eager {
            sql: &sql,
            revealed: &revealed,
        };
        let plan = self.core.plan(kind)?;
        let value = match self.run_on(plan.first, op).await {
            Ok(value) => value,
            Err(error) if kind.is_write() => {
                return Err(self.core.first_failed(&plan, &stmt, error))
            }
            Err(error) => return Err(error),
        };
        if kind.is_read() {
            return Ok(value);
        }
        let other = match plan.second {
            Some(second) => Some(self.run_on(second, op).await),
            None => None,
        };
        self.core
            .finish_write(&plan, &stmt, &value, other, differ)?;
        Ok(value)
    }

    /// `load` of a rendered statement.
    async fn load_shared<'conn>(
        &'conn mut self,
        kind: StatementKind,
        (sql, revealed): (String, Revealed),
        query: Shared<C>,
    ) -> QueryResult<DoubleWriteStream<'conn, C>> {
        let stmt = Eager {
            sql: &sql,
            revealed: &revealed,
        };
        let plan = self.core.plan(kind)?;
        let AsyncDoubleWriteConnection { core, sides } = self;
        let (first, other) = split(sides, plan.first);
        let Some(second) = plan.second else {
            // One side: its stream, as it comes.
            if kind.is_write() && plan.pattern.is_double() {
                // Inside a transaction whose second side failed: remembered for the journal.
                core.finish_write(&plan, &stmt, &(), None, same)?;
            }
            run_on(&core.env(), first, plan.first, &Connect).await?;
            let stream = load_side(&core.env(), first, plan.first, query).await?;
            return Ok(DoubleWriteStream::live(stream));
        };
        // A write on both sides: the first side's rows are read (buffered) before the second
        // side runs it, so a write the first side rejects never reaches the second.
        run_on(&core.env(), first, plan.first, &Connect).await?;
        let (rows, images) = load_all(&core.env(), first, plan.first, query.clone())
            .await
            .map_err(|error| core.first_failed(&plan, &stmt, error))?;
        let second_rows = run_on(&core.env(), other, second, &Drain::<C>(query)).await;
        // Its binds only: the async connection's buffered rows are not read for keys.
        core.finish_write(&plan, &stmt, &images, Some(second_rows), differ_rows)?;
        Ok(DoubleWriteStream::buffered(rows))
    }
}

/// Makes sure `slot` (the connection of `side`) is usable: opens it if it is not open, or
/// (outside a transaction) was lost or left broken.
async fn ensure<C: AsyncDoubleWritable>(
    env: &SideEnv<'_>,
    slot: &mut SideConn<C>,
    side: Side,
) -> Result<(), Error> {
    if env.keep(
        slot,
        side,
        <C::TransactionManager as TransactionManager<C>>::is_broken_transaction_manager,
    )? {
        return Ok(());
    }
    let ctx = env.ctx;
    let start = Instant::now();
    let connected = match ctx.async_connector::<C>() {
        Some(connect) => connect(side).await,
        None => {
            let url = env.url(side)?.clone();
            C::establish(url.expose())
                .await
                .map_err(|source| Error::SideUnavailable {
                    side,
                    node: url.redacted().to_owned(),
                    source,
                })
        }
    };
    let mut conn = match connected {
        Ok(conn) => conn,
        Err(e) => {
            ctx.metrics().failure(side, start.elapsed());
            return Err(e);
        }
    };
    if let Some(size) = env.cache_size {
        conn.set_prepared_statement_cache_size(size);
    }
    if let Some(shared) = env.instrumentation {
        conn.set_instrumentation(shared.clone());
    }
    slot.conn = Some(conn);
    Ok(())
}

/// Runs `op` once on `slot` as it is, counting the outcome and marking the connection lost if
/// the error says so.
async fn step<C: AsyncDoubleWritable, O: SideOp<C>>(
    env: &SideEnv<'_>,
    slot: &mut SideConn<C>,
    side: Side,
    op: &O,
) -> QueryResult<O::Output> {
    let start = Instant::now();
    let result = match slot.conn.as_mut() {
        Some(conn) => op.run(conn, env.ctx.type_oids(side)).await,
        None => Err(Error::InvalidState(format!("the {side} is not connected")).into()),
    };
    count(env.ctx, side, start, &mut slot.lost, &result);
    result
}

/// Runs `op` on `slot` (connecting it if needed), retrying what provably did not apply (never
/// inside a transaction).
async fn run_on<C: AsyncDoubleWritable, O: SideOp<C>>(
    env: &SideEnv<'_>,
    slot: &mut SideConn<C>,
    side: Side,
    op: &O,
) -> QueryResult<O::Output> {
    let retry = env.ctx.retry();
    let allowed = !env.in_transaction;
    let start = Instant::now();
    let mut retries = 0;
    loop {
        if retries > 0 {
            env.ctx.metrics().retry(side);
        }
        let attempt = match ensure(env, slot, side).await {
            Ok(()) => step(env, slot, side, op).await,
            Err(e) => Err(e.into()),
        };
        let error = match attempt {
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

/// Loads `query` on `slot` (connected already), counting the outcome.
async fn load_side<'conn, C: AsyncDoubleWritable>(
    env: &SideEnv<'_>,
    slot: &'conn mut SideConn<C>,
    side: Side,
    query: Shared<C>,
) -> QueryResult<<C as AsyncConnectionCore>::Stream<'conn, 'static>> {
    let start = Instant::now();
    let SideConn { conn, lost } = slot;
    let conn = conn
        .as_mut()
        .expect("diesel-rw: the side's connection is open (ensured)");
    let oids = env.ctx.type_oids(side);
    let result = match resolved::<C>(&query, conn, oids).await {
        Ok(query) => {
            let result = AsyncConnectionCore::load(conn, query.clone()).await;
            forget_on_error::<C, _>(&query, oids, &result);
            result
        }
        Err(e) => Err(e),
    };
    count(env.ctx, side, start, lost, &result);
    result
}

/// Loads `query` on `slot` (connected already) and reads every row, counting the outcome: the
/// rows, and their images for comparison.
async fn load_all<'conn, C: AsyncDoubleWritable>(
    env: &SideEnv<'_>,
    slot: &'conn mut SideConn<C>,
    side: Side,
    query: Shared<C>,
) -> QueryResult<(C::Buffer<'conn>, Vec<RowImage>)> {
    let start = Instant::now();
    let SideConn { conn, lost } = slot;
    let conn = conn
        .as_mut()
        .expect("diesel-rw: the side's connection is open (ensured)");
    let oids = env.ctx.type_oids(side);
    let rows = async {
        let query = resolved::<C>(&query, conn, oids).await?;
        let stream = AsyncConnectionCore::load(conn, query.clone()).await;
        forget_on_error::<C, _>(&query, oids, &stream);
        let stream = stream?;
        let mut stream = std::pin::pin!(stream);
        let (mut rows, mut images) = (C::Buffer::default(), Vec::new());
        while let Some(row) = stream.next().await {
            let row = row?;
            images.push(row_image::<C::Backend, _>(&row));
            rows.extend(Some(row));
        }
        Ok((rows, images))
    }
    .await;
    count(env.ctx, side, start, lost, &rows);
    rows
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
/// statement. For a read, and a write that runs on one side, that side's stream as it comes;
/// for a write that runs on both sides (`... RETURNING`), the first side's rows, read in full
/// before the second side ran the statement (see
/// [`DoubleWriteCursor`](super::DoubleWriteCursor) on their size).
pub struct DoubleWriteStream<'conn, C: AsyncDoubleWritable> {
    rows: StreamRows<'conn, C>,
}

enum StreamRows<'conn, C: AsyncDoubleWritable> {
    Live(Pin<Box<<C as AsyncConnectionCore>::Stream<'conn, 'static>>>),
    Buffered(C::Buffer<'conn>),
}

impl<'conn, C: AsyncDoubleWritable> DoubleWriteStream<'conn, C> {
    fn live(inner: <C as AsyncConnectionCore>::Stream<'conn, 'static>) -> Self {
        DoubleWriteStream {
            rows: StreamRows::Live(Box::pin(inner)),
        }
    }

    fn buffered(rows: C::Buffer<'conn>) -> Self {
        DoubleWriteStream {
            rows: StreamRows::Buffered(rows),
        }
    }
}

impl<'conn, C: AsyncDoubleWritable> Stream for DoubleWriteStream<'conn, C> {
    type Item = QueryResult<RowOf<'conn, C>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Both variants are `Unpin`.
        match &mut self.get_mut().rows {
            StreamRows::Live(inner) => inner.as_mut().poll_next(cx),
            StreamRows::Buffered(rows) => Poll::Ready(rows.next().map(Ok)),
        }
    }
}

impl<C: AsyncDoubleWritable> SimpleAsyncConnection for AsyncDoubleWriteConnection<C> {
    async fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        self.run(
            self.core.ctx.classify_sql::<C::Backend>(query),
            (query.to_owned(), Revealed::none()),
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
        let kind = self.core.ctx.classify_query::<C::Backend, T::Query>(&query);
        // Rendered now (the statement is not kept across an `.await`), with its binds for
        // the journal's keys, for a write that may be journaled.
        let sql = if kind.is_write() && self.core.pattern().is_double() {
            (
                render::<C::Backend, T::Query>(&query),
                Revealed::of_query::<C::Backend, T::Query>(&query),
            )
        } else {
            (String::new(), Revealed::none())
        };
        match <C::Backend as AsyncDoubleWriteBackend>::share(&query) {
            Ok(shared) => Box::pin(self.load_shared(kind, sql, shared)),
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
        let kind = self.core.ctx.classify_query::<C::Backend, T>(&source);
        let sql = if kind.is_write() && self.core.pattern().is_double() {
            (
                render::<C::Backend, T>(&source),
                Revealed::of_query::<C::Backend, T>(&source),
            )
        } else {
            (String::new(), Revealed::none())
        };
        let shared = match <C::Backend as AsyncDoubleWriteBackend>::share(&source) {
            Ok(shared) => shared,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        Box::pin(async move {
            self.run(kind, sql, &Execute::<C>(shared), differ_counts)
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
        match &self.core.status {
            TransactionManagerStatus::Valid(valid) => {
                assert_eq!(None, valid.transaction_depth());
            }
            TransactionManagerStatus::InError => panic!("Transaction manager in error"),
        }
        super::transaction::begin(self, true).await
    }

    fn transaction_state(&mut self) -> &mut TransactionManagerStatus {
        &mut self.core.status
    }

    fn instrumentation(&mut self) -> &mut dyn Instrumentation {
        self.core.instrumentation.get()
    }

    /// Sets the instrumentation that sees every statement and transaction event of both
    /// sides: each side connection reports to it (those opened later too).
    fn set_instrumentation(&mut self, instrumentation: impl Instrumentation) {
        let shared = self.core.instrumentation.set(instrumentation);
        for conn in self.sides.iter_mut().filter_map(|s| s.conn.as_mut()) {
            conn.set_instrumentation(shared.clone());
        }
    }

    fn set_prepared_statement_cache_size(&mut self, size: CacheSize) {
        self.core.cache_size = Some(size);
        for conn in self.sides.iter_mut().filter_map(|s| s.conn.as_mut()) {
            conn.set_prepared_statement_cache_size(size);
        }
    }
}

/// `save_changes` is a write: on the first side, then the second; the first side's result is
/// returned (the two results are not compared), as on the sync
/// [`DoubleWriteConnection`](super::DoubleWriteConnection).
impl<Changes, Output, C> UpdateAndFetchResults<Changes, Output> for AsyncDoubleWriteConnection<C>
where
    C: AsyncDoubleWritable + UpdateAndFetchResults<Changes, Output>,
    Changes: Identifiable + HasTable + Copy + Send + Sync,
    Output: Send,
{
    fn update_and_fetch<'conn, 'changes>(
        &'conn mut self,
        changeset: Changes,
    ) -> BoxFuture<'changes, QueryResult<Output>>
    where
        Changes: 'changes,
        'conn: 'changes,
        Self: 'changes,
    {
        Box::pin(async move {
            self.run(
                StatementKind::Write,
                ("<save_changes>".into(), Revealed::none()),
                &SaveChanges(changeset, std::marker::PhantomData),
                same,
            )
            .await
        })
    }
}

/// Lets an `AsyncDoubleWriteConnection` live in a diesel-async pool: broken when its transaction
/// state is (an open transaction, or one in error).
impl<C: AsyncDoubleWritable> PoolableConnection for AsyncDoubleWriteConnection<C> {
    /// Called by the pool at each checkout of a pooled connection: a double write over two
    /// clusters gives its side connections back to their pools here, so each checkout starts
    /// with fresh routing state on both sides.
    fn is_broken(&mut self) -> bool {
        let broken = <AsyncDoubleWriteTransactionManager as TransactionManager<Self>>::is_broken_transaction_manager(self);
        if !broken {
            self.release_cluster_sides();
        }
        broken
    }
}
