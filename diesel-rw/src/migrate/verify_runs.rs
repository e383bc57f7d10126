//! The record of verify runs: when each [`Verify`](super::verify::Verify) of a table ran, in
//! which mode and direction, under which double-write pattern, and whether it was clean.
//!
//! A verification that [records](super::verify::Verify::record_to) its runs writes one row to
//! [`VERIFY_RUN_TABLE`] (created if absent; on the source by default, like the
//! [journal](super::journal)) when it starts, and completes it when it ends. The record serves:
//!
//! - **incremental runs**: [`VerifyMode::SinceLastClean`](super::verify::VerifyMode::SinceLastClean)
//!   compares the rows changed since the start of the last clean run that covered every row
//!   ([`RunFilter::every_row`]), so that a write the journal never saw (a process killed
//!   between the two sides of a write) is still found;
//! - **cutover gates**: [`last_clean`] answers "the last clean run of this table, when it
//!   finished (and how long ago, by the server's clock), under which pattern, in which
//!   direction"; [`latest`] answers "the last run, clean or not, finished or not";
//! - **status displays**: [`runs`] lists the latest runs.
//!
//! | column | type | what |
//! |---|---|---|
//! | `id` | 64-bit integer, generated | the run's number |
//! | `table_name` | text | the table, as the source's catalog names it (`schema.table` on PostgreSQL and MariaDB) |
//! | `mode` | text | `full`, `changed_since` or `keys` ([`RunMode`]): what the run compared, after resolving "since the last clean run" |
//! | `journal` | integer 0/1 | whether the rows came from the durable journal ([`run_journal`](super::verify::Verify::run_journal)) |
//! | `authoritative` | text | the side taken as right (`source` / `destination`) |
//! | `pattern` | text, nullable | the double-write pattern in force, if the caller said ([`Verify::pattern`](super::verify::Verify::pattern)) |
//! | `since` | text, nullable | the start of the changed-since window |
//! | `started_at`, `finished_at` | the server's timestamp (`TIMESTAMPTZ` / `TIMESTAMP(6)` / SQLite text) | when the run started and ended, by the recording database's clock; `finished_at` `NULL`: running, or the process died |
//! | `rows_compared`, `differences` | integers | as in the [`VerifyReport`] |
//! | `clean` | integer 0/1 | finished with no difference |
//! | `error` | text, nullable | why the run failed, if it did |
//!
//! ```
//! # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::connection::SimpleConnection;
//! use diesel::prelude::*;
//! use diesel_rw::double_write::{Pattern, Side};
//! use diesel_rw::migrate::verify::{Verify, VerifyMode};
//! use diesel_rw::migrate::verify_runs::{self, RunFilter, RunMode};
//! use diesel_rw::migrate::{Key, TableSpec};
//!
//! let dir = std::env::temp_dir().join(format!("diesel-rw-runs-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let open = |name: &str| -> Result<SqliteConnection, Box<dyn std::error::Error>> {
//!     let path = dir.join(name);
//!     let _ = std::fs::remove_file(&path);
//!     let mut c = SqliteConnection::establish(path.to_str().unwrap())?;
//!     c.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, changed_at TEXT)")?;
//!     c.batch_execute("INSERT INTO t VALUES (1, 'a', '2020-01-01 00:00:00.000')")?;
//!     Ok(c)
//! };
//! let (mut src, mut dst) = (open("src.db")?, open("dst.db")?);
//! let verify = Verify::new(TableSpec::new("t").changed_at("changed_at"))
//!     .recheck_delay(std::time::Duration::from_millis(10))
//!     .record_to(Side::Source) // into diesel_rw_verify_run on the source
//!     .pattern(Pattern::SrcFirst);
//!
//! // No clean run recorded yet: "since the last clean run" compares every row.
//! let first = verify.clone().mode(VerifyMode::SinceLastClean).run(&mut src, &mut dst)?;
//! assert!(first.is_clean() && first.recorded.is_some());
//! let last = verify_runs::last_clean(&mut src, "t", &RunFilter::new().every_row())?.unwrap();
//! assert_eq!((last.mode, last.authoritative, last.pattern), (RunMode::Full, Side::Source, Some(Pattern::SrcFirst)));
//! assert!(last.clean && last.finished_at.is_some() && last.age.is_some());
//!
//! // A row written to the source only, after that run (its "changed at" is later).
//! src.batch_execute("INSERT INTO t VALUES (2, 'b', strftime('%Y-%m-%d %H:%M:%f', 'now'))")?;
//! let next = verify.clone().mode(VerifyMode::SinceLastClean).run(&mut src, &mut dst)?;
//! assert_eq!(next.missing_on_destination_keys(), vec![Key::new(vec!["2".into()])]);
//! assert_eq!(next.rows_compared, 1); // row 1 did not change since
//!
//! // The last run is not clean; the last clean one is still the first.
//! let latest = verify_runs::latest(&mut src, "t", &RunFilter::new())?.unwrap();
//! assert_eq!((latest.mode, latest.clean, latest.differences), (RunMode::ChangedSince, false, 1));
//! assert_eq!(verify_runs::last_clean(&mut src, "t", &RunFilter::new())?.unwrap().id, last.id);
//! // None under DstFirst yet (a gate to DstOnly would refuse).
//! let under = RunFilter::new().pattern(Pattern::DstFirst);
//! assert!(verify_runs::last_clean(&mut src, "t", &under)?.is_none());
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

