//! MySQL's and MariaDB's generated-key counters: each table's `AUTO_INCREMENT` in the
//! connection's current database, read from `information_schema.TABLES`, set with
//! `ALTER TABLE t AUTO_INCREMENT = n`.
//!
//! MariaDB (checked on 10.11) and MySQL 5.7 answer `information_schema.TABLES.AUTO_INCREMENT`
//! from the storage engine: the value is current. MySQL 8.0 and later answer it from a cache
//! of table statistics, refreshed only every `information_schema_stats_expiry` seconds (a day
//! by default), so there the session's expiry is set to 0 around the read, then set back.

use diesel::connection::{Connection, LoadConnection};
use diesel::mysql::Mysql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::{KeyCounter, KeyCounterBackend};

#[derive(QueryableByName)]
struct TableRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    column_name: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    next_value: Option<i64>,
}

impl From<TableRow> for KeyCounter {
    fn from(row: TableRow) -> Self {
        KeyCounter {
            table: Some(row.table_name),
            column: row.column_name,
            sequence: None,
            value: row.next_value,
            descending: false,
        }
    }
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct NumberRow {
    #[diesel(sql_type = BigInt)]
    value: i64,
}

/// The base tables of the current database that have an `AUTO_INCREMENT` column, with that
/// column and the next value it will issue.
const TABLES: &str = "\
SELECT t.TABLE_NAME AS table_name, c.COLUMN_NAME AS column_name, \
       CAST(t.AUTO_INCREMENT AS SIGNED) AS next_value \
FROM information_schema.TABLES t \
LEFT JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA \
     AND c.TABLE_NAME = t.TABLE_NAME AND c.EXTRA LIKE '%auto_increment%' \
WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' \
  AND t.AUTO_INCREMENT IS NOT NULL \
ORDER BY t.TABLE_NAME";

const VERSION: &str = "SELECT @@version AS value";
const STATS_EXPIRY: &str =
    "SELECT CAST(@@SESSION.information_schema_stats_expiry AS SIGNED) AS value";
const LOCK_WAIT_TIMEOUT: &str = "SELECT CAST(@@SESSION.lock_wait_timeout AS SIGNED) AS value";

/// How long `ALTER TABLE ... AUTO_INCREMENT` waits for the table's metadata lock, in seconds:
/// a statement waiting for it holds up every later statement on the table, so it fails rather
/// than wait long (the server's default is a year).
const ALTER_LOCK_WAIT_SECS: i64 = 10;

/// Whether the server (`@@version`) caches `information_schema.TABLES` statistics: MySQL 8.0
/// and later; not MariaDB (whose versions start at 10, or `5.5.5-10...` through old clients)
/// nor MySQL 5.7.
fn caches_table_stats(version: &str) -> bool {
    !version.contains("MariaDB")
        && version
            .split('.')
            .next()
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major >= 8)
}

/// `ALTER TABLE `t` AUTO_INCREMENT = n`, the table name quoted.
fn alter(counter: &KeyCounter, value: i64) -> String {
    let table = counter.name().replace('`', "``");
    format!("ALTER TABLE `{table}` AUTO_INCREMENT = {value}")
}

fn set_session(variable: &str, value: i64) -> String {
    format!("SET SESSION {variable} = {value}")
}

/// Runs `f` with the session variable `variable` (whose current value `read` selects) set to
/// `value`, then sets it back, whether `f` succeeded or not.
fn with_session<C, T>(
    conn: &mut C,
    variable: &str,
    read: &'static str,
    value: i64,
    f: impl FnOnce(&mut C) -> QueryResult<T>,
) -> QueryResult<T>
where
    C: LoadConnection + Connection<Backend = Mysql>,
{
    let old = diesel::sql_query(read).get_result::<NumberRow>(conn)?.value;
    conn.batch_execute(&set_session(variable, value))?;
    let result = f(conn);
    let restored = conn.batch_execute(&set_session(variable, old));
    let value = result?;
    restored.map(|()| value)
}

