//! The durable journal's table: where a [`TableJournal`](crate::double_write::TableJournal)
//! writes what a double write left on one side only, and where an incremental
//! [`Verify::run_journal`](super::verify::Verify::run_journal) reads it and marks it done.
//!
//! The table [`JOURNAL_TABLE`] is created if absent (on the source database by default), with
//! one row per journal entry:
//!
//! | column | type | what |
//! |---|---|---|
//! | `id` | 64-bit integer, generated | the entry's number, in the order entries were written |
//! | `recorded_at` | the server's timestamp (`TIMESTAMPTZ` / `TIMESTAMP(6)` UTC / SQLite text) | when the row was written, by the journal database's clock |
//! | `table_name` | text, nullable | the table the statement wrote, as the statement names it (unquoted; `schema.table` when qualified); `NULL` when it names none that diesel-rw can tell (several statements, `WITH`, a multi-table `UPDATE`) |
//! | `kind` | text | `write_failed`, `partial_commit` or `divergence` ([`EntryKind`]) |
//! | `side` | text | the side that lacks the write (`source` / `destination`) |
//! | `pattern` | text | the pattern the write ran under (`src_first`, ...) |
//! | `in_transaction` | integer 0/1 | whether the write was part of a transaction |
//! | `row_keys` | text, nullable | the primary keys of the affected rows when the statement reveals them: a JSON array of keys, each a JSON array of the key columns' texts in key order (`[["7"],["8"]]`); `NULL`: not revealed (the whole table is to be verified) |
//! | `statement` | text | the SQL text, without bind values |
//! | `error` | text | the error on [`side`](JournalRow::side), or what differed |
//! | `done_at` | timestamp, nullable | when an incremental verify found the entry's rows equal; `NULL`: pending |
//!
//! An index on `(table_name, done_at)` serves the reads of pending entries.
//!
//! ```
//! # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use diesel::connection::SimpleConnection;
//! use diesel::prelude::*;
//! use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch, Side, TableJournal};
//! use diesel_rw::migrate::{journal, repair::Repair, verify::Verify, Key};
//!
//! let dir = std::env::temp_dir().join(format!("diesel-rw-journal-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
//! for path in [&src, &dst] {
//!     let _ = std::fs::remove_file(path);
//!     SqliteConnection::establish(path.to_str().unwrap())?
//!         .batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")?;
//! }
//! let (src, dst) = (src.to_str().unwrap(), dst.to_str().unwrap());
//! let journal = Arc::new(TableJournal::<SqliteConnection>::new(src)?);
//! let pool = DoubleWrite::<SqliteConnection>::builder()
//!     .source(src)
//!     .destination(dst)
//!     .pattern(PatternSwitch::new(Pattern::SrcFirst))
//!     // The destination refuses writes: each write reaches the source only.
//!     .on_connect(|side, c| match side {
//!         Side::Destination => c.batch_execute("PRAGMA query_only = ON"),
//!         Side::Source => Ok(()),
//!     })
//!     .journal(journal.clone())
//!     .build()?;
//! pool.get()?.batch_execute("INSERT INTO t (id, v) VALUES (7, 'ada')")?; // lenient: Ok
//!
//! // The entry is in the table when the call returns, with the row's key.
//! let (mut s, mut d) = (SqliteConnection::establish(src)?, SqliteConnection::establish(dst)?);
//! let rows = journal::rows(&mut s, journal::Which::Pending)?;
//! assert_eq!(rows.len(), 1);
//! assert_eq!(rows[0].table.as_deref(), Some("t"));
//! assert_eq!(rows[0].keys, Some(vec![Key::new(vec!["7".into()])]));
//!
//! // The incremental verify reads it; after the repair, it marks it done.
//! let verify = Verify::new("t").recheck_delay(std::time::Duration::from_millis(10));
//! let out = verify.run_journal(&mut s, &mut d, None)?;
//! assert_eq!(out.report.missing_on_destination_keys(), vec![Key::new(vec!["7".into()])]);
//! Repair::new("t").run(&out.report, &mut s, &mut d)?;
//! let out = verify.run_journal(&mut s, &mut d, None)?;
//! assert!(out.report.is_clean());
//! assert_eq!(out.done, vec![rows[0].id]);
//! assert!(journal::rows(&mut s, journal::Which::Pending)?.is_empty());
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

use crate::double_write::{EntryKind, Pattern, Side};
use crate::error::{Error, Result};

use super::dialect::{Binds, Dialect, MigrateConnection};
use super::key::Key;

/// The durable journal's table name.
pub const JOURNAL_TABLE: &str = "diesel_rw_journal";

