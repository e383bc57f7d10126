//! The SQL each backend speaks for the migration toolkit, and [`MigrateConnection`], the
//! connection trait the toolkit runs on.
//!
//! Everything the toolkit sends is dynamic SQL built here from a [`Table`]: names
//! quoted per backend, key values bound as text and cast back to the key column's type
//! ([`Dialect::key_value`]), so a [`Key`](super::Key) read on one connection can be bound on
//! another one, or in a later process from a checkpoint. Row data crosses from one server to
//! the other as one JSON document per chunk, rendered and parsed by the servers
//! (PostgreSQL `json_agg`/`json_populate_recordset`, MariaDB `JSON_OBJECT`/`JSON_TABLE`,
//! SQLite `json_object`/`json_each`), so the client never converts a value.

use diesel::Connection;

use super::table::{Column, ColumnKind, Table};
use crate::error::Result;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "postgres")]
pub(crate) use pg::record_fields;
#[cfg(feature = "sqlite")]
mod sqlite;

/// Which SQL dialect a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB (the toolkit is tested on MariaDB 10.11).
    Mysql,
    /// SQLite (3.38 or later: `->>`, `unhex`).
    Sqlite,
}

/// A connection the migration toolkit can run on: diesel's `PgConnection`, `MysqlConnection`
/// and `SqliteConnection` (behind the `postgres`, `mysql` and `sqlite` features). A pooled
/// connection works through `&mut *pooled` (it dereferences to one of these).
///
/// The toolkit needs only two primitives, so that everything else is written once over the
/// [`Dialect`]: a query whose single column `value` is nullable text, and a statement, both
/// with text binds (placeholders from [`Binds`]).
pub trait MigrateConnection: Connection + Send + 'static {
    /// The SQL dialect of this connection.
    const DIALECT: Dialect;

    /// Runs `sql`, a query returning one nullable text column named `value`, with `binds`
    /// bound as text in order, and returns the column's values.
    fn query_texts(&mut self, sql: &str, binds: &[String]) -> Result<Vec<Option<String>>>;

    /// Runs `sql`, a statement, with `binds` bound as text in order; returns the number of
    /// rows it affected.
    fn execute_binds(&mut self, sql: &str, binds: &[String]) -> Result<usize>;

    /// Runs `f` in a transaction in which the rows it reads for copying stay as read until
    /// it ends: an ordinary transaction on PostgreSQL and MariaDB (the reads take row locks),
    /// `BEGIN IMMEDIATE` on SQLite (which has no row locks: the database's write lock).
    fn locking_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T>;

    /// Runs `f` in an ordinary transaction.
    fn write_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T>;

    /// Starts listening on the notification channel `channel` (PostgreSQL `LISTEN`); `false`
    /// where the backend has no notifications (the caller then polls).
    fn listen(&mut self, channel: &str) -> Result<bool> {
        let _ = channel;
        Ok(false)
    }

    /// Whether a notification arrived since the last call (reads what the server already
    /// sent, without a round trip); always `false` where [`listen`](Self::listen) is.
    fn notified(&mut self) -> Result<bool> {
        Ok(false)
    }

    /// Runs `sql`, a statement with one `text[]` placeholder `$1`, with `values` bound to it
    /// (PostgreSQL only; elsewhere an error); returns the number of rows it affected.
    fn execute_text_array(&mut self, sql: &str, values: &[String]) -> Result<usize> {
        let _ = (sql, values);
        Err(crate::error::Error::Config(format!(
            "{:?} connections take no array binds",
            Self::DIALECT
        )))
    }
}

/// Bind values being collected for one statement, with the placeholder text of each.
#[derive(Debug)]
pub struct Binds {
    dialect: Dialect,
    values: Vec<String>,
}

impl Binds {
    /// No binds yet, for a statement of `dialect`.
    pub fn new(dialect: Dialect) -> Binds {
        Binds {
            dialect,
            values: Vec::new(),
        }
    }

    /// Adds `value` and returns its placeholder (`$n` on PostgreSQL, `?` elsewhere).
    pub fn push(&mut self, value: impl Into<String>) -> String {
        self.values.push(value.into());
        match self.dialect {
            Dialect::Postgres => format!("${}", self.values.len()),
            Dialect::Mysql | Dialect::Sqlite => "?".to_owned(),
        }
    }

