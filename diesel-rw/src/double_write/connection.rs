//! [`DoubleWriteConnection`]: a diesel connection over a source and a destination database.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use diesel::connection::{
    CacheSize, Connection, ConnectionSealed, Instrumentation, LoadConnection, SimpleConnection,
    TransactionManager, TransactionManagerStatus,
};
use diesel::expression::QueryMetadata;
use diesel::migration::MigrationConnection;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::query_dsl::UpdateAndFetchResults;
use diesel::r2d2::R2D2Connection;
use diesel::result::{ConnectionError, ConnectionResult, QueryResult};

use super::backend::{row_image, DoubleWriteBackend, RowImage};
use super::context::DoubleWriteContext;
use super::core::{differ_counts, differ_rows, same, DwCore, SideEnv};
use super::cursor::DoubleWriteCursor;
use super::health::{HealthReport, SideHealth};
use super::pattern::{Pattern, Side};
use super::revealed::{Built, Loaded, Rendered};
use super::switch::PatternSwitch;
use super::transaction::DoubleWriteTransactionManager;
use crate::classify::StatementKind;
use crate::error::Error;
use crate::replay::Replay;

/// A diesel [`Connection`] that double-writes to a source and a destination database of the same
/// backend, following the [`Pattern`] of its [`PatternSwitch`].
///
/// - **Reads** go to the source under `SrcOnly`/`SrcFirst`, to the destination under
///   `DstFirst`/`DstOnly`, never to the other side. Over two clusters
///   ([`DoubleWriteBuilder::source_cluster`](super::DoubleWriteBuilder)), a side's connection
///   is that cluster's [`RwConnection`](crate::RwConnection), which routes the read to its
///   replicas, stickiness and causal consistency included.
/// - **Writes** (classified by their SQL text like [`RwConnection`](crate::RwConnection)'s:
///   unknown is a write), whatever the path (`execute`, `batch_execute`, `load` with
///   `RETURNING`, `save_changes`), run on the first side, then on the second only if the first
///   applied them. A write the first side rejects never reaches the second; the caller gets the
///   first side's error. For a write through `load` (`get_result` on
///   `INSERT/UPDATE/DELETE ... RETURNING`, or another write-classified query such as
///   `SELECT ... FOR UPDATE`) the first side's rows are read in full and buffered (a `RETURNING`
///   result is as large as the rows written), then the second side runs it, then the caller gets
///   the first side's rows ([`DoubleWriteCursor`]). The two sides' rows (their raw field values,
///   see [`DoubleWriteBackend::value_image`]), or the affected row counts of an `execute`, are
///   compared; a difference is journaled as an [`EntryKind::Divergence`](super::EntryKind).
/// - **Failures**: in lenient mode (the default) a second-side failure is counted, journaled
///   (the entry's `side` is always the side that lacks the write), and the call returns the
///   first side's result. In strict mode the call returns [`Error::SecondaryWriteFailed`], which
///   says what holds: outside a transaction, applied on the first side and not on the second
///   (do not repeat it; repair the second); inside one, nothing committed (roll back and run the
///   transaction again). Both modes send the same statements; they differ in what the call
///   returns, except at a savepoint (see below).
/// - **Transactions** begin on both sides (the first, then the second) and keep the pattern they
///   began with. Commit commits the first side, then the second; rollback rolls back both.
///   Savepoints are mirrored; [`begin_test_transaction`](Connection::begin_test_transaction)
///   runs on both. When the second side cannot begin, the first side's BEGIN is rolled back and
///   [`Error::NothingApplied`] returned, in either mode (nothing was written: the caller can run
///   the transaction again); a savepoint the second side refuses inside a running transaction is
///   an error in strict mode, and in lenient mode leaves that side broken for the rest of the
///   transaction. When a statement fails on the second side inside a transaction, nothing more is
///   sent there (on PostgreSQL its transaction is aborted anyway), and at commit its transaction
///   is rolled back; every write of the transaction is then journaled as a
///   [`EntryKind::PartialCommit`](super::EntryKind), as when the second commit fails after the
///   first succeeded. In strict mode such a commit returns [`Error::PartialCommit`]. When the
///   first side refuses the COMMIT, the second side is rolled back and the call returns
///   [`Error::NothingApplied`]; when the first side's connection breaks during its COMMIT,
///   [`Error::CommitOutcomeUnknown`], unless the outcome can be found: over a plain PostgreSQL
///   connection the transaction's id is noted before the COMMIT, and a new connection asks
///   `txid_status`: committed goes on to commit the second side (`Ok`), rolled back rolls it back
///   ([`Error::NothingApplied`] caused by [`Error::NotCommitted`]); a side that is a routing
///   connection resolves its own. A failure inside a savepoint that is then rolled back on
///   both sides leaves nothing to journal.
/// - **Instrumentation** set with `set_instrumentation` sees every statement and transaction
///   event of both sides.
/// - **Retry** (off by default, see [`Retry`](super::Retry)): only what provably did not apply,
///   never inside a transaction.
/// - **Connections**: each side's connection opens at the first statement that needs it (the
///   first side of the current pattern when the connection is made) and is opened again, before
///   the next statement outside a transaction, after it was lost. So a destination that was down
///   rejoins as soon as it is back.
///
/// The connection string of [`establish`](Connection::establish) is one of:
///
/// - `source=URL destination=URL [pattern=NAME] [strict=true|false]` (whitespace-separated, so
///   the URLs themselves hold no whitespace): a pair with a switch of its own at `pattern`
///   (default `src_only`), an in-memory journal and no retry; [`switch`](Self::switch) gives the
///   switch;
/// - `shared=NAME`: the [`DoubleWriteContext`] registered under `NAME` by
///   [`DoubleWriteBuilder::register`](super::DoubleWriteBuilder::register): its URLs, switch,
///   journal, metrics and settings;
/// - a plain URL: that database as the source and no destination (everything goes to it).
///
/// An [`RwPool<DoubleWriteConnection<C>>`](crate::RwPool) opens its primary with the string
/// given as the primary's URL: give it `shared=NAME`, so that every connection follows one
/// switch and feeds one journal (and the string the pool shows in its logs holds no password).
/// Such a pool refuses replicas (they would be the source's, read in every pattern): for
/// replicas on both sides, build a double write over two clusters
/// ([`DoubleWriteBuilder::source_cluster`](super::DoubleWriteBuilder)).
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel::prelude::*;
/// use diesel::connection::SimpleConnection;
/// use diesel_rw::double_write::{DoubleWriteConnection, Pattern, Side};
///
/// let dir = std::env::temp_dir().join(format!("diesel-rw-dw-conn-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
/// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
/// let spec = format!("source={} destination={} pattern=src_first", src.display(), dst.display());
/// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec).unwrap();
/// conn.batch_execute("CREATE TABLE t (x INTEGER)").unwrap(); // DDL is a write: both sides
/// conn.batch_execute("INSERT INTO t VALUES (1)").unwrap();
/// let mut count = |side| conn.with_side(side, |c| {
///     diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("(SELECT COUNT(*) FROM t)"))
///         .get_result::<i64>(c)
/// });
/// assert_eq!(count(Side::Source).unwrap().unwrap(), 1);
/// assert_eq!(count(Side::Destination).unwrap().unwrap(), 1);
/// assert_eq!(conn.last_pattern(), Some(Pattern::SrcFirst));
/// # }
/// ```
pub struct DoubleWriteConnection<C: R2D2Connection + 'static> {
    pub(super) core: DwCore,
    pub(super) sides: [SideConn<C>; 2],
}

