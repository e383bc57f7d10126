//! Generated-key counters of the two sides of a double write: read them
//! ([`key_counters`](super::DoubleWriteConnection::key_counters)), find those of the destination
//! that are behind the source's
//! ([`counters_behind`](super::DoubleWriteConnection::counters_behind)), move them forward
//! ([`sync_sequences`](super::DoubleWriteConnection::sync_sequences)), and refuse to step the
//! pattern to `DstFirst` while any is behind
//! ([`advance_pattern`](super::DoubleWriteConnection::advance_pattern)).
//!
//! Both sides of a double write generate their own keys. Rows inserted with generated keys
//! (`SERIAL`, `IDENTITY`, `AUTO_INCREMENT`, `AUTOINCREMENT`) get the same key on both sides only
//! while both counters agree and every insert reaches both sides in the same order; concurrent
//! inserts, a failed second-side write or a row written on one side alone make them diverge (the
//! journal records each [`Divergence`](super::EntryKind::Divergence) it sees in `RETURNING`
//! rows). From `DstFirst` on, the destination generates the keys: a destination counter behind
//! the source's would issue keys the source has already issued, and the second write (to the
//! source) would collide with, or worse overwrite the meaning of, an existing row. So write
//! explicit keys during a migration (ids taken from the source, UUIDs), or sync the counters
//! before `DstFirst`, which [`advance_pattern`](super::DoubleWriteConnection::advance_pattern)
//! checks.
//!
//! Each backend's queries live in one file: `pg.rs` (sequences), `mysql.rs` (`AUTO_INCREMENT`),
//! `sqlite.rs` (`sqlite_sequence`); `gate.rs` and `async_gate.rs` hold the methods of the sync and
//! async double-write connections.

use std::fmt;

#[cfg(feature = "async")]
mod async_gate;
mod gate;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

use diesel::connection::{Connection, LoadConnection};
use diesel::result::QueryResult;

use super::backend::DoubleWriteBackend;
#[cfg(feature = "async")]
use super::AsyncDoubleWritable;

/// One generated-key counter of one side, as its server reports it.
///
/// Read with [`key_counters`](super::DoubleWriteConnection::key_counters); a
/// [`CounterLag`] holds the two sides' counters of one table or sequence.
///
/// | backend       | the counter                                   | [`value`](Self::value)                       |
/// |---------------|-----------------------------------------------|----------------------------------------------|
/// | PostgreSQL    | a sequence (`pg_sequences`), with the table and column that own it (`SERIAL`, `IDENTITY`, `OWNED BY`) if any | `last_value`: the last value issued (`None` before the first, or without the privilege to read it) |
/// | MySQL/MariaDB | a table's `AUTO_INCREMENT` in the connection's current database | the next value it will issue |
/// | SQLite        | a table's row in `sqlite_sequence` (`AUTOINCREMENT` tables only) | the largest key issued (`None` before the first) |
///
/// SQLite's rowid tables without `AUTOINCREMENT` have no counter: their next key is one more
/// than their largest, which the backfill makes the same on both sides.
///
/// ```
/// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::connection::SimpleConnection;
/// use diesel::prelude::*;
/// use diesel_rw::double_write::{DoubleWriteConnection, Side};
///
/// let dir = std::env::temp_dir().join(format!("diesel-rw-key-counter-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
/// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
/// let spec = format!("source={} destination={} pattern=src_only", src.display(), dst.display());
/// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec)?;
/// conn.batch_execute(
///     "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
///      INSERT INTO users (name) VALUES ('ada'), ('bob')",
/// )?;
/// let counters = conn.key_counters(Side::Source)?;
/// assert_eq!(counters[0].table.as_deref(), Some("users"));
/// assert_eq!(counters[0].column.as_deref(), Some("id"));
/// assert_eq!(counters[0].value, Some(2));
/// assert_eq!(counters[0].to_string(), "users.id");
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct KeyCounter {
    /// The table whose keys it generates: on PostgreSQL the table that owns the sequence,
    /// schema-qualified (`public.users`), `None` for a sequence no column owns; on
    /// MySQL/MariaDB and SQLite the table (`users`), always known.
    pub table: Option<String>,
    /// The column whose keys it generates, when known.
    pub column: Option<String>,
    /// On PostgreSQL, the sequence that holds the counter, schema-qualified and quoted where
    /// needed (`public.users_id_seq`); `None` on MySQL/MariaDB and SQLite, where the table
    /// holds it.
    pub sequence: Option<String>,
    /// The value, as the server reports it (see the table above); `None` when nothing was
    /// issued yet.
    pub value: Option<i64>,
    /// Whether it counts down (a PostgreSQL sequence with a negative increment): such a
    /// counter is behind when its value is greater.
    pub descending: bool,
}

