//! SQLite's generated-key counters: the rows of `sqlite_sequence`, which only `AUTOINCREMENT`
//! tables have (the largest key each issued), read and written as an ordinary table.
//!
//! A rowid table without `AUTOINCREMENT` has no counter: its next key is one more than its
//! largest, so a destination with the same rows issues the same keys (the backfill sees to it).

use diesel::connection::{Connection, LoadConnection};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;

use super::{KeyCounter, KeyCounterBackend};

#[derive(QueryableByName)]
struct TableRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    column_name: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
}

impl From<TableRow> for KeyCounter {
    fn from(row: TableRow) -> Self {
        KeyCounter {
            table: Some(row.table_name),
            column: row.column_name,
            sequence: None,
            value: row.seq,
            descending: false,
        }
    }
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Whether `sqlite_sequence` exists: SQLite creates it with the first `AUTOINCREMENT` table.
const HAS_SEQUENCES: &str =
    "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'";

/// Each `AUTOINCREMENT` table (those that have a row in `sqlite_sequence`, and those not used
/// yet, whose SQL says `AUTOINCREMENT`), its key column and its counter.
const TABLES: &str = "\
SELECT m.name AS table_name, \
       (SELECT p.name FROM pragma_table_info(m.name) p WHERE p.pk = 1) AS column_name, \
       (SELECT s.seq FROM sqlite_sequence s WHERE s.name = m.name) AS seq \
FROM sqlite_master m \
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
  AND (m.sql LIKE '%AUTOINCREMENT%' OR m.name IN (SELECT name FROM sqlite_sequence)) \
ORDER BY m.name";

const UPDATE: &str = "UPDATE sqlite_sequence SET seq = ? WHERE name = ?";
const INSERT: &str = "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)";

impl KeyCounterBackend for Sqlite {
    fn read_key_counters<C>(conn: &mut C) -> QueryResult<Vec<KeyCounter>>
    where
        C: LoadConnection + Connection<Backend = Self>,
    {
        if diesel::sql_query(HAS_SEQUENCES)
            .get_result::<CountRow>(conn)?
            .n
            == 0
        {
            return Ok(Vec::new());
        }
        let rows: Vec<TableRow> = diesel::sql_query(TABLES).load(conn)?;
        Ok(rows.into_iter().map(KeyCounter::from).collect())
    }

    fn set_key_counter<C>(conn: &mut C, counter: &KeyCounter, value: i64) -> QueryResult<()>
    where
        C: LoadConnection + Connection<Backend = Self>,
    {
        let name = counter.name();
        let updated = diesel::sql_query(UPDATE)
            .bind::<BigInt, _>(value)
            .bind::<Text, _>(name)
            .execute(conn)?;
        if updated == 0 {
            diesel::sql_query(INSERT)
                .bind::<Text, _>(name)
                .bind::<BigInt, _>(value)
                .execute(conn)?;
        }
        Ok(())
    }
}

#[cfg(feature = "async")]
impl super::AsyncKeyCounters
    for diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>
{
    async fn read_key_counters(&mut self) -> QueryResult<Vec<KeyCounter>> {
        self.spawn_blocking(|c| Sqlite::read_key_counters(c)).await
    }

    async fn set_key_counter(&mut self, counter: &KeyCounter, value: i64) -> QueryResult<()> {
        let counter = counter.clone();
        self.spawn_blocking(move |c| Sqlite::set_key_counter(c, &counter, value))
            .await
    }
}
