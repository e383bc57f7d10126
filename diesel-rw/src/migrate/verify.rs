//! Verify: prove that the source and the destination hold the same rows, with the servers doing
//! the work.
//!
//! [`Verify`] walks a table in primary-key chunks: for a one-column integer key, ranges of key
//! values whose width adapts to hold about [`Verify::chunk_rows`] rows (no query reads a
//! boundary); for any other key, every `chunk_rows`-th key read on the authoritative side. For
//! each chunk both servers compute a checksum of the chunk's rows: the row count and
//! the XOR of a 64-bit hash of each row's values
//! ([`canonical`]: values compared by value, not by driver formatting). Only a
//! chunk whose checksums differ is narrowed down: split in parts whose checksums the servers
//! compute, down to parts of [`Verify::leaf_rows`] rows, of which both sides send the key and
//! the digest of each row, and the client finds the rows missing on one side or different. Every such row
//! is then **re-checked**: read again on both sides [`Verify::rechecks`] times,
//! [`Verify::recheck_delay`] apart, and reported only if it differs at every re-read, so that a
//! double write in flight between the two sides is not a false positive (the re-checks cost
//! their delays once per run, and only when something differs).
//!
//! Modes ([`VerifyMode`]): every row; the rows changed since a time (on either side, by the
//! table's "changed at" column), given or taken from the last clean run
//! [recorded](Verify::record_to) in the [record of runs](super::verify_runs); or the rows
//! named by a list of keys (what a journal records);
//! [`Verify::run_journal`] takes them from the durable journal's pending entries and marks the
//! entries done.
//! Either side can be the authoritative one ([`Verify::authoritative`]): the source until
//! `DstFirst`, the destination from then on; [`Repair`](super::repair::Repair) converges the
//! other side to it.
//!
//! Before reading any row, both sides' catalogs are checked: a column of the source that the
//! destination lacks, a type the verifier cannot compare, columns of incompatible types, or
//! different keys are errors naming the column, and nothing is read or written.
//!
//! ```
//! # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::connection::SimpleConnection;
//! use diesel::prelude::*;
//! use diesel_rw::migrate::{verify::Verify, Key, TableSpec};
//!
//! let dir = std::env::temp_dir().join(format!("diesel-rw-verify-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let open = |name: &str| -> Result<SqliteConnection, Box<dyn std::error::Error>> {
//!     let path = dir.join(name);
//!     let _ = std::fs::remove_file(&path);
//!     let mut c = SqliteConnection::establish(path.to_str().unwrap())?;
//!     c.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, price NUMERIC)")?;
//!     Ok(c)
//! };
//! let (mut src, mut dst) = (open("src.db")?, open("dst.db")?);
//! src.batch_execute("INSERT INTO t VALUES (1, 'ada', 1.50), (2, 'bob', 2), (3, 'cy', NULL)")?;
//! dst.batch_execute("INSERT INTO t VALUES (1, 'ada', 1.5), (2, 'Bob', 2), (4, 'dee', NULL)")?;
//!
//! let report = Verify::new(TableSpec::new("t"))
//!     .recheck_delay(std::time::Duration::from_millis(10))
//!     .run(&mut src, &mut dst)?;
//! assert_eq!(report.rows_compared, 4);
//! assert_eq!(report.missing_on_destination_keys(), vec![Key::new(vec!["3".into()])]);
//! assert_eq!(report.missing_on_source_keys(), vec![Key::new(vec!["4".into()])]);
//! assert_eq!(report.different_keys(), vec![Key::new(vec!["2".into()])]); // 'bob' vs 'Bob'
//! assert!(!report.is_clean());
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::double_write::{Pattern, Side};
use crate::error::{Error, Result};

use super::canonical::{self, Canon};
use super::dialect::{Binds, Dialect, MigrateConnection};
use super::key::{Key, KeyRange};
use super::table::{Column, Table, TableSpec};
use super::verify_runs::RunMode;

/// Which rows [`Verify`] compares.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum VerifyMode {
    /// Every row, chunk by chunk.
    #[default]
    Full,
    /// The rows whose "changed at" column ([`TableSpec::changed_at`]) is at or after this time
    /// on either side, as the column's type reads the text (e.g. `2026-01-31 12:00:00+00` for
    /// a PostgreSQL `timestamptz`). A row deleted since then on one side has no "changed at"
    /// any more: a full run, or the journal's keys, finds it.
    ChangedSince(String),
    /// The rows with these keys (e.g. those a journal recorded), in the form
    /// [`Key`] holds them.
    Keys(Vec<Key>),
    /// The rows changed since the start of the last clean run of the table that covered every
    /// row, as [recorded](super::verify_runs) (a full run, or a changed-since run), minus
    /// [`Verify::since_margin`]: [`ChangedSince`](Self::ChangedSince) with that time. Read on
    /// the side given to [`Verify::record_to`] (the source if the runs are not recorded). No
    /// such run recorded: every row ([`Full`](Self::Full)).
    SinceLastClean,
}

/// One row that differs, with the digest of its canonical text on each side as last read
/// (`None`: the row is not there). [`Repair`](super::repair::Repair) checks them again under a
/// lock: a row whose digest changed since is skipped and re-queued.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowDiff {
    /// The row's key.
    pub key: Key,
    /// Its digest on the source.
    pub source: Option<String>,
    /// Its digest on the destination.
    pub destination: Option<String>,
}

impl RowDiff {
    /// The digest on `side`.
    pub fn digest(&self, side: Side) -> Option<&str> {
        match side {
            Side::Source => self.source.as_deref(),
            Side::Destination => self.destination.as_deref(),
        }
    }
}

/// What [`Verify::run`] found in one table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The table, as the source's catalog names it.
    pub table: String,
    /// The side taken as right.
    pub authoritative: Side,
    /// Rows compared: every key seen on either side.
    pub rows_compared: u64,
    /// Chunks whose checksums the servers computed (0 in the key-list and changed-since modes).
    pub chunks: u64,
    /// Chunks whose checksums differed and were narrowed down to rows.
    pub chunks_differing: u64,
    /// Rows narrowed down as different on first sight that were equal on a re-check (writes
    /// in flight): not reported.
    pub settled_on_recheck: u64,
    /// Rows on the source and not on the destination, ordered by their keys' texts.
    pub missing_on_destination: Vec<RowDiff>,
    /// Rows on the destination and not on the source, ordered by their keys' texts.
    pub missing_on_source: Vec<RowDiff>,
    /// Rows on both sides with different values, ordered by their keys' texts.
    pub different: Vec<RowDiff>,
    /// How long the run took.
    pub elapsed: Duration,
    /// What it compared (a [`VerifyMode::SinceLastClean`] resolved to a changed-since window
    /// or, with no clean run recorded, to a full run).
    pub mode: RunMode,
    /// The start of its changed-since window, as it was given to the servers.
    pub since: Option<String>,
    /// Whether the rows came from the durable journal ([`Verify::run_journal`]).
    pub journal: bool,
    /// The id of its row in [`VERIFY_RUN_TABLE`](super::verify_runs::VERIFY_RUN_TABLE), if it
    /// was [recorded](Verify::record_to).
    pub recorded: Option<i64>,
}

