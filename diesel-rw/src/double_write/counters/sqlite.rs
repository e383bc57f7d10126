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
        self.spawn_blocking(Sqlite::read_key_counters).await
    }

    async fn set_key_counter(&mut self, counter: &KeyCounter, value: i64) -> QueryResult<()> {
        let counter = counter.clone();
        self.spawn_blocking(move |c| Sqlite::set_key_counter(c, &counter, value))
            .await
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    use crate::double_write::{DoubleWriteConnection, Pattern, Side};
    use crate::Error;

    /// The connection string of a double write over two new files.
    fn spec(test: &str, pattern: &str) -> String {
        let dir =
            std::env::temp_dir().join(format!("diesel-rw-counters-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
        format!(
            "source={} destination={} pattern={pattern}",
            src.display(),
            dst.display()
        )
    }

    #[test]
    fn autoincrement_tables_only_synced_by_update_or_insert() {
        let mut conn =
            DoubleWriteConnection::<SqliteConnection>::establish(&spec("sqlite-sync", "src_first"))
                .unwrap();
        assert!(conn.key_counters(Side::Source).unwrap().is_empty());
        conn.batch_execute(
            "CREATE TABLE plain (id INTEGER PRIMARY KEY, x TEXT);
             CREATE TABLE used (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT);
             CREATE TABLE unused (key INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT);
             INSERT INTO plain (x) VALUES ('p');
             INSERT INTO used (x) VALUES ('both')",
        )
        .unwrap();
        conn.with_side(Side::Source, |c| {
            c.batch_execute(
                "INSERT INTO used (x) VALUES ('s'), ('s'); INSERT INTO unused (x) VALUES ('s')",
            )
        })
        .unwrap()
        .unwrap();
        let source = conn.key_counters(Side::Source).unwrap();
        let shown: Vec<_> = source.iter().map(|c| (c.to_string(), c.value)).collect();
        assert_eq!(
            shown,
            [
                ("unused.key".to_owned(), Some(1)),
                ("used.id".to_owned(), Some(3))
            ]
        );
        let destination = conn.key_counters(Side::Destination).unwrap();
        assert_eq!(destination[0].value, None, "{destination:?}");
        assert_eq!(destination[1].value, Some(1), "{destination:?}");

        assert!(matches!(
            conn.advance_pattern(),
            Err(Error::KeyCountersBehind { behind }) if behind.len() == 2
        ));
        let report = conn.sync_sequences().unwrap();
        assert_eq!(
            report.synced,
            [("unused".to_owned(), 1), ("used".to_owned(), 3)]
        );
        assert_eq!(conn.key_counters(Side::Destination).unwrap(), source);
        assert_eq!(conn.advance_pattern().unwrap(), Pattern::DstFirst);
        conn.batch_execute("INSERT INTO used (x) VALUES ('dst_first')")
            .unwrap();
        for side in [Side::Source, Side::Destination] {
            let id = conn
                .with_side(side, |c| {
                    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                        "(SELECT id FROM used WHERE x = 'dst_first')",
                    ))
                    .get_result::<i64>(c)
                })
                .unwrap()
                .unwrap();
            assert_eq!(id, 4, "{side}");
        }
    }

    #[cfg(feature = "async")]
    #[test]
    fn the_async_gate_on_sqlite() {
        use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
        use diesel_async::{AsyncConnection, SimpleAsyncConnection};

        use crate::double_write::AsyncDoubleWriteConnection;

        type Conn = AsyncDoubleWriteConnection<SyncConnectionWrapper<SqliteConnection>>;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut conn = Conn::establish(&spec("sqlite-async", "src_first"))
                .await
                .unwrap();
            conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")
                .await
                .unwrap();
            conn.with_side(Side::Source, async |c| {
                c.batch_execute("INSERT INTO t (x) VALUES ('s')").await
            })
            .await
            .unwrap()
            .unwrap();
            let err = conn.advance_pattern().await.unwrap_err();
            assert!(
                err.to_string()
                    .contains("t.id: source 1, destination nothing issued yet"),
                "{err}"
            );
            assert_eq!(conn.switch().get(), Pattern::SrcFirst);
            let report = conn.sync_sequences().await.unwrap();
            assert_eq!(report.synced, [("t".to_owned(), 1)]);
            assert_eq!(conn.advance_pattern().await.unwrap(), Pattern::DstFirst);
        });
    }
}
