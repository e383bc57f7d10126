//! Key values ([`Key`]) and keyset chunking: [`Table::next_chunk`] finds "the next chunk after
//! key K, up to N rows", and [`Table::range_predicate`] turns a [`KeyRange`] back into SQL.
//!
//! A key value is held as the canonical text of each key column, read by the server
//! ([`Dialect::key_text`]) and bound back as text with a cast to the column's type
//! ([`Dialect::key_value`]), so a key read on one side can be bound on the other, or after a
//! restart from a checkpoint, and compares as the server compares the column.

use std::fmt;

use crate::error::{Error, Result};

use super::dialect::{Binds, Dialect, MigrateConnection};
use super::table::Table;

/// The value of a table's key: the canonical text of each key column, in key order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(Vec<String>);

impl Key {
    /// A key from the canonical texts of its columns, in key order.
    pub fn new(values: Vec<String>) -> Key {
        Key(values)
    }

    /// The canonical texts, in key order.
    pub fn values(&self) -> &[String] {
        &self.0
    }

    /// The key as a JSON array of strings (the checkpoint's form).
    pub fn to_json(&self) -> String {
        serde_json::Value::from(self.0.clone()).to_string()
    }

    /// A key from a JSON array of strings (or numbers): what [`to_json`](Self::to_json) and
    /// [`Dialect::json_array`] of [`Dialect::key_text`]s give.
    pub fn from_json(json: &str) -> Result<Key> {
        let bad = || Error::InvalidState(format!("not a key (a JSON array of texts): `{json}`"));
        let v: serde_json::Value = serde_json::from_str(json).map_err(|_| bad())?;
        let items = v.as_array().ok_or_else(bad)?;
        items
            .iter()
            .map(|x| match x {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>>>()
            .map(Key)
    }
}

/// `42`, or `(7, abc)` for a composite key.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => f.write_str(one),
            many => write!(f, "({})", many.join(", ")),
        }
    }
}

/// A range of keys in key order: after `after` (exclusive; `None`: from the first row) up to
/// `upto` (inclusive; `None`: to the last row).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// The range starts after this key.
    pub after: Option<Key>,
    /// The range ends at this key, included.
    pub upto: Option<Key>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange::default()
    }
}

/// A chunk of rows in key order, as [`Table::next_chunk`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The first key in the chunk.
    pub first: Key,
    /// The last key in the chunk.
    pub last: Key,
    /// How many rows it has (at most the limit asked for).
    pub rows: u64,
}

impl Chunk {
    /// The chunk as a range after `after` (the key the chunk was asked after) up to its last
    /// key, which holds every row of the chunk and any row inserted among them since.
    pub fn range(&self, after: Option<&Key>) -> KeyRange {
        KeyRange {
            after: after.cloned(),
            upto: Some(self.last.clone()),
        }
    }
}

impl Table {
    /// A `WHERE` condition (without the word) selecting the keys of `range`, with its binds
    /// added to `binds` (of this table's dialect); `qualifier`: a table alias to prefix the
    /// columns with. `TRUE`-equivalent `1=1` for [`KeyRange::all`].
    pub fn range_predicate(
        &self,
        range: &KeyRange,
        qualifier: Option<&str>,
        binds: &mut Binds,
    ) -> Result<String> {
        let mut parts = Vec::new();
        if let Some(after) = &range.after {
            parts.push(self.compare(after, ">", qualifier, binds)?);
        }
        if let Some(upto) = &range.upto {
            parts.push(self.compare(upto, "<=", qualifier, binds)?);
        }
        Ok(if parts.is_empty() {
            "1=1".to_owned()
        } else {
            parts.join(" AND ")
        })
    }