use std::time::Duration;

use crate::double_write::{Pattern, Side};
use crate::error::{Error, Result};

use super::dialect::{Binds, Dialect, MigrateConnection};
use super::verify::VerifyReport;

/// The verify runs' table name.
pub const VERIFY_RUN_TABLE: &str = "diesel_rw_verify_run";

/// What a recorded run compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunMode {
    /// Every row of the table.
    Full,
    /// The rows changed since a time ([`VerifyRun::since`]), and the journal's keys if it was a
    /// journal run.
    ChangedSince,
    /// The rows with given keys only (a journal run whose entries all had keys, or
    /// [`VerifyMode::Keys`](super::verify::VerifyMode::Keys)): says nothing of the other rows.
    Keys,
}

impl RunMode {
    /// Its name in the table (`full`, `changed_since`, `keys`).
    pub const fn name(self) -> &'static str {
        match self {
            RunMode::Full => "full",
            RunMode::ChangedSince => "changed_since",
            RunMode::Keys => "keys",
        }
    }

    fn parse(s: &str) -> Option<RunMode> {
        Some(match s {
            "full" => RunMode::Full,
            "changed_since" => RunMode::ChangedSince,
            "keys" => RunMode::Keys,
            _ => return None,
        })
    }

    /// Whether a clean run of this mode proves every row equal when it ran: a full run, or a
    /// changed-since run (whose window starts at an earlier clean run that did).
    pub const fn covers_every_row(self) -> bool {
        matches!(self, RunMode::Full | RunMode::ChangedSince)
    }
}

/// One recorded verify run, as read back.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifyRun {
    /// The run's number.
    pub id: i64,
    /// The table, as the source's catalog names it.
    pub table: String,
    /// What it compared.
    pub mode: RunMode,
    /// Whether its rows came from the durable journal.
    pub journal: bool,
    /// The side taken as right.
    pub authoritative: Side,
    /// The double-write pattern in force, if the caller said.
    pub pattern: Option<Pattern>,
    /// The start of its changed-since window ([`RunMode::ChangedSince`]).
    pub since: Option<String>,
    /// When it started, as the recording database's text of its timestamp.
    pub started_at: String,
    /// When it ended; `None`: still running, or its process died.
    pub finished_at: Option<String>,
    /// How long ago it ended, by the recording database's clock when it was read.
    pub age: Option<Duration>,
    /// Rows compared.
    pub rows_compared: u64,
    /// Rows found different in any way (missing on either side, or different).
    pub differences: u64,
    /// Whether it finished with no difference.
    pub clean: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Which recorded runs [`latest`] and [`last_clean`] look at (by default: every run of the
/// table).
///
/// ```
/// use diesel_rw::double_write::{Pattern, Side};
/// use diesel_rw::migrate::verify_runs::RunFilter;
/// // A gate to DstOnly: a run that covered every row, destination authoritative, under DstFirst.
/// let gate = RunFilter::new().every_row().authoritative(Side::Destination).pattern(Pattern::DstFirst);
/// # let _ = gate;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    authoritative: Option<Side>,
    pattern: Option<Pattern>,
    every_row: bool,
    journal: Option<bool>,
}