impl VerifyReport {
    /// Whether the two sides hold the same rows.
    pub fn is_clean(&self) -> bool {
        self.missing_on_destination.is_empty()
            && self.missing_on_source.is_empty()
            && self.different.is_empty()
    }

    /// How many rows differ in any way.
    pub fn differences(&self) -> usize {
        self.missing_on_destination.len() + self.missing_on_source.len() + self.different.len()
    }

    /// The keys of [`missing_on_destination`](Self::missing_on_destination).
    pub fn missing_on_destination_keys(&self) -> Vec<Key> {
        self.missing_on_destination
            .iter()
            .map(|d| d.key.clone())
            .collect()
    }

    /// The keys of [`missing_on_source`](Self::missing_on_source).
    pub fn missing_on_source_keys(&self) -> Vec<Key> {
        self.missing_on_source
            .iter()
            .map(|d| d.key.clone())
            .collect()
    }

    /// The keys of [`different`](Self::different).
    pub fn different_keys(&self) -> Vec<Key> {
        self.different.iter().map(|d| d.key.clone()).collect()
    }

    /// Every differing row: missing on the destination, missing on the source, then different.
    pub fn diffs(&self) -> impl Iterator<Item = &RowDiff> + '_ {
        self.missing_on_destination
            .iter()
            .chain(&self.missing_on_source)
            .chain(&self.different)
    }
}

/// What [`Verify::run_journal`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalVerifyReport {
    /// The verification's report (for [`Repair`](super::repair::Repair)).
    pub report: VerifyReport,
    /// How many pending entries of the table it read.
    pub entries: usize,
    /// The ids of the entries it marked done.
    pub done: Vec<i64>,
    /// Whether an entry without keys made it verify the whole table (or the changed-since
    /// window).
    pub whole_table: bool,
}

/// A verification of one table (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Verify {
    spec: TableSpec,
    mode: VerifyMode,
    authoritative: Side,
    chunk_rows: u64,
    leaf_rows: u64,
    recheck_delay: Duration,
    rechecks: u32,
    compare_as: Vec<(String, Canon)>,
    record_to: Option<Side>,
    pattern: Option<Pattern>,
    since_margin: Duration,
}

impl Verify {
    /// Verifies the table `spec` names, in full, with the source authoritative, in chunks of
    /// 10,000 rows, re-checking a difference 3 times, 500 ms apart.
    pub fn new(spec: impl Into<TableSpec>) -> Verify {
        Verify {
            spec: spec.into(),
            mode: VerifyMode::Full,
            authoritative: Side::Source,
            chunk_rows: 10_000,
            leaf_rows: 1000,
            recheck_delay: Duration::from_millis(500),
            rechecks: 3,
            compare_as: Vec::new(),
            record_to: None,
            pattern: None,
            since_margin: Duration::from_secs(60),
        }
    }

    /// Which rows to compare.
    pub fn mode(mut self, mode: VerifyMode) -> Verify {
        self.mode = mode;
        self
    }

    /// The side taken as right: [`Side::Source`] (default) until `DstFirst`,
    /// [`Side::Destination`] from then on. It gives the chunk boundaries and the side
    /// [`Repair`](super::repair::Repair) copies from.
    pub fn authoritative(mut self, side: Side) -> Verify {
        self.authoritative = side;
        self
    }

    /// Rows per chunk (at least 1; default 10,000; about that many for a one-column integer
    /// key, chunked by value): what is narrowed down when a chunk differs.
    pub fn chunk_rows(mut self, rows: u64) -> Verify {
        self.chunk_rows = rows.max(1);
        self
    }

    /// The most rows of a differing range that are compared row by row (at least 1; default
    /// 1000); a larger differing range is split in 8, and both servers checksum each part.
    pub fn leaf_rows(mut self, rows: u64) -> Verify {
        self.leaf_rows = rows.max(1);
        self
    }

    /// The delay before each re-read of a difference: longer than a double write can stay
    /// in flight between the two sides.
    pub fn recheck_delay(mut self, delay: Duration) -> Verify {
        self.recheck_delay = delay;
        self
    }

    /// How many times a difference is read again (at least 1); it is reported only if it
    /// differs at every re-read.
    pub fn rechecks(mut self, rechecks: u32) -> Verify {
        self.rechecks = rechecks.max(1);
        self
    }

    /// Compares `column` as `canon` instead of by its declared type: for a type the verifier
    /// does not know (e.g. a PostgreSQL enum: [`Canon::Plain`]).
    pub fn compare_as(mut self, column: impl Into<String>, canon: Canon) -> Verify {
        self.compare_as.push((column.into(), canon));
        self
    }

    /// Records each run in [`VERIFY_RUN_TABLE`](super::verify_runs::VERIFY_RUN_TABLE) on
    /// `side`'s database (created if absent): a row when it starts (after both sides'
    /// catalogs were checked: bad input records nothing), completed when it ends, with its
    /// counts or its error. Default: not recorded. Record on the source (its clock is the one
    /// the "changed at" values of a double write under `SrcFirst` are compared with), and on
    /// the same side every time: [`VerifyMode::SinceLastClean`] and the gates of a cutover
    /// read the record there ([`verify_runs::last_clean`](super::verify_runs::last_clean)).
    pub fn record_to(mut self, side: Side) -> Verify {
        self.record_to = Some(side);
        self
    }

    /// The double-write pattern in force while it runs, recorded with each run (see
    /// [`record_to`](Self::record_to)); a cutover gate asks for a clean run under a pattern
    /// (e.g. one under `DstFirst` before `DstOnly`).
    pub fn pattern(mut self, pattern: Pattern) -> Verify {
        self.pattern = Some(pattern);
        self
    }