/// One row of the durable journal, as written or read back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalRow {
    /// The entry's number (`0` for a row not written yet).
    pub id: i64,
    /// When it was written, as the journal database's text of its timestamp (empty for a row
    /// not written yet).
    pub recorded_at: String,
    /// The table the statement wrote, if it names one diesel-rw can tell.
    pub table: Option<String>,
    /// What happened.
    pub kind: EntryKind,
    /// The side that lacks the write.
    pub side: Side,
    /// The pattern the write ran under.
    pub pattern: Pattern,
    /// Whether the write was part of a transaction.
    pub in_transaction: bool,
    /// The keys of the affected rows, when the statement reveals them; `None`: not revealed.
    pub keys: Option<Vec<Key>>,
    /// The statement's SQL text, without bind values.
    pub statement: String,
    /// The error, or what differed.
    pub error: String,
    /// When it was marked done (the journal database's text of its timestamp); `None`: pending.
    pub done_at: Option<String>,
}

/// The text form of an [`EntryKind`] in the table.
pub(crate) fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::WriteFailed => "write_failed",
        EntryKind::PartialCommit => "partial_commit",
        EntryKind::Divergence => "divergence",
    }
}

fn parse_kind(s: &str) -> Option<EntryKind> {
    Some(match s {
        "write_failed" => EntryKind::WriteFailed,
        "partial_commit" => EntryKind::PartialCommit,
        "divergence" => EntryKind::Divergence,
        _ => return None,
    })
}

/// The JSON form of a list of keys (`[["7"],["8"]]`).
pub(crate) fn keys_json(keys: &[Key]) -> String {
    serde_json::Value::from(
        keys.iter()
            .map(|k| serde_json::Value::from(k.values().to_vec()))
            .collect::<Vec<_>>(),
    )
    .to_string()
}

fn parse_keys(json: &str) -> Option<Vec<Key>> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.as_array()?
        .iter()
        .map(|k| Key::from_json(&k.to_string()).ok())
        .collect()
}

/// Creates the journal table (and its index) on `conn` if it is not there.
pub fn create_table<C: MigrateConnection>(conn: &mut C) -> Result<()> {
    if table_exists(conn)? {
        return Ok(());
    }
    match create(conn) {
        // Two processes creating it at once: PostgreSQL's `IF NOT EXISTS` can still fail on
        // the catalog's unique index; the other one made it.
        Err(_) if table_exists(conn)? => Ok(()),
        other => other,
    }
}

fn create<C: MigrateConnection>(conn: &mut C) -> Result<()> {
    let (id, at) = match C::DIALECT {
        Dialect::Postgres => (
            "id BIGSERIAL PRIMARY KEY",
            "recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(), ",
        ),
        Dialect::Mysql => (
            "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
            "recorded_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), ",
        ),
        Dialect::Sqlite => (
            "id INTEGER PRIMARY KEY AUTOINCREMENT",
            "recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')), ",
        ),
    };
    let done = match C::DIALECT {
        Dialect::Postgres => "done_at TIMESTAMPTZ NULL",
        Dialect::Mysql => "done_at TIMESTAMP(6) NULL DEFAULT NULL",
        Dialect::Sqlite => "done_at TEXT NULL",
    };
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {JOURNAL_TABLE} ({id}, {at}\
           table_name VARCHAR(512) NULL, kind VARCHAR(32) NOT NULL, side VARCHAR(16) NOT NULL, \
           pattern VARCHAR(16) NOT NULL, in_transaction INTEGER NOT NULL, row_keys TEXT NULL, \
           statement TEXT NOT NULL, error TEXT NOT NULL, {done})"
    );
    conn.execute_binds(&sql, &[])?;
    let columns = match C::DIALECT {
        // A prefix: the index key of a VARCHAR(512) utf8mb4 column is over InnoDB's limit.
        Dialect::Mysql => "table_name(191), done_at",
        Dialect::Postgres | Dialect::Sqlite => "table_name, done_at",
    };
    conn.execute_binds(
        &format!(
            "CREATE INDEX IF NOT EXISTS {JOURNAL_TABLE}_pending ON {JOURNAL_TABLE} ({columns})"
        ),
        &[],
    )?;
    Ok(())
}

/// Writes `row` (its `id`, `recorded_at` and `done_at` are the table's own) to the table on
/// `conn`.
pub fn insert<C: MigrateConnection>(conn: &mut C, row: &JournalRow) -> Result<()> {
    let mut b = Binds::new(C::DIALECT);
    let table = match &row.table {
        Some(t) => b.push(t.clone()),
        None => "NULL".to_owned(),
    };
    let kind = b.push(kind_name(row.kind));
    let side = b.push(row.side.name());
    let pattern = b.push(row.pattern.name());
    let keys = match &row.keys {
        Some(keys) => b.push(keys_json(keys)),
        None => "NULL".to_owned(),
    };
    let statement = b.push(row.statement.clone());
    let error = b.push(row.error.clone());
    let sql = format!(
        "INSERT INTO {JOURNAL_TABLE} (table_name, kind, side, pattern, in_transaction, row_keys, statement, error) \
         VALUES ({table}, {kind}, {side}, {pattern}, {}, {keys}, {statement}, {error})",
        u8::from(row.in_transaction)
    );
    conn.execute_binds(&sql, b.values())?;
    Ok(())
}

