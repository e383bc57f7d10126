//! Repair: converge the follower side to the authoritative side for the rows a
//! [`Verify`](super::verify::Verify) reported, without ever overwriting a newer version.
//!
//! For each reported row, [`Repair::run`]:
//!
//! 1. opens a transaction on the authoritative side and reads the row there under a lock
//!    (`SELECT ... FOR UPDATE` on PostgreSQL and MariaDB; on SQLite a write transaction,
//!    `BEGIN IMMEDIATE`), so that no write can change it until the repair of the row ends;
//! 2. opens a transaction on the follower and reads (and locks) its row the same way;
//! 3. compares both digests with those the verification read ([`RowDiff`]): if either changed,
//!    the row was written since, and a newer version must not be overwritten by the repair's
//!    view: it is **skipped and re-queued** ([`RepairReport::requeued`], to verify again);
//! 4. otherwise inserts the missing row, updates the different one, or deletes the extra one on
//!    the follower (the row's values cross as one JSON document, rendered and parsed by the
//!    servers, as the backfill copies them), commits the follower, then the authoritative side.
//!
//! [`Repair::dry_run`] reads the same (without locks or writes) and lists what it would do.
//! On MariaDB both sessions are switched to UTC (`time_zone = '+00:00'`), so `TIMESTAMP`
//! values cross unchanged. Run it outside any transaction of the two connections.
//!
//! ```
//! # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use diesel::connection::SimpleConnection;
//! use diesel::prelude::*;
//! use diesel_rw::migrate::{repair::Repair, verify::Verify, TableSpec};
//!
//! let dir = std::env::temp_dir().join(format!("diesel-rw-repair-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let open = |name: &str| -> Result<SqliteConnection, Box<dyn std::error::Error>> {
//!     let path = dir.join(name);
//!     let _ = std::fs::remove_file(&path);
//!     let mut c = SqliteConnection::establish(path.to_str().unwrap())?;
//!     c.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")?;
//!     Ok(c)
//! };
//! let (mut src, mut dst) = (open("src.db")?, open("dst.db")?);
//! src.batch_execute("INSERT INTO t VALUES (1, 'ada'), (2, 'bob'), (3, 'cy')")?;
//! dst.batch_execute("INSERT INTO t VALUES (1, 'ada'), (2, 'Bob'), (4, 'dee')")?;
//!
//! let verify = Verify::new(TableSpec::new("t")).recheck_delay(Duration::from_millis(10));
//! let report = verify.run(&mut src, &mut dst)?;
//! assert_eq!(report.differences(), 3);
//!
//! let plan = Repair::new(TableSpec::new("t")).dry_run(true).run(&report, &mut src, &mut dst)?;
//! assert_eq!(plan.planned.len(), 3);
//! assert!(plan.applied.is_empty());
//!
//! let done = Repair::new(TableSpec::new("t")).run(&report, &mut src, &mut dst)?;
//! assert_eq!(done.applied.len(), 3);
//! assert!(verify.run(&mut src, &mut dst)?.is_clean());
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

use std::fmt;
use std::sync::Arc;

use crate::double_write::Side;
use crate::error::{Error, Result};

use super::dialect::{Binds, Dialect, MigrateConnection};
use super::key::Key;
use super::table::{Column, ColumnKind, Table, TableSpec};
use super::verify::{keys_predicate, Plan, RowDiff, VerifyReport};

/// What a repair does to one row of the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepairKind {
    /// Insert the row the follower is missing.
    Insert,
    /// Update the follower's row to the authoritative side's values.
    Update,
    /// Delete the follower's row, which the authoritative side does not have.
    Delete,
}

impl fmt::Display for RepairKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RepairKind::Insert => "insert",
            RepairKind::Update => "update",
            RepairKind::Delete => "delete",
        })
    }
}

/// One row's repair: what is (or would be) done, on which side.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepairAction {
    /// The row's key.
    pub key: Key,
    /// What is done.
    pub kind: RepairKind,
    /// The side written (the follower).
    pub side: Side,
}

impl fmt::Display for RepairAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} on the {}", self.kind, self.key, self.side)
    }
}

