//! The backfill's checkpoint: one row per backfill in the table
//! [`CHECKPOINT_TABLE`] on the destination, updated in the same transaction as each chunk's
//! rows, so that after a crash or a kill the backfill resumes after the last chunk that was
//! committed, and copies no row twice.

use crate::error::{Error, Result};

use super::dialect::{Binds, Dialect, MigrateConnection};
use super::key::Key;
use super::table::Table;

/// The checkpoint table's name (created on the destination by the first backfill).
pub const CHECKPOINT_TABLE: &str = "diesel_rw_backfill_checkpoint";

/// Where a backfill stands, as its checkpoint row records it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The checkpoint's name (by default the source table's name).
    pub name: String,
    /// The source table (`Table::name`).
    pub table: String,
    /// The key columns, in key order.
    pub key_columns: Vec<String>,
    /// The last key copied; `None` before the first chunk.
    pub last_key: Option<Key>,
    /// Rows read from the source and offered to the destination so far, over every run.
    pub rows_copied: u64,
    /// Of those, rows inserted (the others were there already: the double write's).
    pub rows_inserted: u64,
    /// Whether the backfill reached the end of the table.
    pub done: bool,
    /// When the checkpoint was last saved, as the destination's text of its timestamp
    /// (`None` for a checkpoint not saved yet).
    pub updated_at: Option<String>,
}

impl Checkpoint {
    /// A fresh checkpoint for `table`.
    pub fn new(name: &str, table: &Table) -> Checkpoint {
        Checkpoint {
            name: name.to_owned(),
            table: table.name.clone(),
            key_columns: table.key_names(),
            last_key: None,
            rows_copied: 0,
            rows_inserted: 0,
            done: false,
            updated_at: None,
        }
    }

    /// `table(key, ...)`, as a mismatch names it.
    fn describe(table: &str, key: &[String]) -> String {
        format!("{table}({})", key.join(", "))
    }

    /// Refuses this checkpoint for `table` unless it is that table's, with that key.
    pub fn check(&self, table: &Table) -> Result<()> {
        if self.table == table.name && self.key_columns == table.key_names() {
            return Ok(());
        }
        Err(Error::CheckpointMismatch {
            checkpoint: self.name.clone(),
            expected: Self::describe(&table.name, &table.key_names()),
            found: Self::describe(&self.table, &self.key_columns),
        })
    }

