//! [`DoubleWriteConnection`]: a diesel connection over a source and a destination database.

use std::fmt;
use std::time::{Instant, SystemTime};

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
use super::cursor::{DoubleWriteCursor, RowCheck};
use super::health::{HealthReport, SideHealth};
use super::journal::{self, count_binds, EntryKind, JournalEntry};
use super::pattern::{Pattern, Side};
use super::switch::PatternSwitch;
use super::transaction::{DoubleWriteTransactionManager, SecondState, TxState};
use crate::classify::{classify_query, classify_sql, StatementKind};
use crate::error::Error;

/// A diesel [`Connection`] that double-writes to a source and a destination database of the same
/// backend, following the [`Pattern`] of its [`PatternSwitch`].
///
/// - **Reads** go to the source under `SrcOnly`/`SrcFirst`, to the destination under
///   `DstFirst`/`DstOnly`.
/// - **Writes** (classified by their SQL text like [`RwConnection`](crate::RwConnection)'s:
///   unknown is a write) go to the first side, then to the second only if the first applied them.
///   A write that arrives through `load` (`get_result` on `INSERT/UPDATE ... RETURNING`, or
///   another write-classified query such as `SELECT ... FOR UPDATE`) runs on the second side
///   first and is drained there, then on the first side, whose cursor is returned: the statement
///   is moved into that cursor, so it cannot be run after it. As the cursor is read, each row is
///   compared with the second side's (the raw field values, see
///   [`DoubleWriteBackend::value_image`]); rows that differ, a different number of rows, or an
///   `execute` whose affected row counts differ, are journaled as an
///   [`EntryKind::Divergence`]. A cursor dropped before its end is read to its end, so that the
///   comparison is complete and the statement has run (SQLite runs a statement as it is read).
/// - **Failures**: in lenient mode (the default) a second-side failure is counted, journaled,
///   and the call returns the first side's result. In strict mode the call returns
///   [`Error::SecondaryWriteFailed`] (or, for a write through `load` that the second side applied
///   and the first refused, [`Error::FirstWriteFailed`]), which say the write is applied and must
///   not be repeated. Both modes send the same statements; they differ in what the call
///   returns, except at a transaction's `BEGIN` (see below).
/// - **Transactions** begin on both sides (the first, then the second) and keep the pattern they
///   began with. Commit commits the first side, then the second; rollback rolls back both.
///   Savepoints are mirrored; [`begin_test_transaction`](Connection::begin_test_transaction)
///   runs on both. When the second side cannot begin, the first side's BEGIN is rolled back and
///   the error returned, in either mode (nothing was written: the caller can run the
///   transaction again); a savepoint the second side refuses inside a running transaction is an
///   error in strict mode, and in lenient mode leaves that side broken for the rest of the
///   transaction. When a statement fails on the second side inside a transaction, nothing more is
///   sent there (on PostgreSQL its transaction is aborted anyway), and at commit its transaction
///   is rolled back; every write of the transaction is then journaled as a
///   [`EntryKind::PartialCommit`], as when the second commit fails after the first succeeded. In
///   strict mode such a commit returns [`Error::PartialCommit`]. A failure inside a savepoint
///   that is then rolled back on both sides leaves nothing to journal.
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
/// An [`RwPool<DoubleWriteConnection<C>>`](crate::RwPool) opens its replicas with their plain
/// URLs, and its primary with the string given as the primary's URL: give it `shared=NAME`, so
/// that every primary connection follows one switch and feeds one journal (and the string the
/// pool shows in its logs holds no password).
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
    pub(super) ctx: DoubleWriteContext,
    pub(super) sides: [SideConn<C>; 2],
    pub(super) status: TransactionManagerStatus,
    pub(super) tx: Option<TxState>,
    last_pattern: Option<Pattern>,
    instrumentation: Option<Box<dyn Instrumentation>>,
    cache_size: Option<CacheSize>,
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