    /// `(key columns) op (key)`: a row comparison on PostgreSQL and SQLite (their indexes serve
    /// it), expanded on MariaDB (`a > x OR (a = x AND b > y)`).
    fn compare(
        &self,
        key: &Key,
        op: &str,
        qualifier: Option<&str>,
        binds: &mut Binds,
    ) -> Result<String> {
        let d = self.dialect;
        let cols: Vec<_> = self.key_columns().collect();
        if key.values().len() != cols.len() {
            return Err(Error::InvalidState(format!(
                "key {key} has {} values but the key of `{}` has {} columns ({})",
                key.values().len(),
                self.name,
                cols.len(),
                self.key_names().join(", ")
            )));
        }
        let name = |c: &super::Column| match qualifier {
            Some(q) => format!("{q}.{}", d.quote(&c.name)),
            None => d.quote(&c.name),
        };
        if cols.len() == 1 {
            let v = d.key_value(cols[0], &binds.push(key.values()[0].clone()));
            return Ok(format!("{} {op} {v}", name(cols[0])));
        }
        match d {
            Dialect::Postgres | Dialect::Sqlite => {
                let names: Vec<String> = cols.iter().map(|c| name(c)).collect();
                let values: Vec<String> = cols
                    .iter()
                    .zip(key.values())
                    .map(|(c, v)| d.key_value(c, &binds.push(v.clone())))
                    .collect();
                Ok(format!(
                    "({}) {op} ({})",
                    names.join(", "),
                    values.join(", ")
                ))
            }
            Dialect::Mysql => {
                // (a, b, c) > (x, y, z): a > x OR (a = x AND (b > y OR (b = y AND c > z)));
                // `<=`: the strict part is `<`, the last column `<=`.
                let strict = if op == ">" { ">" } else { "<" };
                // Built front to back: `?` placeholders bind in text order.
                let n = cols.len();
                let mut text = String::new();
                for (i, (c, v)) in cols.iter().zip(key.values()).enumerate() {
                    let value = |binds: &mut Binds| d.key_value(c, &binds.push(v.clone()));
                    if i == n - 1 {
                        text.push_str(&format!("{} {op} {}", name(c), value(binds)));
                    } else {
                        let lt = format!("{} {strict} {}", name(c), value(binds));
                        let eq = format!("{} = {}", name(c), value(binds));
                        text.push_str(&format!("({lt} OR ({eq} AND "));
                    }
                }
                text.push_str(&")".repeat(2 * (n - 1)));
                Ok(text)
            }
        }
    }

    /// An expression giving the key of a row as JSON (see [`Key::from_json`]).
    pub fn key_json_sql(&self, qualifier: Option<&str>) -> String {
        let texts: Vec<String> = self
            .key_columns()
            .map(|c| self.dialect.key_text(c, qualifier))
            .collect();
        self.dialect.json_array(&texts)
    }

    /// The next chunk of rows in key order after `after` (`None`: from the first row), of at
    /// most `limit` rows: its first and last keys and its number of rows; `None` when no row
    /// follows `after`. One query, served by the key's index.
    pub fn next_chunk<C: MigrateConnection>(
        &self,
        conn: &mut C,
        after: Option<&Key>,
        limit: u64,
    ) -> Result<Option<Chunk>> {
        self.check_dialect(C::DIALECT)?;
        let d = self.dialect;
        let mut binds = Binds::new(d);
        let range = KeyRange {
            after: after.cloned(),
            upto: None,
        };
        let predicate = self.range_predicate(&range, None, &mut binds)?;
        let keys: Vec<String> = self.key_columns().map(|c| d.quote(&c.name)).collect();
        let keys = keys.join(", ");
        let order = self.order_by();
        // The row count first: text on PostgreSQL, a JSON number elsewhere.
        let count = if d == Dialect::Postgres {
            "dw_n::text"
        } else {
            "dw_n"
        };
        let mut items = vec![count.to_owned()];
        items.extend(self.key_columns().map(|c| d.key_text(c, Some("dw_w"))));
        let sql = format!(
            "SELECT {json} AS value FROM (\
               SELECT {keys}, ROW_NUMBER() OVER (ORDER BY {order}) AS dw_rn, COUNT(*) OVER () AS dw_n \
               FROM (SELECT {keys} FROM {from} WHERE {predicate} ORDER BY {order} LIMIT {limit}) dw_s\
             ) dw_w WHERE dw_rn = 1 OR dw_rn = dw_n ORDER BY dw_rn",
            json = d.json_array(&items),
            from = self.sql_name,
            limit = limit.max(1),
        );
        let rows = conn.query_texts(&sql, binds.values())?;
        let mut keys = Vec::new();
        let mut count = 0;
        for row in rows.into_iter().flatten() {
            let mut values = Key::from_json(&row)?.0;
            count = values.remove(0).parse().unwrap_or(0);
            keys.push(Key(values));
        }
        let mut keys = keys.into_iter();
        Ok(match (keys.next(), keys.next()) {
            (Some(first), Some(last)) => Some(Chunk {
                first,
                last,
                rows: count,
            }),
            (Some(only), None) => Some(Chunk {
                first: only.clone(),
                last: only,
                rows: count,
            }),
            _ => None,
        })
    }

    pub(crate) fn check_dialect(&self, dialect: Dialect) -> Result<()> {
        if self.dialect == dialect {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "table `{}` was described on a {:?} connection and used on a {:?} one: describe it on the connection it is used with",
                self.name, self.dialect, dialect
            )))
        }
    }
}