impl RunFilter {
    /// Every run of the table.
    pub fn new() -> RunFilter {
        RunFilter::default()
    }

    /// Only runs with `side` authoritative.
    pub fn authoritative(mut self, side: Side) -> RunFilter {
        self.authoritative = Some(side);
        self
    }

    /// Only runs recorded under `pattern` ([`Verify::pattern`](super::verify::Verify::pattern)).
    pub fn pattern(mut self, pattern: Pattern) -> RunFilter {
        self.pattern = Some(pattern);
        self
    }

    /// Only runs that covered every row ([`RunMode::covers_every_row`]): not a run of a list
    /// of keys.
    pub fn every_row(mut self) -> RunFilter {
        self.every_row = true;
        self
    }

    /// Only journal runs (`true`) or only other runs (`false`).
    pub fn journal(mut self, journal: bool) -> RunFilter {
        self.journal = Some(journal);
        self
    }

    fn sql(&self, b: &mut Binds) -> String {
        let mut out = String::new();
        if let Some(side) = self.authoritative {
            out += &format!(" AND authoritative = {}", b.push(side.name()));
        }
        if let Some(p) = self.pattern {
            out += &format!(" AND pattern = {}", b.push(p.name()));
        }
        if self.every_row {
            out += " AND mode IN ('full', 'changed_since')";
        }
        if let Some(j) = self.journal {
            out += &format!(" AND journal = {}", u8::from(j));
        }
        out
    }
}

/// What a run is, when it starts (see [`VerifyRun`]).
#[derive(Clone, Debug)]
pub(crate) struct RunStart<'a> {
    pub(crate) table: &'a str,
    pub(crate) mode: RunMode,
    pub(crate) journal: bool,
    pub(crate) authoritative: Side,
    pub(crate) pattern: Option<Pattern>,
    pub(crate) since: Option<&'a str>,
}

fn now_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "clock_timestamp()",
        Dialect::Mysql => "CURRENT_TIMESTAMP(6)",
        Dialect::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
    }
}

/// `ts` minus `d`, as an SQL expression of the same type.
fn minus_sql(dialect: Dialect, ts: &str, d: Duration) -> String {
    let us = d.as_micros();
    match dialect {
        Dialect::Postgres => format!("({ts} - {us} * interval '1 microsecond')"),
        Dialect::Mysql => format!("({ts} - INTERVAL {us} MICROSECOND)"),
        Dialect::Sqlite => format!(
            "strftime('%Y-%m-%d %H:%M:%f', {ts}, '-{}.{:06} seconds')",
            d.as_secs(),
            d.subsec_micros()
        ),
    }
}

/// Creates the table on `conn` if it is not there.
pub fn create_table<C: MigrateConnection>(conn: &mut C) -> Result<()> {
    if table_exists(conn)? {
        return Ok(());
    }
    match create(conn) {
        // Two processes creating it at once: the other one made it.
        Err(_) if table_exists(conn)? => Ok(()),
        other => other,
    }
}

fn create<C: MigrateConnection>(conn: &mut C) -> Result<()> {
    let (id, ts) = match C::DIALECT {
        Dialect::Postgres => ("id BIGSERIAL PRIMARY KEY", "TIMESTAMPTZ"),
        Dialect::Mysql => (
            "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
            "TIMESTAMP(6)",
        ),
        Dialect::Sqlite => ("id INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT"),
    };
    let finished = match C::DIALECT {
        Dialect::Mysql => "finished_at TIMESTAMP(6) NULL DEFAULT NULL".to_owned(),
        _ => format!("finished_at {ts} NULL"),
    };
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {VERIFY_RUN_TABLE} ({id}, table_name VARCHAR(512) NOT NULL, \
           mode VARCHAR(32) NOT NULL, journal INTEGER NOT NULL, authoritative VARCHAR(16) NOT NULL, \
           pattern VARCHAR(16) NULL, since TEXT NULL, started_at {ts} NOT NULL, {finished}, \
           rows_compared BIGINT NOT NULL DEFAULT 0, differences BIGINT NOT NULL DEFAULT 0, \
           clean INTEGER NOT NULL DEFAULT 0, error TEXT NULL)"
    );
    conn.execute_binds(&sql, &[])?;
    let columns = match C::DIALECT {
        Dialect::Mysql => "table_name(191), id",
        Dialect::Postgres | Dialect::Sqlite => "table_name, id",
    };
    conn.execute_binds(
        &format!(
            "CREATE INDEX IF NOT EXISTS {VERIFY_RUN_TABLE}_table ON {VERIFY_RUN_TABLE} ({columns})"
        ),
        &[],
    )?;
    Ok(())
}

