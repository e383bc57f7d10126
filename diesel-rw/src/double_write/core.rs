//! The double-write contract, decided once for the sync and the async connection: which side a
//! statement goes to, in which order, what a result on each side means, and what is journaled.
//!
//! [`DwCore`] is the part of a double-write connection that is not a database connection: the
//! shared context, the transaction state, the pattern of the last statement and the
//! instrumentation. The two connection types hold a `DwCore` and two side connections, and run
//! the same steps, awaiting them or not:
//!
//! 1. [`DwCore::plan`] decides where the statement goes ([`Plan`]);
//! 2. the first side runs it; an error there is returned as it is and nothing reaches the
//!    second side (a write the first side rejects is never applied anywhere);
//! 3. the second side runs it (only if the first applied it);
//! 4. [`DwCore::finish_write`] compares the two results, journals what differs or failed, and
//!    in strict mode says exactly what holds.

use std::time::SystemTime;

use diesel::connection::{CacheSize, TransactionManagerStatus};
use diesel::result::QueryResult;

use super::backend::RowImage;
use super::context::DoubleWriteContext;
use super::journal::{self, count_binds, EntryKind, JournalEntry};
use super::pattern::{Pattern, Side};
use super::revealed::{Rendered, Revealed};
use super::transaction::{SecondState, TxState};
use crate::classify::StatementKind;
use crate::error::Error;
use crate::instrument::Own;

/// What a double-write connection keeps besides its two side connections.
pub(super) struct DwCore {
    pub(super) ctx: DoubleWriteContext,
    pub(super) status: TransactionManagerStatus,
    pub(super) tx: Option<TxState>,
    pub(super) last_pattern: Option<Pattern>,
    /// Set by `set_instrumentation`; every side connection reports to it.
    pub(super) instrumentation: Own,
    pub(super) cache_size: Option<CacheSize>,
}

/// What a side connection needs of its double-write connection while it connects and runs a
/// statement (`Sync`, so the async connection's futures that hold it stay `Send`).
pub(super) struct SideEnv<'a> {
    pub(super) ctx: &'a DoubleWriteContext,
    pub(super) in_transaction: bool,
    pub(super) cache_size: Option<CacheSize>,
    pub(super) instrumentation: Option<&'a crate::instrument::Shared>,
}

/// Where one statement goes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    /// The pattern it follows (the open transaction's, or the switch's).
    pub(super) pattern: Pattern,
    /// The side that runs it first (for a read, the only side).
    pub(super) first: Side,
    /// The side that runs it after the first applied it: `None` for a read, for a pattern with
    /// one side, and inside a transaction whose second side already failed.
    pub(super) second: Option<Side>,
    /// The depth of the open transaction (0 outside one).
    pub(super) depth: u32,
}

impl DwCore {
    pub(super) fn new(ctx: DoubleWriteContext) -> Self {
        DwCore {
            ctx,
            status: TransactionManagerStatus::default(),
            tx: None,
            last_pattern: None,
            instrumentation: Own::default(),
            cache_size: None,
        }
    }