/// Why a reported row was not repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The row changed on a side since the verification read it: repairing it from that read
    /// could overwrite a newer version. It is re-queued ([`RepairReport::requeued`]).
    ChangedSinceVerify(Side),
    /// The two sides hold the same row now (a write converged them): nothing to do.
    AlreadyEqual,
}

/// A reported row that was not repaired, and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Skipped {
    /// The row's key.
    pub key: Key,
    /// Why.
    pub reason: SkipReason,
}

/// What [`Repair::run`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// The table.
    pub table: String,
    /// The side copied from.
    pub authoritative: Side,
    /// Whether it was a dry run (then nothing was written, and [`planned`](Self::planned)
    /// lists what would be).
    pub dry_run: bool,
    /// Dry run: what would be done.
    pub planned: Vec<RepairAction>,
    /// What was done.
    pub applied: Vec<RepairAction>,
    /// The rows not repaired, and why.
    pub skipped: Vec<Skipped>,
    /// The keys of rows that changed since the verification: verify them again (e.g. with
    /// [`VerifyMode::Keys`](super::verify::VerifyMode::Keys)), then repair what is still
    /// reported.
    pub requeued: Vec<Key>,
}

/// A hook called with each row's key before its authoritative row is locked.
type Hook = Arc<dyn Fn(&Key) + Send + Sync>;

/// A repair of one table (see the [module docs](self)).
#[derive(Clone)]
pub struct Repair {
    spec: TableSpec,
    dry_run: bool,
    before_lock: Option<Hook>,
}

impl fmt::Debug for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repair")
            .field("spec", &self.spec)
            .field("dry_run", &self.dry_run)
            .field("before_lock", &self.before_lock.is_some())
            .finish()
    }
}

/// What happened to one row.
enum Outcome {
    Done(RepairKind),
    Skip(SkipReason),
}

impl Repair {
    /// Repairs the table `spec` names (the same table the report is of).
    pub fn new(spec: impl Into<TableSpec>) -> Repair {
        Repair {
            spec: spec.into(),
            dry_run: false,
            before_lock: None,
        }
    }