impl KeyCounterBackend for Mysql {
    fn read_key_counters<C>(conn: &mut C) -> QueryResult<Vec<KeyCounter>>
    where
        C: LoadConnection + Connection<Backend = Self>,
    {
        let version = diesel::sql_query(VERSION)
            .get_result::<TextRow>(conn)?
            .value;
        let read = |c: &mut C| diesel::sql_query(TABLES).load::<TableRow>(c);
        let rows = if caches_table_stats(&version) {
            with_session(
                conn,
                "information_schema_stats_expiry",
                STATS_EXPIRY,
                0,
                read,
            )?
        } else {
            read(conn)?
        };
        Ok(rows.into_iter().map(KeyCounter::from).collect())
    }

    fn set_key_counter<C>(conn: &mut C, counter: &KeyCounter, value: i64) -> QueryResult<()>
    where
        C: LoadConnection + Connection<Backend = Self>,
    {
        let sql = alter(counter, value);
        with_session(
            conn,
            "lock_wait_timeout",
            LOCK_WAIT_TIMEOUT,
            ALTER_LOCK_WAIT_SECS,
            |c| c.batch_execute(&sql),
        )
    }
}

#[cfg(feature = "async")]
mod nonblocking {
    use diesel::result::QueryResult;
    use diesel_async::{AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};

    use super::{
        alter, caches_table_stats, set_session, KeyCounter, NumberRow, TableRow, TextRow,
        ALTER_LOCK_WAIT_SECS, LOCK_WAIT_TIMEOUT, STATS_EXPIRY, TABLES, VERSION,
    };
    use crate::double_write::AsyncKeyCounters;

    /// [`with_session`](super::with_session) for a diesel-async connection, `f` being one statement.
    async fn session_around(
        conn: &mut AsyncMysqlConnection,
        variable: &str,
        read: &'static str,
        value: i64,
        statement: Statement,
    ) -> QueryResult<Vec<TableRow>> {
        let old = diesel::sql_query(read)
            .get_result::<NumberRow>(conn)
            .await?
            .value;
        conn.batch_execute(&set_session(variable, value)).await?;
        let result = statement.run(conn).await;
        let restored = conn.batch_execute(&set_session(variable, old)).await;
        let rows = result?;
        restored.map(|()| rows)
    }

    /// What runs with a session variable set: the read of the tables, or an `ALTER TABLE`.
    enum Statement {
        Read,
        Alter(String),
    }

    impl Statement {
        async fn run(self, conn: &mut AsyncMysqlConnection) -> QueryResult<Vec<TableRow>> {
            match self {
                Statement::Read => diesel::sql_query(TABLES).load::<TableRow>(conn).await,
                Statement::Alter(sql) => conn.batch_execute(&sql).await.map(|()| Vec::new()),
            }
        }
    }

    impl AsyncKeyCounters for AsyncMysqlConnection {
        async fn read_key_counters(&mut self) -> QueryResult<Vec<KeyCounter>> {
            let version = diesel::sql_query(VERSION)
                .get_result::<TextRow>(self)
                .await?
                .value;
            let rows = if caches_table_stats(&version) {
                session_around(
                    self,
                    "information_schema_stats_expiry",
                    STATS_EXPIRY,
                    0,
                    Statement::Read,
                )
                .await?
            } else {
                Statement::Read.run(self).await?
            };
            Ok(rows.into_iter().map(KeyCounter::from).collect())
        }

        async fn set_key_counter(&mut self, counter: &KeyCounter, value: i64) -> QueryResult<()> {
            let sql = alter(counter, value);
            session_around(
                self,
                "lock_wait_timeout",
                LOCK_WAIT_TIMEOUT,
                ALTER_LOCK_WAIT_SECS,
                Statement::Alter(sql),
            )
            .await
            .map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_servers_cache_table_stats() {
        for (version, caches) in [
            ("8.0.36", true),
            ("8.4.3-commercial", true),
            ("9.1.0", true),
            ("5.7.44-log", false),
            ("10.11.19-MariaDB-0+deb12u1-log", false),
            ("5.5.5-10.11.6-MariaDB", false),
            ("11.4.2-MariaDB", false),
            ("", false),
        ] {
            assert_eq!(caches_table_stats(version), caches, "{version}");
        }
    }

    #[test]
    fn alter_quotes_the_table() {
        let counter = KeyCounter {
            table: Some("odd`name".into()),
            column: Some("id".into()),
            sequence: None,
            value: Some(3),
            descending: false,
        };
        assert_eq!(
            alter(&counter, 42),
            "ALTER TABLE `odd``name` AUTO_INCREMENT = 42"
        );
    }
}