    /// What a side connection needs while it connects and runs a statement.
    pub(super) fn env(&self) -> SideEnv<'_> {
        SideEnv {
            ctx: &self.ctx,
            in_transaction: self.tx.is_some(),
            cache_size: self.cache_size,
            instrumentation: self.instrumentation.shared(),
        }
    }

    /// The `Debug` form of a connection holding this core.
    pub(super) fn debug(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("source", &self.ctx.node(Side::Source))
            .field("destination", &self.ctx.node(Side::Destination))
            .field("pattern", &self.ctx.switch().get())
            .field("transaction_pattern", &self.tx.as_ref().map(|t| t.pattern))
            .field("strict", &self.ctx.is_strict())
            .finish_non_exhaustive()
    }

    /// The shared context.
    pub(super) fn ctx(&self) -> &DoubleWriteContext {
        &self.ctx
    }

    /// The pattern the next statement will follow: the open transaction's, or the switch's.
    pub(super) fn pattern(&self) -> Pattern {
        self.tx
            .as_ref()
            .map_or_else(|| self.ctx().switch().get(), |tx| tx.pattern)
    }

    /// Fails if `pattern` needs a destination and none is configured.
    pub(super) fn check_pattern(&self, pattern: Pattern) -> Result<(), Error> {
        if self.ctx().url(Side::Destination).is_none()
            && (pattern.first() == Side::Destination || pattern.is_double())
        {
            return Err(Error::InvalidState(format!(
                "pattern `{pattern}` needs a destination and this connection has none (it was opened from a plain URL): open it with `source=URL destination=URL`, or keep the switch at `src_only`"
            )));
        }
        Ok(())
    }

    /// The pattern of the next statement (or `BEGIN`), checked and remembered.
    pub(super) fn statement_pattern(&mut self) -> Result<Pattern, Error> {
        let pattern = self.pattern();
        self.check_pattern(pattern)?;
        self.last_pattern = Some(pattern);
        Ok(pattern)
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

    /// Where a statement of `kind` goes: a read to the side the pattern reads from; a write to
    /// the first side, then to the second if the pattern has one and (inside a transaction) the
    /// second side's transaction has not failed.
    pub(super) fn plan(&mut self, kind: StatementKind) -> Result<Plan, Error> {
        let pattern = self.statement_pattern()?;
        let depth = self.depth();
        if kind.is_read() {
            return Ok(Plan {
                pattern,
                first: pattern.reads_from(),
                second: None,
                depth,
            });
        }
        // Not inside a transaction whose second side failed, or that runs on one side only
        // (a read-only transaction).
        let second = pattern.second().filter(|_| {
            !matches!(
                self.tx.as_ref().map(|tx| &tx.second),
                Some(SecondState::Broken { .. } | SecondState::Single)
            )
        });
        Ok(Plan {
            pattern,
            first: pattern.first(),
            second,
            depth,
        })
    }

    /// After a write: the first side applied it (`first`), and `second` is how it went on the
    /// second side (`None` if it was not sent there). Journals a difference or a failure; in
    /// strict mode a second-side failure is the error returned.
    pub(super) fn finish_write<T>(
        &mut self,
        plan: &Plan,
        sql: &dyn Rendered,
        first: &T,
        second: Option<QueryResult<T>>,
        differ: fn(Side, Side, &T, &T) -> Option<String>,
    ) -> QueryResult<()> {
        if let Some(tx) = &mut self.tx {
            tx.mark_wrote();
        }
        if let (Some(tx), true) = (&mut self.tx, plan.pattern.is_double()) {
            // Its binds too: a partial commit journals it later, with its keys.
            tx.record_write(plan.depth, sql.sql(), sql.revealed());
        }
        let (Some(side), Some(result)) = (plan.second, second) else {
            return Ok(());
        };
        match result {
            Ok(other) => {
                if let Some(difference) = differ(plan.first, side, first, &other) {
                    let entry = self.entry(plan, EntryKind::Divergence, side, sql, difference);
                    record(self.ctx(), entry);
                }
                Ok(())
            }
            Err(error) => self.second_failed(plan, side, sql, error),
        }
    }

    /// A write failed on the first side. Nothing reached the second side; the first side's own
    /// error is returned, unless its connection broke while the write was in flight: then it
    /// may be applied there, which is journaled (outside a transaction; inside one the
    /// transaction cannot commit on that connection anyway) and returned as
    /// [`Error::WriteOutcomeUnknown`].
    pub(super) fn first_failed(
        &mut self,
        plan: &Plan,
        sql: &dyn Rendered,
        error: diesel::result::Error,
    ) -> diesel::result::Error {
        if !super::connection::connection_lost(&error)
            || matches!(
                &error,
                diesel::result::Error::QueryBuilderError(e)
                    if matches!(e.downcast_ref::<Error>(), Some(Error::SideUnavailable { .. }))
            )
        {
            // Refused by the server, or never sent (no connection): not applied.
            return error;
        }
        let error = Error::from_diesel(error);
        let node = self.ctx.node(plan.first).unwrap_or_default().to_owned();
        if let (Some(second), None) = (plan.second, &self.tx) {
            let entry = self.entry(
                plan,
                EntryKind::WriteFailed,
                second,
                sql,
                format!("outcome unknown: the connection to the {} broke while it was in flight, so it may be applied there; it was not sent to the {second}: {error}", plan.first),
            );
            record(&self.ctx, entry);
        }
        Error::WriteOutcomeUnknown {
            node,
            sql: sql.sql(),
            detail: match plan.second {
                Some(second) => format!(" (the {}); it was not sent to the {second}", plan.first),
                None => format!(" (the {})", plan.first),
            },
            source: Box::new(error),
        }
        .into()
    }

    /// The first side applied a write and the second failed: journal it (outside a transaction)
    /// or mark the second side's transaction failed (inside one); in strict mode, say so.
    fn second_failed(
        &mut self,
        plan: &Plan,
        second: Side,
        stmt: &dyn Rendered,
        error: diesel::result::Error,
    ) -> QueryResult<()> {
        let sql = stmt.sql();
        // A connection that broke while the write was in flight may have applied it.
        let outcome_unknown = super::connection::connection_lost(&error)
            && !matches!(
                &error,
                diesel::result::Error::QueryBuilderError(e)
                    if matches!(e.downcast_ref::<Error>(), Some(Error::SideUnavailable { .. }))
            );
        let error = Error::from_diesel(error);
        let in_transaction = self.tx.is_some();
        match &mut self.tx {
            Some(tx) => tx.break_second(plan.depth, format!("`{sql}` failed there: {error}")),
            None => {
                let what = if outcome_unknown {
                    format!("outcome unknown (the connection broke while it was in flight; it may be applied there): {error}")
                } else {
                    error.to_string()
                };
                let entry = self.entry(plan, EntryKind::WriteFailed, second, stmt, what);
                record(self.ctx(), entry);
            }
        }
        if self.ctx().is_strict() {
            return Err(Error::SecondaryWriteFailed {
                applied: plan.first,
                failed: second,
                sql,
                in_transaction,
                outcome_unknown,
                source: Box::new(error),
            }
            .into());
        }
        Ok(())
    }

    /// A journal entry for a statement run under `plan`.
    fn entry(
        &self,
        plan: &Plan,
        kind: EntryKind,
        side: Side,
        sql: &dyn Rendered,
        error: String,
    ) -> JournalEntry {
        entry(
            plan.pattern,
            self.tx.is_some(),
            kind,
            side,
            (sql.sql(), sql.revealed()),
            error,
        )
    }
}