impl<C: R2D2Connection + 'static> fmt::Debug for DoubleWriteConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoubleWriteConnection")
            .field("source", &self.ctx.node(Side::Source))
            .field("destination", &self.ctx.node(Side::Destination))
            .field("pattern", &self.ctx.switch().get())
            .field("transaction_pattern", &self.tx.as_ref().map(|t| t.pattern))
            .field("strict", &self.ctx.is_strict())
            .finish_non_exhaustive()
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
        let mut conn = DoubleWriteConnection {
            ctx: context,
            sides: Default::default(),
            status: TransactionManagerStatus::default(),
            tx: None,
            last_pattern: None,
            instrumentation: diesel::connection::get_default_instrumentation(),
            cache_size: None,
        };
        let pattern = conn.ctx.switch().get();
        conn.check_pattern(pattern)?;
        conn.ensure(pattern.first())?;
        if let Some(second) = pattern.second() {
            if let Err(e) = conn.ensure(second) {
                tracing::warn!(target: "diesel_rw::double_write", %second, error = %e, "second side unavailable; will connect at its next statement");
            }
        }
        Ok(conn)
    }

    /// A connection that has not connected any side yet (for health checks).
    pub(crate) fn unconnected(context: DoubleWriteContext) -> Self {
        DoubleWriteConnection {
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
    /// inspect or repair one side, or for what diesel-rw cannot see. Nothing is mirrored,
    /// counted or journaled.
    pub fn with_side<T>(&mut self, side: Side, f: impl FnOnce(&mut C) -> T) -> Result<T, Error> {
        self.ensure(side)?;
        Ok(f(self.side_conn(side)))
    }

    /// Pings both sides (connecting them if needed) and says which failed.
    pub fn health_check(&mut self) -> HealthReport {
        let mut check = |side: Side| {
            let node = self.ctx.node(side)?.to_owned();
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
    pub(super) fn ensure(&mut self, side: Side) -> Result<(), Error> {
        let in_transaction = self.tx.is_some();
        let slot = &mut self.sides[side.index()];
        if let Some(conn) = &mut slot.conn {
            let usable = !slot.lost && (in_transaction || !conn.is_broken());
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
        let url = self.ctx.url(side).ok_or_else(|| {
            Error::InvalidState(format!("this connection has no {side} configured"))
        })?;
        let start = Instant::now();
        let mut conn = match C::establish(url.expose()) {
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
        if let Some(hook) = self.ctx.on_connect::<C>() {
            hook(side, &mut conn)?;
        }
        self.sides[side.index()].conn = Some(conn);
        Ok(())
    }

    /// Runs `op` once on `side`: connects it if needed, counts the outcome, and marks the
    /// connection lost if the error says so.
    pub(super) fn attempt<T>(
        &mut self,
        side: Side,
        op: impl FnOnce(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        match self.ensure(side) {
            Ok(()) => self.step(side, op),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `op` once on `side`'s connection as it is (no reconnect: for transaction steps),
    /// counting the outcome and marking the connection lost if the error says so.
    pub(super) fn step<T>(
        &mut self,
        side: Side,
        op: impl FnOnce(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let start = Instant::now();
        let slot = &mut self.sides[side.index()];
        let result = match slot.conn.as_mut() {
            Some(conn) => op(conn),
            None => Err(Error::InvalidState(format!("the {side} is not connected")).into()),
        };
        observe(&self.ctx, slot, side, start, &result);
        result
    }

    /// Runs `op` on `side`, retrying what provably did not apply (never inside a transaction).
    pub(super) fn run_on<T>(
        &mut self,
        side: Side,
        mut op: impl FnMut(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let retry = self.ctx.retry();
        let allowed = self.tx.is_none();
        let mut tries = 0;
        retry.run(
            allowed,
            || {
                if tries > 0 {
                    self.ctx.metrics().retry(side);
                }
                tries += 1;
                self.attempt(side, &mut op)
            },
            |_, _| {},
        )
    }

    /// Makes sure `side` is connected, retrying a failed connect per the retry policy.
    fn ensure_retrying(&mut self, side: Side) -> QueryResult<()> {
        self.run_on(side, |_| Ok(()))
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

    /// Runs a read on the read side of the pattern.
    fn read<T>(&mut self, op: impl FnMut(&mut C) -> QueryResult<T>) -> QueryResult<T> {
        let pattern = self.statement_pattern()?;
        self.run_on(pattern.reads_from(), op)
    }

    /// Runs a write on the first side, then on the second if the first applied it. `differ`
    /// compares the two results and says how they differ.
    fn write<T>(
        &mut self,
        sql: impl Fn() -> String,
        mut op: impl FnMut(&mut C) -> QueryResult<T>,
        differ: impl FnOnce(Side, Side, &T, &T) -> Option<String>,
    ) -> QueryResult<T> {
        let pattern = self.statement_pattern()?;
        let first = pattern.first();
        let value = self.run_on(first, &mut op)?;
        let depth = self.depth();
        let Some(second) = self.second_of(pattern) else {
            record_tx_write(&mut self.tx, depth, &sql);
            return Ok(value);
        };
        let other = self.run_on(second, &mut op);
        record_tx_write(&mut self.tx, depth, &sql);
        match other {
            Ok(other) => {
                if let Some(difference) = differ(first, second, &value, &other) {
                    let in_transaction = self.tx.is_some();
                    let entry = entry(
                        pattern,
                        in_transaction,
                        EntryKind::Divergence,
                        second,
                        sql(),
                        difference,
                    );
                    record(&self.ctx, entry);
                }
                Ok(value)
            }
            Err(error) => {
                second_failed(
                    &self.ctx,
                    &mut self.tx,
                    depth,
                    pattern,
                    second,
                    sql(),
                    error,
                )?;
                Ok(value)
            }
        }
    }

    /// Routes a statement of `kind`.
    fn run<T>(
        &mut self,
        kind: StatementKind,
        sql: impl Fn() -> String,
        op: impl FnMut(&mut C) -> QueryResult<T>,
        differ: impl FnOnce(Side, Side, &T, &T) -> Option<String>,
    ) -> QueryResult<T> {
        match kind {
            StatementKind::Read => self.read(op),
            StatementKind::Write => self.write(sql, op, differ),
        }
    }
}

/// Counts `result` on `side` and marks the connection lost if the error says so.
pub(super) fn observe<C, T>(
    ctx: &DoubleWriteContext,
    slot: &mut SideConn<C>,
    side: Side,
    start: Instant,
    result: &QueryResult<T>,
) {
    match result {
        Ok(_) => ctx.metrics().success(side, start.elapsed()),
        Err(error) => {
            ctx.metrics().failure(side, start.elapsed());
            if connection_lost(error) {
                slot.lost = true;
            }
        }
    }
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

/// Remembers a write of a two-sided transaction, for the journal should the second side not
/// commit.
pub(super) fn record_tx_write(tx: &mut Option<TxState>, depth: u32, sql: &dyn Fn() -> String) {
    if let Some(tx) = tx {
        if tx.pattern.is_double() {
            tx.record_write(depth, sql());
        }
    }
}

/// A journal entry for a statement run under `pattern`.
pub(super) fn entry(
    pattern: Pattern,
    in_transaction: bool,
    kind: EntryKind,
    side: Side,
    sql: String,
    error: String,
) -> JournalEntry {
    JournalEntry {
        kind,
        side,
        binds: count_binds(&sql),
        sql,
        error,
        at: SystemTime::now(),
        pattern,
        in_transaction,
    }
}

/// Journals `entry` and counts it.
pub(super) fn record(ctx: &DoubleWriteContext, entry: JournalEntry) {
    ctx.metrics().journaled(entry.side);
    journal::record(ctx.journal(), entry);
}

/// The first side applied a write and the second failed: journal it (outside a transaction) or
/// mark the second side's transaction failed (inside one); in strict mode, say so.
pub(super) fn second_failed(
    ctx: &DoubleWriteContext,
    tx: &mut Option<TxState>,
    depth: u32,
    pattern: Pattern,
    second: Side,
    sql: String,
    error: diesel::result::Error,
) -> QueryResult<()> {
    let first = pattern.first();
    let error = Error::from_diesel(error);
    let in_transaction = tx.is_some();
    match tx {
        Some(tx) => tx.break_second(depth, format!("`{sql}` failed there: {error}")),
        None => {
            let entry = entry(
                pattern,
                false,
                EntryKind::WriteFailed,
                second,
                sql.clone(),
                error.to_string(),
            );
            record(ctx, entry);
        }
    }
    if ctx.is_strict() {
        return Err(Error::SecondaryWriteFailed {
            applied: first,
            failed: second,
            sql,
            in_transaction,
            source: Box::new(error),
        }
        .into());
    }
    Ok(())
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

/// Affected row counts that differ between the sides.
pub(super) fn differ_counts(first: Side, second: Side, a: &usize, b: &usize) -> Option<String> {
    (a != b).then(|| format!("affected rows differ: {a} on the {first}, {b} on the {second}"))
}

/// Results that are not compared.
pub(super) fn same<T>(_: Side, _: Side, _: &T, _: &T) -> Option<String> {
    None
}

impl<C: R2D2Connection + 'static> ConnectionSealed for DoubleWriteConnection<C> {}

impl<C> SimpleConnection for DoubleWriteConnection<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        self.run(
            classify_sql(query),
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
        match &self.status {
            TransactionManagerStatus::Valid(valid) => {
                assert_eq!(None, valid.transaction_depth());
            }
            TransactionManagerStatus::InError => panic!("Transaction manager in error"),
        }
        self.begin(true)
    }

    fn execute_returning_count<T>(&mut self, source: &T) -> QueryResult<usize>
    where
        T: QueryFragment<Self::Backend> + QueryId,
    {
        self.run(
            classify_query::<C::Backend, T>(source),
            || render::<C::Backend, T>(source),
            |c| c.execute_returning_count(source),
            differ_counts,
        )
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
        let kind = classify_query::<C::Backend, T>(&source);
        let pattern = self.statement_pattern()?;
        let first = pattern.first();
        if kind.is_read() || !pattern.is_double() {
            self.ensure_retrying(first)?;
            let DoubleWriteConnection { ctx, sides, .. } = self;
            let (cursor, peeked) = load_side::<C, B, T>(ctx, sides, first, source, false)?;
            return Ok(DoubleWriteCursor::new(cursor, peeked, None));
        }
        // A two-sided write. Render it now: the statement is moved into the first side's cursor.
        let depth = self.depth();
        let sql = render::<C::Backend, T>(&source);
        // `None` inside a transaction whose second side failed: the first side alone.
        let second = self.second_of(pattern);
        // The second side first, drained, so that the first side's cursor can be returned.
        let expected =
            second.map(|second| self.run_on(second, |c| drain_images::<C, B, T>(c, &source)));
        if let Err(error) = self.ensure_retrying(first) {
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
        // The first side: load and read its first row, which makes sure the statement ran
        // (SQLite runs a statement as it is read).
        let DoubleWriteConnection { ctx, sides, tx, .. } = self;
        let (cursor, peeked) = match load_side::<C, B, T>(ctx, sides, first, source, true) {
            Ok(loaded) => loaded,
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
                Ok(DoubleWriteCursor::new(cursor, peeked, Some(check)))
            }
            (Some(second), Some(Err(error))) => {
                let mut cursor = DoubleWriteCursor::new(cursor, peeked, None);
                match second_failed(ctx, tx, depth, pattern, second, sql, error) {
                    Ok(()) => Ok(cursor),
                    Err(strict) => {
                        // The caller gets an error, not the rows: read them, so that the
                        // statement completes on the first side, where it is applied.
                        cursor.drain();
                        Err(strict)
                    }
                }
            }
            _ => Ok(DoubleWriteCursor::new(cursor, peeked, None)),
        }
    }
}

/// A write through `load` could not run on the first side of `pattern`; `expected` is how it
/// went on the second side (`None` if it was not sent there), which ran it first. If the second side applied it, that is
/// journaled (outside a transaction) or marks the second side's transaction failed (inside one),
/// and strict mode returns [`Error::FirstWriteFailed`].
pub(super) fn first_failed(
    ctx: &DoubleWriteContext,
    tx: &mut Option<TxState>,
    depth: u32,
    (pattern, second): (Pattern, Option<Side>),
    sql: &str,
    error: diesel::result::Error,
    expected: Option<QueryResult<Vec<RowImage>>>,
) -> diesel::result::Error {
    let (Some(second), Some(expected)) = (second, expected) else {
        return error;
    };
    let first = pattern.first();
    match (expected, tx) {
        (Ok(_), Some(tx)) => tx.break_second(
            depth,
            format!("`{sql}` was applied there and failed on the {first}: {error}"),
        ),
        (Ok(_), None) => {
            let entry = entry(
                pattern,
                false,
                EntryKind::WriteFailed,
                first,
                sql.to_owned(),
                format!("applied on the {second} only; on the {first}: {error}"),
            );
            record(ctx, entry);
        }
        (Err(second_error), Some(tx)) => {
            tx.break_second(depth, format!("`{sql}` failed there: {second_error}"));
            return error;
        }
        // Neither side applied it.
        (Err(_), None) => return error,
    }
    if ctx.is_strict() {
        Error::FirstWriteFailed {
            applied: second,
            failed: first,
            sql: sql.to_owned(),
            source: Box::new(Error::from_diesel(error)),
        }
        .into()
    } else {
        error
    }
}

/// The first row read ahead of the caller, if it was.
pub(super) type Peeked<'conn, 'query, C, B> =
    Option<Option<<C as LoadConnection<B>>::Row<'conn, 'query>>>;

/// Loads `source` on `side`, counting the outcome; with `peek`, reads the first row, so that an
/// error the statement raises when it runs is seen now.
fn load_side<'conn, 'query, C, B, T>(
    ctx: &DoubleWriteContext,
    sides: &'conn mut [SideConn<C>; 2],
    side: Side,
    source: T,
    peek: bool,
) -> QueryResult<(
    <C as LoadConnection<B>>::Cursor<'conn, 'query>,
    Peeked<'conn, 'query, C, B>,
)>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend + QueryMetadata<T::SqlType>,
    T: Query + QueryFragment<C::Backend> + QueryId + 'query,
{
    let start = Instant::now();
    let slot = &mut sides[side.index()];
    let conn = slot
        .conn
        .as_mut()
        .expect("diesel-rw: the side's connection is open (ensured)");
    let loaded = <C as LoadConnection<B>>::load(conn, source).and_then(|mut cursor| {
        if !peek {
            return Ok((cursor, None));
        }
        match cursor.next() {
            Some(Err(e)) => Err(e),
            Some(Ok(row)) => Ok((cursor, Some(Some(row)))),
            None => Ok((cursor, Some(None))),
        }
    });
    match loaded {
        Ok(loaded) => {
            ctx.metrics().success(side, start.elapsed());
            Ok(loaded)
        }
        Err(error) => {
            ctx.metrics().failure(side, start.elapsed());
            if connection_lost(&error) {
                slot.lost = true;
            }
            Err(error)
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
        let pattern = self.statement_pattern()?;
        self.attempt(pattern.first(), C::ping)?;
        if let (Some(second), true) = (pattern.second(), self.ctx.is_strict()) {
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