    /// Creates the checkpoint table on `conn` if it is not there.
    pub fn create_table<C: MigrateConnection>(conn: &mut C) -> Result<()> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (\
               name VARCHAR(191) NOT NULL PRIMARY KEY, table_name VARCHAR(512) NOT NULL, \
               key_columns TEXT NOT NULL, last_key TEXT, rows_copied BIGINT NOT NULL, \
               rows_inserted BIGINT NOT NULL, done INTEGER NOT NULL, \
               updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP)"
        );
        conn.execute_binds(&sql, &[])?;
        Ok(())
    }

    /// Whether the checkpoint table exists on `conn`.
    pub fn table_exists<C: MigrateConnection>(conn: &mut C) -> Result<bool> {
        let sql = match C::DIALECT {
            Dialect::Postgres => format!(
                "SELECT to_regclass('{CHECKPOINT_TABLE}')::text AS value"
            ),
            Dialect::Mysql => format!(
                "SELECT TABLE_NAME AS value FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{CHECKPOINT_TABLE}'"
            ),
            Dialect::Sqlite => format!(
                "SELECT name AS value FROM sqlite_master WHERE type = 'table' AND name = '{CHECKPOINT_TABLE}'"
            ),
        };
        Ok(conn
            .query_texts(&sql, &[])?
            .into_iter()
            .flatten()
            .next()
            .is_some())
    }

    /// The checkpoint `name` on `conn`, if there is one (and the table exists).
    pub fn load<C: MigrateConnection>(conn: &mut C, name: &str) -> Result<Option<Checkpoint>> {
        let mut binds = Binds::new(C::DIALECT);
        let cond = format!(" WHERE name = {}", binds.push(name));
        Ok(Self::read(conn, &cond, &binds)?.pop())
    }

    /// Every checkpoint on `conn` (none if the table is not there), by name: where each
    /// backfill stands, for a status display.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::connection::SimpleConnection;
    /// use diesel::prelude::*;
    /// use diesel_rw::migrate::{Backfill, Checkpoint, TableSpec};
    ///
    /// let dir = std::env::temp_dir().join(format!("diesel-rw-checkpoints-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let open = |name: &str| -> Result<SqliteConnection, Box<dyn std::error::Error>> {
    ///     let path = dir.join(name);
    ///     let _ = std::fs::remove_file(&path);
    ///     let mut c = SqliteConnection::establish(path.to_str().unwrap())?;
    ///     c.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")?;
    ///     Ok(c)
    /// };
    /// let (mut src, mut dst) = (open("src.db")?, open("dst.db")?);
    /// assert!(Checkpoint::all(&mut dst)?.is_empty());
    /// src.batch_execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")?;
    /// Backfill::new(TableSpec::new("t")).run(&mut src, &mut dst)?;
    /// let all = Checkpoint::all(&mut dst)?;
    /// assert_eq!(all.len(), 1);
    /// assert_eq!((all[0].name.as_str(), all[0].rows_copied, all[0].done), ("t", 3, true));
    /// assert!(all[0].updated_at.is_some());
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn all<C: MigrateConnection>(conn: &mut C) -> Result<Vec<Checkpoint>> {
        Self::read(conn, "", &Binds::new(C::DIALECT))
    }

    /// The checkpoints matching `cond` (with `binds`), by name.
    fn read<C: MigrateConnection>(
        conn: &mut C,
        cond: &str,
        binds: &Binds,
    ) -> Result<Vec<Checkpoint>> {
        if !Self::table_exists(conn)? {
            return Ok(Vec::new());
        }
        let d = C::DIALECT;
        let text = |c: &str| d.to_text(c);
        let items = [
            "table_name",
            "key_columns",
            "last_key",
            "rows_copied",
            "rows_inserted",
            "done",
            "name",
            "updated_at",
        ]
        .map(text);
        let sql = format!(
            "SELECT {} AS value FROM {CHECKPOINT_TABLE}{cond} ORDER BY name",
            d.json_array(&items),
        );
        conn.query_texts(&sql, binds.values())?
            .into_iter()
            .flatten()
            .map(|row| Self::parse(&row))
            .collect()
    }

    fn parse(row: &str) -> Result<Checkpoint> {
        let v: serde_json::Value = serde_json::from_str(row).map_err(|_| {
            Error::InvalidState(format!(
                "a checkpoint in {CHECKPOINT_TABLE} is unreadable: `{row}`"
            ))
        })?;
        let field = |i: usize| v.get(i).and_then(|x| x.as_str()).map(str::to_owned);
        let name = field(6).unwrap_or_default();
        let bad = |what: &str| {
            Error::InvalidState(format!(
                "checkpoint `{name}` in {CHECKPOINT_TABLE} is unreadable ({what}): delete its row to start over"
            ))
        };
        let number = |i: usize| -> Result<u64> {
            field(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("a count"))
        };
        let key_columns = Key::from_json(&field(1).ok_or_else(|| bad("key_columns"))?)
            .map_err(|_| bad("key_columns"))?
            .values()
            .to_vec();
        let last_key = match field(2) {
            Some(k) => Some(Key::from_json(&k).map_err(|_| bad("last_key"))?),
            None => None,
        };
        Ok(Checkpoint {
            table: field(0).ok_or_else(|| bad("table_name"))?,
            key_columns,
            last_key,
            rows_copied: number(3)?,
            rows_inserted: number(4)?,
            done: number(5)? != 0,
            updated_at: field(7),
            name,
        })
    }

    /// Writes this checkpoint (inserted the first time, updated afterwards).
    pub fn save<C: MigrateConnection>(&self, conn: &mut C) -> Result<()> {
        let d = C::DIALECT;
        let key_columns = Key::new(self.key_columns.clone()).to_json();
        let last_key = self.last_key.as_ref().map(Key::to_json);
        // `?` placeholders bind in text order: each value is pushed where it appears.
        let mut b = Binds::new(d);
        let mut sql = format!(
            "UPDATE {CHECKPOINT_TABLE} SET table_name = {}",
            b.push(self.table.clone())
        );
        sql += &format!(", key_columns = {}", b.push(key_columns.clone()));
        sql += &match &last_key {
            Some(k) => format!(", last_key = {}", b.push(k.clone())),
            None => ", last_key = NULL".to_owned(),
        };
        sql += &format!(
            ", rows_copied = {}, rows_inserted = {}, done = {}, updated_at = CURRENT_TIMESTAMP WHERE name = {}",
            self.rows_copied,
            self.rows_inserted,
            u8::from(self.done),
            b.push(self.name.clone())
        );
        if conn.execute_binds(&sql, b.values())? > 0 {
            return Ok(());
        }
        let mut b = Binds::new(d);
        let mut values = vec![
            b.push(self.name.clone()),
            b.push(self.table.clone()),
            b.push(key_columns),
        ];
        values.push(match &last_key {
            Some(k) => b.push(k.clone()),
            None => "NULL".to_owned(),
        });
        let sql = format!(
            "INSERT INTO {CHECKPOINT_TABLE} (name, table_name, key_columns, last_key, rows_copied, rows_inserted, done) \
             VALUES ({}, {}, {}, {})",
            values.join(", "),
            self.rows_copied,
            self.rows_inserted,
            u8::from(self.done),
        );
        conn.execute_binds(&sql, b.values())?;
        Ok(())
    }

    /// Deletes the checkpoint `name` (a restart).
    pub fn delete<C: MigrateConnection>(conn: &mut C, name: &str) -> Result<()> {
        if !Self::table_exists(conn)? {
            return Ok(());
        }
        let mut b = Binds::new(C::DIALECT);
        let sql = format!(
            "DELETE FROM {CHECKPOINT_TABLE} WHERE name = {}",
            b.push(name)
        );
        conn.execute_binds(&sql, b.values())?;
        Ok(())
    }
}