    /// How far before the last clean run's start a [`VerifyMode::SinceLastClean`] window
    /// begins (default 60 s): covers the clock difference between the recording database and
    /// the writers of the "changed at" column, and transactions that stamped a row before the
    /// run started and committed after it read that row.
    pub fn since_margin(mut self, margin: Duration) -> Verify {
        self.since_margin = margin;
        self
    }

    /// Describes the table on both sides, checks that they can be compared, then compares them.
    ///
    /// Errors (nothing read or written): [`Error::UnknownTable`], [`Error::UnknownColumn`] (a
    /// column of [`compare_as`](Self::compare_as)), [`Error::DestinationMissingColumns`],
    /// [`Error::UncomparableType`], [`Error::ColumnTypesDiffer`], [`Error::KeysDiffer`],
    /// [`Error::NoPrimaryKey`]; database errors as [`Error::Database`].
    pub fn run<C: MigrateConnection>(
        &self,
        source: &mut C,
        destination: &mut C,
    ) -> Result<VerifyReport> {
        self.run_mode(source, destination, &self.mode, &[], false)
    }

    /// An incremental verification from the durable journal
    /// ([`migrate::journal`](super::journal)): the rows named by the table's pending entries,
    /// then marks done each entry whose rows were found equal on both sides.
    ///
    /// `journal`: the connection to the journal's database; `None`: it is on the source.
    ///
    /// What is compared, by this verification's [`mode`](Self::mode):
    /// - [`VerifyMode::Full`] (the default): the pending entries' keys only; if an entry names
    ///   the table without keys (its statement did not reveal them), the whole table;
    /// - [`VerifyMode::ChangedSince`]: the rows changed since that time **and** the entries'
    ///   keys. Give the time of the last clean run: a row whose write never reached the
    ///   journal (the process was killed between the two sides of the write) is found by its
    ///   "changed at" column. An entry without keys is then covered by the window (it is
    ///   marked done when the run is clean: the window must start before the entries);
    /// - [`VerifyMode::SinceLastClean`]: as `ChangedSince`, from the start of the last clean
    ///   run that covered every row as [recorded](Self::record_to) (every row if none is);
    /// - [`VerifyMode::Keys`]: those keys and the entries'.
    ///
    /// A keyed entry is marked done when none of its keys differs; an entry without keys when
    /// the run (full or changed-since) found no difference at all. Entries recorded while it
    /// runs stay pending for the next run. The differences are in the report, for
    /// [`Repair`](super::repair::Repair); a run after the repair marks their entries done.
    ///
    /// Errors: those of [`run`](Self::run), and the journal database's.
    pub fn run_journal<C: MigrateConnection>(
        &self,
        source: &mut C,
        destination: &mut C,
        mut journal: Option<&mut C>,
    ) -> Result<JournalVerifyReport> {
        let table = self.spec.describe(source)?;
        // The entries name the table as the journal's catalog does, or as the statements do.
        let mut names = vec![table.name.as_str()];
        if self.spec.name() != table.name {
            names.push(self.spec.name());
        }
        let mut entries: Vec<super::journal::JournalRow> = Vec::new();
        for name in names {
            let which = super::journal::Which::PendingFor(name);
            entries.extend(match journal.as_deref_mut() {
                Some(j) => super::journal::rows(j, which)?,
                None => super::journal::rows(source, which)?,
            });
        }
        entries.sort_by_key(|e| e.id);
        entries.dedup_by_key(|e| e.id);
        let whole_table = entries.iter().any(|e| e.keys.is_none());
        let keys: Vec<Key> = entries
            .iter()
            .flat_map(|e| e.keys.iter().flatten().cloned())
            .collect();
        let mode = match (&self.mode, whole_table) {
            (VerifyMode::ChangedSince(_) | VerifyMode::SinceLastClean, _)
            | (VerifyMode::Keys(_), false) => self.mode.clone(),
            (VerifyMode::Full, false) => VerifyMode::Keys(Vec::new()),
            (VerifyMode::Full | VerifyMode::Keys(_), true) => VerifyMode::Full,
        };
        let report = self.run_mode(source, destination, &mode, &keys, true)?;
        let differing: std::collections::HashSet<&Key> = report.diffs().map(|d| &d.key).collect();
        let done: Vec<i64> = entries
            .iter()
            .filter(|e| match &e.keys {
                Some(keys) => keys.iter().all(|k| !differing.contains(k)),
                None => report.is_clean() && report.mode != RunMode::Keys,
            })
            .map(|e| e.id)
            .collect();
        let marked = match journal {
            Some(j) => super::journal::mark_done(j, &done)?,
            None => super::journal::mark_done(source, &done)?,
        };
        tracing::info!(
            target: "diesel_rw::migrate",
            table = %report.table,
            entries = entries.len(),
            done = marked,
            whole_table,
            "journal verify done"
        );
        Ok(JournalVerifyReport {
            report,
            entries: entries.len(),
            done,
            whole_table,
        })
    }

    fn run_mode<C: MigrateConnection>(
        &self,
        source: &mut C,
        destination: &mut C,
        mode: &VerifyMode,
        extra: &[Key],
        journal: bool,
    ) -> Result<VerifyReport> {
        let started = Instant::now();
        let plan = Plan::new(self, source, destination)?;
        let table = plan.source.table.name.clone();
        let mode = match mode {
            VerifyMode::SinceLastClean => {
                let runs = match self.record_to.unwrap_or(Side::Source) {
                    Side::Source => &mut *source,
                    Side::Destination => &mut *destination,
                };
                match super::verify_runs::since_last_clean(runs, &table, self.since_margin)? {
                    Some(since) => VerifyMode::ChangedSince(since),
                    None => {
                        tracing::info!(
                            target: "diesel_rw::migrate",
                            table = %table,
                            "verify since the last clean run: no clean run recorded, every row"
                        );
                        VerifyMode::Full
                    }
                }
            }
            other => other.clone(),
        };
        let (run_mode, since) = match &mode {
            VerifyMode::Full => (RunMode::Full, None),
            VerifyMode::ChangedSince(s) => (RunMode::ChangedSince, Some(s.clone())),
            _ => (RunMode::Keys, None),
        };
        let recorded = match self.record_to {
            Some(side) => {
                let conn = match side {
                    Side::Source => &mut *source,
                    Side::Destination => &mut *destination,
                };
                Some(super::verify_runs::start(
                    conn,
                    &super::verify_runs::RunStart {
                        table: &table,
                        mode: run_mode,
                        journal,
                        authoritative: self.authoritative,
                        pattern: self.pattern,
                        since: since.as_deref(),
                    },
                )?)
            }
            None => None,
        };
        let outcome = self.compare(source, destination, &plan, &mode, extra, started);
        let mut report = match (recorded, self.record_to) {
            (Some(id), Some(side)) => {
                let conn = match side {
                    Side::Source => &mut *source,
                    Side::Destination => &mut *destination,
                };
                let finished = super::verify_runs::finish(conn, id, outcome.as_ref());
                let report = outcome?;
                finished?;
                report
            }
            _ => outcome?,
        };
        report.mode = run_mode;
        report.since = since;
        report.journal = journal;
        report.recorded = recorded;
        Ok(report)
    }