/// The accessors every double-write connection (sync and async) has: they read its
/// [`DwCore`] (`self.core`) and its sides (`self.sides`).
macro_rules! dw_accessors {
    () => {
        /// What this connection shares with the others of its pool: switch, journal, metrics.
        pub fn context(&self) -> &DoubleWriteContext {
            &self.core.ctx
        }

        /// The switch this connection follows.
        pub fn switch(&self) -> &PatternSwitch {
            self.core.ctx.switch()
        }

        /// The pattern the next statement will follow: the open transaction's, or the
        /// switch's.
        pub fn pattern(&self) -> Pattern {
            self.core.pattern()
        }

        /// The pattern the last statement (or transaction `BEGIN`) followed, if any ran.
        pub fn last_pattern(&self) -> Option<Pattern> {
            self.core.last_pattern
        }

        /// The pattern of the open transaction, if one is open.
        pub fn transaction_pattern(&self) -> Option<Pattern> {
            self.core.tx.as_ref().map(|tx| tx.pattern)
        }

        /// Whether `side`'s connection is open (and not known to be lost).
        pub fn is_connected(&self, side: Side) -> bool {
            self.sides[side.index()].is_connected()
        }

        /// Gives the side connections of a double write over two clusters back to their pools
        /// (outside a transaction), so that the next checkout of this connection starts with
        /// fresh routing state on each side (no stickiness carried from one checkout to the
        /// next). A connection over two plain databases keeps its side connections.
        pub(super) fn release_cluster_sides(&mut self) {
            if self.core.ctx.is_cluster() && self.core.tx.is_none() {
                self.sides = Default::default();
            }
        }

        pub(super) fn side_conn(&mut self, side: Side) -> &mut C {
            self.sides[side.index()]
                .conn
                .as_mut()
                .expect("diesel-rw: the side's connection is open (ensured)")
        }
    };
}
pub(super) use dw_accessors;