/// Whether the table exists on `conn`.
pub fn table_exists<C: MigrateConnection>(conn: &mut C) -> Result<bool> {
    let sql = match C::DIALECT {
        Dialect::Postgres => format!("SELECT to_regclass('{VERIFY_RUN_TABLE}')::text AS value"),
        Dialect::Mysql => format!(
            "SELECT TABLE_NAME AS value FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{VERIFY_RUN_TABLE}'"
        ),
        Dialect::Sqlite => format!(
            "SELECT name AS value FROM sqlite_master WHERE type = 'table' AND name = '{VERIFY_RUN_TABLE}'"
        ),
    };
    Ok(conn
        .query_texts(&sql, &[])?
        .into_iter()
        .flatten()
        .next()
        .is_some())
}

/// The id of the row just inserted on `conn` (`insert`: its INSERT, without `RETURNING`).
fn insert_returning_id<C: MigrateConnection>(
    conn: &mut C,
    insert: &str,
    binds: &[String],
) -> Result<i64> {
    let text = match C::DIALECT {
        Dialect::Postgres => conn
            .query_texts(&format!("{insert} RETURNING id::text AS value"), binds)?
            .into_iter()
            .flatten()
            .next(),
        Dialect::Mysql | Dialect::Sqlite => {
            conn.execute_binds(insert, binds)?;
            let last = if C::DIALECT == Dialect::Mysql {
                "SELECT CAST(LAST_INSERT_ID() AS CHAR) AS value"
            } else {
                "SELECT CAST(last_insert_rowid() AS TEXT) AS value"
            };
            conn.query_texts(last, &[])?.into_iter().flatten().next()
        }
    };
    text.and_then(|t| t.parse().ok()).ok_or_else(|| {
        Error::InvalidState(format!(
            "{VERIFY_RUN_TABLE}: the new run's id was not returned"
        ))
    })
}

/// Records the start of a run (creating the table if absent); returns its id.
pub(crate) fn start<C: MigrateConnection>(conn: &mut C, run: &RunStart<'_>) -> Result<i64> {
    create_table(conn)?;
    let mut b = Binds::new(C::DIALECT);
    let values = [
        b.push(run.table),
        b.push(run.mode.name()),
        u8::from(run.journal).to_string(),
        b.push(run.authoritative.name()),
        match run.pattern {
            Some(p) => b.push(p.name()),
            None => "NULL".to_owned(),
        },
        match run.since {
            Some(s) => b.push(s),
            None => "NULL".to_owned(),
        },
        now_sql(C::DIALECT).to_owned(),
    ];
    let sql = format!(
        "INSERT INTO {VERIFY_RUN_TABLE} (table_name, mode, journal, authoritative, pattern, since, started_at) \
         VALUES ({})",
        values.join(", ")
    );
    insert_returning_id(conn, &sql, b.values())
}

/// Records the end of run `id`: its report, or its error.
pub(crate) fn finish<C: MigrateConnection>(
    conn: &mut C,
    id: i64,
    outcome: std::result::Result<&VerifyReport, &Error>,
) -> Result<()> {
    let mut b = Binds::new(C::DIALECT);
    let now = now_sql(C::DIALECT);
    let set = match outcome {
        Ok(r) => format!(
            "rows_compared = {}, differences = {}, clean = {}",
            r.rows_compared,
            r.differences(),
            u8::from(r.is_clean())
        ),
        Err(e) => format!("error = {}", b.push(e.to_string())),
    };
    conn.execute_binds(
        &format!("UPDATE {VERIFY_RUN_TABLE} SET finished_at = {now}, {set} WHERE id = {id}"),
        b.values(),
    )?;
    Ok(())
}