    /// The values, in placeholder order.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// The values, in placeholder order.
    pub fn into_values(self) -> Vec<String> {
        self.values
    }
}

impl Dialect {
    /// `ident` quoted as an identifier (`"x"` or `` `x` ``).
    pub fn quote(self, ident: &str) -> String {
        match self {
            Dialect::Mysql => format!("`{}`", ident.replace('`', "``")),
            Dialect::Postgres | Dialect::Sqlite => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }

    /// `text` as an SQL string literal.
    pub fn literal(self, text: &str) -> String {
        match self {
            Dialect::Mysql => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''")),
            Dialect::Postgres | Dialect::Sqlite => format!("'{}'", text.replace('\'', "''")),
        }
    }

    /// An expression giving the canonical text of `column` (of a key), the form in which a
    /// [`Key`](super::Key) holds it and [`key_value`](Self::key_value) reads it back.
    pub fn key_text(self, column: &Column, qualifier: Option<&str>) -> String {
        let c = match qualifier {
            Some(q) => format!("{q}.{}", self.quote(&column.name)),
            None => self.quote(&column.name),
        };
        match (self, column.kind) {
            (Dialect::Postgres, _) => format!("{c}::text"),
            (Dialect::Mysql, ColumnKind::Binary) => format!("HEX({c})"),
            (Dialect::Mysql, _) => format!("CAST({c} AS CHAR)"),
            (Dialect::Sqlite, ColumnKind::Binary) => format!("hex({c})"),
            (Dialect::Sqlite, _) => format!("CAST({c} AS TEXT)"),
        }
    }

    /// An expression giving back, from the placeholder `ph` bound to a canonical text (see
    /// [`key_text`](Self::key_text)), a value of `column`'s type.
    pub fn key_value(self, column: &Column, ph: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST({ph} AS {})", column.type_name),
            Dialect::Mysql => {
                let unsigned = column.type_name.to_ascii_lowercase().contains("unsigned");
                match column.kind {
                    ColumnKind::Integer if unsigned => format!("CAST({ph} AS UNSIGNED)"),
                    ColumnKind::Integer | ColumnKind::Bool => format!("CAST({ph} AS SIGNED)"),
                    ColumnKind::Numeric { scale } => {
                        format!("CAST({ph} AS DECIMAL(65,{}))", scale.unwrap_or(0).min(30))
                    }
                    ColumnKind::Float => format!("CAST({ph} AS DOUBLE)"),
                    ColumnKind::Date => format!("CAST({ph} AS DATE)"),
                    ColumnKind::Time => format!("CAST({ph} AS TIME(6))"),
                    ColumnKind::Timestamp | ColumnKind::TimestampTz => {
                        format!("CAST({ph} AS DATETIME(6))")
                    }
                    ColumnKind::Binary => format!("UNHEX({ph})"),
                    _ => ph.to_owned(),
                }
            }
            Dialect::Sqlite => match column.kind {
                ColumnKind::Integer | ColumnKind::Bool => format!("CAST({ph} AS INTEGER)"),
                ColumnKind::Float => format!("CAST({ph} AS REAL)"),
                ColumnKind::Numeric { .. } => format!("CAST({ph} AS NUMERIC)"),
                ColumnKind::Binary => format!("unhex({ph})"),
                _ => ph.to_owned(),
            },
        }
    }

