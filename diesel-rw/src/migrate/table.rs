//! What a migration names ([`TableSpec`]) and what the catalog says of it ([`Table`]).
//!
//! A [`TableSpec`] names a table and, optionally, its key and a "changed at" column; anything not
//! given is discovered from the catalog by [`TableSpec::describe`] (PostgreSQL `pg_catalog`,
//! MariaDB/MySQL `information_schema`, SQLite `pragma_table_info`). The key is the primary key,
//! in key order: a table without one is refused ([`Error::NoPrimaryKey`]) unless a key is named.

use crate::error::{Error, Result};

use super::dialect::{Dialect, MigrateConnection};

/// A table as a migration names it: the catalog fills in the rest ([`TableSpec::describe`]).
///
/// ```
/// use diesel_rw::migrate::TableSpec;
/// let spec = TableSpec::new("accounts").key(["tenant", "id"]).changed_at("updated_at");
/// assert_eq!(spec.name(), "accounts");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    name: String,
    key: Option<Vec<String>>,
    changed_at: Option<String>,
}

impl TableSpec {
    /// The table `name`: `table`, or `schema.table` (PostgreSQL schema, MariaDB database,
    /// SQLite attached database). PostgreSQL resolves it as the server does (`search_path`,
    /// unquoted names folded to lower case).
    pub fn new(name: impl Into<String>) -> TableSpec {
        TableSpec {
            name: name.into(),
            key: None,
            changed_at: None,
        }
    }

    /// The key columns, in key order, instead of the primary key; they must identify a row
    /// (a unique, not-null key). One column or several.
    pub fn key<I, S>(mut self, columns: I) -> TableSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.key = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// The column that records when a row last changed, for incremental work.
    pub fn changed_at(mut self, column: impl Into<String>) -> TableSpec {
        self.changed_at = Some(column.into());
        self
    }

    /// The name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key columns as given, if any.
    pub fn key_columns(&self) -> Option<&[String]> {
        self.key.as_deref()
    }

    /// The "changed at" column as given, if any.
    pub fn changed_at_column(&self) -> Option<&str> {
        self.changed_at.as_deref()
    }

    /// Reads the table's description from `conn`'s catalog.
    ///
    /// Errors: [`Error::UnknownTable`] (no such table), [`Error::UnknownColumn`] (a key or
    /// "changed at" column that the table does not have), [`Error::NoPrimaryKey`] (no primary
    /// key and no key named).
    pub fn describe<C: MigrateConnection>(&self, conn: &mut C) -> Result<Table> {
        let (sql, binds) = C::DIALECT.catalog_sql(&self.name);
        let rows = conn.query_texts(&sql, &binds)?;
        Table::from_catalog(self, C::DIALECT, rows)
    }
}

impl From<&str> for TableSpec {
    fn from(name: &str) -> TableSpec {
        TableSpec::new(name)
    }
}

/// The coarse type of a column, the same words on every backend, so that two sides can be
/// compared by value ([`Column::type_name`] keeps the catalog's exact name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnKind {
    /// Integers of any width (PostgreSQL `int2/4/8`, MariaDB `TINYINT`..`BIGINT`, `YEAR`,
    /// SQLite `INTEGER`).
    Integer,
    /// Exact decimals, with the declared scale when there is one.
    Numeric {
        /// Digits after the decimal point, when declared.
        scale: Option<u32>,
    },
    /// Binary floating point (`real`, `double precision`, `FLOAT`, `DOUBLE`, `REAL`).
    Float,
    /// Character strings (`text`, `varchar`, `char`).
    Text,
    /// Byte strings (`bytea`, `BLOB`, `VARBINARY`).
    Binary,
    /// Booleans (MariaDB `TINYINT(1)`/`BOOL`).
    Bool,
    /// Dates.
    Date,
    /// Times of day.
    Time,
    /// Timestamps without a time zone (PostgreSQL `timestamp`, MariaDB `DATETIME`).
    Timestamp,
    /// Instants (PostgreSQL `timestamptz`, MariaDB `TIMESTAMP`, stored in UTC).
    TimestampTz,
    /// JSON documents (`json`, `jsonb`, MariaDB `JSON`).
    Json,
    /// UUIDs.
    Uuid,
    /// Anything else (arrays, enums, geometry, ...).
    Other,
}

/// A column as the catalog describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Column {
    /// Its name.
    pub name: String,
    /// The catalog's type name, with modifiers: PostgreSQL `format_type` (`numeric(12,2)`,
    /// `timestamp with time zone`), MariaDB `COLUMN_TYPE` (`decimal(12,2)`,
    /// `bigint(20) unsigned`), SQLite the declared type.
    pub type_name: String,
    /// Whether it can be NULL.
    pub nullable: bool,
    /// Its coarse kind.
    pub kind: ColumnKind,
    /// Whether the server computes it (a generated column): it is never written.
    pub generated: bool,
}

