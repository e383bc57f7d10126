//! The cutover gates: what must hold before each step forward ([`Gate`], [`CutoverGates`]).

use std::time::Duration;

use diesel::connection::LoadConnection;

use crate::double_write::counters::{self, KeyCounterBackend};
use crate::double_write::Pattern;
use crate::error::{Error, Result};
use crate::migrate::journal::{self, JournalRow};
use crate::migrate::verify_runs::{self, RunFilter};
use crate::migrate::{Checkpoint, MigrateConnection, Table, TableSpec};

/// A gate that refused a step, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The gate: `destination schema`, `backfill`, `verify`, `journal`, `key counters`.
    pub gate: String,
    /// Why it refused.
    pub reason: String,
}

impl Refusal {
    /// A refusal by `gate`.
    pub fn new(gate: impl Into<String>, reason: impl Into<String>) -> Refusal {
        Refusal {
            gate: gate.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.gate, self.reason)
    }
}

/// What must hold before a step forward from `from` to `to`: every refusal, or none.
///
/// An `Err` means a gate could not be checked (a database unreachable); the step is not
/// taken, forced or not.
pub trait Gate {
    /// The refusals of the step `from -> to` (empty: it may be taken).
    fn check(&mut self, from: Pattern, to: Pattern) -> Result<Vec<Refusal>>;
}

/// No gate: every step forward may be taken (for tests, or a migration gated elsewhere).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGates;

impl Gate for NoGates {
    fn check(&mut self, _: Pattern, _: Pattern) -> Result<Vec<Refusal>> {
        Ok(Vec::new())
    }
}

/// The gates of an online migration's steps forward, checked on the source and destination
/// databases themselves:
///
/// - **to `SrcFirst`** (`destination schema`): the destination has every table of the
///   migration, with every column the source's has.
/// - **to `DstFirst`**: `backfill`: each table's backfill [checkpoint](Checkpoint) on the
///   destination is done; `verify`: the last verify run of each table that covered every row
///   ([`verify_runs`](crate::migrate::verify_runs); a run must be recorded, see
///   `Verify::record_to`) finished clean and is younger than
///   [`verify_max_age`](Self::verify_max_age); `journal`: no pending entry of the durable journal
///   names one of the tables (or no table); `key counters`: no generated-key counter of the
///   tables on the destination is behind the source's.
/// - **to `DstOnly`** (`verify`): the last verify run of each table recorded under `DstFirst`
///   (`Verify::pattern`) that covered every row finished clean and is younger than the limit.
pub struct CutoverGates<C> {
    source: C,
    destination: C,
    tables: Vec<TableSpec>,
    verify_max_age: Duration,
    records: Option<C>,
    key_counters: bool,
}

impl<C> std::fmt::Debug for CutoverGates<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CutoverGates")
            .field(
                "tables",
                &self.tables.iter().map(|t| t.name()).collect::<Vec<_>>(),
            )
            .field("verify_max_age", &self.verify_max_age)
            .field("key_counters", &self.key_counters)
            .finish_non_exhaustive()
    }
}