/// Which rows [`rows`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which<'a> {
    /// Every row.
    All,
    /// The pending rows (not done) of every table.
    Pending,
    /// The pending rows naming this table (as the statements name it).
    PendingFor(&'a str),
}

/// The journal's rows on `conn`, oldest first (none if the table is not there).
pub fn rows<C: MigrateConnection>(conn: &mut C, which: Which<'_>) -> Result<Vec<JournalRow>> {
    if !table_exists(conn)? {
        return Ok(Vec::new());
    }
    let d = C::DIALECT;
    let items = [
        "id",
        "recorded_at",
        "table_name",
        "kind",
        "side",
        "pattern",
        "in_transaction",
        "row_keys",
        "statement",
        "error",
        "done_at",
    ]
    .map(|c| d.to_text(c));
    let mut b = Binds::new(d);
    let filter = match which {
        Which::All => String::new(),
        Which::Pending => " WHERE done_at IS NULL".to_owned(),
        Which::PendingFor(table) => {
            format!(" WHERE done_at IS NULL AND table_name = {}", b.push(table))
        }
    };
    let sql = format!(
        "SELECT {} AS value FROM {JOURNAL_TABLE}{filter} ORDER BY id",
        d.json_array(&items)
    );
    conn.query_texts(&sql, b.values())?
        .into_iter()
        .flatten()
        .map(|text| parse_row(&text))
        .collect()
}

fn parse_row(text: &str) -> Result<JournalRow> {
    let bad = |what: &str| {
        Error::InvalidState(format!(
            "a row of {JOURNAL_TABLE} is unreadable ({what}): `{text}`"
        ))
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let field = |i: usize| v.get(i).and_then(|x| x.as_str()).map(str::to_owned);
    let need = |i: usize, what: &str| field(i).ok_or_else(|| bad(what));
    let side = match need(4, "side")?.as_str() {
        "source" => Side::Source,
        "destination" => Side::Destination,
        _ => return Err(bad("side")),
    };
    Ok(JournalRow {
        id: need(0, "id")?.parse().map_err(|_| bad("id"))?,
        recorded_at: need(1, "recorded_at")?,
        table: field(2),
        kind: parse_kind(&need(3, "kind")?).ok_or_else(|| bad("kind"))?,
        side,
        pattern: need(5, "pattern")?.parse().map_err(|_| bad("pattern"))?,
        in_transaction: need(6, "in_transaction")? != "0",
        keys: match field(7) {
            Some(json) => Some(parse_keys(&json).ok_or_else(|| bad("row_keys"))?),
            None => None,
        },
        statement: need(8, "statement")?,
        error: need(9, "error")?,
        done_at: field(10),
    })
}

/// Marks the rows `ids` done (those not done yet); returns how many it marked.
pub fn mark_done<C: MigrateConnection>(conn: &mut C, ids: &[i64]) -> Result<usize> {
    let mut marked = 0;
    for batch in ids.chunks(500) {
        let list: Vec<String> = batch.iter().map(i64::to_string).collect();
        let now = match C::DIALECT {
            Dialect::Postgres => "now()",
            Dialect::Mysql => "CURRENT_TIMESTAMP(6)",
            Dialect::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
        };
        marked += conn.execute_binds(
            &format!(
                "UPDATE {JOURNAL_TABLE} SET done_at = {now} WHERE done_at IS NULL AND id IN ({})",
                list.join(", ")
            ),
            &[],
        )?;
    }
    Ok(marked)
}

/// Whether the journal table exists on `conn`.
pub fn table_exists<C: MigrateConnection>(conn: &mut C) -> Result<bool> {
    let sql = match C::DIALECT {
        Dialect::Postgres => format!("SELECT to_regclass('{JOURNAL_TABLE}')::text AS value"),
        Dialect::Mysql => format!(
            "SELECT TABLE_NAME AS value FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{JOURNAL_TABLE}'"
        ),
        Dialect::Sqlite => format!(
            "SELECT name AS value FROM sqlite_master WHERE type = 'table' AND name = '{JOURNAL_TABLE}'"
        ),
    };
    Ok(conn
        .query_texts(&sql, &[])?
        .into_iter()
        .flatten()
        .next()
        .is_some())
}