impl KeyCounter {
    /// The name the backend gives the counter: the sequence on PostgreSQL, the table on
    /// MySQL/MariaDB and SQLite. The names of a [`SequenceSync`].
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use diesel::connection::SimpleConnection;
    /// # use diesel::prelude::*;
    /// # use diesel_rw::double_write::{DoubleWriteConnection, Side};
    /// # let dir = std::env::temp_dir().join(format!("diesel-rw-key-counter-name-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
    /// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
    /// # let spec = format!("source={} destination={}", src.display(), dst.display());
    /// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec)?;
    /// conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)")?;
    /// assert_eq!(conn.key_counters(Side::Source)?[0].name(), "t");
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn name(&self) -> &str {
        self.sequence
            .as_deref()
            .or(self.table.as_deref())
            .unwrap_or_default()
    }

    /// `table.column`, the column whose keys it generates, when both are known.
    fn owner(&self) -> Option<(&str, &str)> {
        Some((self.table.as_deref()?, self.column.as_deref()?))
    }
}

impl fmt::Display for KeyCounter {
    /// `table.column`, then `(sequence name)` on PostgreSQL; `sequence name` for a sequence
    /// no column owns.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.table, &self.column, &self.sequence) {
            (Some(t), Some(c), Some(s)) => write!(f, "{t}.{c} (sequence {s})"),
            (Some(t), Some(c), None) => write!(f, "{t}.{c}"),
            (Some(t), None, Some(s)) => write!(f, "{t} (sequence {s})"),
            (Some(t), None, None) => f.write_str(t),
            (None, _, Some(s)) => write!(f, "sequence {s}"),
            (None, _, None) => f.write_str("(unnamed counter)"),
        }
    }
}

/// A counter of the destination that is behind the source's: from `DstFirst` on, the
/// destination would issue keys the source has already issued. Both sides' counters as read.
///
/// Listed by [`counters_behind`](super::DoubleWriteConnection::counters_behind) and by
/// [`Error::KeyCountersBehind`](crate::Error::KeyCountersBehind).
///
/// ```
/// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::connection::SimpleConnection;
/// use diesel::prelude::*;
/// use diesel_rw::double_write::{DoubleWriteConnection, Side};
///
/// # let dir = std::env::temp_dir().join(format!("diesel-rw-counter-lag-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
/// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
/// let spec = format!("source={} destination={} pattern=src_first", src.display(), dst.display());
/// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec)?;
/// conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")?;
/// // Written on the source alone: the source's counter moves on.
/// conn.with_side(Side::Source, |c| c.batch_execute("INSERT INTO t (x) VALUES ('a'), ('b')"))??;
/// let behind = conn.counters_behind()?;
/// assert_eq!(behind[0].source.value, Some(2));
/// assert_eq!(behind[0].destination.value, None);
/// assert_eq!(behind[0].to_string(), "t.id: source 2, destination nothing issued yet");
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CounterLag {
    /// The source's counter.
    pub source: KeyCounter,
    /// The destination's counter of the same table and column (or, failing that, of the same
    /// name).
    pub destination: KeyCounter,
}

impl fmt::Display for CounterLag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: source ", self.destination)?;
        value(f, self.source.value)?;
        f.write_str(", destination ")?;
        value(f, self.destination.value)
    }
}

fn value(f: &mut fmt::Formatter<'_>, value: Option<i64>) -> fmt::Result {
    match value {
        Some(v) => write!(f, "{v}"),
        None => f.write_str("nothing issued yet"),
    }
}