impl<C> CutoverGates<C>
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
{
    /// The gates of a migration of `tables`, checked on connections to the source and the
    /// destination; a verify counts for 24 hours; the journal is read on the source.
    pub fn new<I, T>(source: C, destination: C, tables: I) -> CutoverGates<C>
    where
        I: IntoIterator<Item = T>,
        T: Into<TableSpec>,
    {
        CutoverGates {
            source,
            destination,
            tables: tables.into_iter().map(Into::into).collect(),
            verify_max_age: Duration::from_secs(24 * 3600),
            records: None,
            key_counters: true,
        }
    }

    /// How old the last clean verify may be (default 24 h).
    pub fn verify_max_age(mut self, age: Duration) -> Self {
        self.verify_max_age = age;
        self
    }

    /// The database of the durable journal and of the verify runs' record, when it is not
    /// the source.
    pub fn records_on(mut self, conn: C) -> Self {
        self.records = Some(conn);
        self
    }

    /// Whether to check the generated-key counters before `DstFirst` (default `true`; turn
    /// it off for tables whose keys the application makes, e.g. UUIDs).
    pub fn key_counters(mut self, check: bool) -> Self {
        self.key_counters = check;
        self
    }

    fn describe_source(&mut self, spec: &TableSpec) -> Result<Table> {
        spec.describe(&mut self.source)
    }

    fn schema(&mut self) -> Result<Vec<Refusal>> {
        let mut refusals = Vec::new();
        for spec in self.tables.clone() {
            let source = self.describe_source(&spec)?;
            let destination = match spec.describe(&mut self.destination) {
                Ok(t) => t,
                Err(Error::UnknownTable { .. }) => {
                    refusals.push(Refusal::new(
                        "destination schema",
                        format!("table `{}` is missing on the destination", spec.name()),
                    ));
                    continue;
                }
                Err(Error::NoPrimaryKey { .. }) => {
                    refusals.push(Refusal::new(
                        "destination schema",
                        format!(
                            "table `{}` has no primary key on the destination",
                            spec.name()
                        ),
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let missing: Vec<String> = source
                .columns
                .iter()
                .filter(|c| destination.column(&c.name).is_none())
                .map(|c| format!("`{}`", c.name))
                .collect();
            if !missing.is_empty() {
                refusals.push(Refusal::new(
                    "destination schema",
                    format!(
                        "table `{}` on the destination has no column(s) {}",
                        spec.name(),
                        missing.join(", ")
                    ),
                ));
            }
        }
        Ok(refusals)
    }

    fn backfill(&mut self) -> Result<Vec<Refusal>> {
        let mut refusals = Vec::new();
        for spec in self.tables.clone() {
            let table = self.describe_source(&spec)?;
            match Checkpoint::load(&mut self.destination, &table.name)? {
                Some(cp) if cp.done => {}
                Some(cp) => refusals.push(Refusal::new(
                    "backfill",
                    format!(
                        "table `{}`: not complete ({} rows copied so far, last key {})",
                        spec.name(),
                        cp.rows_copied,
                        cp.last_key
                            .as_ref()
                            .map_or_else(|| "none".to_owned(), |k| k.to_string())
                    ),
                )),
                None => refusals.push(Refusal::new(
                    "backfill",
                    format!(
                        "table `{}`: never run (no checkpoint `{}` on the destination)",
                        spec.name(),
                        table.name
                    ),
                )),
            }
        }
        Ok(refusals)
    }

    fn verify(&mut self, under: Option<Pattern>) -> Result<Vec<Refusal>> {
        let mut refusals = Vec::new();
        for spec in self.tables.clone() {
            let table = self.describe_source(&spec)?;
            let mut filter = RunFilter::new().every_row();
            if let Some(p) = under {
                filter = filter.pattern(p);
            }
            let records = self.records.as_mut().unwrap_or(&mut self.source);
            let last = verify_runs::latest(records, &table.name, &filter)?;
            let under_text = under.map_or_else(String::new, |p| format!(" under {p}"));
            let reason = match last {
                None => format!("never verified in full{under_text}"),
                Some(run) if run.finished_at.is_none() => format!(
                    "the last full verify{under_text} (run #{}, started {}) has not finished (running, or its process died)",
                    run.id, run.started_at
                ),
                Some(run) if !run.clean => format!(
                    "the last full verify{under_text} (run #{}) {}",
                    run.id,
                    match &run.error {
                        Some(e) => format!("failed: {e}"),
                        None => format!("found {} difference(s): repair, then verify again", run.differences),
                    }
                ),
                Some(run) if run.age.unwrap_or(Duration::MAX) > self.verify_max_age => format!(
                    "the last clean full verify{under_text} (run #{}) is {} s old, over the limit of {} s: verify again",
                    run.id,
                    run.age.unwrap_or_default().as_secs(),
                    self.verify_max_age.as_secs()
                ),
                Some(_) => continue,
            };
            refusals.push(Refusal::new(
                "verify",
                format!("table `{}`: {reason}", spec.name()),
            ));
        }
        Ok(refusals)
    }

    /// Every name a statement or a catalog may give the migration's tables: as given, as the
    /// source's catalog names them (`schema.table`), and without the schema.
    fn names(&mut self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for spec in self.tables.clone() {
            let table = self.describe_source(&spec)?;
            names.push(spec.name().to_owned());
            if let Some((_, bare)) = table.name.rsplit_once('.') {
                names.push(bare.to_owned());
            }
            names.push(table.name);
        }
        Ok(names)
    }

    fn journal(&mut self) -> Result<Vec<Refusal>> {
        let names = self.names()?;
        let conn = self.records.as_mut().unwrap_or(&mut self.source);
        let pending: Vec<JournalRow> = journal::rows(conn, journal::Which::Pending)?
            .into_iter()
            .filter(|r| r.table.as_ref().is_none_or(|t| names.contains(t)))
            .collect();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Refusal::new(
            "journal",
            format!(
                "{} pending journal entr{} (oldest: #{} on table {}, {}): run an incremental verify from the journal and repair",
                pending.len(),
                if pending.len() == 1 { "y" } else { "ies" },
                pending[0].id,
                pending[0].table.as_deref().unwrap_or("(none named)"),
                pending[0].recorded_at
            ),
        )])
    }

    fn counters(&mut self) -> Result<Vec<Refusal>> {
        if !self.key_counters {
            return Ok(Vec::new());
        }
        let names = self.names()?;
        let source = C::Backend::read_key_counters(&mut self.source)?;
        let destination = C::Backend::read_key_counters(&mut self.destination)?;
        Ok(counters::behind(&source, &destination)
            .into_iter()
            .filter(|lag| lag.source.table.as_ref().is_some_and(|t| names.contains(t)))
            .map(|lag| Refusal::new("key counters", lag.to_string()))
            .collect())
    }
}

impl<C> Gate for CutoverGates<C>
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
{
    fn check(&mut self, _from: Pattern, to: Pattern) -> Result<Vec<Refusal>> {
        Ok(match to {
            Pattern::SrcOnly => Vec::new(),
            Pattern::SrcFirst => self.schema()?,
            Pattern::DstFirst => {
                let mut all = self.backfill()?;
                all.extend(self.verify(None)?);
                all.extend(self.journal()?);
                all.extend(self.counters()?);
                all
            }
            Pattern::DstOnly => self.verify(Some(Pattern::DstFirst))?,
        })
    }
}
