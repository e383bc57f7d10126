//! [`sync_sequences`](DoubleWriteConnection::sync_sequences) for PostgreSQL: sets the
//! destination's sequences to the source's values.
//!
//! Both sides of a double write generate their own keys. Rows inserted with generated keys
//! (`SERIAL`, `IDENTITY`) get the same key on both sides only while both sequences are at the same
//! value and every insert reaches both sides in the same order; concurrent inserts, a failed
//! second-side write or a row written on one side alone make them diverge (the journal records
//! each [`Divergence`](super::EntryKind::Divergence) it sees in `RETURNING` rows). So write
//! explicit keys during a migration (ids taken from the source, UUIDs), or at least call
//! `sync_sequences()` before the destination starts to generate keys (before `DstFirst`), and
//! check the journal.

use diesel::connection::LoadConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::connection::DoubleWriteConnection;
use super::pattern::Side;
use crate::error::Error;

/// What [`sync_sequences`](DoubleWriteConnection::sync_sequences) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SequenceSync {
    /// Sequences set on the destination: schema-qualified name and the value set.
    pub synced: Vec<(String, i64)>,
    /// Sequences already further on the destination, left as they were (lowering them would
    /// make them issue values they already issued): name, source value, destination value.
    pub ahead: Vec<(String, i64, i64)>,
    /// Sequences of the source that the destination does not have.
    pub missing: Vec<String>,
}

#[derive(QueryableByName)]
struct SequenceRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_value: Option<i64>,
}

/// Every sequence the user can see, schema-qualified and quoted, with its last value (`NULL`
/// before its first use).
const SEQUENCES: &str = "SELECT format('%I.%I', schemaname, sequencename) AS name, last_value \
     FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1";

impl<C> DoubleWriteConnection<C>
where
    C: R2D2Connection + LoadConnection + Connection<Backend = Pg> + 'static,
{
    /// Sets every sequence of the destination to its value on the source (same schema and name),
    /// unless the destination's is already further. Sequences the source has never used are
    /// left alone. Run it outside a transaction, before the destination generates keys (before
    /// `DstFirst`).
    ///
    /// Both sides of a double write generate their own keys, so rows inserted with generated
    /// keys get the same key on both sides only while both sequences agree and every insert
    /// reaches both sides in the same order; concurrent inserts, a failed second-side write or a
    /// row written on one side alone make them diverge (each divergence seen in `RETURNING` rows
    /// is journaled). Explicit keys (ids taken from the source, UUIDs) avoid the problem; synced
    /// sequences only make it rarer.
    pub fn sync_sequences(&mut self) -> Result<SequenceSync, Error> {
        if self.tx.is_some() {
            return Err(Error::InvalidState(
                "sync_sequences() inside a transaction: run it outside one".into(),
            ));
        }
        let source: Vec<SequenceRow> =
            self.with_side(Side::Source, |c| diesel::sql_query(SEQUENCES).load(c))??;
        let destination: Vec<SequenceRow> =
            self.with_side(Side::Destination, |c| diesel::sql_query(SEQUENCES).load(c))??;
        let mut report = SequenceSync::default();
        for seq in source {
            let Some(value) = seq.last_value else {
                continue;
            };
            match destination.iter().find(|d| d.name == seq.name) {
                None => report.missing.push(seq.name),
                Some(dst) if dst.last_value.is_some_and(|v| v > value) => {
                    report
                        .ahead
                        .push((seq.name, value, dst.last_value.unwrap_or(value)));
                }
                Some(_) => {
                    self.with_side(Side::Destination, |c| {
                        diesel::select(
                            diesel::dsl::sql::<BigInt>("setval(")
                                .bind::<Text, _>(&seq.name)
                                .sql("::regclass, ")
                                .bind::<BigInt, _>(value)
                                .sql(", ")
                                .bind::<Bool, _>(true)
                                .sql(")"),
                        )
                        .get_result::<i64>(c)
                    })??;
                    report.synced.push((seq.name, value));
                }
            }
        }
        tracing::info!(target: "diesel_rw::double_write", synced = report.synced.len(), ahead = report.ahead.len(), missing = report.missing.len(), "sequences synced to the destination");
        Ok(report)
    }
}