/// What [`sync_sequences`](super::DoubleWriteConnection::sync_sequences) did. Counters are
/// named by [`KeyCounter::name`]: the sequence on PostgreSQL (`public.users_id_seq`), the table
/// on MySQL/MariaDB and SQLite (`users`); values as in [`KeyCounter::value`].
///
/// ```
/// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::connection::SimpleConnection;
/// use diesel::prelude::*;
/// use diesel_rw::double_write::{DoubleWriteConnection, Side};
///
/// # let dir = std::env::temp_dir().join(format!("diesel-rw-sequence-sync-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
/// # for db in [&src, &dst] { let _ = std::fs::remove_file(db); }
/// let spec = format!("source={} destination={} pattern=src_first", src.display(), dst.display());
/// let mut conn = DoubleWriteConnection::<SqliteConnection>::establish(&spec)?;
/// conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")?;
/// conn.with_side(Side::Source, |c| c.batch_execute("INSERT INTO t (x) VALUES ('a'), ('b')"))??;
/// let report = conn.sync_sequences()?;
/// assert_eq!(report.synced, [("t".to_owned(), 2)]);
/// assert!(report.ahead.is_empty() && report.missing.is_empty());
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SequenceSync {
    /// Counters set on the destination (they were behind): name and the value set, the
    /// source's.
    pub synced: Vec<(String, i64)>,
    /// Counters already further on the destination, left as they were (moving them back
    /// would make them issue values they already issued): name, source value, destination
    /// value.
    pub ahead: Vec<(String, i64, i64)>,
    /// Counters of the source that the destination does not have (no such sequence, or no
    /// such table with a generated key).
    pub missing: Vec<String>,
}

/// A backend whose generated-key counters a double write can read and set: the queries of
/// [`key_counters`](super::DoubleWriteConnection::key_counters) and
/// [`sync_sequences`](super::DoubleWriteConnection::sync_sequences), which any connection of the
/// backend can run. Implemented for PostgreSQL, MySQL/MariaDB and SQLite (behind their
/// features); nothing to implement.
///
/// ```
/// use diesel_rw::double_write::KeyCounterBackend;
///
/// fn gated<B: KeyCounterBackend>() {}
/// # #[cfg(feature = "postgres")]
/// gated::<diesel::pg::Pg>();
/// # #[cfg(feature = "mysql")]
/// gated::<diesel::mysql::Mysql>();
/// # #[cfg(feature = "sqlite")]
/// gated::<diesel::sqlite::Sqlite>();
/// ```
pub trait KeyCounterBackend: DoubleWriteBackend {
    /// Every counter of the database `conn` is connected to.
    #[doc(hidden)]
    fn read_key_counters<C>(conn: &mut C) -> QueryResult<Vec<KeyCounter>>
    where
        C: LoadConnection + Connection<Backend = Self>;

    /// Sets `counter` (as read from `conn`'s database) to `value`.
    #[doc(hidden)]
    fn set_key_counter<C>(conn: &mut C, counter: &KeyCounter, value: i64) -> QueryResult<()>
    where
        C: LoadConnection + Connection<Backend = Self>;
}

/// A diesel-async connection type whose generated-key counters an
/// [`AsyncDoubleWriteConnection`](super::AsyncDoubleWriteConnection) can read and set:
/// `AsyncPgConnection` (`postgres`), `AsyncMysqlConnection` (`mysql`) and
/// `SyncConnectionWrapper<SqliteConnection>` (`sqlite`), with the queries of
/// [`KeyCounterBackend`]. Implemented for all of them; nothing to implement.
///
/// ```
/// use diesel_rw::double_write::AsyncKeyCounters;
///
/// fn gated<C: AsyncKeyCounters>() {}
/// # #[cfg(feature = "postgres")]
/// gated::<diesel_async::AsyncPgConnection>();
/// # #[cfg(feature = "mysql")]
/// gated::<diesel_async::AsyncMysqlConnection>();
/// # #[cfg(feature = "sqlite")]
/// gated::<diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>>();
/// ```
#[cfg(feature = "async")]
pub trait AsyncKeyCounters: AsyncDoubleWritable {
    /// Every counter of the database this connection is connected to.
    #[doc(hidden)]
    fn read_key_counters(
        &mut self,
    ) -> impl std::future::Future<Output = QueryResult<Vec<KeyCounter>>> + Send;