/// Records a run that is over, after the fact (for a [`VerifyReport`] of a verification that
/// did not [record](super::verify::Verify::record_to) itself): its start is taken as the
/// recording database's clock now minus the report's `elapsed`. Returns the run as read back.
///
/// `pattern`: the double-write pattern the run ran under, if known.
pub fn record<C: MigrateConnection>(
    conn: &mut C,
    report: &VerifyReport,
    pattern: Option<Pattern>,
) -> Result<VerifyRun> {
    create_table(conn)?;
    let d = C::DIALECT;
    let mut b = Binds::new(d);
    let values = [
        b.push(report.table.clone()),
        b.push(report.mode.name()),
        u8::from(report.journal).to_string(),
        b.push(report.authoritative.name()),
        match pattern {
            Some(p) => b.push(p.name()),
            None => "NULL".to_owned(),
        },
        match &report.since {
            Some(s) => b.push(s.clone()),
            None => "NULL".to_owned(),
        },
        minus_sql(d, now_sql(d), report.elapsed),
        now_sql(d).to_owned(),
        report.rows_compared.to_string(),
        report.differences().to_string(),
        u8::from(report.is_clean()).to_string(),
    ];
    let sql = format!(
        "INSERT INTO {VERIFY_RUN_TABLE} (table_name, mode, journal, authoritative, pattern, since, \
           started_at, finished_at, rows_compared, differences, clean) VALUES ({})",
        values.join(", ")
    );
    let id = insert_returning_id(conn, &sql, b.values())?;
    read(conn, &format!(" WHERE id = {id}"), &Binds::new(d), 1)?
        .pop()
        .ok_or_else(|| Error::InvalidState(format!("{VERIFY_RUN_TABLE}: run {id} not found")))
}

/// The condition selecting `table`'s runs: its name as the catalog gives it, or as given
/// without a schema (`t` finds `public.t`).
fn table_sql(table: &str, b: &mut Binds) -> String {
    format!(
        "(table_name = {} OR table_name LIKE {})",
        b.push(table),
        b.push(format!("%.{table}"))
    )
}

/// The latest run of `table` that `filter` lets through, finished or not, clean or not.
///
/// `table`: as the source's catalog names it (`schema.table`), or without the schema.
pub fn latest<C: MigrateConnection>(
    conn: &mut C,
    table: &str,
    filter: &RunFilter,
) -> Result<Option<VerifyRun>> {
    if !table_exists(conn)? {
        return Ok(None);
    }
    let mut b = Binds::new(C::DIALECT);
    let cond = format!(" WHERE {}{}", table_sql(table, &mut b), filter.sql(&mut b));
    Ok(read(conn, &cond, &b, 1)?.pop())
}

/// The last clean run of `table` that `filter` lets through: finished with no difference,
/// the latest by its end. `None`: there is none (the gate it answers is closed).
///
/// `table`: as the source's catalog names it (`schema.table`), or without the schema.
pub fn last_clean<C: MigrateConnection>(
    conn: &mut C,
    table: &str,
    filter: &RunFilter,
) -> Result<Option<VerifyRun>> {
    if !table_exists(conn)? {
        return Ok(None);
    }
    let mut b = Binds::new(C::DIALECT);
    let cond = format!(
        " WHERE {} AND clean = 1 AND finished_at IS NOT NULL{}",
        table_sql(table, &mut b),
        filter.sql(&mut b)
    );
    Ok(read(conn, &cond, &b, 1)?.pop())
}

/// The latest `limit` runs, newest first: of `table` (as in [`latest`]), or of every table.
pub fn runs<C: MigrateConnection>(
    conn: &mut C,
    table: Option<&str>,
    limit: usize,
) -> Result<Vec<VerifyRun>> {
    if !table_exists(conn)? {
        return Ok(Vec::new());
    }
    let mut b = Binds::new(C::DIALECT);
    let cond = match table {
        Some(t) => format!(" WHERE {}", table_sql(t, &mut b)),
        None => String::new(),
    };
    read(conn, &cond, &b, limit)
}