/// A table described from the catalog: its name, its columns in order, its key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Table {
    /// Its name for messages and checkpoints: `schema.table` on PostgreSQL and MariaDB
    /// (database.table), the name as given on SQLite.
    pub name: String,
    /// Its name quoted for SQL (`"public"."accounts"`, `` `app`.`accounts` ``).
    pub sql_name: String,
    /// Its columns in table order.
    pub columns: Vec<Column>,
    /// The key: indexes into [`columns`](Self::columns), in key order.
    pub key: Vec<usize>,
    /// The "changed at" column: an index into [`columns`](Self::columns).
    pub changed_at: Option<usize>,
    /// The dialect of the connection it was read on.
    pub dialect: Dialect,
}

impl Table {
    /// The key columns, in key order.
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> + '_ {
        self.key.iter().map(|&i| &self.columns[i])
    }

    /// The key columns' names, in key order.
    pub fn key_names(&self) -> Vec<String> {
        self.key_columns().map(|c| c.name.clone()).collect()
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The "changed at" column.
    pub fn changed_at_column(&self) -> Option<&Column> {
        self.changed_at.map(|i| &self.columns[i])
    }

    /// The columns that can be written (not generated), in table order.
    pub fn writable_columns(&self) -> Vec<&Column> {
        self.columns.iter().filter(|c| !c.generated).collect()
    }

    /// `ORDER BY` text for key order (without the words `ORDER BY`).
    pub fn order_by(&self) -> String {
        self.key_columns()
            .map(|c| self.dialect.quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn from_catalog(
        spec: &TableSpec,
        dialect: Dialect,
        rows: Vec<Option<String>>,
    ) -> Result<Table> {
        let mut columns = Vec::new();
        let mut pk: Vec<(u64, usize)> = Vec::new();
        let mut qualified = None;
        for row in rows.into_iter().flatten() {
            let v: serde_json::Value = serde_json::from_str(&row).map_err(|e| {
                Error::InvalidState(format!("unreadable catalog row for `{}`: {e}", spec.name))
            })?;
            let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
            let flag = |k: &str| match v.get(k) {
                Some(serde_json::Value::Bool(b)) => *b,
                Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
                Some(serde_json::Value::String(s)) => s == "1" || s == "true",
                _ => false,
            };
            let number = |k: &str| {
                v.get(k).and_then(|x| {
                    x.as_u64()
                        .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
                })
            };
            if qualified.is_none() {
                qualified = Some((text("schema"), text("table")));
            }
            let full = text("type");
            let is_json = flag("json");
            let mut kind = dialect.kind_of(&text("base"), &full, number("scale").map(|s| s as u32));
            if is_json {
                kind = ColumnKind::Json;
            }
            if let Some(pos) = number("pk") {
                pk.push((pos, columns.len()));
            }
            columns.push(Column {
                name: text("name"),
                type_name: full,
                nullable: flag("nullable"),
                kind,
                generated: flag("generated"),
            });
        }
        let Some((schema, table)) = qualified else {
            return Err(Error::UnknownTable {
                table: spec.name.clone(),
            });
        };
        let (name, sql_name) = match dialect {
            Dialect::Sqlite if !spec.name.contains('.') => (table.clone(), dialect.quote(&table)),
            _ => (
                format!("{schema}.{table}"),
                format!("{}.{}", dialect.quote(&schema), dialect.quote(&table)),
            ),
        };
        let find = |col: &str| {
            columns
                .iter()
                .position(|c: &Column| c.name == col)
                .ok_or_else(|| Error::UnknownColumn {
                    table: name.clone(),
                    column: col.to_owned(),
                })
        };
        let key = match &spec.key {
            Some(names) if names.is_empty() => {
                return Err(Error::Config(format!(
                    "TableSpec::key for `{name}` names no column: name at least one"
                )))
            }
            Some(names) => names.iter().map(|n| find(n)).collect::<Result<Vec<_>>>()?,
            None => {
                pk.sort();
                pk.into_iter().map(|(_, i)| i).collect()
            }
        };
        if key.is_empty() {
            return Err(Error::NoPrimaryKey { table: name });
        }
        let changed_at = spec.changed_at.as_deref().map(find).transpose()?;
        Ok(Table {
            name,
            sql_name,
            columns,
            key,
            changed_at,
            dialect,
        })
    }
}