    /// `expr` converted to text.
    pub fn to_text(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("({expr})::text"),
            Dialect::Mysql => format!("CAST({expr} AS CHAR)"),
            Dialect::Sqlite => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// An expression building a JSON array text from SQL text expressions.
    pub fn json_array(self, items: &[String]) -> String {
        let items = items.join(", ");
        match self {
            Dialect::Postgres => format!("json_build_array({items})::text"),
            Dialect::Mysql => format!("JSON_ARRAY({items})"),
            Dialect::Sqlite => format!("json_array({items})"),
        }
    }

    /// The SQL that lists a table's columns as JSON objects, and its binds.
    pub(crate) fn catalog_sql(self, name: &str) -> (String, Vec<String>) {
        match self {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => pg::catalog_sql(name),
            #[cfg(feature = "mysql")]
            Dialect::Mysql => mysql::catalog_sql(name),
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => sqlite::catalog_sql(name),
            #[allow(unreachable_patterns)]
            _ => unreachable!("a dialect without its feature has no connection"),
        }
    }

    /// The coarse kind of a column from its catalog type names (`base`: the type's plain name,
    /// `full`: the declared type with modifiers).
    pub fn kind_of(self, base: &str, full: &str, scale: Option<u32>) -> ColumnKind {
        let base = base.to_ascii_lowercase();
        let full = full.to_ascii_lowercase();
        match self {
            Dialect::Postgres => match base.as_str() {
                "int2" | "int4" | "int8" | "oid" => ColumnKind::Integer,
                "numeric" => ColumnKind::Numeric { scale },
                "float4" | "float8" => ColumnKind::Float,
                "text" | "varchar" | "bpchar" | "name" | "citext" | "char" => ColumnKind::Text,
                "bytea" => ColumnKind::Binary,
                "bool" => ColumnKind::Bool,
                "date" => ColumnKind::Date,
                "time" | "timetz" => ColumnKind::Time,
                "timestamp" => ColumnKind::Timestamp,
                "timestamptz" => ColumnKind::TimestampTz,
                "json" | "jsonb" => ColumnKind::Json,
                "uuid" => ColumnKind::Uuid,
                _ => ColumnKind::Other,
            },
            Dialect::Mysql => match base.as_str() {
                "tinyint" if full.starts_with("tinyint(1)") => ColumnKind::Bool,
                "bool" | "boolean" => ColumnKind::Bool,
                "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
                    ColumnKind::Integer
                }
                "decimal" | "numeric" => ColumnKind::Numeric { scale },
                "float" | "double" | "real" => ColumnKind::Float,
                "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                    ColumnKind::Text
                }
                "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                    ColumnKind::Binary
                }
                "date" => ColumnKind::Date,
                "time" => ColumnKind::Time,
                "datetime" => ColumnKind::Timestamp,
                "timestamp" => ColumnKind::TimestampTz,
                "json" => ColumnKind::Json,
                "uuid" => ColumnKind::Uuid,
                _ => ColumnKind::Other,
            },
            Dialect::Sqlite => sqlite_kind(&full.to_ascii_uppercase()),
        }
    }
}

/// SQLite's declared types are free text: the kind follows the words in it, in the order of
/// SQLite's own affinity rules, with the date/time, boolean, JSON and UUID words first.
fn sqlite_kind(t: &str) -> ColumnKind {
    let scale = || {
        let inside = t.split_once('(')?.1.split_once(')')?.0;
        inside.split_once(',')?.1.trim().parse().ok()
    };
    if t.contains("BOOL") {
        ColumnKind::Bool
    } else if t.contains("TIMESTAMPTZ") || t.contains("WITH TIME ZONE") {
        ColumnKind::TimestampTz
    } else if t.contains("DATETIME") || t.contains("TIMESTAMP") {
        ColumnKind::Timestamp
    } else if t.contains("DATE") {
        ColumnKind::Date
    } else if t.contains("TIME") {
        ColumnKind::Time
    } else if t.contains("JSON") {
        ColumnKind::Json
    } else if t.contains("UUID") {
        ColumnKind::Uuid
    } else if t.contains("INT") {
        ColumnKind::Integer
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        ColumnKind::Text
    } else if t.contains("BLOB") {
        ColumnKind::Binary
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        ColumnKind::Float
    } else if t.contains("NUMERIC") || t.contains("DECIMAL") {
        ColumnKind::Numeric { scale: scale() }
    } else {
        ColumnKind::Other
    }
}