    /// Only list what would be done ([`RepairReport::planned`]); write nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Repair {
        self.dry_run = dry_run;
        self
    }

    /// Calls `hook` with each row's key after the report was read and before the row is
    /// locked: for tracing, or for a test that writes the row meanwhile.
    pub fn before_lock(mut self, hook: impl Fn(&Key) + Send + Sync + 'static) -> Repair {
        self.before_lock = Some(Arc::new(hook));
        self
    }

    /// Converges the follower (the side the report's
    /// [`authoritative`](VerifyReport::authoritative) is not) for every row of `report`.
    ///
    /// Errors, with nothing written: those of [`Verify::run`](super::verify::Verify::run) for
    /// the table's description, and [`Error::Config`] for a report of another table. A
    /// database error stops the repair (the row being repaired is rolled back on both sides;
    /// the rows before it stay repaired).
    pub fn run<C: MigrateConnection>(
        &self,
        report: &VerifyReport,
        source: &mut C,
        destination: &mut C,
    ) -> Result<RepairReport> {
        let plan = Plan::describe(&self.spec, &[], source, destination)?;
        if plan.source.table.name != report.table {
            return Err(Error::Config(format!(
                "the verify report is of table `{}`, not of `{}`: repair the table it was made for; nothing was written",
                report.table, plan.source.table.name
            )));
        }
        let auth = report.authoritative;
        let follower = auth.other();
        let mut out = RepairReport {
            table: report.table.clone(),
            authoritative: auth,
            dry_run: self.dry_run,
            planned: Vec::new(),
            applied: Vec::new(),
            skipped: Vec::new(),
            requeued: Vec::new(),
        };
        let setup = plan.dialect.session_setup();
        if !self.dry_run && !setup.is_empty() {
            source.execute_binds(setup, &[])?;
            destination.execute_binds(setup, &[])?;
        }
        for diff in report.diffs() {
            if let Some(hook) = &self.before_lock {
                hook(&diff.key);
            }
            let (a, f) = match auth {
                Side::Source => (&mut *source, &mut *destination),
                Side::Destination => (&mut *destination, &mut *source),
            };
            let outcome = if self.dry_run {
                self.plan_row(&plan, auth, diff, a, f)?
            } else {
                repair_row(&plan, auth, diff, a, f)?
            };
            match outcome {
                Outcome::Done(kind) => {
                    let action = RepairAction {
                        key: diff.key.clone(),
                        kind,
                        side: follower,
                    };
                    tracing::info!(
                        target: "diesel_rw::migrate",
                        table = %out.table,
                        dry_run = self.dry_run,
                        "repair: {action}"
                    );
                    if self.dry_run {
                        out.planned.push(action);
                    } else {
                        out.applied.push(action);
                    }
                }
                Outcome::Skip(reason) => {
                    tracing::info!(
                        target: "diesel_rw::migrate",
                        table = %out.table,
                        key = %diff.key,
                        ?reason,
                        "repair: row skipped"
                    );
                    if let SkipReason::ChangedSinceVerify(_) = reason {
                        out.requeued.push(diff.key.clone());
                    }
                    out.skipped.push(Skipped {
                        key: diff.key.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Dry run: what would be done to the row, from unlocked reads.
    fn plan_row<C: MigrateConnection>(
        &self,
        plan: &Plan,
        auth: Side,
        diff: &RowDiff,
        a: &mut C,
        f: &mut C,
    ) -> Result<Outcome> {
        let keys = std::slice::from_ref(&diff.key);
        let ad = plan.key_digests(a, auth, keys, false)?.remove(&diff.key);
        let fd = plan
            .key_digests(f, auth.other(), keys, false)?
            .remove(&diff.key);
        Ok(decide(auth, diff, ad.as_deref(), fd.as_deref()))
    }
}

/// What to do given the digests read now on the authoritative side (`ad`) and the follower
/// (`fd`).
fn decide(auth: Side, diff: &RowDiff, ad: Option<&str>, fd: Option<&str>) -> Outcome {
    if ad != diff.digest(auth) {
        return Outcome::Skip(SkipReason::ChangedSinceVerify(auth));
    }
    if fd != diff.digest(auth.other()) {
        return Outcome::Skip(SkipReason::ChangedSinceVerify(auth.other()));
    }
    match (ad, fd) {
        (None, None) => Outcome::Skip(SkipReason::AlreadyEqual),
        (a, f) if a == f => Outcome::Skip(SkipReason::AlreadyEqual),
        (None, Some(_)) => Outcome::Done(RepairKind::Delete),
        (Some(_), None) => Outcome::Done(RepairKind::Insert),
        (Some(_), Some(_)) => Outcome::Done(RepairKind::Update),
    }
}

/// Repairs one row: both sides locked, digests checked against the report, then written.
fn repair_row<C: MigrateConnection>(
    plan: &Plan,
    auth: Side,
    diff: &RowDiff,
    a: &mut C,
    f: &mut C,
) -> Result<Outcome> {
    let follower = auth.other();
    let keys = std::slice::from_ref(&diff.key);
    a.locking_transaction(|a| {
        let ad = plan.key_digests(a, auth, keys, true)?.remove(&diff.key);
        if ad.as_deref() != diff.digest(auth) {
            return Ok(Outcome::Skip(SkipReason::ChangedSinceVerify(auth)));
        }
        let at = &plan.side(auth).table;
        let ft = &plan.side(follower).table;
        // The authoritative row's values, while it is locked.
        let doc = match ad {
            Some(_) => {
                let cols = at.writable_columns();
                let mut binds = Binds::new(plan.dialect);
                let predicate = keys_predicate(at, keys, None, &mut binds)?;
                let sql = plan.dialect.rows_json_sql(at, &cols, &predicate, false);
                a.query_texts(&sql, binds.values())?
                    .into_iter()
                    .flatten()
                    .next()
            }
            None => None,
        };
        f.locking_transaction(|f| {
            let fd = plan.key_digests(f, follower, keys, true)?.remove(&diff.key);
            let outcome = decide(auth, diff, ad.as_deref(), fd.as_deref());
            let Outcome::Done(kind) = outcome else {
                return Ok(outcome);
            };
            let written = match (kind, &doc) {
                (RepairKind::Delete, _) => {
                    let mut binds = Binds::new(plan.dialect);
                    let predicate = keys_predicate(ft, keys, None, &mut binds)?;
                    let sql = format!("DELETE FROM {} WHERE {predicate}", ft.sql_name);
                    f.execute_binds(&sql, binds.values())?
                }
                (RepairKind::Insert, Some(doc)) => {
                    let cols = follower_columns(at, ft, false);
                    let mut binds = Binds::new(plan.dialect);
                    let ph = binds.push(doc.clone());
                    let sql = plan.dialect.insert_json_sql(ft, &cols, &ph);
                    f.execute_binds(&sql, binds.values())?
                }
                (RepairKind::Update, Some(doc)) => {
                    let cols = follower_columns(at, ft, true);
                    if cols.is_empty() {
                        0
                    } else {
                        let mut binds = Binds::new(plan.dialect);
                        let sql = update_json_sql(plan.dialect, ft, &cols, keys, doc, &mut binds)?;
                        f.execute_binds(&sql, binds.values())?
                    }
                }
                _ => 0,
            };
            if written == 0 {
                // A row that appeared meanwhile (insert-if-absent did nothing).
                return Ok(Outcome::Skip(SkipReason::ChangedSinceVerify(follower)));
            }
            Ok(Outcome::Done(kind))
        })
    })
}

/// The follower's columns written from the authoritative row: its writable columns that the
/// authoritative table has, without the key ones when `skip_key`.
fn follower_columns<'t>(at: &Table, ft: &'t Table, skip_key: bool) -> Vec<&'t Column> {
    let key = ft.key_names();
    ft.writable_columns()
        .into_iter()
        .filter(|c| at.column(&c.name).is_some_and(|a| !a.generated))
        .filter(|c| !(skip_key && key.contains(&c.name)))
        .collect()
}

/// The statement updating the follower's row `keys` to the values of the JSON document `doc`
/// (one row, as [`Dialect::rows_json_sql`] renders it).
fn update_json_sql(
    d: Dialect,
    table: &Table,
    columns: &[&Column],
    keys: &[Key],
    doc: &str,
    binds: &mut Binds,
) -> Result<String> {
    let t = &table.sql_name;
    Ok(match d {
        Dialect::Postgres => {
            let ph = binds.push(doc);
            let sets: Vec<String> = columns
                .iter()
                .map(|c| format!("{0} = dw_j.{0}", d.quote(&c.name)))
                .collect();
            let predicate = keys_predicate(table, keys, Some("dw_t"), binds)?;
            format!(
                "UPDATE {t} AS dw_t SET {} FROM json_populate_recordset(NULL::{t}, {ph}::json) AS dw_j WHERE {predicate}",
                sets.join(", ")
            )
        }
        Dialect::Mysql => {
            let ph = binds.push(doc);
            let defs: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    format!(
                        "dw_c{i} LONGTEXT PATH {}",
                        d.literal(&format!("$.\"{}\"", c.name.replace('"', "\\\"")))
                    )
                })
                .collect();
            let sets: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let v = match c.kind {
                        ColumnKind::Binary => format!("UNHEX(dw_jt.dw_c{i})"),
                        _ => format!("dw_jt.dw_c{i}"),
                    };
                    format!("dw_t.{} = {v}", d.quote(&c.name))
                })
                .collect();
            let predicate = keys_predicate(table, keys, Some("dw_t"), binds)?;
            format!(
                "UPDATE {t} AS dw_t JOIN JSON_TABLE({ph}, '$[*]' COLUMNS ({})) AS dw_jt SET {} WHERE {predicate}",
                defs.join(", "),
                sets.join(", ")
            )
        }
        Dialect::Sqlite => {
            let ph = binds.push(doc);
            let names: Vec<String> = columns.iter().map(|c| d.quote(&c.name)).collect();
            let values: Vec<String> = columns
                .iter()
                .map(|c| {
                    let v = format!("value ->> {}", d.literal(&c.name));
                    match c.kind {
                        ColumnKind::Binary => format!("unhex({v})"),
                        ColumnKind::Float => {
                            format!("CASE WHEN typeof({v}) = 'text' THEN CAST({v} AS REAL) ELSE {v} END")
                        }
                        _ => v,
                    }
                })
                .collect();
            let predicate = keys_predicate(table, keys, None, binds)?;
            format!(
                "UPDATE {t} SET ({}) = (SELECT {} FROM json_each({ph})) WHERE {predicate}",
                names.join(", "),
                values.join(", ")
            )
        }
    })
}