    /// Compares the rows `mode` names, with `plan`.
    fn compare<C: MigrateConnection>(
        &self,
        source: &mut C,
        destination: &mut C,
        plan: &Plan,
        mode: &VerifyMode,
        extra: &[Key],
        started: Instant,
    ) -> Result<VerifyReport> {
        let mut run = Run {
            verify: self,
            plan,
            report: VerifyReport {
                table: plan.source.table.name.clone(),
                authoritative: self.authoritative,
                rows_compared: 0,
                chunks: 0,
                chunks_differing: 0,
                settled_on_recheck: 0,
                missing_on_destination: Vec::new(),
                missing_on_source: Vec::new(),
                different: Vec::new(),
                elapsed: Duration::ZERO,
                mode: RunMode::Full,
                since: None,
                journal: false,
                recorded: None,
            },
            candidates: BTreeMap::new(),
        };
        let mut conns = Conns {
            source,
            destination,
        };
        match mode {
            VerifyMode::Full => run.full(&mut conns)?,
            VerifyMode::ChangedSince(since) => run.changed_since(&mut conns, since, extra)?,
            VerifyMode::Keys(keys) => {
                let all: Vec<Key> = keys.iter().chain(extra).cloned().collect();
                run.keys(&mut conns, &all)?
            }
            VerifyMode::SinceLastClean => {
                return Err(Error::InvalidState(
                    "verify: SinceLastClean is resolved before the comparison".into(),
                ))
            }
        }
        run.recheck(&mut conns)?;
        let mut report = run.report;
        report.elapsed = started.elapsed();
        tracing::info!(
            target: "diesel_rw::migrate",
            table = %report.table,
            rows = report.rows_compared,
            chunks = report.chunks,
            chunks_differing = report.chunks_differing,
            missing_on_destination = report.missing_on_destination.len(),
            missing_on_source = report.missing_on_source.len(),
            different = report.different.len(),
            elapsed_ms = report.elapsed.as_millis() as u64,
            "verify done"
        );
        Ok(report)
    }
}

/// The two connections, by side.
struct Conns<'a, C> {
    source: &'a mut C,
    destination: &'a mut C,
}

impl<C> Conns<'_, C> {
    fn get(&mut self, side: Side) -> &mut C {
        match side {
            Side::Source => self.source,
            Side::Destination => self.destination,
        }
    }

    /// The connection of `side`, then the other one.
    fn pair(&mut self, side: Side) -> (&mut C, &mut C) {
        match side {
            Side::Source => (&mut *self.source, &mut *self.destination),
            Side::Destination => (&mut *self.destination, &mut *self.source),
        }
    }
}

/// Runs `f` on both sides at once (each server works on its half while the other does),
/// `side` first in the result.
fn on_both<C, T, F>(conns: &mut Conns<'_, C>, side: Side, f: F) -> Result<(T, T)>
where
    C: MigrateConnection,
    T: Send,
    F: Fn(&mut C, Side) -> Result<T> + Sync,
{
    let (a, b) = conns.pair(side);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| f(b, side.other()));
        let first = f(a, side);
        let other = other.join().map_err(|_| {
            Error::InvalidState("verify: the thread reading the other side panicked".into())
        })?;
        Ok((first?, other?))
    })
}

/// One side's description and the SQL computed from it.
#[derive(Debug)]
pub(crate) struct SidePlan {
    pub(crate) table: Table,
    /// Each column (quoted) and how it is compared.
    pub(crate) columns: Vec<(String, Canon)>,
    /// The canonical text of a row.
    pub(crate) row_text: String,
    /// The key of a row as a JSON array of texts.
    pub(crate) key_json: String,
}

/// Both sides' descriptions, checked against each other.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) source: SidePlan,
    pub(crate) destination: SidePlan,
    pub(crate) dialect: Dialect,
}

impl Plan {
    /// Describes the table `spec` names on both sides and checks that they compare.
    pub(crate) fn describe<C: MigrateConnection>(
        spec: &TableSpec,
        compare_as: &[(String, Canon)],
        source: &mut C,
        destination: &mut C,
    ) -> Result<Plan> {
        let src = spec.describe(source)?;
        let dst = spec.describe(destination).map_err(|e| match e {
            Error::UnknownTable { table } => Error::UnknownTable {
                table: format!("{table} (on the destination)"),
            },
            other => other,
        })?;
        for (name, _) in compare_as {
            if src.column(name).is_none() {
                return Err(Error::UnknownColumn {
                    table: src.name.clone(),
                    column: name.clone(),
                });
            }
        }
        if src.key_names() != dst.key_names() {
            return Err(Error::KeysDiffer {
                table: src.name.clone(),
                source_key: src.key_names(),
                destination_key: dst.key_names(),
            });
        }
        let missing: Vec<String> = src
            .columns
            .iter()
            .filter(|c| dst.column(&c.name).is_none())
            .map(|c| c.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(Error::DestinationMissingColumns {
                table: dst.name.clone(),
                missing,
            });
        }
        let dialect = C::DIALECT;
        let mut src_values = Vec::new();
        let mut dst_values = Vec::new();
        for s in &src.columns {
            let d = dst.column(&s.name).expect("checked above");
            let forced = compare_as
                .iter()
                .rev()
                .find(|(n, _)| *n == s.name)
                .map(|(_, c)| *c);
            let canon_of = |c: &Column| {
                forced
                    .or_else(|| Canon::of(dialect, c))
                    .ok_or_else(|| Error::UncomparableType {
                        table: src.name.clone(),
                        column: c.name.clone(),
                        type_name: c.type_name.clone(),
                    })
            };
            let (sc, dc) = (canon_of(s)?, canon_of(d)?);
            if !compatible(sc, dc) {
                return Err(Error::ColumnTypesDiffer {
                    table: src.name.clone(),
                    column: s.name.clone(),
                    source_type: format!("{} ({sc})", s.type_name),
                    destination_type: format!("{} ({dc})", d.type_name),
                });
            }
            src_values.push((dialect.quote(&s.name), sc));
            dst_values.push((dialect.quote(&d.name), dc));
        }
        let side = |table: Table, columns: Vec<(String, Canon)>| SidePlan {
            row_text: canonical::row_text_of(dialect, &columns),
            key_json: table.key_json_sql(None),
            columns,
            table,
        };
        Ok(Plan {
            source: side(src, src_values),
            destination: side(dst, dst_values),
            dialect,
        })
    }