    /// Sets `counter` (as read from this connection's database) to `value`.
    #[doc(hidden)]
    fn set_key_counter(
        &mut self,
        counter: &KeyCounter,
        value: i64,
    ) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

/// The destination's counter for `source`: the one of the same table and column, or else the
/// one of the same name.
fn counterpart<'a>(source: &KeyCounter, destination: &'a [KeyCounter]) -> Option<&'a KeyCounter> {
    source
        .owner()
        .and_then(|owner| destination.iter().find(|d| d.owner() == Some(owner)))
        .or_else(|| destination.iter().find(|d| d.name() == source.name()))
}

/// How the destination's counter stands against the source's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    /// The source has issued nothing, or both are at the same value.
    InStep,
    /// The destination would issue values the source has issued.
    Behind,
    /// The destination is further (values the source has not issued yet).
    Ahead,
}

fn standing(source: &KeyCounter, destination: &KeyCounter) -> Standing {
    let Some(s) = source.value else {
        return Standing::InStep;
    };
    match destination.value {
        None => Standing::Behind,
        Some(d) if d == s => Standing::InStep,
        Some(d) if (d < s) != source.descending => Standing::Behind,
        Some(_) => Standing::Ahead,
    }
}

/// The destination's counters that are behind the source's.
pub(crate) fn behind(source: &[KeyCounter], destination: &[KeyCounter]) -> Vec<CounterLag> {
    source
        .iter()
        .filter_map(|s| {
            let d = counterpart(s, destination)?;
            (standing(s, d) == Standing::Behind).then(|| CounterLag {
                source: s.clone(),
                destination: d.clone(),
            })
        })
        .collect()
}

/// What syncing the destination to the source does: the report, and each destination counter
/// to set with its new value.
pub(crate) fn plan_sync(
    source: &[KeyCounter],
    destination: &[KeyCounter],
) -> (SequenceSync, Vec<(KeyCounter, i64)>) {
    let mut report = SequenceSync::default();
    let mut set = Vec::new();
    for s in source {
        let Some(value) = s.value else {
            continue;
        };
        let Some(d) = counterpart(s, destination) else {
            report.missing.push(s.name().to_owned());
            continue;
        };
        match standing(s, d) {
            Standing::InStep => {}
            Standing::Ahead => {
                report
                    .ahead
                    .push((d.name().to_owned(), value, d.value.unwrap_or(value)));
            }
            Standing::Behind => set.push((d.clone(), value)),
        }
    }
    (report, set)
}

/// At most this many counters are named in the message of
/// [`Error::KeyCountersBehind`](crate::Error::KeyCountersBehind).
const NAMED: usize = 20;

/// The message of [`Error::KeyCountersBehind`](crate::Error::KeyCountersBehind).
pub(crate) fn behind_message(behind: &[CounterLag]) -> String {
    let mut named = behind
        .iter()
        .take(NAMED)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if behind.len() > NAMED {
        named.push_str(&format!(
            "; and {} more (see the error's `behind` field)",
            behind.len() - NAMED
        ));
    }
    format!(
        "cannot switch the double-write pattern from `src_first` to `dst_first`: {} \
         generated-key counter(s) of the destination are behind the source's, so the \
         destination would issue keys the source has already issued: {named}; nothing was \
         switched. Run sync_sequences() on a double-write connection (it moves the \
         destination's counters forward to the source's, never back), then advance again; or, \
         if every insert writes its keys explicitly, advance with \
         advance_pattern_forced(reason)",
        behind.len()
    )
}

/// Why a forced advance needs a reason.
pub(crate) const NO_REASON: &str =
    "advance_pattern_forced() needs a reason (it is logged): nothing was switched";