impl SideEnv<'_> {
    /// Whether `slot`'s open connection can run the next statement (`broken`: its transaction
    /// manager says it is broken); if not, the slot is emptied for a new connection, which a
    /// transaction cannot take: then the error.
    pub(super) fn keep<C>(
        &self,
        slot: &mut super::connection::SideConn<C>,
        side: Side,
        broken: impl FnOnce(&mut C) -> bool,
    ) -> Result<bool, Error> {
        if let Some(conn) = &mut slot.conn {
            if !slot.lost && (self.in_transaction || !broken(conn)) {
                return Ok(true);
            }
            if self.in_transaction {
                return Err(Error::InvalidState(format!(
                    "the connection to the {side} was lost during the open transaction; roll the transaction back and run it again"
                )));
            }
        }
        *slot = super::connection::SideConn::default();
        Ok(false)
    }

    /// The URL of `side`, to connect to it.
    pub(super) fn url(&self, side: Side) -> Result<&crate::url::NodeUrl, Error> {
        self.ctx
            .url(side)
            .ok_or_else(|| Error::InvalidState(format!("this connection has no {side} configured")))
    }
}

/// A journal entry for a statement (its SQL text and what it revealed) run under `pattern`.
pub(super) fn entry(
    pattern: Pattern,
    in_transaction: bool,
    kind: EntryKind,
    side: Side,
    (sql, revealed): (String, Revealed),
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
        revealed,
    }
}

/// Journals `entry` and counts it.
pub(super) fn record(ctx: &DoubleWriteContext, entry: JournalEntry) {
    ctx.metrics().journaled(entry.side);
    journal::record(ctx.journal(), entry);
}

/// Affected row counts that differ between the sides.
pub(super) fn differ_counts(first: Side, second: Side, a: &usize, b: &usize) -> Option<String> {
    (a != b).then(|| format!("affected rows differ: {a} on the {first}, {b} on the {second}"))
}

/// Results that are not compared.
pub(super) fn same<T>(_: Side, _: Side, _: &T, _: &T) -> Option<String> {
    None
}

/// The rows two sides returned for one write, compared field by field (values are not shown:
/// they may be personal data).
// `&Vec`: it is the `differ` of `finish_write::<Vec<RowImage>>`.
#[allow(clippy::ptr_arg)]
pub(super) fn differ_rows(
    first: Side,
    second: Side,
    a: &Vec<RowImage>,
    b: &Vec<RowImage>,
) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!(
            "the {first} returned {} rows, the {second} {}",
            a.len(),
            b.len()
        ));
    }
    let (index, (x, y)) = a.iter().zip(b).enumerate().find(|(_, (x, y))| x != y)?;
    let fields: Vec<String> = (0..x.len().max(y.len()))
        .filter(|&i| x.get(i) != y.get(i))
        .map(|i| i.to_string())
        .collect();
    Some(format!(
        "row {index} returned by the {first} differs from the {second}'s in field(s) {}",
        fields.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_compared_by_count_then_field() {
        let row = |v: &[u8]| vec![Some(v.to_vec()), None];
        let (s, d) = (Side::Source, Side::Destination);
        assert_eq!(differ_rows(s, d, &vec![row(b"1")], &vec![row(b"1")]), None);
        assert_eq!(
            differ_rows(s, d, &vec![row(b"1")], &vec![]).unwrap(),
            "the source returned 1 rows, the destination 0"
        );
        assert_eq!(
            differ_rows(
                s,
                d,
                &vec![row(b"1"), row(b"2")],
                &vec![row(b"1"), row(b"3")]
            )
            .unwrap(),
            "row 1 returned by the source differs from the destination's in field(s) 0"
        );
    }
}