/// The start of the window of a run "since the last clean run" of `table`: the start of the
/// last clean run that covered every row, minus `margin`, as the recording database's text of
/// its timestamp; `None`: no such run.
pub(crate) fn since_last_clean<C: MigrateConnection>(
    conn: &mut C,
    table: &str,
    margin: Duration,
) -> Result<Option<String>> {
    let Some(run) = last_clean(conn, table, &RunFilter::new().every_row())? else {
        return Ok(None);
    };
    let d = C::DIALECT;
    let sql = format!(
        "SELECT {} AS value FROM {VERIFY_RUN_TABLE} WHERE id = {}",
        d.to_text(&minus_sql(d, "started_at", margin)),
        run.id
    );
    Ok(conn.query_texts(&sql, &[])?.into_iter().flatten().next())
}

/// The runs matching `cond` (with `b`), newest first, at most `limit`.
fn read<C: MigrateConnection>(
    conn: &mut C,
    cond: &str,
    b: &Binds,
    limit: usize,
) -> Result<Vec<VerifyRun>> {
    let d = C::DIALECT;
    let age = match d {
        Dialect::Postgres => "EXTRACT(EPOCH FROM (clock_timestamp() - finished_at))",
        Dialect::Mysql => {
            "TIMESTAMPDIFF(MICROSECOND, finished_at, CURRENT_TIMESTAMP(6)) / 1000000.0"
        }
        Dialect::Sqlite => "(julianday('now') - julianday(finished_at)) * 86400.0",
    };
    let items = [
        "id",
        "table_name",
        "mode",
        "journal",
        "authoritative",
        "pattern",
        "since",
        "started_at",
        "finished_at",
        age,
        "rows_compared",
        "differences",
        "clean",
        "error",
    ]
    .map(|c| d.to_text(c));
    // Newest first: by the end for clean runs (what `last_clean` asks), the id breaking ties
    // and ordering the unfinished ones.
    let sql = format!(
        "SELECT {} AS value FROM {VERIFY_RUN_TABLE}{cond} ORDER BY id DESC LIMIT {}",
        d.json_array(&items),
        limit.max(1)
    );
    conn.query_texts(&sql, b.values())?
        .into_iter()
        .flatten()
        .map(|text| parse_run(&text))
        .collect()
}

fn parse_run(text: &str) -> Result<VerifyRun> {
    let bad = |what: &str| {
        Error::InvalidState(format!(
            "a row of {VERIFY_RUN_TABLE} is unreadable ({what}): `{text}`"
        ))
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let field = |i: usize| v.get(i).and_then(|x| x.as_str()).map(str::to_owned);
    let need = |i: usize, what: &str| field(i).ok_or_else(|| bad(what));
    let number =
        |i: usize, what: &str| -> Result<u64> { need(i, what)?.parse().map_err(|_| bad(what)) };
    let side = match need(4, "authoritative")?.as_str() {
        "source" => Side::Source,
        "destination" => Side::Destination,
        _ => return Err(bad("authoritative")),
    };
    let pattern = match field(5) {
        Some(p) => Some(p.parse().map_err(|_| bad("pattern"))?),
        None => None,
    };
    let finished_at = field(8);
    let age = match (&finished_at, field(9)) {
        (Some(_), Some(secs)) => {
            let secs: f64 = secs.trim().parse().map_err(|_| bad("age"))?;
            Some(Duration::from_secs_f64(secs.max(0.0)))
        }
        _ => None,
    };
    Ok(VerifyRun {
        id: need(0, "id")?.parse().map_err(|_| bad("id"))?,
        table: need(1, "table_name")?,
        mode: RunMode::parse(&need(2, "mode")?).ok_or_else(|| bad("mode"))?,
        journal: need(3, "journal")? != "0",
        authoritative: side,
        pattern,
        since: field(6),
        started_at: need(7, "started_at")?,
        finished_at,
        age,
        rows_compared: number(10, "rows_compared")?,
        differences: number(11, "differences")?,
        clean: need(12, "clean")? != "0",
        error: field(13),
    })
}