    fn new<C: MigrateConnection>(
        verify: &Verify,
        source: &mut C,
        destination: &mut C,
    ) -> Result<Plan> {
        Plan::describe(&verify.spec, &verify.compare_as, source, destination)
    }

    pub(crate) fn side(&self, side: Side) -> &SidePlan {
        match side {
            Side::Source => &self.source,
            Side::Destination => &self.destination,
        }
    }

    /// Up to `batch` chunk boundaries on `side`: every `n`-th key after `after`, in key order
    /// (one [`nth_key`](Self::nth_key) each: cheaper than numbering the rows with a window
    /// function, which PostgreSQL does not stop early and MariaDB runs over the whole rest of
    /// the table).
    fn boundaries<C: MigrateConnection>(
        &self,
        conn: &mut C,
        side: Side,
        after: Option<&Key>,
        n: u64,
        batch: usize,
    ) -> Result<Vec<Key>> {
        let n = n.max(1);
        let mut out: Vec<Key> = Vec::new();
        while out.len() < batch {
            let range = KeyRange {
                after: out.last().or(after).cloned(),
                upto: None,
            };
            match self.nth_key(conn, side, &range, n)? {
                Some(k) => out.push(k),
                None => break,
            }
        }
        Ok(out)
    }

    /// The `n`-th key of `range` on `side`, if it has that many: an index-only walk of `n`
    /// keys.
    fn nth_key<C: MigrateConnection>(
        &self,
        conn: &mut C,
        side: Side,
        range: &KeyRange,
        n: u64,
    ) -> Result<Option<Key>> {
        let sp = self.side(side);
        let mut binds = Binds::new(self.dialect);
        let predicate = sp.table.range_predicate(range, None, &mut binds)?;
        // The key's JSON is rendered for the one row found, not for the rows skipped.
        let keys: Vec<String> = sp
            .table
            .key_columns()
            .map(|c| self.dialect.quote(&c.name))
            .collect();
        let sql = format!(
            "SELECT {} AS value FROM (SELECT {} FROM {} WHERE {predicate} ORDER BY {} LIMIT 1 OFFSET {}) dw_k",
            sp.key_json,
            keys.join(", "),
            sp.table.sql_name,
            sp.table.order_by(),
            n.max(1) - 1
        );
        conn.query_texts(&sql, binds.values())?
            .into_iter()
            .flatten()
            .next()
            .map(|json| Key::from_json(&json))
            .transpose()
    }

    /// The key column when it is one integer column (chunks by value: [`Run::full_by_value`]).
    fn integer_key(&self) -> Option<&Column> {
        let keys: Vec<&Column> = self.source.table.key_columns().collect();
        match keys.as_slice() {
            [k] if k.kind == super::table::ColumnKind::Integer => Some(k),
            _ => None,
        }
    }

    /// The smallest and largest key on `side` (of an [`integer_key`](Self::integer_key));
    /// `None`: no row.
    fn key_span<C: MigrateConnection>(
        &self,
        conn: &mut C,
        side: Side,
    ) -> Result<Option<(i128, i128)>> {
        let sp = self.side(side);
        let k = self
            .dialect
            .quote(&sp.table.key_columns().next().expect("a key").name);
        let parts = [format!("min({k})"), format!("max({k})")].map(|e| self.dialect.to_text(&e));
        let sql = format!(
            "SELECT {} AS value FROM {}",
            self.dialect.json_array(&parts),
            sp.table.sql_name
        );
        let Some(text) = conn.query_texts(&sql, &[])?.into_iter().flatten().next() else {
            return Ok(None);
        };
        let bad = || Error::InvalidState(format!("verify: unreadable key span `{text}`"));
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| bad())?;
        let num = |i: usize| -> Result<Option<i128>> {
            match v.get(i) {
                Some(serde_json::Value::String(s)) => Ok(Some(s.parse().map_err(|_| bad())?)),
                Some(serde_json::Value::Number(n)) => {
                    Ok(Some(n.to_string().parse().map_err(|_| bad())?))
                }
                _ => Ok(None),
            }
        };
        Ok(match (num(0)?, num(1)?) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        })
    }

    /// The chunk checksum of the rows of `range` on `side`: `(rows, xor)`.
    fn checksum<C: MigrateConnection>(
        &self,
        conn: &mut C,
        side: Side,
        range: &KeyRange,
    ) -> Result<(u64, u64)> {
        let sp = self.side(side);
        let mut binds = Binds::new(self.dialect);
        let predicate = sp.table.range_predicate(range, None, &mut binds)?;
        match canonical::chunk_checksum_sql(self.dialect, &sp.columns) {
            Some(agg) => {
                let sql = format!(
                    "SELECT {agg} AS value FROM {} WHERE {predicate}",
                    sp.table.sql_name
                );
                let text = conn
                    .query_texts(&sql, binds.values())?
                    .into_iter()
                    .flatten()
                    .next()
                    .unwrap_or_default();
                let (n, x) = text.split_once(':').unwrap_or(("0", "0"));
                Ok((
                    n.parse().unwrap_or(0),
                    u64::from_str_radix(x, 16).unwrap_or(0),
                ))
            }
            None => {
                let sql = format!(
                    "SELECT {} AS value FROM {} WHERE {predicate}",
                    sp.row_text, sp.table.sql_name
                );
                let mut n = 0;
                let mut x = 0;
                for text in conn
                    .query_texts(&sql, binds.values())?
                    .into_iter()
                    .flatten()
                {
                    n += 1;
                    x ^= canonical::digest_word(&canonical::client_digest(text.as_bytes()));
                }
                Ok((n, x))
            }
        }
    }

    /// The digest of each row on `side` matching `predicate` (built with `binds`).
    fn digests<C: MigrateConnection>(
        &self,
        conn: &mut C,
        side: Side,
        predicate: &str,
        binds: &Binds,
        suffix: &str,
    ) -> Result<HashMap<Key, String>> {
        let sp = self.side(side);
        let (item, client) = match canonical::row_digest_sql(self.dialect, &sp.columns) {
            Some(d) => (d, false),
            None => (sp.row_text.clone(), true),
        };
        let key_cols: Vec<&Column> = sp.table.key_columns().collect();
        // A server digest is hex (no blank): `<digest> <key text>` for a one-column key, no
        // JSON to build or parse; else a JSON array.
        let compact = !client && key_cols.len() == 1;
        let value = if compact {
            let key = self.dialect.key_text(key_cols[0], None);
            match self.dialect {
                Dialect::Mysql => format!("CONCAT({item}, ' ', {key})"),
                _ => format!("{item} || ' ' || {key}"),
            }
        } else {
            self.dialect.json_array(&[sp.key_json.clone(), item])
        };
        let sql = format!(
            "SELECT {value} AS value FROM {} WHERE {predicate}{suffix}",
            sp.table.sql_name
        );
        let mut out = HashMap::new();
        for row in conn
            .query_texts(&sql, binds.values())?
            .into_iter()
            .flatten()
        {
            let (key, text) = if compact {
                let (digest, key) = row
                    .split_once(' ')
                    .ok_or_else(|| Error::InvalidState(format!("unreadable verify row `{row}`")))?;
                (Key::new(vec![key.to_owned()]), digest.to_owned())
            } else {
                parse_key_and_text(&row, false)?
            };
            let digest = if client {
                canonical::client_digest(text.as_bytes())
            } else {
                text
            };
            out.insert(key, digest);
        }
        Ok(out)
    }

    /// The digests of the rows of `range` on `side`.
    fn range_digests<C: MigrateConnection>(
        &self,
        conn: &mut C,
        side: Side,
        range: &KeyRange,
    ) -> Result<HashMap<Key, String>> {
        let mut binds = Binds::new(self.dialect);
        let predicate = self
            .side(side)
            .table
            .range_predicate(range, None, &mut binds)?;
        self.digests(conn, side, &predicate, &binds, "")
    }

    /// The digests of the rows with `keys` on `side`.
    pub(crate) fn key_digests<C: MigrateConnection>(
        &self,
        conn: &mut C,
        side: Side,
        keys: &[Key],
        lock: bool,
    ) -> Result<HashMap<Key, String>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let mut binds = Binds::new(self.dialect);
        let predicate = keys_predicate(&self.side(side).table, keys, None, &mut binds)?;
        let suffix = if lock && self.dialect != Dialect::Sqlite {
            " FOR UPDATE"
        } else {
            ""
        };
        self.digests(conn, side, &predicate, &binds, suffix)
    }
}