/// The per-backend SQL of row copying (see the module docs).
impl Dialect {
    /// A query with one text value: the JSON document of the rows of `table` that match
    /// `predicate`, with the columns `columns`; `lock`: lock them against changes until the
    /// transaction ends (PostgreSQL `FOR SHARE`; MariaDB locks them with
    /// [`lock_rows_sql`](Self::lock_rows_sql) first).
    pub fn rows_json_sql(
        self,
        table: &Table,
        columns: &[&Column],
        predicate: &str,
        lock: bool,
    ) -> String {
        let from = &table.sql_name;
        match self {
            Dialect::Postgres => {
                let cols: Vec<String> = columns.iter().map(|c| self.quote(&c.name)).collect();
                format!(
                    "SELECT json_agg(dw_r.*)::text AS value FROM (SELECT {} FROM {from} WHERE {predicate}{}) dw_r",
                    cols.join(", "),
                    if lock { " FOR SHARE" } else { "" }
                )
            }
            Dialect::Mysql | Dialect::Sqlite => {
                let pairs: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{}, {}", self.literal(&c.name), self.encode(c)))
                    .collect();
                let (agg, obj) = match self {
                    Dialect::Mysql => ("JSON_ARRAYAGG", "JSON_OBJECT"),
                    _ => ("json_group_array", "json_object"),
                };
                format!(
                    "SELECT {agg}({obj}({})) AS value FROM {from} WHERE {predicate}",
                    pairs.join(", ")
                )
            }
        }
    }

    /// MariaDB: a query that share-locks the rows matching `predicate` (its value: their
    /// number). `None` where [`rows_json_sql`](Self::rows_json_sql) locks them itself.
    pub fn lock_rows_sql(self, table: &Table, predicate: &str) -> Option<String> {
        match self {
            Dialect::Mysql => Some(format!(
                "SELECT CAST(COUNT(*) AS CHAR) AS value FROM {} WHERE {predicate} LOCK IN SHARE MODE",
                table.sql_name
            )),
            _ => None,
        }
    }

    /// A column's value as it goes into the JSON document (MariaDB, SQLite).
    fn encode(self, c: &Column) -> String {
        let q = self.quote(&c.name);
        match (self, c.kind) {
            (Dialect::Mysql, ColumnKind::Binary) => format!("HEX({q})"),
            (Dialect::Mysql, ColumnKind::Json) => format!("CAST({q} AS CHAR)"),
            (Dialect::Sqlite, ColumnKind::Binary) => format!("hex({q})"),
            // SQLite's JSON renders a REAL with 15 significant digits: 17 round-trip.
            (Dialect::Sqlite, ColumnKind::Float) => {
                format!("CASE WHEN typeof({q}) = 'real' THEN printf('%!.17g', {q}) ELSE {q} END")
            }
            _ => q,
        }
    }