/// One side's connection.
pub(super) struct SideConn<C> {
    pub(super) conn: Option<C>,
    /// An error showed the connection is gone: it is opened again before its next use outside
    /// a transaction.
    pub(super) lost: bool,
}

impl<C> Default for SideConn<C> {
    fn default() -> Self {
        SideConn {
            conn: None,
            lost: false,
        }
    }
}

impl<C> SideConn<C> {
    /// Whether the connection is open and not known to be lost.
    pub(super) fn is_connected(&self) -> bool {
        self.conn.is_some() && !self.lost
    }
}

/// The two side connections, as the first and the second side of `first`'s pattern.
pub(super) fn split<C>(
    sides: &mut [SideConn<C>; 2],
    first: Side,
) -> (&mut SideConn<C>, &mut SideConn<C>) {
    let [source, destination] = sides;
    match first {
        Side::Source => (source, destination),
        Side::Destination => (destination, source),
    }
}

impl<C: R2D2Connection + 'static> fmt::Debug for DoubleWriteConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("DoubleWriteConnection", f)
    }
}

impl<C> DoubleWriteConnection<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    /// Opens a connection sharing `context`: connects the first side of the current pattern
    /// (failing if it cannot), and tries the second; a side that is not needed yet, or could
    /// not be reached, connects at its first statement.
    pub fn connect(context: DoubleWriteContext) -> Result<Self, Error> {
        let mut conn = DoubleWriteConnection::unconnected(context);
        let pattern = conn.core.pattern();
        conn.core.check_pattern(pattern)?;
        conn.ensure(pattern.first())?;
        if let Some(second) = pattern.second() {
            if let Err(e) = conn.ensure(second) {
                tracing::warn!(target: "diesel_rw::double_write", %second, error = %e, "second side unavailable; will connect at its next statement");
            }
        }
        Ok(conn)
    }

    /// A connection that has not connected any side yet.
    pub(crate) fn unconnected(context: DoubleWriteContext) -> Self {
        DoubleWriteConnection {
            core: DwCore::new(context),
            sides: Default::default(),
        }
    }

    super::core::dw_accessors!();

    /// Runs `f` on `side`'s own connection (connecting it if needed), bypassing the pattern: to
    /// inspect or repair one side, or for what diesel-rw cannot see. Nothing is mirrored,
    /// counted or journaled. For a double write over two clusters, the side's connection is
    /// that cluster's [`RwConnection`](crate::RwConnection), which routes as usual.
    pub fn with_side<T>(&mut self, side: Side, f: impl FnOnce(&mut C) -> T) -> Result<T, Error> {
        self.ensure(side)?;
        Ok(f(self.side_conn(side)))
    }

    /// Runs `f` on the connection of the side the pattern reads from (the open transaction's
    /// pattern, or the switch's), connecting it if needed: for read APIs of `C` that diesel-rw
    /// cannot route itself, such as PostgreSQL's `diesel::copy_to(..).load(..)` (see
    /// [`pg`](crate::pg)). Over two clusters, `f` gets that side's
    /// [`RwConnection`](crate::RwConnection): its
    /// [`with_read_route`](crate::RwConnection::with_read_route) reaches its replicas. Counted
    /// on that side like a statement; nothing is mirrored or journaled, and `f` must not write.
    pub fn with_read_side<T>(
        &mut self,
        f: impl FnOnce(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let plan = self.core.plan(StatementKind::Read)?;
        self.attempt(plan.first, f)
    }

    /// Runs a write whose statement can be sent only once (a `COPY ... FROM STDIN`, whose data
    /// diesel consumes): on the side the pattern writes to alone (or, inside a transaction
    /// whose second side failed, its first side, journaled at commit like any write there).
    /// When the pattern would run it on both sides it is refused before anything is sent:
    /// nothing applied; `instead` says what to do.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(super) fn write_once<T>(
        &mut self,
        sql: &str,
        instead: &str,
        op: impl FnOnce(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let plan = self.core.plan(StatementKind::Write)?;
        if let Some(second) = plan.second {
            return Err(Error::InvalidState(format!(
                "`{sql}` cannot be double-written: diesel sends its data once, and the `{}` pattern writes to the {} and then the {second}; nothing was sent to either. {instead}",
                plan.pattern, plan.first
            ))
            .into());
        }
        let sql = || sql.to_owned();
        let value = self
            .attempt(plan.first, op)
            .map_err(|e| self.core.first_failed(&plan, &sql, e))?;
        self.core.finish_write(&plan, &sql, &value, None, same)?;
        Ok(value)
    }

    /// Pings both sides (connecting them if needed) and says which failed.
    pub fn health_check(&mut self) -> HealthReport {
        let mut check = |side: Side| {
            let node = self.core.ctx.node(side)?.to_owned();
            let start = Instant::now();
            let result = self
                .ensure(side)
                .and_then(|()| self.side_conn(side).ping().map_err(Error::from_diesel));
            if let Err(e) = &result {
                if crate::error::is_connection_message(&e.to_string())
                    || matches!(e, Error::SideUnavailable { .. })
                {
                    self.sides[side.index()].lost = true;
                }
            }
            Some(SideHealth {
                side,
                node,
                result: result.map(|()| start.elapsed()).map_err(|e| e.to_string()),
            })
        };
        HealthReport {
            source: check(Side::Source).expect("a source is always configured"),
            destination: check(Side::Destination),
        }
    }

    /// Makes sure `side` has a usable connection: opens it if it is not open, or (outside a
    /// transaction) was lost or left broken.
    pub(super) fn ensure(&mut self, side: Side) -> Result<(), Error> {
        ensure(&self.core.env(), &mut self.sides[side.index()], side)
    }

    /// Runs `op` once on `side`: connects it if needed, counts the outcome, and marks the
    /// connection lost if the error says so.
    pub(super) fn attempt<T>(
        &mut self,
        side: Side,
        op: impl FnOnce(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        attempt(&self.core.env(), &mut self.sides[side.index()], side, op)
    }

    /// Runs `op` once on `side`'s connection as it is (no reconnect: for transaction steps),
    /// counting the outcome and marking the connection lost if the error says so.
    pub(super) fn step<T>(
        &mut self,
        side: Side,
        op: impl FnOnce(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        step(&self.core.env(), &mut self.sides[side.index()], side, op)
    }

    /// Runs `op` on `side`, retrying what provably did not apply (never inside a transaction).
    pub(super) fn run_on<T>(
        &mut self,
        side: Side,
        op: impl FnMut(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        run_on(&self.core.env(), &mut self.sides[side.index()], side, op)
    }

    /// Routes a statement of `kind` per the contract in [`core`](super::core): a read on the
    /// side the pattern reads from; a write on the first side, then on the second if the first
    /// applied it. `differ` compares the two results and says how they differ.
    pub(super) fn run<T>(
        &mut self,
        kind: StatementKind,
        sql: impl Rendered,
        mut op: impl FnMut(&mut C) -> QueryResult<T>,
        differ: fn(Side, Side, &T, &T) -> Option<String>,
    ) -> QueryResult<T> {
        let plan = self.core.plan(kind)?;
        let value = match self.run_on(plan.first, &mut op) {
            Ok(value) => value,
            Err(error) if kind.is_write() => {
                return Err(self.core.first_failed(&plan, &sql, error))
            }
            Err(error) => return Err(error),
        };
        if kind.is_read() {
            return Ok(value);
        }
        let other = plan.second.map(|second| self.run_on(second, &mut op));
        self.core.finish_write(&plan, &sql, &value, other, differ)?;
        Ok(value)
    }

    /// Runs a write (a statement diesel-rw cannot classify, such as `save_changes`).
    fn write<T>(
        &mut self,
        sql: impl Fn() -> String,
        op: impl FnMut(&mut C) -> QueryResult<T>,
        differ: fn(Side, Side, &T, &T) -> Option<String>,
    ) -> QueryResult<T> {
        self.run(StatementKind::Write, sql, op, differ)
    }
}

/// Makes sure `slot` (the connection of `side`) is usable: opens it if it is not open, or
/// (outside a transaction) was lost or left broken.
fn ensure<C>(env: &SideEnv<'_>, slot: &mut SideConn<C>, side: Side) -> Result<(), Error>
where
    C: R2D2Connection + 'static,
{
    if env.keep(slot, side, C::is_broken)? {
        return Ok(());
    }
    let ctx = env.ctx;
    let start = Instant::now();
    let connected = match ctx.connector::<C>() {
        Some(connect) => connect(side),
        None => {
            let url = env.url(side)?;
            C::establish(url.expose()).map_err(|source| Error::SideUnavailable {
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
    if let Some(hook) = ctx.on_connect::<C>() {
        hook(side, &mut conn)?;
    }
    slot.conn = Some(conn);
    Ok(())
}

/// [`ensure`], then [`step`].
fn attempt<C, T>(
    env: &SideEnv<'_>,
    slot: &mut SideConn<C>,
    side: Side,
    op: impl FnOnce(&mut C) -> QueryResult<T>,
) -> QueryResult<T>
where
    C: R2D2Connection + 'static,
{
    match ensure(env, slot, side) {
        Ok(()) => step(env, slot, side, op),
        Err(e) => Err(e.into()),
    }
}

/// Runs `op` once on `slot` as it is, counting the outcome and marking the connection lost if
/// the error says so.
fn step<C, T>(
    env: &SideEnv<'_>,
    slot: &mut SideConn<C>,
    side: Side,
    op: impl FnOnce(&mut C) -> QueryResult<T>,
) -> QueryResult<T> {
    let start = Instant::now();
    let result = match slot.conn.as_mut() {
        Some(conn) => op(conn),
        None => Err(Error::InvalidState(format!("the {side} is not connected")).into()),
    };
    count(env.ctx, side, start, &mut slot.lost, &result);
    result
}

/// Runs `op` on `slot`, retrying what provably did not apply (never inside a transaction).
fn run_on<C, T>(
    env: &SideEnv<'_>,
    slot: &mut SideConn<C>,
    side: Side,
    mut op: impl FnMut(&mut C) -> QueryResult<T>,
) -> QueryResult<T>
where
    C: R2D2Connection + 'static,
{
    let mut tries = 0;
    env.ctx.retry().run(
        !env.in_transaction,
        || {
            if tries > 0 {
                env.ctx.metrics().retry(side);
            }
            tries += 1;
            attempt(env, slot, side, &mut op)
        },
        |_, _| {},
    )
}

/// Whether `error` shows that the connection is gone (it is then opened again before the next
/// statement outside a transaction).
pub(super) fn connection_lost(error: &diesel::result::Error) -> bool {
    match error {
        diesel::result::Error::DatabaseError(..) => crate::error::is_connection_error(error),
        diesel::result::Error::QueryBuilderError(inner) => {
            matches!(
                inner.downcast_ref::<Error>(),
                Some(Error::SideUnavailable { .. })
            )
        }
        _ => false,
    }
}

/// Renders a statement's SQL (binds are not included).
pub(super) fn render<DB, T>(source: &T) -> String
where
    DB: DoubleWriteBackend,
    T: QueryFragment<DB> + ?Sized,
{
    let mut qb = DB::QueryBuilder::default();
    match source.to_sql(&mut qb, &DB::default()) {
        Ok(()) => diesel::query_builder::QueryBuilder::finish(qb),
        Err(e) => format!("<unrenderable statement: {e}>"),
    }
}

impl<C: R2D2Connection + 'static> ConnectionSealed for DoubleWriteConnection<C> {}

impl<C> SimpleConnection for DoubleWriteConnection<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        self.run(
            self.core.ctx.classify_sql::<C::Backend>(query),
            || query.to_owned(),
            |c| c.batch_execute(query),
            same,
        )
    }
}

impl<C> Connection for DoubleWriteConnection<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    type Backend = C::Backend;
    type TransactionManager = DoubleWriteTransactionManager;

    /// Connects from a connection string: `source=URL destination=URL [pattern=NAME]
    /// [strict=true|false]`, `shared=NAME`, or a plain URL (see [`DoubleWriteConnection`]).
    fn establish(spec: &str) -> ConnectionResult<Self> {
        let context = super::spec::context_from_spec::<C::Backend>(spec)
            .map_err(|e| ConnectionError::InvalidConnectionUrl(e.to_string()))?;
        DoubleWriteConnection::connect(context)
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))
    }

    fn begin_test_transaction(&mut self) -> QueryResult<()> {
        match &self.core.status {
            TransactionManagerStatus::Valid(valid) => {
                assert_eq!(None, valid.transaction_depth());
            }
            TransactionManagerStatus::InError => panic!("Transaction manager in error"),
        }
        super::transaction::ready(super::transaction::begin(self, true))
    }

    fn execute_returning_count<T>(&mut self, source: &T) -> QueryResult<usize>
    where
        T: QueryFragment<Self::Backend> + QueryId,
    {
        self.run(
            self.core.ctx.classify_query::<C::Backend, T>(source),
            // The binds too, for the journal's keys (rendered only if it journals).
            Built::<C::Backend, T>::new(source, &|| render::<C::Backend, T>(source)),
            |c| c.execute_returning_count(source),
            differ_counts,
        )
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

impl<B, C> LoadConnection<B> for DoubleWriteConnection<C>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    type Cursor<'conn, 'query>
        = DoubleWriteCursor<'conn, 'query, C, B>
    where
        Self: 'conn;
    type Row<'conn, 'query>
        = <C as LoadConnection<B>>::Row<'conn, 'query>
    where
        Self: 'conn;

    fn load<'conn, 'query, T>(
        &'conn mut self,
        source: T,
    ) -> QueryResult<Self::Cursor<'conn, 'query>>
    where
        T: Query + QueryFragment<Self::Backend> + QueryId + 'query,
        Self::Backend: QueryMetadata<T::SqlType>,
    {
        // `INSERT ... RETURNING` arrives here: the classification makes it a write.
        let kind = self.core.ctx.classify_query::<C::Backend, T>(&source);
        let plan = self.core.plan(kind)?;
        let DoubleWriteConnection { core, sides } = self;
        let (first, other) = split(sides, plan.first);
        let Some(second) = plan.second else {
            // One side: its cursor, as it comes.
            if kind.is_write() && plan.pattern.is_double() {
                // Inside a transaction whose second side failed: remembered for the journal.
                let sql = render::<C::Backend, T>(&source);
                let sql = || sql.clone();
                let stmt = Built::<C::Backend, T>::new(&source, &sql);
                core.finish_write(&plan, &stmt, &(), None, same)?;
            }
            run_on(&core.env(), first, plan.first, |_| Ok(()))?;
            let cursor = load_side::<C, B, T>(&core.env(), first, plan.first, source)?;
            return Ok(DoubleWriteCursor::live(cursor));
        };
        // A write on both sides: the first side's rows are read (buffered) before the second
        // side runs it, so a write the first side rejects never reaches the second.
        let sql = render::<C::Backend, T>(&source);
        let query = Replay(Arc::new(source));
        run_on(&core.env(), first, plan.first, |_| Ok(()))?;
        let (cursor, rows) =
            load_all::<C, B, Replay<T>>(&core.env(), first, plan.first, query.clone()).map_err(
                |error| {
                    let sql = || sql.clone();
                    let stmt = Built::<C::Backend, T>::new(&*query.0, &sql);
                    core.first_failed(&plan, &stmt, error)
                },
            )?;
        let images: Vec<RowImage> = rows.iter().map(row_image::<C::Backend, _>).collect();
        let second_rows = run_on(&core.env(), other, second, |c| {
            drain_images::<C, B, Replay<T>>(c, &query)
        });
        // The first side's rows too: `RETURNING` names the keys of the rows it wrote.
        let text = || sql.clone();
        let stmt = Loaded::<C::Backend, T, _> {
            query: &*query.0,
            sql: &text,
            rows: &rows,
            _db: std::marker::PhantomData,
        };
        core.finish_write(&plan, &stmt, &images, Some(second_rows), differ_rows)?;
        Ok(DoubleWriteCursor::buffered(cursor, rows))
    }
}

/// Loads `source` on `slot` (connected already), counting the outcome.
fn load_side<'conn, 'query, C, B, T>(
    env: &SideEnv<'_>,
    slot: &'conn mut SideConn<C>,
    side: Side,
    source: T,
) -> QueryResult<<C as LoadConnection<B>>::Cursor<'conn, 'query>>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend + QueryMetadata<T::SqlType>,
    T: Query + QueryFragment<C::Backend> + QueryId + 'query,
{
    let start = Instant::now();
    let SideConn { conn, lost } = slot;
    let conn = conn
        .as_mut()
        .expect("diesel-rw: the side's connection is open (ensured)");
    let loaded = <C as LoadConnection<B>>::load(conn, source);
    count(env.ctx, side, start, lost, &loaded);
    loaded
}

/// Loads `source` on `slot` (connected already) and reads every row, counting the outcome: the
/// cursor, read to its end, and the rows.
#[allow(clippy::type_complexity)]
fn load_all<'conn, 'query, C, B, T>(
    env: &SideEnv<'_>,
    slot: &'conn mut SideConn<C>,
    side: Side,
    source: T,
) -> QueryResult<(
    <C as LoadConnection<B>>::Cursor<'conn, 'query>,
    Vec<<C as LoadConnection<B>>::Row<'conn, 'query>>,
)>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend + QueryMetadata<T::SqlType>,
    T: Query + QueryFragment<C::Backend> + QueryId + 'query,
{
    let start = Instant::now();
    let SideConn { conn, lost } = slot;
    let conn = conn
        .as_mut()
        .expect("diesel-rw: the side's connection is open (ensured)");
    let rows = <C as LoadConnection<B>>::load(conn, source).and_then(|mut cursor| {
        let rows = cursor.by_ref().collect::<QueryResult<Vec<_>>>()?;
        Ok((cursor, rows))
    });
    count(env.ctx, side, start, lost, &rows);
    rows
}

/// Counts `result` on `side`, and marks the connection `lost` if the error says so.
pub(super) fn count<T>(
    ctx: &DoubleWriteContext,
    side: Side,
    start: Instant,
    lost: &mut bool,
    result: &QueryResult<T>,
) {
    match result {
        Ok(_) => ctx.metrics().success(side, start.elapsed()),
        Err(error) => {
            ctx.metrics().failure(side, start.elapsed());
            if connection_lost(error) {
                *lost = true;
            }
        }
    }
}

/// Runs `source` on `conn` and reads every row, keeping their images for comparison.
fn drain_images<C, B, T>(conn: &mut C, source: &T) -> QueryResult<Vec<RowImage>>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend + QueryMetadata<T::SqlType>,
    T: Query + QueryFragment<C::Backend> + QueryId,
{
    let cursor = <C as LoadConnection<B>>::load(conn, source)?;
    cursor
        .map(|row| row.map(|row| row_image::<C::Backend, _>(&row)))
        .collect()
}

/// For diesel-async's `SyncConnectionWrapper<DoubleWriteConnection<SqliteConnection>>`: SQLite
/// needs no type metadata lookup.
impl<C> diesel::connection::WithMetadataLookup for DoubleWriteConnection<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend + diesel::sql_types::TypeMetadata<MetadataLookup = ()>,
{
    fn metadata_lookup(&mut self) -> &mut () {
        // A zero-sized value: leaking it allocates nothing.
        Box::leak(Box::new(()))
    }
}

impl<C> R2D2Connection for DoubleWriteConnection<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    /// Pings the first side of the current pattern; in strict mode also the second. (In
    /// lenient mode a second side that is down does not make the connection invalid: its
    /// writes are journaled and it reconnects when it is back.)
    fn ping(&mut self) -> QueryResult<()> {
        let pattern = self.core.statement_pattern()?;
        self.attempt(pattern.first(), C::ping)?;
        if let (Some(second), true) = (pattern.second(), self.core.ctx.is_strict()) {
            self.attempt(second, C::ping)?;
        }
        Ok(())
    }

    fn is_broken(&mut self) -> bool {
        <DoubleWriteTransactionManager as TransactionManager<Self>>::is_broken_transaction_manager(
            self,
        )
    }
}

impl<C> MigrationConnection for DoubleWriteConnection<C>
where
    C: MigrationConnection + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    /// Sets up diesel's migrations table on the sides the pattern writes to (a write). The
    /// migrations a harness runs through this connection are writes too, and its reads of the
    /// migrations table go to the read side.
    fn setup(&mut self) -> QueryResult<usize> {
        self.write(|| "<migrations setup>".into(), C::setup, same)
    }
}

impl<Changes, Output, C> UpdateAndFetchResults<Changes, Output> for DoubleWriteConnection<C>
where
    C: UpdateAndFetchResults<Changes, Output> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
    Changes: Copy,
{
    /// `save_changes` is a write: on the first side, then the second; the first side's result
    /// is returned (the two results are not compared).
    fn update_and_fetch(&mut self, changeset: Changes) -> QueryResult<Output> {
        self.write(
            || "<save_changes>".into(),
            |c| c.update_and_fetch(changeset),
            same,
        )
    }
}