/// How many chunk boundaries are read at a time (then both sides checksum those chunks).
const BOUNDARY_BATCH: usize = 64;

/// A larger differing range is split in this many sub-ranges.
const SPLIT: usize = 8;

/// Whether two sides' classes of a column compare: the same, or two widths of floats, or
/// fixed and variable text (each side renders its own).
fn compatible(a: Canon, b: Canon) -> bool {
    let norm = |c| match c {
        Canon::Float32 => Canon::Float,
        Canon::Char => Canon::Text,
        other => other,
    };
    norm(a) == norm(b)
}

/// `[key, text]` (or `[text, key]` when `text_first`) -> the key and the text; the key is
/// the JSON array of `key_json_sql`, nested as a string on PostgreSQL, as an array elsewhere.
fn parse_key_and_text(row: &str, text_first: bool) -> Result<(Key, String)> {
    let bad = || Error::InvalidState(format!("unreadable verify row `{row}`"));
    let v: serde_json::Value = serde_json::from_str(row).map_err(|_| bad())?;
    let items = v.as_array().ok_or_else(bad)?;
    let [a, b] = items.as_slice() else {
        return Err(bad());
    };
    let (key, text) = if text_first { (b, a) } else { (a, b) };
    let key = match key {
        serde_json::Value::String(s) if s.starts_with('[') => Key::from_json(s)?,
        serde_json::Value::Array(_) => Key::from_json(&key.to_string())?,
        _ => return Err(bad()),
    };
    let text = match text {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(bad()),
    };
    Ok((key, text))
}

/// A condition selecting the rows with `keys`: `k IN (...)` for a one-column key, else
/// `(k1 = .. AND k2 = ..) OR ...`.
pub(crate) fn keys_predicate(
    table: &Table,
    keys: &[Key],
    qualifier: Option<&str>,
    binds: &mut Binds,
) -> Result<String> {
    let d = table.dialect;
    let cols: Vec<&Column> = table.key_columns().collect();
    let name = |c: &Column| match qualifier {
        Some(q) => format!("{q}.{}", d.quote(&c.name)),
        None => d.quote(&c.name),
    };
    for key in keys {
        if key.values().len() != cols.len() {
            return Err(Error::InvalidState(format!(
                "key {key} has {} values but the key of `{}` has {} columns ({})",
                key.values().len(),
                table.name,
                cols.len(),
                table.key_names().join(", ")
            )));
        }
    }
    if cols.len() == 1 {
        let values: Vec<String> = keys
            .iter()
            .map(|k| d.key_value(cols[0], &binds.push(k.values()[0].clone())))
            .collect();
        return Ok(format!("{} IN ({})", name(cols[0]), values.join(", ")));
    }
    let alternatives: Vec<String> = keys
        .iter()
        .map(|k| {
            let parts: Vec<String> = cols
                .iter()
                .zip(k.values())
                .map(|(c, v)| format!("{} = {}", name(c), d.key_value(c, &binds.push(v.clone()))))
                .collect();
            format!("({})", parts.join(" AND "))
        })
        .collect();
    Ok(format!("({})", alternatives.join(" OR ")))
}

/// A difference seen, not yet confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    source: Option<String>,
    destination: Option<String>,
}

/// One run's state.
struct Run<'a> {
    verify: &'a Verify,
    plan: &'a Plan,
    report: VerifyReport,
    candidates: BTreeMap<Key, Seen>,
}