    /// The statement inserting the rows of a JSON document (one bind) into `table` with the
    /// columns `columns`, skipping every row whose key is already there: the row there is
    /// kept as it is (it was written by the double write, or copied before).
    pub fn insert_json_sql(self, table: &Table, columns: &[&Column], ph: &str) -> String {
        let names: Vec<String> = columns.iter().map(|c| self.quote(&c.name)).collect();
        let keys: Vec<String> = table.key_columns().map(|c| self.quote(&c.name)).collect();
        let into = &table.sql_name;
        match self {
            Dialect::Postgres => format!(
                "INSERT INTO {into} ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::{into}, {ph}::json) ON CONFLICT ({keys}) DO NOTHING",
                cols = names.join(", "),
                keys = keys.join(", ")
            ),
            Dialect::Mysql => {
                let defs: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        format!(
                            "dw_c{i} LONGTEXT PATH {}",
                            self.literal(&format!("$.\"{}\"", c.name.replace('"', "\\\"")))
                        )
                    })
                    .collect();
                let values: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match c.kind {
                        // MariaDB 10.11 unhexes a JSON_TABLE column to an empty string when
                        // the statement also has the NOT EXISTS below; a cast first avoids it.
                        ColumnKind::Binary => format!("UNHEX(CAST(dw_jt.dw_c{i} AS CHAR))"),
                        _ => format!("dw_jt.dw_c{i}"),
                    })
                    .collect();
                // diesel's MySQL connections count found rows: a duplicate that
                // `ON DUPLICATE KEY UPDATE k = k` leaves alone would count as one, so the rows
                // already there are left out first (the clause then only covers a row the
                // double write inserts meanwhile), and the count is of rows inserted.
                let absent: Vec<String> = table
                    .key_columns()
                    .map(|k| {
                        let i = columns.iter().position(|c| c.name == k.name).unwrap_or(0);
                        format!(
                            "dw_d.{} = {}",
                            self.quote(&k.name),
                            self.key_value(k, &format!("dw_jt.dw_c{i}"))
                        )
                    })
                    .collect();
                let k = &keys[0];
                format!(
                    "INSERT INTO {into} ({}) SELECT {} FROM JSON_TABLE({ph}, '$[*]' COLUMNS ({})) AS dw_jt \
                     WHERE NOT EXISTS (SELECT 1 FROM {into} dw_d WHERE {}) \
                     ON DUPLICATE KEY UPDATE {k} = {into}.{k}",
                    names.join(", "),
                    values.join(", "),
                    defs.join(", "),
                    absent.join(" AND ")
                )
            }
            Dialect::Sqlite => {
                let values: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        let v = format!("value ->> {}", self.literal(&c.name));
                        match c.kind {
                            ColumnKind::Binary => format!("unhex({v})"),
                            ColumnKind::Float => format!(
                                "CASE WHEN typeof({v}) = 'text' THEN CAST({v} AS REAL) ELSE {v} END"
                            ),
                            _ => v,
                        }
                    })
                    .collect();
                format!(
                    "INSERT INTO {into} ({}) SELECT {} FROM json_each({ph}) WHERE true ON CONFLICT ({}) DO NOTHING",
                    names.join(", "),
                    values.join(", "),
                    keys.join(", ")
                )
            }
        }
    }

    /// SQL run once on each connection before rows are copied: MariaDB renders and parses
    /// `TIMESTAMP` values in the session's time zone (both sides in UTC then) and caps
    /// `JSON_ARRAYAGG` at `group_concat_max_len` (raised).
    pub fn session_setup(self) -> &'static str {
        match self {
            Dialect::Mysql => {
                "SET SESSION time_zone = '+00:00', SESSION group_concat_max_len = 1073741824"
            }
            Dialect::Postgres | Dialect::Sqlite => "",
        }
    }
}

/// Implements [`MigrateConnection`] for a diesel connection type.
macro_rules! impl_migrate_connection {
    ($conn:ty, $dialect:expr, |$c:ident, $f:ident| $locking:expr $(, $extra:item)* $(,)?) => {
        impl $crate::migrate::MigrateConnection for $conn {
            const DIALECT: $crate::migrate::Dialect = $dialect;

            fn query_texts(
                &mut self,
                sql: &str,
                binds: &[String],
            ) -> $crate::Result<Vec<Option<String>>> {
                #[derive(diesel::QueryableByName)]
                struct Value {
                    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
                    value: Option<String>,
                }
                let mut query =
                    diesel::sql_query(sql).into_boxed::<<$conn as diesel::Connection>::Backend>();
                for b in binds {
                    query = query.bind::<diesel::sql_types::Text, _>(b.as_str());
                }
                let rows: Vec<Value> = diesel::RunQueryDsl::load(query, self)?;
                Ok(rows.into_iter().map(|r| r.value).collect())
            }

            fn execute_binds(&mut self, sql: &str, binds: &[String]) -> $crate::Result<usize> {
                let mut query =
                    diesel::sql_query(sql).into_boxed::<<$conn as diesel::Connection>::Backend>();
                for b in binds {
                    query = query.bind::<diesel::sql_types::Text, _>(b.as_str());
                }
                Ok(diesel::RunQueryDsl::execute(query, self)?)
            }

            fn locking_transaction<T>(
                &mut self,
                f: impl FnOnce(&mut Self) -> $crate::Result<T>,
            ) -> $crate::Result<T> {
                let ($c, $f) = (self, f);
                $locking
            }

            fn write_transaction<T>(
                &mut self,
                f: impl FnOnce(&mut Self) -> $crate::Result<T>,
            ) -> $crate::Result<T> {
                diesel::Connection::transaction(self, f)
            }

            $($extra)*
        }
    };
}
pub(crate) use impl_migrate_connection;