/// The message of the error for `sync_sequences()` inside a transaction.
pub(crate) const IN_TRANSACTION: &str =
    "sync_sequences() inside a transaction: run it outside one (nothing was changed)";

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(seq: &str, owner: Option<(&str, &str)>, value: Option<i64>) -> KeyCounter {
        KeyCounter {
            table: owner.map(|o| o.0.to_owned()),
            column: owner.map(|o| o.1.to_owned()),
            sequence: Some(seq.to_owned()),
            value,
            descending: false,
        }
    }

    fn table(name: &str, value: Option<i64>) -> KeyCounter {
        KeyCounter {
            table: Some(name.to_owned()),
            column: Some("id".to_owned()),
            sequence: None,
            value,
            descending: false,
        }
    }

    #[test]
    fn names_and_display() {
        let owned = pg("public.t_id_seq", Some(("public.t", "id")), Some(3));
        assert_eq!(owned.name(), "public.t_id_seq");
        assert_eq!(owned.to_string(), "public.t.id (sequence public.t_id_seq)");
        let free = pg("public.free", None, None);
        assert_eq!(free.to_string(), "sequence public.free");
        assert_eq!(table("t", Some(4)).name(), "t");
        assert_eq!(table("t", Some(4)).to_string(), "t.id");
    }

    #[test]
    fn behind_in_step_and_ahead() {
        let source = [
            table("behind", Some(10)),
            table("never_on_dst", Some(2)),
            table("equal", Some(5)),
            table("ahead", Some(5)),
            table("unused", None),
            table("missing", Some(9)),
        ];
        let destination = [
            table("behind", Some(3)),
            table("never_on_dst", None),
            table("equal", Some(5)),
            table("ahead", Some(50)),
            table("unused", None),
            table("extra", Some(1)),
        ];
        let lag = behind(&source, &destination);
        assert_eq!(
            lag.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "behind.id: source 10, destination 3",
                "never_on_dst.id: source 2, destination nothing issued yet"
            ]
        );
        let (report, set) = plan_sync(&source, &destination);
        assert_eq!(report.ahead, [("ahead".to_owned(), 5, 50)]);
        assert_eq!(report.missing, ["missing".to_owned()]);
        assert!(report.synced.is_empty(), "filled in as they are set");
        assert_eq!(
            set.iter().map(|(c, v)| (c.name(), *v)).collect::<Vec<_>>(),
            [("behind", 10), ("never_on_dst", 2)]
        );
    }

    #[test]
    fn matched_by_owning_column_then_by_name() {
        // The destination's sequence has another name but the same owner.
        let source = [pg("public.t_id_seq", Some(("public.t", "id")), Some(10))];
        let destination = [
            pg("public.t_id_seq", None, Some(100)),
            pg("public.t_id_seq1", Some(("public.t", "id")), Some(1)),
        ];
        let lag = behind(&source, &destination);
        assert_eq!(lag.len(), 1);
        assert_eq!(
            lag[0].destination.sequence.as_deref(),
            Some("public.t_id_seq1")
        );
        // No owner: by name.
        let source = [pg("public.free", None, Some(10))];
        let destination = [pg("public.free", None, Some(1))];
        assert_eq!(behind(&source, &destination).len(), 1);
    }

    #[test]
    fn descending_sequences_are_behind_when_greater() {
        let down = |v| KeyCounter {
            descending: true,
            ..pg("public.down", None, Some(v))
        };
        assert_eq!(standing(&down(-10), &down(-3)), Standing::Behind);
        assert_eq!(standing(&down(-10), &down(-30)), Standing::Ahead);
        assert_eq!(standing(&down(-10), &down(-10)), Standing::InStep);
    }

    #[test]
    fn the_message_names_each_counter_with_both_values_and_what_to_do() {
        let lag = behind(
            &[
                pg("public.t_id_seq", Some(("public.t", "id")), Some(500)),
                pg("public.free", None, Some(7)),
            ],
            &[
                pg("public.t_id_seq", Some(("public.t", "id")), Some(10)),
                pg("public.free", None, None),
            ],
        );
        let message = behind_message(&lag);
        assert!(
            message.contains("public.t.id (sequence public.t_id_seq): source 500, destination 10; sequence public.free: source 7, destination nothing issued yet; nothing was switched"),
            "{message}"
        );
        assert!(message.contains("2 generated-key counter(s)"), "{message}");
        assert!(message.contains("sync_sequences()"), "{message}");
        assert!(
            message.contains("advance_pattern_forced(reason)"),
            "{message}"
        );
        let many: Vec<_> = (0..25)
            .map(|i| CounterLag {
                source: table(&format!("t{i}"), Some(2)),
                destination: table(&format!("t{i}"), Some(1)),
            })
            .collect();
        let message = behind_message(&many);
        assert!(message.contains("t19.id: source 2"), "{message}");
        assert!(!message.contains("t20.id"), "{message}");
        assert!(message.contains("and 5 more"), "{message}");
    }
}