impl Run<'_> {
    fn auth(&self) -> Side {
        self.verify.authoritative
    }

    fn full<C: MigrateConnection>(&mut self, conns: &mut Conns<'_, C>) -> Result<()> {
        if self.plan.integer_key().is_some() {
            return self.full_by_value(conns);
        }
        let auth = self.auth();
        let plan = self.plan;
        let mut after: Option<Key> = None;
        loop {
            // The next chunks' boundaries, read on the authoritative side: every
            // chunk_rows-th key after `after`. Fewer than asked: the last chunk is open-ended,
            // which also holds the follower's extra rows.
            let bounds = plan.boundaries(
                conns.get(auth),
                auth,
                after.as_ref(),
                self.verify.chunk_rows,
                BOUNDARY_BATCH,
            )?;
            let last = bounds.len() < BOUNDARY_BATCH;
            let mut ranges = Vec::with_capacity(bounds.len() + 1);
            let mut from = after.clone();
            for b in &bounds {
                ranges.push(KeyRange {
                    after: from.take(),
                    upto: Some(b.clone()),
                });
                from = Some(b.clone());
            }
            if last {
                ranges.push(KeyRange {
                    after: from,
                    upto: None,
                });
            }
            // Each server checksums the chunks on its own side, both at once.
            let (a, f) = on_both(conns, auth, |c, side| {
                ranges
                    .iter()
                    .map(|r| plan.checksum(c, side, r))
                    .collect::<Result<Vec<_>>>()
            })?;
            for ((range, a), f) in ranges.iter().zip(a).zip(f) {
                self.report.chunks += 1;
                if a == f {
                    self.report.rows_compared += a.0;
                    continue;
                }
                self.report.chunks_differing += 1;
                tracing::debug!(
                    target: "diesel_rw::migrate",
                    table = %self.report.table,
                    after = ?range.after.as_ref().map(|k| k.to_string()),
                    upto = ?range.upto.as_ref().map(|k| k.to_string()),
                    authoritative_rows = a.0,
                    follower_rows = f.0,
                    "verify: chunk differs, narrowing down"
                );
                self.narrow(conns, range, a.0.max(f.0))?;
            }
            match bounds.last() {
                Some(b) if !last => after = Some(b.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// [`full`](Self::full) for a one-column integer key: chunks by key value, not by row count,
    /// so that no query reads chunk boundaries (an index walk of every key, one query per
    /// chunk). The width starts at [`Verify::chunk_rows`] keys and adapts after each batch of
    /// [`BOUNDARY_BATCH`] chunks to the rows they held (sparse keys: wider; at most 8 times
    /// wider a batch). The first chunk starts below the smallest key, the last one is
    /// open-ended: the follower's rows outside the authoritative side's keys are in them.
    fn full_by_value<C: MigrateConnection>(&mut self, conns: &mut Conns<'_, C>) -> Result<()> {
        let auth = self.auth();
        let plan = self.plan;
        let Some((min, max)) = plan.key_span(conns.get(auth), auth)? else {
            // No row on the authoritative side: one range, the follower's rows if any.
            return self.compare_ranges(conns, &[KeyRange::all()]).map(|_| ());
        };
        let target = self.verify.chunk_rows as i128;
        let mut width = target.max(1);
        // The upper end of the last range checked; the first range has no lower end.
        let mut upper: Option<i128> = None;
        loop {
            let mut ranges = Vec::with_capacity(BOUNDARY_BATCH);
            let mut last = false;
            let mut next = upper.unwrap_or(min - 1);
            while ranges.len() < BOUNDARY_BATCH {
                let after = upper.map(|u| Key::new(vec![u.to_string()]));
                next += width;
                if next >= max {
                    ranges.push(KeyRange { after, upto: None });
                    last = true;
                    break;
                }
                ranges.push(KeyRange {
                    after,
                    upto: Some(Key::new(vec![next.to_string()])),
                });
                upper = Some(next);
            }
            let rows = self.compare_ranges(conns, &ranges)?;
            if last {
                return Ok(());
            }
            // Adapt the width to the rows per chunk seen (both sides' larger count).
            let per_chunk = (rows as i128 / ranges.len() as i128).max(1);
            width = (width * target / per_chunk).clamp(1, width.saturating_mul(8));
        }
    }

    /// Checksums `ranges` on both sides at once and narrows down the ones that differ (as
    /// [`full`](Self::full) does with its chunks); returns the rows they held.
    fn compare_ranges<C: MigrateConnection>(
        &mut self,
        conns: &mut Conns<'_, C>,
        ranges: &[KeyRange],
    ) -> Result<u64> {
        let auth = self.auth();
        let plan = self.plan;
        let (a, f) = on_both(conns, auth, |c, side| {
            ranges
                .iter()
                .map(|r| plan.checksum(c, side, r))
                .collect::<Result<Vec<_>>>()
        })?;
        let mut rows = 0;
        for ((range, a), f) in ranges.iter().zip(a).zip(f) {
            self.report.chunks += 1;
            rows += a.0.max(f.0);
            if a == f {
                self.report.rows_compared += a.0;
                continue;
            }
            self.report.chunks_differing += 1;
            tracing::debug!(
                target: "diesel_rw::migrate",
                table = %self.report.table,
                after = ?range.after.as_ref().map(|k| k.to_string()),
                upto = ?range.upto.as_ref().map(|k| k.to_string()),
                authoritative_rows = a.0,
                follower_rows = f.0,
                "verify: chunk differs, narrowing down"
            );
            self.narrow(conns, range, a.0.max(f.0))?;
        }
        Ok(rows)
    }

    /// Narrows a range whose checksums differ down to rows: a range of up to
    /// [`Verify::leaf_rows`] rows is compared row by row (each side sends the key and digest of each row); a larger
    /// one is split in [`SPLIT`] sub-ranges whose checksums both servers compute, and only
    /// the differing ones are narrowed further. `rows`: about how many rows it holds.
    fn narrow<C: MigrateConnection>(
        &mut self,
        conns: &mut Conns<'_, C>,
        range: &KeyRange,
        rows: u64,
    ) -> Result<()> {
        let auth = self.auth();
        let plan = self.plan;
        if rows <= self.verify.leaf_rows {
            let (ad, fd) = on_both(conns, auth, |c, side| plan.range_digests(c, side, range))?;
            self.compare(auth, ad, fd);
            return Ok(());
        }
        let step = rows.div_ceil(SPLIT as u64);
        let mut bounds = Vec::new();
        let mut from = range.after.clone();
        while bounds.len() + 1 < SPLIT {
            let within = KeyRange {
                after: from.clone(),
                upto: range.upto.clone(),
            };
            let Some(k) = plan.nth_key(conns.get(auth), auth, &within, step)? else {
                break;
            };
            if range.upto.as_ref() == Some(&k) {
                break;
            }
            from = Some(k.clone());
            bounds.push(k);
        }
        if bounds.is_empty() {
            // The authoritative side has at most `step` rows here: the rest are the
            // follower's; compare row by row.
            let (ad, fd) = on_both(conns, auth, |c, side| plan.range_digests(c, side, range))?;
            self.compare(auth, ad, fd);
            return Ok(());
        }
        let mut subs = Vec::with_capacity(bounds.len() + 1);
        let mut from = range.after.clone();
        for b in bounds {
            subs.push(KeyRange {
                after: from.take(),
                upto: Some(b.clone()),
            });
            from = Some(b);
        }
        subs.push(KeyRange {
            after: from,
            upto: range.upto.clone(),
        });
        let (a, f) = on_both(conns, auth, |c, side| {
            subs.iter()
                .map(|r| plan.checksum(c, side, r))
                .collect::<Result<Vec<_>>>()
        })?;
        for ((sub, a), f) in subs.iter().zip(a).zip(f) {
            if a == f {
                self.report.rows_compared += a.0;
            } else {
                self.narrow(conns, sub, a.0.max(f.0))?;
            }
        }
        Ok(())
    }

    fn changed_since<C: MigrateConnection>(
        &mut self,
        conns: &mut Conns<'_, C>,
        since: &str,
        extra: &[Key],
    ) -> Result<()> {
        let mut keys: std::collections::BTreeSet<Key> = extra.iter().cloned().collect();
        for side in [Side::Source, Side::Destination] {
            let table = &self.plan.side(side).table;
            let changed = table.changed_at_column().ok_or_else(|| {
                Error::Config(format!(
                    "verify since a time needs the \"changed at\" column of `{}`: name it with TableSpec::changed_at",
                    table.name
                ))
            })?;
            let mut after: Option<Key> = None;
            loop {
                let mut binds = Binds::new(self.plan.dialect);
                let range = KeyRange {
                    after: after.clone(),
                    upto: None,
                };
                let predicate = table.range_predicate(&range, None, &mut binds)?;
                let sql = format!(
                    "SELECT {} AS value FROM {} WHERE {predicate} AND {} >= {} ORDER BY {} LIMIT {}",
                    self.plan.side(side).key_json,
                    table.sql_name,
                    self.plan.dialect.quote(&changed.name),
                    self.plan.dialect.key_value(changed, &binds.push(since)),
                    table.order_by(),
                    self.verify.chunk_rows
                );
                let rows = conns.get(side).query_texts(&sql, binds.values())?;
                let n = rows.len() as u64;
                for row in rows.into_iter().flatten() {
                    let key = Key::from_json(&row)?;
                    after = Some(key.clone());
                    keys.insert(key);
                }
                if n < self.verify.chunk_rows {
                    break;
                }
            }
        }
        let keys: Vec<Key> = keys.into_iter().collect();
        self.keys(conns, &keys)
    }

    fn keys<C: MigrateConnection>(&mut self, conns: &mut Conns<'_, C>, keys: &[Key]) -> Result<()> {
        let auth = self.auth();
        let follower = auth.other();
        let mut unique: Vec<Key> = keys.to_vec();
        unique.sort();
        unique.dedup();
        for batch in unique.chunks(self.verify.chunk_rows as usize) {
            let ad = self.plan.key_digests(conns.get(auth), auth, batch, false)?;
            let fd = self
                .plan
                .key_digests(conns.get(follower), follower, batch, false)?;
            self.compare(auth, ad, fd);
        }
        Ok(())
    }

    /// Compares the digests of the same keys read on both sides; the differences become
    /// candidates.
    fn compare(&mut self, auth: Side, ad: HashMap<Key, String>, mut fd: HashMap<Key, String>) {
        let mut seen = |key: Key, a: Option<String>, f: Option<String>| {
            let (source, destination) = match auth {
                Side::Source => (a, f),
                Side::Destination => (f, a),
            };
            self.candidates.insert(
                key,
                Seen {
                    source,
                    destination,
                },
            );
        };
        let mut compared = 0;
        for (key, a) in ad {
            compared += 1;
            match fd.remove(&key) {
                Some(f) if f == a => {}
                f => seen(key, Some(a), f),
            }
        }
        for (key, f) in fd {
            compared += 1;
            seen(key, None, Some(f));
        }
        self.report.rows_compared += compared;
    }

    /// Reads the candidates again, `rechecks` times a delay apart: a candidate found equal
    /// once is dropped (a write was in flight); one that differs at every re-read is reported,
    /// as last read.
    fn recheck<C: MigrateConnection>(&mut self, conns: &mut Conns<'_, C>) -> Result<()> {
        let mut pending = std::mem::take(&mut self.candidates);
        let confirmed: BTreeMap<Key, Seen> = BTreeMap::new();
        let mut round = 0;
        while !pending.is_empty() && round < self.verify.rechecks {
            round += 1;
            std::thread::sleep(self.verify.recheck_delay);
            let keys: Vec<Key> = pending.keys().cloned().collect();
            let mut next = BTreeMap::new();
            for batch in keys.chunks(self.verify.chunk_rows as usize) {
                let src = self
                    .plan
                    .key_digests(conns.source, Side::Source, batch, false)?;
                let dst =
                    self.plan
                        .key_digests(conns.destination, Side::Destination, batch, false)?;
                for key in batch {
                    let now = Seen {
                        source: src.get(key).cloned(),
                        destination: dst.get(key).cloned(),
                    };
                    if now.source == now.destination {
                        self.report.settled_on_recheck += 1;
                    } else {
                        next.insert(key.clone(), now);
                    }
                }
            }
            pending = next;
        }
        let mut confirmed = confirmed;
        confirmed.extend(pending);
        for (key, seen) in confirmed {
            let diff = RowDiff {
                key,
                source: seen.source,
                destination: seen.destination,
            };
            match (&diff.source, &diff.destination) {
                (Some(_), None) => self.report.missing_on_destination.push(diff),
                (None, Some(_)) => self.report.missing_on_source.push(diff),
                _ => self.report.different.push(diff),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_widths_and_char_compare() {
        assert!(compatible(Canon::Float, Canon::Float32));
        assert!(compatible(Canon::Char, Canon::Text));
        assert!(!compatible(Canon::Text, Canon::Integer));
        assert!(!compatible(Canon::Timestamp, Canon::TimestampTz));
    }
}
