//! The key-counter methods of [`DoubleWriteConnection`]: read, compare, sync, and the gate of
//! the step to `DstFirst`.

use diesel::connection::{Connection, LoadConnection};
use diesel::r2d2::R2D2Connection;

use super::{behind, plan_sync, CounterLag, KeyCounter, KeyCounterBackend, SequenceSync};
use crate::double_write::{DoubleWriteConnection, Pattern, Side};
use crate::error::Error;

impl<C> DoubleWriteConnection<C>
where
    C: R2D2Connection + LoadConnection + Connection<Backend: KeyCounterBackend> + 'static,
{
    /// Reads the generated-key counters of `side`'s database (see [`KeyCounter`] for what each
    /// backend counts), through that side's own connection (connecting it if needed); nothing
    /// is mirrored, counted or journaled. On MySQL/MariaDB, the tables of the connection's
    /// current database; on PostgreSQL, the sequences of every schema but `pg_catalog` and
    /// `information_schema`.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::connection::SimpleConnection;
    /// use diesel::prelude::*;
    /// use diesel_rw::double_write::{DoubleWriteConnection, Side};
    ///
    /// # let dir = std::env::temp_dir().join(format!("diesel-rw-key-counters-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
    /// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
    /// let spec = format!("source={} destination={} pattern=src_first", src.display(), dst.display());
    /// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec)?;
    /// conn.batch_execute(
    ///     "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT);
    ///      INSERT INTO t (x) VALUES ('a')",
    /// )?;
    /// for side in [Side::Source, Side::Destination] {
    ///     assert_eq!(conn.key_counters(side)?[0].value, Some(1));
    /// }
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn key_counters(&mut self, side: Side) -> Result<Vec<KeyCounter>, Error> {
        // In a transaction: on a cluster side it runs on the primary, whose counters are the
        // current ones (a replica's may be behind).
        Ok(self.with_side(side, |c| {
            c.transaction(|c| C::Backend::read_key_counters(c))
        })??)
    }

    /// Reads the generated-key counters of both sides and lists each of the destination's that
    /// is behind the source's: from `DstFirst` on, when the destination generates the keys, it
    /// would issue keys the source has already issued. A counter the source has not used is
    /// never behind; one the destination lacks (no such sequence or table) is not listed
    /// ([`sync_sequences`](Self::sync_sequences) reports it as missing).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::connection::SimpleConnection;
    /// use diesel::prelude::*;
    /// use diesel_rw::double_write::{DoubleWriteConnection, Side};
    ///
    /// # let dir = std::env::temp_dir().join(format!("diesel-rw-counters-behind-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
    /// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
    /// let spec = format!("source={} destination={} pattern=src_first", src.display(), dst.display());
    /// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec)?;
    /// conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")?;
    /// conn.batch_execute("INSERT INTO t (x) VALUES ('both sides')")?;
    /// assert!(conn.counters_behind()?.is_empty());
    /// conn.with_side(Side::Source, |c| c.batch_execute("INSERT INTO t (x) VALUES ('source only')"))??;
    /// assert_eq!(conn.counters_behind()?[0].to_string(), "t.id: source 2, destination 1");
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn counters_behind(&mut self) -> Result<Vec<CounterLag>, Error> {
        let source = self.key_counters(Side::Source)?;
        let destination = self.key_counters(Side::Destination)?;
        Ok(behind(&source, &destination))
    }

    /// Moves each generated-key counter of the destination that is behind the source's to the
    /// source's value (same table and column, or failing that the same name), never back: one
    /// already further is left as it is (lowering it would make it issue values it already
    /// issued). Counters the source has never used are left alone. Run it outside a
    /// transaction (inside one it is [`Error::InvalidState`]), before the destination generates
    /// keys (before `DstFirst`, which [`advance_pattern`](Self::advance_pattern) checks).
    ///
    /// - PostgreSQL: `setval(sequence, source's last_value, true)`;
    /// - MySQL/MariaDB: `ALTER TABLE t AUTO_INCREMENT = n` (DDL: it waits at most 10 s for the
    ///   table's metadata lock, and fails rather than queue every other statement on the table
    ///   behind it);
    /// - SQLite: `sqlite_sequence` is updated.
    ///
    /// A failure midway returns the error; the counters set so far stay set, and running it
    /// again is safe. Both sides of a double write generate their own keys, so rows inserted
    /// with generated keys get the same key on both sides only while both counters agree and
    /// every insert reaches both sides in the same order; concurrent inserts, a failed
    /// second-side write or a row written on one side alone make them diverge (each divergence
    /// seen in `RETURNING` rows is journaled). Explicit keys (ids taken from the source, UUIDs)
    /// avoid the problem; synced counters only make it rarer.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::connection::SimpleConnection;
    /// use diesel::prelude::*;
    /// use diesel_rw::double_write::{DoubleWriteConnection, Pattern, Side};
    ///
    /// # let dir = std::env::temp_dir().join(format!("diesel-rw-sync-sequences-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
    /// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
    /// let spec = format!("source={} destination={} pattern=src_first", src.display(), dst.display());
    /// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec)?;
    /// conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")?;
    /// conn.with_side(Side::Source, |c| c.batch_execute("INSERT INTO t (x) VALUES ('a'), ('b')"))??;
    /// assert_eq!(conn.sync_sequences()?.synced, [("t".to_owned(), 2)]);
    /// assert_eq!(conn.advance_pattern()?, Pattern::DstFirst);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn sync_sequences(&mut self) -> Result<SequenceSync, Error> {
        if self.transaction_pattern().is_some() {
            return Err(Error::InvalidState(super::IN_TRANSACTION.into()));
        }
        let source = self.key_counters(Side::Source)?;
        let destination = self.key_counters(Side::Destination)?;
        let (mut report, set) = plan_sync(&source, &destination);
        for (counter, value) in set {
            self.with_side(Side::Destination, |c| {
                C::Backend::set_key_counter(c, &counter, value)
            })??;
            report.synced.push((counter.name().to_owned(), value));
        }
        log_sync(&report);
        Ok(report)
    }

    /// Steps the pattern one phase forward, like
    /// [`switch().advance()`](crate::double_write::PatternSwitch::advance), but the step to
    /// `DstFirst` (where the destination starts to generate the keys) only when no
    /// generated-key counter of the destination is behind the source's
    /// ([`counters_behind`](Self::counters_behind)); otherwise it is
    /// [`Error::KeyCountersBehind`], naming each counter with both values, and nothing is
    /// switched. Returns the new pattern; at `DstOnly` it is [`Error::InvalidTransition`]. The
    /// check and the step see the same pattern: if another switch comes between them, the step
    /// is checked again from the new pattern.
    ///
    /// Run [`sync_sequences`](Self::sync_sequences) first, or, when every insert writes its
    /// keys explicitly, [`advance_pattern_forced`](Self::advance_pattern_forced).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::connection::SimpleConnection;
    /// use diesel::prelude::*;
    /// use diesel_rw::double_write::{DoubleWriteConnection, Pattern, Side};
    /// use diesel_rw::Error;
    ///
    /// # let dir = std::env::temp_dir().join(format!("diesel-rw-advance-pattern-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
    /// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
    /// let spec = format!("source={} destination={} pattern=src_only", src.display(), dst.display());
    /// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec)?;
    /// conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")?;
    /// conn.with_side(Side::Destination, |c| {
    ///     c.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")
    /// })??;
    /// conn.batch_execute("INSERT INTO t (x) VALUES ('a'), ('b')")?; // SrcOnly: the source only
    /// assert_eq!(conn.advance_pattern()?, Pattern::SrcFirst); // not gated
    ///
    /// let err = conn.advance_pattern().unwrap_err();
    /// assert!(matches!(&err, Error::KeyCountersBehind { behind } if behind.len() == 1));
    /// assert!(err.to_string().contains("t.id: source 2, destination nothing issued yet"));
    /// assert_eq!(conn.switch().get(), Pattern::SrcFirst); // nothing switched
    ///
    /// conn.sync_sequences()?;
    /// assert_eq!(conn.advance_pattern()?, Pattern::DstFirst);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn advance_pattern(&mut self) -> Result<Pattern, Error> {
        self.switch().check_local()?;
        loop {
            let from = self.switch().get();
            let to = from
                .next()
                .ok_or(Error::InvalidTransition { from, to: from })?;
            if to == Pattern::DstFirst {
                let behind = self.counters_behind()?;
                if !behind.is_empty() {
                    return Err(refused(behind));
                }
            }
            if self.switch().replace(from, to) {
                return Ok(to);
            }
        }
    }

    /// Steps the pattern one phase forward without checking the generated-key counters (see
    /// [`advance_pattern`](Self::advance_pattern)), for a migration whose inserts all write
    /// their keys explicitly, or an operator who knows why the counters do not matter.
    /// `reason` is logged with the step, at WARN level (target `diesel_rw::double_write`); an
    /// empty one is [`Error::InvalidState`] and switches nothing. Phases are still not skipped:
    /// at `DstOnly` it is [`Error::InvalidTransition`].
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::connection::SimpleConnection;
    /// use diesel::prelude::*;
    /// use diesel_rw::double_write::{DoubleWriteConnection, Pattern, Side};
    ///
    /// # let dir = std::env::temp_dir().join(format!("diesel-rw-advance-forced-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
    /// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
    /// let spec = format!("source={} destination={} pattern=src_first", src.display(), dst.display());
    /// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec)?;
    /// conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")?;
    /// conn.with_side(Side::Source, |c| c.batch_execute("INSERT INTO t (x) VALUES ('a')"))??;
    /// assert!(conn.advance_pattern().is_err()); // t.id is behind on the destination
    /// assert!(conn.advance_pattern_forced("").is_err());
    /// let now = conn.advance_pattern_forced("every insert writes its id; ticket OPS-42")?;
    /// assert_eq!(now, Pattern::DstFirst);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn advance_pattern_forced(&mut self, reason: &str) -> Result<Pattern, Error> {
        advance_forced(self.switch(), reason)
    }
}

/// The refusal of the step to `DstFirst`, logged.
pub(super) fn refused(behind: Vec<CounterLag>) -> Error {
    let first = behind[0].to_string();
    tracing::warn!(target: "diesel_rw::double_write", behind = behind.len(), %first, "double-write pattern not advanced to dst_first: generated-key counters of the destination are behind the source's");
    Error::KeyCountersBehind { behind }
}

/// A forced step forward: refused without a reason, logged with it.
pub(super) fn advance_forced(
    switch: &crate::double_write::PatternSwitch,
    reason: &str,
) -> Result<Pattern, Error> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::InvalidState(super::NO_REASON.into()));
    }
    let to = switch.advance()?;
    let from = to.previous().expect("advanced from a previous pattern");
    tracing::warn!(target: "diesel_rw::double_write", %from, %to, reason, gate_skipped = to == Pattern::DstFirst, "double-write pattern advanced by force, without the key-counter gate");
    Ok(to)
}

/// Logs what `sync_sequences()` did.
pub(super) fn log_sync(report: &SequenceSync) {
    tracing::info!(target: "diesel_rw::double_write", synced = report.synced.len(), ahead = report.ahead.len(), missing = report.missing.len(), "generated-key counters synced to the destination");
}
