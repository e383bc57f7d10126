//! SQL text -> [`StatementKind`]: step 3 of the routing order ("a write statement goes to the
//! primary").
//!
//! [`classify_sql_in`] decides from the SQL text alone, under one database's grammar
//! ([`SqlDialect`]), whether a statement may run on a read replica; [`classify_sql`] does it for
//! text whose database is unknown ([`SqlDialect::Any`]: a write if any of them makes it one).
//! [`classify_query`] does the same for a Diesel query, under its backend's
//! [`RwBackend::DIALECT`], and remembers the answer per thread for queries whose SQL is fixed by
//! their type, so that the routing hot path is a hash lookup. [`classify_sql_with`] also counts
//! calls of the application's functions that write ([`WritingFunctions`]), as a pool does with
//! those it learned from its primary's catalog and those its builder named.
//!
//! # Rules
//!
//! Unknown is a write: a text is a [`StatementKind::Read`] only when every statement in it is
//! recognised as a plain read.
//!
//! * The text is split into statements on `;` (outside comments and quotes). It is a write if
//!   **any** statement is a write. A text that holds nothing but whitespace and comments is a read.
//! * Leading `(` of a statement are skipped: `(SELECT 1) UNION (SELECT 2)` starts with `SELECT`.
//! * A statement that starts with `SELECT`, `WITH`, `VALUES`, `TABLE` (PostgreSQL's `TABLE t`),
//!   `SHOW` or `HELP` is a read unless, outside quotes and comments, it contains
//!   * a locking clause: `FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`, `FOR KEY SHARE`,
//!     `LOCK IN SHARE MODE`;
//!   * `INTO` (`SELECT ... INTO new_table`, `INTO OUTFILE`, `INTO @variable`);
//!   * a data-modifying keyword `INSERT`, `UPDATE`, `DELETE`, `MERGE` or `REPLACE`, as in
//!     `WITH x AS (DELETE ... RETURNING *) SELECT ...` or `... ON CONFLICT DO UPDATE`. Not counted:
//!     such a word right after a `.` (a qualified column name), and `INSERT(` / `REPLACE(`, which
//!     are calls of the MySQL string functions of these names;
//!   * a sequence expression `NEXT VALUE FOR s` / `PREVIOUS VALUE FOR s` (MariaDB);
//!   * an assignment to a MySQL user variable, `@v := ...`;
//!   * a call of a function listed in [`WRITE_FUNCTIONS`]: a name, bare, quoted or schema-qualified
//!     (`pg_catalog.nextval`), followed by `(`. These functions write, take locks, or read session
//!     state that only the primary connection has (`LAST_INSERT_ID()`);
//!   * with [`classify_sql_with`] (and in a pool), a call of one of the application's functions
//!     that write ([`WritingFunctions`]: learned from the catalog, named by the builder),
//!     `audit_log(...)` or `app.bump(...)`.
//! * A statement that starts with `EXPLAIN`, `DESCRIBE` or `DESC`: on PostgreSQL and SQLite a read
//!   unless it calls a function of [`WRITE_FUNCTIONS`] (a plain `EXPLAIN` does not run the statement
//!   it explains, and the server accepts `EXPLAIN DELETE ...` read-only). With `ANALYZE`
//!   (`EXPLAIN ANALYZE ...`, `EXPLAIN (ANALYZE, BUFFERS) ...`, MySQL `EXPLAIN ANALYZE FORMAT=TREE`)
//!   the statement is run, and the statement after the options is classified instead. On
//!   MySQL/MariaDB (and under [`SqlDialect::Any`]) the explained statement is always classified:
//!   those servers refuse `EXPLAIN` (`FORMAT=JSON`, `EXTENDED`, ...) of `INSERT`, `UPDATE`,
//!   `DELETE`, `REPLACE`, of `SELECT ... FOR UPDATE` or of `NEXT VALUE FOR s` in a read-only
//!   transaction and on a `read_only` replica; `EXPLAIN t` (`DESCRIBE t`) and
//!   `EXPLAIN FOR CONNECTION n` are reads. MariaDB's `ANALYZE [FORMAT=JSON] SELECT ...` runs its
//!   statement and is classified as it; `ANALYZE TABLE t` is a write.
//! * PostgreSQL's `COPY table [(columns)] TO STDOUT` and `COPY (read) TO STDOUT` are reads (a hot
//!   standby runs them); `COPY ... FROM`, `COPY (DELETE ... RETURNING ...) TO`, and `COPY ... TO`
//!   a file or a program are writes.
//! * Every other statement is a write: `INSERT` (also `INSERT ... RETURNING`, which arrives through
//!   `load`), `UPDATE`, `DELETE`, `REPLACE`, `MERGE`, DDL, `GRANT`, `LOCK`, `CALL`, `DO`, `COPY`,
//!   `SET`, transaction control, `PRAGMA`, `VACUUM`, `ANALYZE`, `LISTEN`, `NOTIFY`, `ATTACH`, ...,
//!   any unknown word, and any statement that does not start with a word.
//! * Text that cannot be lexed (an unterminated string, quoted identifier or comment) is a write,
//!   unless it lexes under another reading of the dialect's rules (see "Lexing").
//! * The decision stops at the first token that settles it: a statement whose first keyword is
//!   `INSERT`, `UPDATE`, `DELETE`, DDL, ... is a write at that keyword, and the rest of the text
//!   is not read (a 200 KB `INSERT` costs what a 100 B one does).
//!
//! # Hints
//!
//! A comment `/* diesel_rw:primary */` (or `-- diesel_rw:primary`, `# ...` on MySQL) anywhere in a
//! statement makes it a write, as MaxScale's and ProxySQL's routing hints do: for a call of a
//! function of the application's that writes, which the text does not show. A comment
//! `/* diesel_rw:replica */` makes a read of a statement that is a write only because it is not
//! recognised (`CALL`, `DO`, `EXECUTE`, `SET`, an unknown word); it never makes a read of a
//! statement the classifier sees writing (DML, DDL, locking clauses, the functions above, an
//! `EXPLAIN ANALYZE` of a write): that stays a write, goes to the primary, and is refused before
//! it is sent on an explicit replica route (`Error::WriteOnReadRoute`). Hints inside strings do not
//! count, and a statement's hint does not reach the next statement.
//!
//! Keywords and function names are compared ASCII case-insensitively.
//!
//! # Lexing
//!
//! A small lexer, not regular expressions, so that nothing inside a string or a comment counts:
//! whitespace, `-- line` comments and `/* block */` comments are skipped; string literals
//! (`'it''s'`, PostgreSQL `E'\''`, dollar-quoted `$tag$ ... $tag$`), quoted identifiers
//! (`"a"`, `` `a` ``, SQLite `[a]`) are single tokens whose content is never read as SQL.
//!
//! Under [`SqlDialect::Any`] the text does not say which database it is for, and a few lexical
//! rules differ between PostgreSQL, MySQL/MariaDB and SQLite: whether a backslash escapes a quote (MySQL; PostgreSQL
//! only in `E'...'` or with `standard_conforming_strings = off`), whether `#` starts a comment
//! (MySQL), whether `--` needs a following space to start one (MySQL), whether block comments nest
//! (PostgreSQL), whether `/*! ... */` and `/*M! ... */` are executable comments whose content is
//! SQL (MySQL/MariaDB), and whether `[a]` is a quoted identifier (SQLite). When the text contains
//! any of these constructs it is lexed again under every combination of the rules that matter for
//! it, and it is a write if any reading makes it one. A reading under which the text does not lex
//! is set aside (that database rejects the text), but a complete write statement before the point
//! where it stops lexing still counts, since MySQL and SQLite run statements one by one. So
//! `'O\'Brien'` is a read (it lexes as MySQL), and `'a\'; DELETE FROM t; -- '` a write (the
//! `DELETE` runs on PostgreSQL). Under a backend's own dialect the rules are fixed to that
//! backend's, except those a server setting decides (PostgreSQL's `standard_conforming_strings`,
//! MySQL's `NO_BACKSLASH_ESCAPES` and its version-gated `/*!NNNNN ... */`), which are read both
//! ways when the text has them. SQL as Diesel renders it contains none of these constructs, and is
//! lexed once. Dollar quotes are recognised under every reading (a MySQL identifier such as `$a$`
//! is read as one).
//!
//! # Caching
//!
//! Diesel gives a query type a static id ([`QueryId::query_id`]) when its SQL is fixed by its type;
//! Diesel's own prepared statement cache relies on that. [`classify_query`] keeps the kind of such
//! queries in a per-thread map from that id, so the SQL is rendered and lexed once per thread and
//! query type, and a later call is a thread-local hash lookup without allocation. A program has
//! finitely many query types, so the map stays small. There is one map per dialect: the same
//! query type may render to a read on one backend and a write on another. The kind of a read
//! says whether its SQL calls functions outside [`WRITE_FUNCTIONS`] (most queries call none);
//! a second map keeps those calls, and a pool checks a cached read's calls against its
//! [`WritingFunctions`] as they are at that moment, so the cache stays right when the pool
//! learns its catalog again. A query that calls nothing costs what it did before. Queries without a static id
//! (`sql_query`, boxed queries, `IN` lists of run-time length) are rendered and classified on every
//! call.
//!
//! # Limits
//!
//! The classification routes statements; it is not what keeps writes off replicas. Without a
//! pool's [`WritingFunctions`] ([`classify_sql`], [`classify_sql_in`]), a function of the
//! application's that writes (a PL/pgSQL function, a stored function) called from a `SELECT` is
//! not recognised. A pool learns them from its primary's catalog, but not a function that writes
//! through a view, a trigger of a read, or a function the catalog calls read-only (a `STABLE`
//! function calling a `VOLATILE` one; a MySQL function declared `READS SQL DATA` that writes):
//! name those on the builder ([`writing_functions`](crate::RwPoolBuilder::writing_functions)),
//! or route the call with a `/* diesel_rw:primary */` hint or explicitly (`#[master]`,
//! `pool.primary()`). A replica's read-only session rejects what gets there by mistake.
//!
//! The rules are checked against the servers themselves: tests/classify_oracle_pg.rs and
//! tests/classify_oracle_mysql.rs run a corpus of statements (tests/corpus/) read-only on the test
//! bed and fail if one that the classifier calls a read is refused as a write.

use std::any::TypeId;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use diesel::query_builder::{QueryBuilder, QueryFragment, QueryId};

use crate::backend::RwBackend;
use crate::functions::{Call, WritingFunctions};

/// Whether a call of a function (schema, name) is a write: the application's functions that
/// write ([`WritingFunctions`]), or a recorder of the calls.
type Matcher<'a> = &'a dyn Fn(Option<&str>, &str) -> bool;

/// Static query id -> kind.
type KindMap = HashMap<TypeId, Cached, BuildHasherDefault<TypeIdHasher>>;
/// Static query id -> the calls its SQL makes of functions outside [`WRITE_FUNCTIONS`].
type CallMap = HashMap<TypeId, Box<[Call]>, BuildHasherDefault<TypeIdHasher>>;

/// Whether a statement may run on a read replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// Reads only: may run on a replica.
    Read,
    /// Writes, locks, depends on the primary's session state, or was not recognised as a read:
    /// must run on the primary.
    Write,
}

impl StatementKind {
    /// `true` for [`StatementKind::Write`].
    #[inline]
    #[must_use]
    pub const fn is_write(self) -> bool {
        matches!(self, Self::Write)
    }

    /// `true` for [`StatementKind::Read`].
    #[inline]
    #[must_use]
    pub const fn is_read(self) -> bool {
        matches!(self, Self::Read)
    }
}

/// Functions whose call makes a read statement a write, lower case, sorted (byte order), unique.
///
/// They write (sequences, large objects, WAL), take or release locks (advisory locks, MySQL
/// `GET_LOCK`), assign a transaction id, notify, or return state of the session that made the last
/// write, which only the primary connection has (`LAST_INSERT_ID`, `ROW_COUNT`, `FOUND_ROWS`,
/// `LASTVAL`, `CURRVAL`, SQLite `changes`). Functions that are safe on a replica stay off the list:
/// `IS_USED_LOCK`, `IS_FREE_LOCK`, `SLEEP`, and `MASTER_POS_WAIT` / `MASTER_GTID_WAIT`, which are
/// meant to run on a replica.
pub const WRITE_FUNCTIONS: &[&str] = &[
    "brin_desummarize_range", // PostgreSQL: writes the index (a hot standby refuses it)
    "brin_summarize_new_values",
    "brin_summarize_range",
    "changes",                  // SQLite: rows changed by the last statement
    "currval",                  // PostgreSQL: session's last value of a sequence
    "dblink_exec",              // PostgreSQL dblink: runs a command
    "diesel_manage_updated_at", // diesel's setup migration: creates a trigger
    "found_rows",               // MySQL: session state of the last SELECT
    "get_lock",                 // MySQL
    "gin_clean_pending_list",   // PostgreSQL: writes the index
    "last_insert_id",           // MySQL: session state; with an argument, sets it
    "last_insert_rowid",        // SQLite: session state
    "lastval",                  // PostgreSQL, MariaDB: session state
    "lo_creat",                 // PostgreSQL large objects
    "lo_create",
    "lo_from_bytea",
    "lo_import",
    "lo_open", // PostgreSQL: refused in a read-only transaction when opened for writing
    "lo_put",
    "lo_truncate",
    "lo_truncate64",
    "lo_unlink",
    "lowrite",
    "nextval",          // PostgreSQL, MariaDB sequences
    "pg_advisory_lock", // PostgreSQL advisory locks
    "pg_advisory_lock_shared",
    "pg_advisory_unlock",
    "pg_advisory_unlock_all",
    "pg_advisory_unlock_shared",
    "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared",
    "pg_copy_logical_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_create_logical_replication_slot", // PostgreSQL replication slots and origins
    "pg_create_physical_replication_slot",
    "pg_create_restore_point",  // PostgreSQL: writes WAL
    "pg_current_wal_flush_lsn", // PostgreSQL: primary-only WAL positions
    "pg_current_wal_insert_lsn",
    "pg_current_wal_lsn",
    "pg_current_xact_id",             // PostgreSQL: assigns a transaction id
    "pg_current_xlog_flush_location", // PostgreSQL < 10 names of the WAL functions
    "pg_current_xlog_insert_location",
    "pg_current_xlog_location",
    "pg_drop_replication_slot",
    "pg_import_system_collations", // PostgreSQL: writes the catalog
    "pg_logical_emit_message",     // PostgreSQL: writes WAL
    "pg_logical_slot_get_binary_changes", // PostgreSQL: consume a slot
    "pg_logical_slot_get_changes",
    "pg_logical_slot_peek_binary_changes", // PostgreSQL < 16: a standby cannot decode
    "pg_logical_slot_peek_changes",
    "pg_nextoid", // PostgreSQL: assigns an OID (a standby refuses it)
    "pg_notify",  // PostgreSQL: NOTIFY
    "pg_replication_origin_advance",
    "pg_replication_origin_create",
    "pg_replication_origin_drop",
    "pg_replication_origin_session_reset",
    "pg_replication_origin_session_setup",
    "pg_replication_origin_xact_reset",
    "pg_replication_origin_xact_setup",
    "pg_replication_slot_advance",
    "pg_switch_wal", // PostgreSQL: writes WAL
    "pg_switch_xlog",
    "pg_try_advisory_lock", // PostgreSQL advisory locks
    "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
    "pg_walfile_name", // PostgreSQL: a standby refuses it
    "pg_walfile_name_offset",
    "release_all_locks", // MySQL
    "release_lock",      // MySQL
    "row_count",         // MySQL: session state
    "set_config",        // PostgreSQL: sets a session setting
    "setval",            // PostgreSQL, MariaDB sequences
    "total_changes",     // SQLite: session state
    "txid_current",      // PostgreSQL: assigns a transaction id
    "uuid_short",        // MySQL: server counter
];

/// The SQL grammar a text is classified under: which comments, quotes, `EXPLAIN`s and `COPY`s it
/// has. Each [`RwBackend`](crate::RwBackend) names its own
/// ([`RwBackend::DIALECT`](crate::RwBackend::DIALECT)); [`classify_sql`] assumes
/// [`SqlDialect::Any`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SqlDialect {
    /// PostgreSQL: `--` and nesting `/* */` comments, `E'...'` escape strings, dollar quotes;
    /// a plain `EXPLAIN` of any statement is a read, `COPY ... TO STDOUT` is a read. `#` is an
    /// operator. A backslash in `'...'` is read both as a plain character and as an escape
    /// (`standard_conforming_strings` may be off): a write if either reading makes it one.
    Postgres,
    /// MySQL and MariaDB: `#`, `-- ` (with a space) and non-nesting `/* */` comments, `/*! ... */`
    /// executable comments (read both as SQL and as a comment), backslash escapes in `'...'` and
    /// `"..."` (also read without them, for `NO_BACKSLASH_ESCAPES`). An `EXPLAIN` (or
    /// `DESCRIBE`) of a statement is classified as that statement: the server refuses
    /// `EXPLAIN DELETE ...` or `EXPLAIN SELECT ... FOR UPDATE` in a read-only transaction and on
    /// a `read_only` replica. MariaDB's `ANALYZE SELECT ...` runs its statement: classified as
    /// that statement.
    Mysql,
    /// SQLite: `--` and non-nesting `/* */` comments, `[a]` quoted identifiers; a plain
    /// `EXPLAIN` is a read.
    Sqlite,
    /// Any of the three, for text whose database is unknown: the text is a write if it is one
    /// under any of them (each lexical rule that differs is tried both ways, and `EXPLAIN` is
    /// read as MySQL reads it).
    #[default]
    Any,
}

impl SqlDialect {
    /// Lexical rules always on under this dialect.
    const fn fixed_rules(self) -> Rules {
        match self {
            SqlDialect::Postgres => E_STRINGS | NESTED_COMMENTS,
            SqlDialect::Mysql => HASH_COMMENTS | DASH_DASH_NEEDS_SPACE,
            SqlDialect::Sqlite => BRACKET_IDENTIFIERS,
            SqlDialect::Any => 0,
        }
    }

    /// Lexical rules that may be on or off under this dialect (a server setting decides): the
    /// text is read both ways when they matter.
    const fn free_rules(self) -> Rules {
        match self {
            SqlDialect::Postgres => BACKSLASH_IN_SINGLE,
            SqlDialect::Mysql => BACKSLASH_IN_SINGLE | BACKSLASH_IN_DOUBLE | EXECUTABLE_COMMENTS,
            SqlDialect::Sqlite => 0,
            SqlDialect::Any => Rules::MAX,
        }
    }

    /// The index of this dialect in per-dialect tables.
    const fn index(self) -> usize {
        match self {
            SqlDialect::Postgres => 0,
            SqlDialect::Mysql => 1,
            SqlDialect::Sqlite => 2,
            SqlDialect::Any => 3,
        }
    }

    /// Whether an `EXPLAIN` of a statement is classified as that statement (MySQL, MariaDB).
    const fn explain_checks_statement(self) -> bool {
        matches!(self, SqlDialect::Mysql | SqlDialect::Any)
    }

    /// Whether `COPY ... TO STDOUT` exists (PostgreSQL).
    const fn has_copy(self) -> bool {
        matches!(self, SqlDialect::Postgres | SqlDialect::Any)
    }
}

/// Classifies SQL text whose database is not known, as [`SqlDialect::Any`]: a write if any of
/// PostgreSQL, MySQL/MariaDB and SQLite would make it one. Unknown or unparsable text is a
/// [`StatementKind::Write`] (conservative). Code that knows its backend calls
/// [`classify_sql_in`] with the backend's [`RwBackend::DIALECT`](crate::RwBackend::DIALECT)
/// instead, as the routing connections do.
///
/// The text is a read only when every `;`-separated statement in it is a plain read:
///
/// * one that starts (after any `(`) with `SELECT`, `WITH`, `VALUES`, `TABLE`, `SHOW` or `HELP`,
///   and contains no locking clause (`FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`, ...), no
///   `INTO`, no data-modifying statement (`WITH x AS (DELETE ...) SELECT ...`), and no call of a
///   function that writes, takes a lock or reads the writing session's state (`nextval`,
///   `pg_advisory_lock`, `GET_LOCK`, `LAST_INSERT_ID`, ...);
/// * an `EXPLAIN` or `DESCRIBE` of such a read (under [`SqlDialect::Postgres`] and
///   [`SqlDialect::Sqlite`], a plain `EXPLAIN` of any statement, which does not run it);
/// * PostgreSQL's `COPY table TO STDOUT` or `COPY (read) TO STDOUT`.
///
/// A comment `/* diesel_rw:primary */` in a statement makes it a write; `/* diesel_rw:replica */`
/// makes a read of a statement that is a write only because it is not recognised (`CALL`,
/// `EXECUTE`, an unknown word), never of one that writes (see the module documentation).
/// Text that holds only whitespace and comments is a read. Keywords are case-insensitive.
/// Strings, quoted identifiers and comments are never read as SQL. Does not allocate.
///
/// ```
/// use diesel_rw::{classify_sql, StatementKind};
///
/// assert_eq!(classify_sql(r#"SELECT "users"."id" FROM "users""#), StatementKind::Read);
/// assert_eq!(classify_sql("SELECT * FROM users FOR UPDATE"), StatementKind::Write);
/// assert_eq!(classify_sql("SELECT 'FOR UPDATE' /* FOR UPDATE */"), StatementKind::Read);
/// assert_eq!(classify_sql("SELECT nextval('users_id_seq')"), StatementKind::Write);
/// assert_eq!(classify_sql("SELECT 1; DELETE FROM users"), StatementKind::Write);
/// assert_eq!(classify_sql("VACUUM"), StatementKind::Write);
/// ```
#[must_use]
pub fn classify_sql(sql: &str) -> StatementKind {
    classify_sql_in(sql, SqlDialect::Any)
}

/// Classifies SQL text under one database's grammar (see [`SqlDialect`] and [`classify_sql`]).
///
/// ```
/// use diesel_rw::{classify_sql_in, SqlDialect, StatementKind};
///
/// // `#` starts a comment on MySQL only.
/// let sql = "SELECT 1 # FOR UPDATE";
/// assert_eq!(classify_sql_in(sql, SqlDialect::Mysql), StatementKind::Read);
/// assert_eq!(classify_sql_in(sql, SqlDialect::Postgres), StatementKind::Write);
/// // MySQL refuses an EXPLAIN of a write in a read-only transaction; PostgreSQL does not.
/// let sql = "EXPLAIN DELETE FROM users";
/// assert_eq!(classify_sql_in(sql, SqlDialect::Mysql), StatementKind::Write);
/// assert_eq!(classify_sql_in(sql, SqlDialect::Postgres), StatementKind::Read);
/// assert_eq!(classify_sql_in("COPY users TO STDOUT", SqlDialect::Postgres), StatementKind::Read);
/// assert_eq!(classify_sql_in("SELECT 1 /* diesel_rw:primary */", SqlDialect::Postgres), StatementKind::Write);
/// ```
#[must_use]
pub fn classify_sql_in(sql: &str, dialect: SqlDialect) -> StatementKind {
    classify_text(sql, dialect, None)
}

/// Classifies SQL text under one database's grammar, as [`classify_sql_in`] does, and a call of
/// a function of `functions` (the application's functions that write, see
/// [`WritingFunctions`]) makes a read a write, as a call of one of [`WRITE_FUNCTIONS`] does:
/// `SELECT audit_log('x')`, `SELECT * FROM app.bump(1)`. A pool classifies with the set it
/// learned from its primary's catalog and the names its builder gave.
///
/// ```
/// use diesel_rw::{classify_sql_with, SqlDialect, StatementKind, WritingFunctions};
///
/// let functions = WritingFunctions::new(["audit_log"]);
/// let sql = "SELECT audit_log('login')";
/// assert_eq!(classify_sql_with(sql, SqlDialect::Postgres, &functions), StatementKind::Write);
/// assert_eq!(diesel_rw::classify_sql_in(sql, SqlDialect::Postgres), StatementKind::Read);
/// ```
#[must_use]
pub fn classify_sql_with(
    sql: &str,
    dialect: SqlDialect,
    functions: &WritingFunctions,
) -> StatementKind {
    if functions.is_empty() {
        return classify_text(sql, dialect, None);
    }
    functions.with_matcher(|matches| classify_text(sql, dialect, Some(matches)))
}

/// [`classify_sql_in`], with the application's functions that write (`functions`).
fn classify_text(sql: &str, dialect: SqlDialect, functions: Option<Matcher<'_>>) -> StatementKind {
    // Lex under the dialect's fixed rules first; every pass reports which free rules changed how
    // it read the text, and the text is lexed again under each untried combination of those.
    let (fixed, free) = (dialect.fixed_rules(), dialect.free_rules());
    let mut tried = [0_u64; 4]; // one bit per combination of the 8 rule flags
    let mut relevant: Rules = 0;
    let mut lexes = false;
    'search: loop {
        let mut sub = relevant;
        loop {
            let (slot, bit) = (usize::from(sub >> 6), sub & 63);
            if tried[slot] & (1 << bit) == 0 {
                tried[slot] |= 1 << bit;
                let (kind, seen) = classify_with(sql, fixed | sub, dialect, functions);
                match kind {
                    Some(StatementKind::Write) => return StatementKind::Write,
                    Some(StatementKind::Read) => lexes = true,
                    None => {}
                }
                let seen = seen & free;
                if seen & !relevant != 0 {
                    relevant |= seen;
                    continue 'search;
                }
            }
            if sub == 0 {
                // A read under every reading in which the text lexes; a write if it lexes in none.
                return if lexes {
                    StatementKind::Read
                } else {
                    StatementKind::Write
                };
            }
            // next smaller subset of `relevant`
            sub = (sub - 1) & relevant;
        }
    }
}

/// Classifies a Diesel query, caching the answer per thread when the query has a static id.
///
/// If `T::query_id()` is `Some(type_id)`, the kind is kept in a per-thread map from that id, so
/// the SQL is rendered only the first time on each thread; a later call is a thread-local hash
/// lookup that does not allocate. Otherwise the SQL is rendered on every call. The SQL is rendered
/// with `DB::QueryBuilder::default()`, [`QueryFragment::to_sql`] against `DB::default()` and
/// [`QueryBuilder::finish`], then passed to [`classify_sql_in`] with the backend's
/// [`RwBackend::DIALECT`]. A render error gives [`StatementKind::Write`] and is not cached.
#[must_use]
#[cfg_attr(not(test), allow(dead_code))] // the pools classify with their functions
pub fn classify_query<DB, T>(source: &T) -> StatementKind
where
    DB: RwBackend,
    T: QueryFragment<DB> + QueryId + ?Sized,
{
    classify_query_in::<DB, T>(source, None)
}

/// [`classify_query`] with the application's functions that write, as a pool classifies (see
/// [`classify_sql_with`]). The per-thread cache keeps, with a query type's kind, the calls of
/// functions outside [`WRITE_FUNCTIONS`] that its SQL makes (none for most queries): a cached
/// read that makes such calls is checked against `functions` as it is now, so the cache stays
/// right when the set changes (a pool learns its catalog again) and is shared by every set.
pub(crate) fn classify_query_with<DB, T>(source: &T, functions: &WritingFunctions) -> StatementKind
where
    DB: RwBackend,
    T: QueryFragment<DB> + QueryId + ?Sized,
{
    classify_query_in::<DB, T>(source, Some(functions))
}

/// [`classify_query`] and [`classify_query_with`].
#[inline]
fn classify_query_in<DB, T>(source: &T, functions: Option<&WritingFunctions>) -> StatementKind
where
    DB: RwBackend,
    T: QueryFragment<DB> + QueryId + ?Sized,
{
    if let Some(id) = T::query_id() {
        if let Some(kind) = cached(DB::DIALECT, id, functions) {
            return kind;
        }
    }
    classify_query_uncached::<DB, T>(source, functions)
}

/// [`classify_query_in`] off its cache: renders the query and classifies it, and caches the
/// answer if the query has a static id. Not inlined, so that the cache hit stays small where
/// the connections inline it.
#[inline(never)]
fn classify_query_uncached<DB, T>(source: &T, functions: Option<&WritingFunctions>) -> StatementKind
where
    DB: RwBackend,
    T: QueryFragment<DB> + QueryId + ?Sized,
{
    let dialect = DB::DIALECT;
    let Some(id) = T::query_id() else {
        return match (render::<DB, T>(source), functions) {
            (Some(sql), Some(functions)) => classify_sql_with(&sql, dialect, functions),
            (Some(sql), None) => classify_sql_in(&sql, dialect),
            (None, _) => StatementKind::Write,
        };
    };
    let Some(sql) = render::<DB, T>(source) else {
        return StatementKind::Write;
    };
    // Classified without the set, recording the calls it would have checked.
    let calls = RefCell::new(Vec::<Call>::new());
    let record = |schema: Option<&str>, name: &str| {
        let call = Call::new(schema, name);
        let mut calls = calls.borrow_mut();
        if !calls.contains(&call) {
            calls.push(call);
        }
        false
    };
    let kind = classify_text(&sql, dialect, Some(&record));
    let calls = calls.into_inner();
    let entry = match kind {
        StatementKind::Write => Cached::Write,
        StatementKind::Read if calls.is_empty() => Cached::Read,
        StatementKind::Read => Cached::ReadCalling,
    };
    let answer = match functions {
        Some(functions) if functions.calls_any(&calls) => StatementKind::Write,
        _ => kind,
    };
    // `try_with`: during thread teardown the maps may be gone; then just don't cache.
    if entry == Cached::ReadCalling {
        let stored = CALLS.try_with(|maps| match maps.try_borrow_mut() {
            Ok(mut maps) => {
                maps[dialect.index()].insert(id, calls.into_boxed_slice());
                true
            }
            Err(_) => false,
        });
        if stored != Ok(true) {
            return answer;
        }
    }
    let _ = KINDS.try_with(|kinds| {
        if let Ok(mut kinds) = kinds.try_borrow_mut() {
            kinds[dialect.index()].insert(id, entry);
        }
    });
    answer
}

/// What [`classify_query`] keeps of a query type: one byte, so that the hit of the hot path
/// costs what it did before the functions (a query's calls are kept apart, in `CALLS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cached {
    /// A read that calls no function outside [`WRITE_FUNCTIONS`].
    Read,
    /// A write.
    Write,
    /// A read, unless one of the functions it calls (in `CALLS`) writes.
    ReadCalling,
}

/// The cached kind of the query with static id `id` under `dialect`, if this thread has
/// classified it.
#[inline]
fn cached(
    dialect: SqlDialect,
    id: TypeId,
    functions: Option<&WritingFunctions>,
) -> Option<StatementKind> {
    let entry = KINDS
        .try_with(|kinds| kinds.try_borrow().ok()?[dialect.index()].get(&id).copied())
        .ok()
        .flatten()?;
    Some(match entry {
        Cached::Read => StatementKind::Read,
        Cached::Write => StatementKind::Write,
        Cached::ReadCalling => match functions {
            Some(functions) if !functions.is_empty() => calls_write(dialect, id, functions),
            _ => StatementKind::Read,
        },
    })
}

/// Whether the cached calls of the query with static id `id` make it a write.
#[inline(never)]
fn calls_write(dialect: SqlDialect, id: TypeId, functions: &WritingFunctions) -> StatementKind {
    let writes = CALLS.try_with(|maps| {
        maps.try_borrow().ok().and_then(|maps| {
            maps[dialect.index()]
                .get(&id)
                .map(|c| functions.calls_any(c))
        })
    });
    match writes {
        Ok(Some(false)) => StatementKind::Read,
        // Unknown (thread teardown, a borrow in progress): the safe answer.
        _ => StatementKind::Write,
    }
}

/// Renders `source` to SQL; `None` if rendering failed.
fn render<DB, T>(source: &T) -> Option<String>
where
    DB: RwBackend,
    T: QueryFragment<DB> + ?Sized,
{
    #[cfg(test)]
    tests::RENDERS.with(|renders| renders.set(renders.get() + 1));
    let mut query_builder = DB::QueryBuilder::default();
    source.to_sql(&mut query_builder, &DB::default()).ok()?;
    Some(query_builder.finish())
}

thread_local! {
    /// Per-thread cache of [`classify_query`], one map per [`SqlDialect`] (the same query type
    /// may be a read on one backend and a write on another): static query id -> kind.
    static KINDS: RefCell<[KindMap; 4]> = RefCell::new(Default::default());
    /// The calls of the cached reads that call functions outside [`WRITE_FUNCTIONS`]
    /// ([`Cached::ReadCalling`]), per dialect: static query id -> calls.
    static CALLS: RefCell<[CallMap; 4]> = RefCell::new(Default::default());
}

/// A [`Hasher`] for [`TypeId`] keys: a `TypeId` is already a hash of its type, and hashes itself
/// by writing (part of) that hash as a `u64`, which this hasher passes through.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        // One write passes through; several (should `TypeId` ever write more) are combined.
        self.0 = self.0.rotate_left(32) ^ n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `TypeId` today; correct for any input, if not fast.
        for chunk in bytes.chunks(8) {
            let mut word = [0_u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
}

/// Lexical rules that differ between the supported databases, one bit each; see "Lexing" in the
/// module documentation. `0` is the base reading (standard SQL, as SQLite lexes it).
type Rules = u8;
/// `\` escapes the next character in `'...'` (MySQL; PostgreSQL with
/// `standard_conforming_strings = off`).
const BACKSLASH_IN_SINGLE: Rules = 1 << 0;
/// `\` escapes the next character in `"..."` (MySQL, where `"..."` is a string).
const BACKSLASH_IN_DOUBLE: Rules = 1 << 1;
/// `E'...'` is a string in which `\` escapes (PostgreSQL).
const E_STRINGS: Rules = 1 << 2;
/// `#` starts a line comment (MySQL).
const HASH_COMMENTS: Rules = 1 << 3;
/// `--` starts a comment only when followed by whitespace or a control character (MySQL).
const DASH_DASH_NEEDS_SPACE: Rules = 1 << 4;
/// Block comments nest (PostgreSQL).
const NESTED_COMMENTS: Rules = 1 << 5;
/// `/*! ... */` and `/*M! ... */` hold SQL (MySQL, MariaDB).
const EXECUTABLE_COMMENTS: Rules = 1 << 6;
/// `[a]` is a quoted identifier (SQLite).
const BRACKET_IDENTIFIERS: Rules = 1 << 7;

/// Classifies `sql` under one set of lexical `rules` and a dialect's statement grammar: `None` if
/// the text does not lex under them before a write statement is known. Also returns the rules
/// that mattered.
///
/// A statement whose first keyword makes it a write (`INSERT`, `UPDATE`, DDL, ...) settles the
/// text at that keyword: the rest is not read, so a long `INSERT` costs what a short one does
/// (unless a free rule already changed the reading before that keyword: then, as for a write
/// found further into a statement, `SELECT ... FOR UPDATE`, it counts if the statement lexes to
/// its end under these rules).
fn classify_with(
    sql: &str,
    rules: Rules,
    dialect: SqlDialect,
    functions: Option<Matcher<'_>>,
) -> (Option<StatementKind>, Rules) {
    let mut lexer = Lexer::new(sql, rules);
    lexer.dialect = dialect;
    lexer.functions = functions;
    loop {
        match statement(&mut lexer) {
            Verdict::Read { more: true } => {}
            Verdict::Read { more: false } => return (Some(StatementKind::Read), lexer.seen),
            Verdict::Unlexable => return (None, lexer.seen),
            // Settled at the statement's first keyword, unless the readings of the text already
            // differ before it (then, as below, a reading that does not lex is set aside).
            Verdict::Write if lexer.seen & dialect.free_rules() == 0 => {
                return (Some(StatementKind::Write), lexer.seen);
            }
            Verdict::Write | Verdict::WriteInside => {
                // A write statement is a write if it lexes to its end.
                let lexes = lexer.rest_of_statement_lexes();
                return (lexes.then_some(StatementKind::Write), lexer.seen);
            }
            Verdict::Unknown => {
                // A write unless a `diesel_rw:replica` hint anywhere in it says otherwise.
                if !lexer.rest_of_statement_lexes() {
                    return (None, lexer.seen);
                }
                if lexer.hint != Some(Hint::Replica) {
                    return (Some(StatementKind::Write), lexer.seen);
                }
                if lexer.at_end() {
                    return (Some(StatementKind::Read), lexer.seen);
                }
            }
        }
    }
}

/// The outcome of one statement.
enum Verdict {
    /// The statement writes, as its first keyword says (the rest of it is not consumed).
    Write,
    /// The statement writes, as a token after its first keyword says (the rest of it is not
    /// consumed).
    WriteInside,
    /// The statement is not recognised: a write unless a `diesel_rw:replica` hint says otherwise
    /// (the rest of it is not consumed).
    Unknown,
    /// The statement holds an unterminated string, quoted identifier or comment: the text does not
    /// lex (under the rules in force).
    Unlexable,
    /// The statement is a read; `more` if a `;` ended it (more statements may follow).
    Read {
        /// Whether the statement ended at a `;` rather than at the end of the text.
        more: bool,
    },
}

/// A comment hint that overrides the classification of its statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hint {
    /// `/* diesel_rw:primary */`: the statement is a write.
    Primary,
    /// `/* diesel_rw:replica */`: the statement is a read, unless it writes.
    Replica,
}

/// First keywords of statements that are reads unless they contain a write (see [`scan_read`]).
const READ_STARTS: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE", "SHOW", "HELP"];
/// First keywords of statements that show a plan (see [`explain_options`]).
const EXPLAIN_STARTS: &[&str] = &["EXPLAIN", "DESCRIBE", "DESC"];
/// Keywords of a data-modifying statement nested in a read (`WITH x AS (DELETE ...)`).
const DATA_MODIFYING: &[&str] = &["INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE"];
/// First keywords of statements that write whatever follows: the classification stops there, and
/// a `diesel_rw:replica` hint does not change it. Other unrecognised statements (`CALL`, `DO`,
/// `EXECUTE`, `SET`, transaction control, ...) are writes too, but a hint can make them reads.
const WRITE_STARTS: &[&str] = &[
    "ALTER", "ANALYSE", "ANALYZE", "CLUSTER", "COMMENT", "CREATE", "DELETE", "DROP", "GRANT",
    "IMPORT", "INSERT", "LOAD", "LOCK", "MERGE", "NOTIFY", "OPTIMIZE", "REASSIGN", "REFRESH",
    "REINDEX", "RENAME", "REPAIR", "REPLACE", "REVOKE", "SECURITY", "TRUNCATE", "UPDATE", "UPSERT",
    "VACUUM",
];
/// Statements whose `EXPLAIN` is classified as the statement (MySQL), after `EXPLAIN` or
/// MariaDB's `ANALYZE`.
const EXPLAINABLE: &[&str] = &[
    "SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE", "REPLACE",
];

/// Classifies the statement that starts at the lexer's position, and consumes it (up to and
/// including its `;`) unless it is a write or unknown.
fn statement(lexer: &mut Lexer<'_>) -> Verdict {
    lexer.hint = None;
    let verdict = statement_body(lexer);
    match verdict {
        Verdict::Read { .. } if lexer.hint == Some(Hint::Primary) => Verdict::WriteInside,
        verdict => verdict,
    }
}

/// [`statement`] without its hint.
fn statement_body(lexer: &mut Lexer<'_>) -> Verdict {
    let mut parens = false;
    loop {
        match lexer.next_token() {
            Some(Token::Punct(b'(')) => parens = true,
            // Only parentheses: garbage.
            None if parens => return Verdict::Write,
            Some(Token::Punct(b';')) if parens => return Verdict::Write,
            // An empty statement.
            None => return Verdict::Read { more: false },
            Some(Token::Punct(b';')) => return Verdict::Read { more: true },
            Some(Token::Word(word)) if is_one_of(word, READ_STARTS) => {
                return scan_read(lexer, true);
            }
            Some(Token::Word(word)) if is_one_of(word, EXPLAIN_STARTS) => {
                match explain_options(lexer) {
                    // EXPLAIN ANALYZE runs the statement: classify it.
                    Ok(true) => parens = false,
                    Ok(false) if lexer.dialect.explain_checks_statement() => {
                        // MySQL: EXPLAIN of a statement is classified as the statement; of a
                        // table (`EXPLAIN t`, `DESCRIBE t col`) or a connection, a read.
                        let mut ahead = lexer.clone();
                        match ahead.next_token() {
                            Some(Token::Word(word)) if is_one_of(word, EXPLAINABLE) => {
                                parens = false;
                            }
                            Some(Token::Punct(b'(')) => parens = false,
                            _ => return scan_read(lexer, false),
                        }
                    }
                    Ok(false) => return scan_read(lexer, false),
                    Err(verdict) => return verdict,
                }
            }
            Some(Token::Word(word))
                if lexer.dialect.explain_checks_statement()
                    && !parens
                    && word.eq_ignore_ascii_case("ANALYZE") =>
            {
                // MariaDB: `ANALYZE [FORMAT=JSON] SELECT ...` runs the statement and shows its
                // plan; `ANALYZE TABLE t` (and PostgreSQL's `ANALYZE t`) is a write.
                let mut ahead = lexer.clone();
                match ahead.next_token() {
                    // `ANALYZE TABLE t` is the write.
                    Some(Token::Word(word))
                        if is_one_of(word, EXPLAINABLE) && !word.eq_ignore_ascii_case("TABLE") => {}
                    Some(Token::Word(word)) if word.eq_ignore_ascii_case("FORMAT") => {
                        if let Err(verdict) = explain_options(lexer) {
                            return verdict;
                        }
                    }
                    _ => return Verdict::Write,
                }
            }
            Some(Token::Word(word))
                if lexer.dialect.has_copy() && word.eq_ignore_ascii_case("COPY") =>
            {
                return copy(lexer);
            }
            Some(Token::Word(word)) if is_one_of(word, WRITE_STARTS) => return Verdict::Write,
            Some(Token::Unterminated) => return Verdict::Unlexable,
            Some(_) => return Verdict::Unknown,
        }
    }
}

/// Classifies the rest of a PostgreSQL `COPY`: `COPY table [(columns)] TO STDOUT ...` and
/// `COPY (read) TO STDOUT ...` are reads; `COPY ... FROM`, `COPY ... TO 'file'` and
/// `TO PROGRAM` are writes (the last two write the server's files).
fn copy(lexer: &mut Lexer<'_>) -> Verdict {
    let mut ahead = lexer.clone();
    if ahead.next_token() == Some(Token::Punct(b'(')) {
        // COPY (query) TO ...: the query must be a read, up to its closing parenthesis.
        *lexer = ahead;
        match lexer.next_token() {
            Some(Token::Word(word)) if is_one_of(word, READ_STARTS) => {}
            Some(Token::Unterminated) => return Verdict::Unlexable,
            _ => return Verdict::WriteInside,
        }
        match scan_read_until(lexer, true, true) {
            Scan::Close => {}
            Scan::Write => return Verdict::WriteInside,
            Scan::Unlexable => return Verdict::Unlexable,
            Scan::End | Scan::Semicolon => return Verdict::Write,
        }
    } else {
        // COPY [BINARY] table [(columns)]: names, dots and a parenthesized column list.
        let mut depth = 0_usize;
        loop {
            let mut ahead = lexer.clone();
            match ahead.next_token() {
                Some(Token::Punct(b'(')) => depth += 1,
                Some(Token::Punct(b')')) if depth > 0 => depth -= 1,
                Some(Token::Word(word))
                    if depth == 0
                        && (word.eq_ignore_ascii_case("TO")
                            || word.eq_ignore_ascii_case("FROM")) =>
                {
                    break;
                }
                Some(Token::Word(_) | Token::Quoted(_) | Token::Punct(b'.' | b',')) => {}
                Some(Token::Unterminated) => return Verdict::Unlexable,
                _ => return Verdict::Unknown,
            }
            *lexer = ahead;
        }
    }
    let is = |token: Option<Token<'_>>, keyword: &str| matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword));
    if !is(lexer.next_token(), "TO") || !is(lexer.next_token(), "STDOUT") {
        return Verdict::WriteInside;
    }
    // The options (WITH (FORMAT csv), CSV HEADER, ...) are not SQL that runs.
    loop {
        match lexer.next_token() {
            None => return Verdict::Read { more: false },
            Some(Token::Punct(b';')) => return Verdict::Read { more: true },
            Some(Token::Unterminated) => return Verdict::Unlexable,
            Some(_) => {}
        }
    }
}

/// Consumes the options after `EXPLAIN`; returns whether they include `ANALYZE` (the explained
/// statement is run), or the verdict on the statement if the options decide it (malformed
/// options are a write).
fn explain_options(lexer: &mut Lexer<'_>) -> Result<bool, Verdict> {
    let mut analyze = false;
    // PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) ...
    let mut ahead = lexer.clone();
    let options = ahead.next_token() == Some(Token::Punct(b'('))
        && !matches!(ahead.clone().next_token(),
            Some(Token::Word(word)) if is_one_of(word, EXPLAINABLE))
        && ahead.clone().next_token() != Some(Token::Punct(b'('));
    if options {
        *lexer = ahead;
        let mut depth = 1_usize;
        let mut previous = None;
        while depth > 0 {
            let token = lexer.next_token().ok_or(Verdict::Write)?;
            match token {
                Token::Punct(b'(') if previous.is_some_and(calls_write_function) => {
                    return Err(Verdict::WriteInside);
                }
                Token::Punct(b'(') => depth += 1,
                Token::Punct(b')') => depth -= 1,
                Token::Punct(b';') => return Err(Verdict::Write),
                Token::Unterminated => return Err(Verdict::Unlexable),
                Token::Word(word) if is_analyze(word) => analyze = true,
                _ => {}
            }
            previous = Some(token);
        }
    }
    // EXPLAIN ANALYZE VERBOSE ..., EXPLAIN QUERY PLAN ..., EXPLAIN FORMAT=JSON ...
    loop {
        let mut ahead = lexer.clone();
        match ahead.next_token() {
            Some(Token::Word(word)) if is_analyze(word) => analyze = true,
            Some(Token::Word(word))
                if is_one_of(
                    word,
                    &["VERBOSE", "EXTENDED", "PARTITIONS", "QUERY", "PLAN"],
                ) => {}
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("FORMAT") => {
                // FORMAT JSON, FORMAT=TREE: skip the value, but never a `;`.
                let mut value = ahead.clone();
                if value.next_token() != Some(Token::Punct(b'=')) {
                    value = ahead.clone();
                }
                if let Some(Token::Word(_) | Token::Quoted(_) | Token::Literal) = value.next_token()
                {
                    ahead = value;
                }
            }
            _ => return Ok(analyze),
        }
        *lexer = ahead;
    }
}

/// `ANALYZE` or PostgreSQL's `ANALYSE`.
fn is_analyze(word: &str) -> bool {
    word.eq_ignore_ascii_case("ANALYZE") || word.eq_ignore_ascii_case("ANALYSE")
}

/// Scans the rest of a read statement for what makes it a write (see the module documentation):
/// with `full`, everything; without (a plain `EXPLAIN`), only calls of write functions.
fn scan_read(lexer: &mut Lexer<'_>, full: bool) -> Verdict {
    match scan_read_until(lexer, full, false) {
        Scan::End => Verdict::Read { more: false },
        Scan::Semicolon => Verdict::Read { more: true },
        Scan::Write => Verdict::WriteInside,
        Scan::Unlexable => Verdict::Unlexable,
        // A `)` that closes nothing: not SQL.
        Scan::Close => Verdict::Unknown,
    }
}

/// Where [`scan_read_until`] stopped.
enum Scan {
    /// At the end of the text.
    End,
    /// After a `;`.
    Semicolon,
    /// After a `)` that closes a parenthesis opened before the scan (with `nested`).
    Close,
    /// At a token that makes the statement a write.
    Write,
    /// At a token that does not lex.
    Unlexable,
}

/// Scans read-statement tokens for what makes them a write (see [`scan_read`]); with `nested`,
/// stops after the `)` that closes the parenthesis the scan began in.
fn scan_read_until(lexer: &mut Lexer<'_>, full: bool, nested: bool) -> Scan {
    let mut previous = None;
    let mut before_previous = None;
    let mut third = None;
    let mut depth = 0_usize;
    loop {
        let Some(token) = lexer.next_token() else {
            return Scan::End;
        };
        match token {
            Token::Punct(b';') => return Scan::Semicolon,
            Token::Unterminated => return Scan::Unlexable,
            Token::Punct(b'(') if previous.is_some_and(calls_write_function) => {
                return Scan::Write;
            }
            Token::Punct(b'(')
                if lexer.functions.is_some_and(|functions| {
                    calls_user_function(functions, previous, before_previous, third)
                }) =>
            {
                return Scan::Write;
            }
            Token::Punct(b'(') => depth += 1,
            Token::Punct(b')') if depth > 0 => depth -= 1,
            Token::Punct(b')') if nested => return Scan::Close,
            Token::Word(word)
                if full
                    && previous != Some(Token::Punct(b'.'))
                    && word_makes_write(word, lexer) =>
            {
                return Scan::Write;
            }
            // MySQL: SELECT @v := ...
            Token::Assign
                if full
                    && before_previous == Some(Token::Punct(b'@'))
                    && matches!(
                        previous,
                        Some(Token::Word(_) | Token::Quoted(_) | Token::Literal)
                    ) =>
            {
                return Scan::Write;
            }
            _ => {}
        }
        third = before_previous;
        before_previous = previous;
        previous = Some(token);
    }
}

/// Whether the tokens before a `(` (`previous`, and before it `before_previous` and `third`)
/// name a function that `functions` says writes: `name(` or `schema.name(`.
fn calls_user_function(
    functions: Matcher<'_>,
    previous: Option<Token<'_>>,
    before_previous: Option<Token<'_>>,
    third: Option<Token<'_>>,
) -> bool {
    let name = match previous {
        Some(Token::Word(name)) if !is_keyword_before_parenthesis(name) => name,
        Some(Token::Quoted(name)) => name,
        _ => return false,
    };
    let schema = match (before_previous, third) {
        (Some(Token::Punct(b'.')), Some(Token::Word(schema) | Token::Quoted(schema))) => {
            Some(schema)
        }
        _ => None,
    };
    functions(schema, name)
}

/// Keywords that a `(` follows and that are no function's name (unquoted), upper case, sorted.
const KEYWORDS_BEFORE_PARENTHESIS: &[&str] = &[
    "ALL",
    "AND",
    "ANY",
    "ARRAY",
    "AS",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "DISTINCT",
    "ELSE",
    "EXCEPT",
    "EXISTS",
    "FILTER",
    "FROM",
    "IN",
    "INTERSECT",
    "IS",
    "JOIN",
    "LATERAL",
    "LIKE",
    "LIMIT",
    "NOT",
    "OFFSET",
    "ON",
    "OR",
    "OVER",
    "ROW",
    "SELECT",
    "SOME",
    "THEN",
    "UNION",
    "USING",
    "VALUES",
    "WHEN",
    "WHERE",
    "WITH",
    "WITHIN",
];

/// Whether `word` is one of [`KEYWORDS_BEFORE_PARENTHESIS`].
fn is_keyword_before_parenthesis(word: &str) -> bool {
    word.len() <= 9
        && KEYWORDS_BEFORE_PARENTHESIS
            .binary_search_by(|probe| {
                probe
                    .bytes()
                    .cmp(word.bytes().map(|b| b.to_ascii_uppercase()))
            })
            .is_ok()
}

/// Whether `token`, followed by `(`, is a call of a function of [`WRITE_FUNCTIONS`].
fn calls_write_function(token: Token<'_>) -> bool {
    match token {
        Token::Word(name) | Token::Quoted(name) => is_write_function(name),
        _ => false,
    }
}

/// Whether the keyword `word`, read with the tokens after it (`lexer` is not advanced), makes a
/// read statement a write.
fn word_makes_write(word: &str, lexer: &Lexer<'_>) -> bool {
    let mut ahead = lexer.clone();
    let mut next = || ahead.next_token();
    let is = |token: Option<Token<'_>>, keyword: &str| matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword));
    if word.eq_ignore_ascii_case("FOR") {
        // FOR UPDATE, FOR SHARE, FOR NO KEY UPDATE, FOR KEY SHARE
        let first = next();
        is(first, "UPDATE")
            || is(first, "SHARE")
            || (is(first, "NO") && is(next(), "KEY") && is(next(), "UPDATE"))
            || (is(first, "KEY") && is(next(), "SHARE"))
    } else if word.eq_ignore_ascii_case("LOCK") {
        is(next(), "IN") && is(next(), "SHARE") && is(next(), "MODE")
    } else if word.eq_ignore_ascii_case("INTO") {
        true
    } else if word.eq_ignore_ascii_case("NEXT") || word.eq_ignore_ascii_case("PREVIOUS") {
        is(next(), "VALUE") && is(next(), "FOR")
    } else if is_one_of(word, DATA_MODIFYING) {
        // INSERT(str, pos, len, new) and REPLACE(str, from, to) are MySQL string functions.
        let function = word.eq_ignore_ascii_case("INSERT") || word.eq_ignore_ascii_case("REPLACE");
        !(function && next() == Some(Token::Punct(b'(')))
    } else {
        false
    }
}

/// Whether `word` equals one of `keywords`, ignoring ASCII case.
fn is_one_of(word: &str, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Whether `name` is in [`WRITE_FUNCTIONS`], ignoring ASCII case.
fn is_write_function(name: &str) -> bool {
    WRITE_FUNCTIONS
        .binary_search_by(|probe| cmp_lowercase(probe, name))
        .is_ok()
}

/// Compares the lower-case `lower` with `other` lower-cased, without allocating.
fn cmp_lowercase(lower: &str, other: &str) -> Ordering {
    lower
        .bytes()
        .cmp(other.bytes().map(|b| b.to_ascii_lowercase()))
}

/// A token of SQL text. Comments and whitespace are not tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// An unquoted identifier or keyword.
    Word(&'a str),
    /// A quoted identifier (`"a"`, `` `a` ``, `[a]`, MySQL `"string"`): its content, escapes left
    /// as written.
    Quoted(&'a str),
    /// A string literal, dollar-quoted string included.
    Literal,
    /// One ASCII punctuation character.
    Punct(u8),
    /// `:=`.
    Assign,
    /// A number, parameter or anything else.
    Other,
    /// A string, quoted identifier or comment that does not end: the text cannot be lexed.
    Unterminated,
}

/// How a backslash inside a quoted token is read.
#[derive(Clone, Copy)]
enum Backslash {
    /// As an ordinary character.
    Plain,
    /// As an escape of the next character if the rule is on.
    Rule(Rules),
    /// As an escape of the next character.
    Escape,
}

/// Splits SQL text into [`Token`]s under one set of [`Rules`]. Cheap to clone, for lookahead.
#[derive(Clone)]
struct Lexer<'a> {
    /// The whole text.
    sql: &'a str,
    /// Byte offset of the next token (or of whitespace/comments before it).
    pos: usize,
    /// The rules in force.
    rules: Rules,
    /// The rules whose being on or off changed (or would have changed) the reading so far.
    seen: Rules,
    /// Inside a MySQL `/*! ... */` executable comment.
    in_executable_comment: bool,
    /// The statement grammar (not the lexical rules, which are `rules`).
    dialect: SqlDialect,
    /// The last `diesel_rw:` hint comment skipped in the current statement.
    hint: Option<Hint>,
    /// Whether a call of a function (schema, name) not in [`WRITE_FUNCTIONS`] is a write: the
    /// application's functions that write ([`WritingFunctions`]), or a recorder of the calls.
    functions: Option<Matcher<'a>>,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `sql`.
    fn new(sql: &'a str, rules: Rules) -> Self {
        Lexer {
            sql,
            pos: 0,
            rules,
            seen: 0,
            in_executable_comment: false,
            dialect: SqlDialect::Any,
            hint: None,
            functions: None,
        }
    }

    /// Whether nothing but whitespace and comments is left.
    fn at_end(&self) -> bool {
        self.clone().next_token().is_none()
    }

    /// Notes a hint if the comment text `body` (without its delimiters) is one:
    /// `diesel_rw:primary` or `diesel_rw:replica`, ASCII case-insensitive, spaces around allowed.
    fn note_hint(&mut self, body: &[u8]) {
        let body = body.trim_ascii();
        if body.len() != 17 || !body[..10].eq_ignore_ascii_case(b"diesel_rw:") {
            return;
        }
        if body[10..].eq_ignore_ascii_case(b"primary") {
            // A primary hint is never undone by a later replica hint.
            self.hint = Some(Hint::Primary);
        } else if body[10..].eq_ignore_ascii_case(b"replica") && self.hint.is_none() {
            self.hint = Some(Hint::Replica);
        }
    }

    /// Notes that `rule` matters here and returns whether it is on.
    fn rule(&mut self, rule: Rules) -> bool {
        self.seen |= rule;
        self.rules & rule != 0
    }

    /// The byte at `pos`, if any.
    fn byte(&self, pos: usize) -> Option<u8> {
        self.sql.as_bytes().get(pos).copied()
    }

    /// The next token, skipping whitespace and comments; `None` at the end of the text.
    fn next_token(&mut self) -> Option<Token<'a>> {
        loop {
            let Some(c) = self.byte(self.pos) else {
                if self.in_executable_comment {
                    self.in_executable_comment = false;
                    return Some(Token::Unterminated);
                }
                return None;
            };
            let next = self.byte(self.pos + 1);
            match (c, next) {
                (b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c, _) => self.pos += 1,
                (b'-', Some(b'-')) => {
                    let spaced = self.byte(self.pos + 2).is_none_or(|b| b <= b' ');
                    if !spaced && self.rule(DASH_DASH_NEEDS_SPACE) {
                        self.pos += 1;
                        return Some(Token::Punct(b'-'));
                    }
                    self.skip_line();
                }
                (b'#', _) => {
                    if !self.rule(HASH_COMMENTS) {
                        self.pos += 1;
                        return Some(Token::Punct(b'#'));
                    }
                    self.skip_line();
                }
                (b'/', Some(b'*')) => {
                    let rest = &self.sql.as_bytes()[self.pos + 2..];
                    let marker = if rest.starts_with(b"!") {
                        1
                    } else if rest.starts_with(b"M!") {
                        2
                    } else {
                        0
                    };
                    if marker > 0 && !self.in_executable_comment && self.rule(EXECUTABLE_COMMENTS) {
                        // The content is SQL; skip the marker and the optional server version.
                        self.pos += 2 + marker;
                        while self.byte(self.pos).is_some_and(|b| b.is_ascii_digit()) {
                            self.pos += 1;
                        }
                        self.in_executable_comment = true;
                    } else if !self.skip_block_comment() {
                        return Some(Token::Unterminated);
                    }
                }
                (b'*', Some(b'/')) if self.in_executable_comment => {
                    self.pos += 2;
                    self.in_executable_comment = false;
                }
                _ => return Some(self.token(c)),
            }
        }
    }

    /// Consumes the rest of the current statement; `false` if it does not lex.
    fn rest_of_statement_lexes(&mut self) -> bool {
        loop {
            match self.next_token() {
                None | Some(Token::Punct(b';')) => return true,
                Some(Token::Unterminated) => return false,
                Some(_) => {}
            }
        }
    }

    /// Skips a line comment, up to (not including) the end of the line.
    fn skip_line(&mut self) {
        let rest = &self.sql.as_bytes()[self.pos..];
        let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        // `-- diesel_rw:primary` or `# diesel_rw:primary`
        let marker = if rest.first() == Some(&b'#') { 1 } else { 2 };
        if len <= 48 {
            self.note_hint(&rest[marker.min(len)..len]);
        }
        self.pos += len;
    }

    /// Skips the block comment at `pos`; `false` if it does not end.
    fn skip_block_comment(&mut self) -> bool {
        let bytes = self.sql.as_bytes();
        let mut depth = 1_usize;
        let mut i = self.pos + 2;
        while i + 1 < bytes.len() {
            match (bytes[i], bytes[i + 1]) {
                (b'*', b'/') => {
                    i += 2;
                    depth -= 1;
                    if depth == 0 {
                        if i - self.pos <= 48 {
                            self.note_hint(&bytes[self.pos + 2..i - 2]);
                        }
                        self.pos = i;
                        return true;
                    }
                }
                (b'/', b'*') => {
                    i += 2;
                    if self.rule(NESTED_COMMENTS) {
                        depth += 1;
                    }
                }
                _ => i += 1,
            }
        }
        self.pos = bytes.len();
        false
    }

    /// Lexes the token that starts with `c` at `pos`.
    fn token(&mut self, c: u8) -> Token<'a> {
        let start = self.pos;
        match c {
            b'\'' => self.literal(Backslash::Rule(BACKSLASH_IN_SINGLE)),
            b'"' => self.quoted(b'"', Backslash::Rule(BACKSLASH_IN_DOUBLE)),
            b'`' => self.quoted(b'`', Backslash::Plain),
            b'[' if self.rule(BRACKET_IDENTIFIERS) => self.quoted(b']', Backslash::Plain),
            b'$' => self.dollar(),
            b':' if self.byte(start + 1) == Some(b'=') => {
                self.pos += 2;
                Token::Assign
            }
            c if is_word_start(c) => {
                self.pos = self.end_of_word(start + 1);
                let word = &self.sql[start..self.pos];
                if word.eq_ignore_ascii_case("e")
                    && self.byte(self.pos) == Some(b'\'')
                    && self.rule(E_STRINGS)
                {
                    return self.literal(Backslash::Escape);
                }
                Token::Word(word)
            }
            c if c.is_ascii_digit() => {
                self.pos = start + 1;
                while self
                    .byte(self.pos)
                    .is_some_and(|b| is_word_char(b) || b == b'.')
                {
                    self.pos += 1;
                }
                Token::Other
            }
            c if c.is_ascii_punctuation() => {
                self.pos += 1;
                Token::Punct(c)
            }
            _ => {
                self.pos += 1;
                Token::Other
            }
        }
    }

    /// The end of the word whose rest starts at `pos`.
    fn end_of_word(&self, mut pos: usize) -> usize {
        while self.byte(pos).is_some_and(is_word_char) {
            pos += 1;
        }
        pos
    }

    /// Lexes a `'...'` string literal at `pos`.
    fn literal(&mut self, backslash: Backslash) -> Token<'a> {
        match self.scan_quoted(b'\'', b'\'', backslash) {
            Some(_) => Token::Literal,
            None => Token::Unterminated,
        }
    }

    /// Lexes a quoted identifier that opens at `pos` and closes with `close`.
    fn quoted(&mut self, close: u8, backslash: Backslash) -> Token<'a> {
        let open = self.byte(self.pos).unwrap_or(close);
        match self.scan_quoted(open, close, backslash) {
            Some(content) => Token::Quoted(content),
            None => Token::Unterminated,
        }
    }

    /// Scans a quoted run from the `open` character at `pos` (or at the end of an `E` before it)
    /// to its `close`; a doubled `close` stands for one. Returns the content, or `None` if the run
    /// does not end.
    fn scan_quoted(&mut self, open: u8, close: u8, backslash: Backslash) -> Option<&'a str> {
        let bytes = self.sql.as_bytes();
        let start = self.pos + 1;
        debug_assert_eq!(bytes.get(self.pos), Some(&open));
        let mut i = start;
        while let Some(&b) = bytes.get(i) {
            if b == close {
                if open == close && bytes.get(i + 1) == Some(&close) {
                    i += 2;
                    continue;
                }
                self.pos = i + 1;
                // `start` and `i` are next to ASCII quotes: character boundaries.
                return Some(&self.sql[start..i]);
            }
            let escapes = b == b'\\'
                && match backslash {
                    Backslash::Plain => false,
                    Backslash::Rule(rule) => self.rule(rule),
                    Backslash::Escape => true,
                };
            i += if escapes { 2 } else { 1 };
        }
        self.pos = bytes.len();
        None
    }

    /// Lexes what starts with `$` at `pos`: a parameter `$1`, a dollar-quoted string
    /// `$tag$ ... $tag$`, or a `$name` (SQLite parameter, MySQL identifier).
    fn dollar(&mut self) -> Token<'a> {
        let start = self.pos;
        if self.byte(start + 1).is_some_and(|b| b.is_ascii_digit()) {
            self.pos = start + 1;
            while self.byte(self.pos).is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
            return Token::Other;
        }
        let mut end = start + 1;
        if self.byte(end).is_some_and(is_word_start) {
            end += 1;
            while self.byte(end).is_some_and(|b| b != b'$' && is_word_char(b)) {
                end += 1;
            }
        }
        if self.byte(end) != Some(b'$') {
            // `$name`, or a lone `$`
            self.pos = self.end_of_word(start + 1);
            return Token::Other;
        }
        let tag = &self.sql[start..=end];
        match self.sql[end + 1..].find(tag) {
            Some(offset) => {
                self.pos = end + 1 + offset + tag.len();
                Token::Literal
            }
            None => {
                self.pos = self.sql.len();
                Token::Unterminated
            }
        }
    }
}

/// Whether `b` can start an unquoted identifier (non-ASCII bytes count as letters).
fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Whether `b` can continue an unquoted identifier.
fn is_word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use StatementKind::{Read, Write};

    thread_local! {
        /// How many times this thread rendered a query in `render_and_classify`.
        pub(super) static RENDERS: Cell<usize> = const { Cell::new(0) };
    }

    #[track_caller]
    fn read(sql: &str) {
        assert_eq!(classify_sql(sql), Read, "expected a read: {sql:?}");
    }

    #[track_caller]
    fn write(sql: &str) {
        assert_eq!(classify_sql(sql), Write, "expected a write: {sql:?}");
    }

    #[test]
    fn statement_kind_predicates() {
        assert!(Read.is_read() && !Read.is_write());
        assert!(Write.is_write() && !Write.is_read());
    }

    #[test]
    fn plain_selects_are_reads() {
        read("SELECT 1");
        read("select * from users");
        read("SeLeCt id, name FROM users WHERE id = 1 ORDER BY name DESC LIMIT 10 OFFSET 5");
        read("SELECT count(*) FROM users GROUP BY name HAVING count(*) > 1");
        read("SELECT 1;");
        read("  \n\tSELECT 1  ;  \n");
    }

    #[test]
    fn joins_and_subselects_are_reads() {
        read("SELECT u.id, p.title FROM users u INNER JOIN posts p ON p.user_id = u.id");
        read("SELECT * FROM a LEFT OUTER JOIN b USING (id) CROSS JOIN c");
        read("SELECT * FROM users WHERE id IN (SELECT user_id FROM posts WHERE x > 2)");
        read("SELECT (SELECT max(id) FROM posts) AS m, EXISTS (SELECT 1 FROM t) FROM users");
        read("SELECT * FROM (SELECT id FROM users) AS sub");
    }

    #[test]
    fn parenthesized_and_set_operations_are_reads() {
        read("(SELECT 1) UNION (SELECT 2)");
        read("((SELECT 1)) UNION ALL SELECT 2 EXCEPT SELECT 3 INTERSECT SELECT 4");
        write("(DELETE FROM t)");
        write("(");
        write("((");
        write("(;");
    }

    #[test]
    fn select_for_update_is_a_write_in_any_case_and_spacing() {
        write("SELECT * FROM t WHERE id = 1 FOR UPDATE");
        write("select * from t for update");
        write("SELECT * FROM t\nFOR\n\tUPDATE\n");
        write("SELECT * FROM t FoR   uPdAtE SKIP LOCKED");
        write("SELECT * FROM t FOR UPDATE OF t NOWAIT");
        write("SELECT * FROM t FOR /* why not */ UPDATE");
        write("SELECT * FROM t FOR -- a\nUPDATE");
        write("SELECT * FROM t FOR NO KEY UPDATE");
        write("SELECT * FROM t FOR SHARE");
        write("SELECT * FROM t for key share");
        write("SELECT * FROM t LOCK IN SHARE MODE");
        write("select * from t lock\nin share\nmode");
        write("(SELECT * FROM t FOR UPDATE)");
    }

    #[test]
    fn locking_words_inside_strings_and_comments_stay_reads() {
        read("SELECT 'FOR UPDATE' FROM t");
        read("SELECT * FROM t WHERE note = 'lock in share mode'");
        read("SELECT * FROM t /* FOR UPDATE */");
        read("SELECT * FROM t -- FOR UPDATE");
        read("SELECT \"for update\" FROM t");
        read("SELECT `FOR UPDATE` FROM t");
        read("SELECT $$ FOR UPDATE $$");
        read("SELECT * FROM t WHERE a = 'it''s FOR UPDATE'");
    }

    #[test]
    fn other_uses_of_for_and_lock_stay_reads() {
        read("SELECT substring(name FROM 1 FOR 3) FROM t");
        read("SELECT * FROM t FOR SYSTEM_TIME AS OF TIMESTAMP '2020-01-01'");
        read("SELECT * FROM t WHERE lock IN (1, 2)");
        read("SELECT * FROM t WHERE lock IN SHARE"); // nonsense, but not a locking clause
        read("SELECT * FROM t WHERE x = 1 FOR");
    }

    #[test]
    fn select_into_is_a_write() {
        write("SELECT * INTO new_table FROM t");
        write("SELECT * FROM t INTO OUTFILE '/tmp/t.csv'");
        write("SELECT a FROM t INTO DUMPFILE '/tmp/x'");
        write("SELECT a INTO @v FROM t");
        read("SELECT 'INTO' FROM t");
    }

    #[test]
    fn mysql_user_variable_assignment_is_a_write() {
        write("SELECT @n := @n + 1 FROM t");
        write("SELECT @`n` := 1");
        write("SELECT @'n' := 1");
        read("SELECT @n FROM t");
        read("SELECT f(a := 1)"); // PostgreSQL named argument
    }

    #[test]
    fn dml_and_ddl_are_writes() {
        write("INSERT INTO users (name) VALUES ('a')");
        write("INSERT INTO users (name) VALUES ($1) RETURNING id, name");
        write("insert into users default values returning *");
        write("UPDATE users SET name = 'x' WHERE id = 1");
        write("UPDATE users SET name = 'x' WHERE id = 1 RETURNING *");
        write("DELETE FROM users WHERE id = 1");
        write("REPLACE INTO users (id, name) VALUES (1, 'a')");
        write("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET x = s.x");
        write("CREATE TABLE t (id INTEGER PRIMARY KEY)");
        write("ALTER TABLE t ADD COLUMN x INT");
        write("DROP TABLE t");
        write("TRUNCATE t");
        write("RENAME TABLE a TO b");
        write("GRANT SELECT ON t TO bob");
        write("REVOKE ALL ON t FROM bob");
    }

    #[test]
    fn upserts_are_writes() {
        write("INSERT INTO t (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = t.n + 1");
        write("INSERT INTO t (id) VALUES (1) ON CONFLICT DO NOTHING");
        write("INSERT INTO t (id) VALUES (1) ON DUPLICATE KEY UPDATE n = n + 1");
        write("INSERT OR REPLACE INTO t (id) VALUES (1)");
        write("WITH v AS (SELECT 1 AS id) INSERT INTO t SELECT id FROM v ON CONFLICT DO UPDATE SET id = 2");
    }

    #[test]
    fn session_transaction_and_maintenance_statements_are_writes() {
        for sql in [
            "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
            "LOCK TABLES t WRITE",
            "UNLOCK TABLES",
            "CALL my_proc(1)",
            "DO $$ BEGIN PERFORM 1; END $$",
            "DO SLEEP(1)",
            "COPY t FROM STDIN",
            "SET search_path TO app",
            "SET @x = 1",
            "RESET ALL",
            "BEGIN",
            "START TRANSACTION READ ONLY",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT s1",
            "RELEASE SAVEPOINT s1",
            "PRAGMA query_only = ON",
            "pragma foreign_keys",
            "VACUUM",
            "ANALYZE t",
            "REINDEX INDEX i",
            "CLUSTER t USING i",
            "LISTEN ch",
            "NOTIFY ch, 'x'",
            "LOAD DATA INFILE 'x' INTO TABLE t",
            "HANDLER t OPEN",
            "ATTACH DATABASE 'x.db' AS x",
            "DETACH DATABASE x",
            "UPSERT INTO t VALUES (1)",
        ] {
            write(sql);
        }
    }

    #[test]
    fn unknown_and_garbage_are_writes() {
        write("FROBNICATE t");
        write("hello world");
        write("42");
        write("'SELECT'");
        write("\"SELECT\" 1");
        write("?");
        write(")");
        write("@@@");
        write("\u{feff}SELECT 1"); // a byte-order mark is not whitespace here
        write("ＳＥＬＥＣＴ 1");
    }

    #[test]
    fn empty_text_is_a_read() {
        read("");
        read("   \n\t ");
        read(";");
        read(";;  ;");
        read("-- only a comment");
        read("/* only a comment */");
        read("/* a */ -- b\n ; /* c */");
    }

    #[test]
    fn leading_comments_are_skipped() {
        read("/* x */ SELECT 1");
        read("-- c\nSELECT 1");
        read("/* multi\nline */\n-- another\nselect 1");
        write("-- c\nDELETE FROM t");
        write("/* SELECT */ DELETE FROM t");
        write("/*\n*/UPDATE t SET a = 1");
        read("SELECT/**/1");
        read("SELECT 1--comment");
    }

    #[test]
    fn unterminated_text_is_a_write() {
        write("SELECT 'abc");
        write("SELECT \"abc");
        write("SELECT `abc");
        write("SELECT 1 /* abc");
        write("SELECT $$ abc");
        write("SELECT $tag$ abc $$");
        write("/* SELECT 1");
    }

    #[test]
    fn multiple_statements() {
        write("SELECT 1; DELETE FROM t");
        write("SELECT 1;DELETE FROM t;");
        write("DELETE FROM t; SELECT 1");
        read("SELECT 1; SELECT 2");
        read("SELECT 1; SELECT 2;");
        read("SELECT 1;;SELECT 2");
        write("SELECT 1; SELECT 2 FOR UPDATE");
        write("SELECT 1; garbage");
        read("SELECT ';DELETE FROM t'; SELECT 2");
    }

    #[test]
    fn with_selects_are_reads() {
        read("WITH x AS (SELECT 1 AS a) SELECT a FROM x");
        read("with recursive r(n) as (select 1 union all select n + 1 from r where n < 10) select * from r");
        read("WITH a AS (SELECT 1), b AS (SELECT 2) SELECT * FROM a, b");
        read("WITH x AS (SELECT replace(name, 'a', 'b') AS n FROM t) SELECT n FROM x");
        read("WITH x AS (SELECT insert(name, 1, 2, 'b') AS n FROM t) SELECT n FROM x");
        read("WITH x AS (SELECT t.update, t.delete FROM t) SELECT * FROM x");
        read("WITH x AS (SELECT 'DELETE' AS d) SELECT d FROM x");
    }

    #[test]
    fn with_data_modifying_statements_are_writes() {
        write("WITH x AS (INSERT INTO t (a) VALUES (1) RETURNING a) SELECT a FROM x");
        write("WITH x AS (DELETE FROM t RETURNING *) SELECT count(*) FROM x");
        write("WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x");
        write("WITH x AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM x");
        write("WITH x AS (SELECT 1 AS a) UPDATE t SET a = x.a FROM x");
        write("WITH x AS (SELECT 1 AS a) DELETE FROM t USING x WHERE t.a = x.a");
        write("WITH s AS (SELECT 1 AS id) MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE");
        write("WITH x AS (SELECT 1) REPLACE INTO t SELECT * FROM x");
        write("WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x");
        write("WITH x AS (SELECT nextval('s')) SELECT * FROM x");
        write("WITH x AS (SELECT 1) SELECT * INTO t2 FROM x");
    }

    #[test]
    fn write_functions_make_a_select_a_write() {
        write("SELECT nextval('s')");
        write("SELECT NEXTVAL('users_id_seq')");
        write("select nextval ('s')");
        write("SELECT nextval /* c */ ('s')");
        write("select pg_catalog.setval('s', 42)");
        write("SELECT \"pg_catalog\".\"setval\"('s', 1)");
        write("SELECT currval('s'), lastval()");
        write("SELECT LAST_INSERT_ID()");
        write("SELECT last_insert_rowid()");
        write("SELECT changes()");
        write("SELECT GET_LOCK('x', 10)");
        write("SELECT RELEASE_LOCK('x')");
        write("SELECT pg_advisory_lock(1)");
        write("SELECT pg_try_advisory_xact_lock(1, 2)");
        write("SELECT pg_advisory_unlock_all()");
        write("SELECT set_config('app.user', '1', false)");
        write("SELECT txid_current()");
        write("SELECT pg_current_xact_id()");
        write("SELECT pg_current_wal_lsn()");
        write("SELECT pg_notify('ch', 'x')");
        write("SELECT FOUND_ROWS()");
        write("SELECT ROW_COUNT()");
        write("SELECT UUID_SHORT()");
        write("SELECT * FROM t WHERE id = (SELECT nextval('s'))");
        write("SELECT * FROM dblink_exec('c', 'DELETE FROM t')");
        write("SELECT NEXT VALUE FOR s");
        write("SELECT PREVIOUS VALUE FOR s");
        write("VALUES (nextval('s'))");
    }

    #[test]
    fn read_functions_and_names_that_are_not_calls_stay_reads() {
        read("SELECT \"nextval\" FROM t");
        read("SELECT nextval FROM t");
        read("SELECT t.nextval FROM t");
        read("SELECT 'nextval(1)'");
        read("SELECT now(), count(*), coalesce(a, b), lower(name) FROM t");
        read("SELECT IS_USED_LOCK('x'), IS_FREE_LOCK('x'), SLEEP(1)");
        read("SELECT MASTER_POS_WAIT('log', 4), MASTER_GTID_WAIT('0-1-1')");
        read("SELECT nextval_like(1)");
        read("SELECT my_nextval('s')");
        read("SELECT pg_last_wal_replay_lsn()");
        read("SELECT next_value FROM t");
    }

    #[test]
    fn other_read_statements() {
        read("VALUES (1, 'a'), (2, 'b')");
        read("TABLE users");
        read("SHOW tables");
        read("SHOW TRANSACTION ISOLATION LEVEL");
        read("show create table users");
        read("HELP 'contents'");
        read("DESCRIBE users");
        read("DESC users");
    }

    #[track_caller]
    fn read_in(dialect: SqlDialect, sql: &str) {
        assert_eq!(
            classify_sql_in(sql, dialect),
            Read,
            "expected a read under {dialect:?}: {sql:?}"
        );
    }

    #[track_caller]
    fn write_in(dialect: SqlDialect, sql: &str) {
        assert_eq!(
            classify_sql_in(sql, dialect),
            Write,
            "expected a write under {dialect:?}: {sql:?}"
        );
    }

    use SqlDialect::{Any, Mysql, Postgres, Sqlite as Lite};

    #[test]
    fn explain() {
        for d in [Postgres, Lite] {
            // A plain EXPLAIN does not run its statement.
            read_in(d, "EXPLAIN DELETE FROM t");
            read_in(d, "explain insert into t values (1)");
            read_in(d, "EXPLAIN VERBOSE UPDATE t SET a = 1");
            read_in(d, "EXPLAIN (COSTS OFF, FORMAT JSON) DELETE FROM t");
            read_in(d, "EXPLAIN QUERY PLAN SELECT * FROM t");
            read_in(d, "EXPLAIN SELECT * FROM t FOR UPDATE");
            read_in(d, "EXPLAIN DELETE FROM t; SELECT 1");
        }
        for d in [Postgres, Mysql, Lite, Any] {
            read_in(d, "EXPLAIN SELECT * FROM t");
            read_in(d, "EXPLAIN FORMAT JSON SELECT 1");
            write_in(d, "EXPLAIN FORMAT; DELETE FROM t");
            write_in(d, "EXPLAIN FORMAT=; DELETE FROM t");
            write_in(d, "EXPLAIN (SELECT nextval('s'))");
            read_in(d, "EXPLAIN (SELECT 1)");
            read_in(d, "DESCRIBE SELECT * FROM t");
            write_in(d, "EXPLAIN SELECT nextval('s')");
            write_in(d, "EXPLAIN ANALYZE DELETE FROM t");
            write_in(d, "EXPLAIN ANALYSE UPDATE t SET a = 1");
            write_in(d, "explain analyze verbose insert into t values (1)");
            write_in(d, "EXPLAIN (ANALYZE) DELETE FROM t");
            write_in(d, "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) DELETE FROM t");
            write_in(
                d,
                "EXPLAIN (FORMAT JSON, ANALYZE true) INSERT INTO t VALUES (1)",
            );
            write_in(d, "EXPLAIN ANALYZE FORMAT=TREE DELETE FROM t");
            write_in(d, "EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE");
            write_in(d, "EXPLAIN ANALYZE SELECT nextval('s')");
            write_in(d, "EXPLAIN (ANALYZE");
            read_in(d, "EXPLAIN ANALYZE SELECT * FROM t");
            read_in(
                d,
                "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t JOIN u ON u.id = t.id",
            );
            read_in(d, "EXPLAIN ANALYZE (SELECT 1) UNION (SELECT 2)");
            read_in(d, "EXPLAIN ANALYZE WITH x AS (SELECT 1) SELECT * FROM x");
            write_in(d, "EXPLAIN SELECT 1; DELETE FROM t");
        }
    }

    #[test]
    fn mysql_explain_of_a_write_is_a_write() {
        // MariaDB/MySQL refuse these in a read-only transaction and on a read_only replica.
        for d in [Mysql, Any] {
            write_in(d, "EXPLAIN DELETE FROM t");
            write_in(d, "EXPLAIN INSERT INTO t VALUES (1)");
            write_in(d, "EXPLAIN UPDATE t SET a = 1");
            write_in(d, "EXPLAIN REPLACE INTO t VALUES (1)");
            write_in(d, "EXPLAIN FORMAT=JSON DELETE FROM t");
            write_in(d, "EXPLAIN FORMAT = 'JSON' UPDATE t SET a = 1");
            write_in(d, "EXPLAIN EXTENDED INSERT INTO t SELECT * FROM u");
            write_in(d, "EXPLAIN PARTITIONS DELETE FROM t WHERE id = 1");
            write_in(d, "DESCRIBE DELETE FROM t");
            write_in(d, "DESC UPDATE t SET a = 1");
            write_in(d, "EXPLAIN SELECT * FROM t FOR UPDATE");
            write_in(d, "EXPLAIN SELECT * FROM t LOCK IN SHARE MODE");
            write_in(d, "EXPLAIN EXTENDED SELECT * FROM t FOR SHARE");
            write_in(d, "EXPLAIN SELECT NEXT VALUE FOR s");
            write_in(d, "EXPLAIN SELECT NEXTVAL(s)");
            write_in(d, "EXPLAIN (SELECT * FROM t FOR UPDATE)");
            write_in(d, "EXPLAIN WITH x AS (SELECT 1) UPDATE t, x SET t.a = 1");
            write_in(d, "EXPLAIN DELETE FROM t; SELECT 1");
            // Of a table, a column, a connection: reads.
            read_in(d, "EXPLAIN t");
            read_in(d, "DESCRIBE `t`");
            read_in(d, "DESC t a");
            read_in(d, "EXPLAIN FOR CONNECTION 12");
            read_in(d, "EXPLAIN EXTENDED SELECT * FROM t WHERE a = 1");
            read_in(d, "EXPLAIN FORMAT=JSON SELECT * FROM t");
            read_in(d, "EXPLAIN SELECT * FROM t; SELECT 1");
            // MariaDB's ANALYZE statement runs its statement.
            read_in(d, "ANALYZE SELECT * FROM t");
            read_in(d, "ANALYZE FORMAT=JSON SELECT * FROM t");
            write_in(d, "ANALYZE DELETE FROM t");
            write_in(d, "ANALYZE FORMAT=JSON UPDATE t SET a = 1");
            write_in(d, "ANALYZE SELECT * FROM t FOR UPDATE");
            write_in(d, "ANALYZE TABLE t");
            write_in(d, "ANALYZE NO_WRITE_TO_BINLOG TABLE t");
        }
        write_in(Postgres, "ANALYZE t");
        write_in(Postgres, "ANALYZE SELECT");
        write_in(Lite, "ANALYZE");
    }

    #[test]
    fn postgres_copy() {
        for d in [Postgres, Any] {
            read_in(d, "COPY t TO STDOUT");
            read_in(
                d,
                "copy public.t (a, b) to stdout with (format csv, header)",
            );
            read_in(d, r#"COPY "s"."t" TO STDOUT CSV HEADER"#);
            read_in(d, "COPY BINARY t TO STDOUT");
            read_in(d, "COPY (SELECT * FROM t WHERE a IN (1, 2)) TO STDOUT");
            read_in(
                d,
                "COPY (WITH x AS (SELECT 1) SELECT * FROM x) TO STDOUT (FORMAT binary)",
            );
            read_in(d, "COPY (VALUES (1), (2)) TO STDOUT; SELECT 1");
            write_in(d, "COPY t FROM STDIN");
            write_in(d, "COPY t (a) FROM STDIN WITH (FORMAT csv)");
            write_in(d, "COPY t TO '/tmp/t.csv'");
            write_in(d, "COPY t TO PROGRAM 'cat > /tmp/x'");
            write_in(d, "COPY (SELECT * FROM t FOR UPDATE) TO STDOUT");
            write_in(d, "COPY (SELECT nextval('s')) TO STDOUT");
            write_in(d, "COPY (DELETE FROM t RETURNING *) TO STDOUT");
            write_in(d, "COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT");
            write_in(d, "COPY t TO STDOUT; DELETE FROM t");
            write_in(d, "COPY (SELECT 1; DELETE FROM t");
            write_in(d, "COPY t;");
            write_in(d, "COPY");
        }
        write_in(Mysql, "COPY t TO STDOUT");
        write_in(Lite, "COPY t TO STDOUT");
    }

    #[test]
    fn comments_per_dialect() {
        // `#` is a comment on MySQL only: on PostgreSQL an operator.
        read_in(Mysql, "SELECT 1 # FOR UPDATE");
        write_in(Postgres, "SELECT 1 # FOR UPDATE");
        read_in(Postgres, "SELECT data #>> '{a,b}' FROM t");
        read_in(Postgres, "SELECT 1 # 2");
        write_in(Postgres, "SELECT 1 # 2; DELETE FROM t");
        read_in(Mysql, "SELECT 1 # 2; DELETE FROM t");
        read_in(Mysql, "# a comment line\nSELECT * FROM t");
        write_in(Postgres, "# a comment line\nSELECT * FROM t");
        // `--` needs a space on MySQL.
        write_in(Mysql, "SELECT 1--1; DELETE FROM t");
        read_in(Postgres, "SELECT 1--1; DELETE FROM t");
        read_in(Lite, "SELECT 1--1; DELETE FROM t");
        // Nested block comments: PostgreSQL only.
        write_in(
            Postgres,
            "/* a /* b */ DELETE FROM t */ SELECT 1 */ DELETE FROM t",
        );
        read_in(Postgres, "/* a /* b */ DELETE FROM t */ SELECT 1");
        write_in(Mysql, "/* a /* b */ DELETE FROM t */ SELECT 1");
        write_in(Lite, "/* a /* b */ DELETE FROM t */ SELECT 1");
        // Executable comments: MySQL only (read both as SQL and as a comment there).
        write_in(Mysql, "SELECT 1 /*! FOR UPDATE */");
        write_in(Mysql, "SELECT 1 /*M!100100 FOR UPDATE */");
        read_in(Postgres, "SELECT 1 /*! FOR UPDATE */");
        read_in(Mysql, "SELECT /*!40001 SQL_NO_CACHE */ * FROM t");
        // Backslashes: MySQL escapes (and reads it without, NO_BACKSLASH_ESCAPES); PostgreSQL in
        // E'' strings (and in '' with standard_conforming_strings off).
        read_in(Mysql, "SELECT * FROM t WHERE name = 'O\\'Brien'");
        read_in(Postgres, "SELECT E'it\\'s; DELETE FROM t'");
        write_in(Postgres, "SELECT 'a\\'; DELETE FROM t; SELECT '");
        write_in(Mysql, "SELECT 'a\\''; DELETE FROM t; SELECT '");
        // `[a]` is an identifier on SQLite only.
        read_in(Lite, "SELECT [a;b] FROM t");
        write_in(Postgres, "SELECT [a;b] FROM t");
        read_in(Postgres, "SELECT a[1] FROM t");
        // Dollar quotes: PostgreSQL's.
        read_in(Postgres, "SELECT $$;DELETE FROM t;$$");
    }

    #[test]
    fn hints() {
        for d in [Postgres, Mysql, Lite, Any] {
            write_in(d, "/* diesel_rw:primary */ SELECT * FROM t");
            write_in(d, "SELECT * FROM t /* diesel_rw:primary */");
            write_in(d, "SELECT /*diesel_rw:PRIMARY*/ 1");
            write_in(d, "SELECT 1 -- diesel_rw:primary");
            write_in(d, "SELECT 1; SELECT 2 /* diesel_rw:primary */");
            write_in(d, "/* diesel_rw:primary */ SELECT 1; SELECT 2");
            read_in(d, "SELECT '/* diesel_rw:primary */'");
            read_in(d, "SELECT 1 /* diesel_rw: primary */");
            read_in(d, "SELECT 1 /* diesel_rw:primaryx */");
            // replica: a read of what is only unrecognised...
            read_in(d, "/* diesel_rw:replica */ CALL report(1)");
            read_in(d, "CALL report(1) /* diesel_rw:replica */");
            read_in(d, "EXECUTE stmt /* diesel_rw:replica */; SELECT 1");
            write_in(d, "EXECUTE stmt /* diesel_rw:replica */; CALL p()");
            write_in(d, "CALL report(1)");
            write_in(d, "CALL report(1); /* diesel_rw:replica */ SELECT 1");
            // ...never of a write.
            write_in(d, "/* diesel_rw:replica */ INSERT INTO t VALUES (1)");
            write_in(d, "DELETE FROM t /* diesel_rw:replica */");
            write_in(d, "/* diesel_rw:replica */ SELECT * FROM t FOR UPDATE");
            write_in(d, "/* diesel_rw:replica */ SELECT nextval('s')");
            write_in(
                d,
                "/* diesel_rw:replica */ WITH x AS (DELETE FROM t RETURNING 1) SELECT 1",
            );
            write_in(d, "/* diesel_rw:replica */ CREATE TABLE t (a int)");
            write_in(
                d,
                "/* diesel_rw:replica */ /* diesel_rw:primary */ CALL p()",
            );
            write_in(
                d,
                "/* diesel_rw:primary */ /* diesel_rw:replica */ CALL p()",
            );
            write_in(d, "/* diesel_rw:replica */ (;");
        }
        read_in(Mysql, "CALL p() # diesel_rw:replica");
        read_in(Postgres, "CALL p() -- diesel_rw:replica");
        write_in(Postgres, "CALL p() # diesel_rw:replica");
        write_in(Mysql, "/* diesel_rw:replica */ EXPLAIN DELETE FROM t");
    }

    #[test]
    fn writes_stop_at_their_first_keyword() {
        // An INSERT is settled at `INSERT`: what follows is not lexed (here it would not lex).
        let sql = "INSERT INTO t VALUES ('unterminated";
        let (kind, _) = classify_with(sql, 0, Postgres, None);
        assert_eq!(kind, Some(Write));
        for d in [Postgres, Mysql, Lite, Any] {
            write_in(d, sql);
            write_in(d, "UPDATE t SET a = $$");
            write_in(d, "delete from t where a = '");
        }
    }

    #[test]
    fn built_in_functions_that_write() {
        for d in [Postgres, Any] {
            write_in(d, "SELECT brin_summarize_range('i', 0)");
            write_in(d, "SELECT brin_summarize_new_values('i'::regclass)");
            write_in(d, "SELECT brin_desummarize_range('i', 0)");
            write_in(d, "SELECT gin_clean_pending_list('i')");
            write_in(d, "SELECT diesel_manage_updated_at('users')");
            write_in(d, "SELECT pg_catalog.pg_create_restore_point('x')");
            write_in(d, "SELECT * FROM pg_create_physical_replication_slot('s')");
            write_in(d, "SELECT lo_open(1, 131072)");
        }
    }

    #[test]
    fn diesel_sql_is_classified_alike_in_its_dialect() {
        for (d, sql) in [
            (
                Postgres,
                r#"SELECT "users"."id" FROM "users" WHERE ("users"."id" = $1)"#,
            ),
            (
                Mysql,
                "SELECT `users`.`id` FROM `users` WHERE (`users`.`id` = ?)",
            ),
            (
                Lite,
                r#"SELECT "users"."id" FROM "users" WHERE ("users"."id" = ?)"#,
            ),
        ] {
            read_in(d, sql);
            read_in(Any, sql);
            write_in(d, &format!("{sql} FOR UPDATE"));
        }
    }

    #[test]
    fn dollar_quotes() {
        read("SELECT $$;DELETE FROM t;$$");
        read("SELECT $body$ DELETE FROM t; $$ nested $$ $body$ AS x");
        read("SELECT $a$'$a$, '$$'");
        read("SELECT * FROM t WHERE id = $1 AND name = $2");
        write("SELECT $1; DELETE FROM t");
        read("SELECT a$b$c FROM t"); // an identifier with `$`s
        write("SELECT $$ a $$; DELETE FROM t");
        read("SELECT $x FROM t"); // a SQLite parameter
    }

    #[test]
    fn string_literals_and_escapes() {
        read("SELECT 'it''s; DELETE FROM t'");
        // MySQL reads `'O\'Brien'`; to PostgreSQL and SQLite the text does not lex (and runs
        // nothing).
        read("SELECT * FROM t WHERE name = 'O\\'Brien'");
        read("SELECT 'a\\\\', 'b\\n'");
        // MySQL: `\'` escapes the quote, so `FOR UPDATE` is inside the string: a read. PostgreSQL
        // and SQLite: the string ends at `\'` and the last `'` does not end: runs nothing.
        read("SELECT * FROM t WHERE a = 'x\\' FOR UPDATE'");
        // PostgreSQL and SQLite: the string ends at `\'`, and the DELETE runs (`--` hides the
        // last quote): a write, though MySQL would read one string.
        write("SELECT 'a\\'b; DELETE FROM t; --'");
        write("SELECT 'a\\'; DELETE FROM t; SELECT '");
        // MySQL: `'a\''` ends after the escaped quote, and the DELETE runs; PostgreSQL and SQLite
        // read one string `'a\''; ... '`.
        write("SELECT 'a\\''; DELETE FROM t; SELECT '");
        write("SELECT \"a\\\"\"; DELETE FROM t; SELECT \"");
        // PostgreSQL escape strings.
        read("SELECT E'it\\'s; DELETE FROM t'");
        read("SELECT e'\\'' AS q");
        write("SELECT E'a\\''; DELETE FROM t; SELECT '");
        read("SELECT N'x', X'ff', B'01', _utf8mb4'FOR UPDATE'");
        read("SELECT \"a\"\"b; DELETE\" FROM t");
        read("SELECT `a``b; DELETE` FROM t");
    }

    #[test]
    fn dialect_specific_comments() {
        // MySQL `#` comments hide text; PostgreSQL's `#` is an operator.
        read("SELECT 1 # a comment, or an operator");
        write("SELECT 1 # FOR UPDATE"); // PostgreSQL would see the locking clause
        write("SELECT 1 # 2; DELETE FROM t");
        write("SELECT 1 # it's\n; DELETE FROM t; -- '");
        read("SELECT data #>> '{a,b}' FROM t");
        // MySQL: `--1` is not a comment; PostgreSQL/SQLite: a comment.
        write("SELECT 1--1; DELETE FROM t");
        read("SELECT 1--1\n");
        // PostgreSQL nests block comments; MySQL and SQLite end them at the first `*/`.
        write("/* a /* b */ DELETE FROM t */");
        write("/* a /* b */ SELECT 1 */ DELETE FROM t");
        // A read to PostgreSQL; MySQL and SQLite see `*/ SELECT 1`, which is not SQL.
        write("/* a /* b */ */ SELECT 1");
        // MySQL executable comments hold SQL.
        read("SELECT /*!40001 SQL_NO_CACHE */ * FROM t");
        write("/*!40101 SET NAMES utf8 */");
        write("SELECT 1 /*! FOR UPDATE */");
        write("SELECT 1 /*M!100100 FOR UPDATE */");
        write("SELECT 1 /*!");
        write("/*! ' */ ; DELETE FROM t; -- ' */");
        read("SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t");
        // SQLite bracket identifiers.
        read("SELECT [it's] FROM t");
        write("SELECT [a;b] FROM t"); // elsewhere: `b] FROM t` is a statement, an unknown one
        write("SELECT [x'] FROM t; DELETE FROM t; --'");
        read("SELECT a[1], b[2:3] FROM t");
    }

    #[test]
    fn diesel_rendered_sql() {
        // PostgreSQL
        read(
            r#"SELECT "users"."id", "users"."name" FROM "users" WHERE ("users"."id" = $1) LIMIT $2"#,
        );
        read(
            r#"SELECT COUNT(*) FROM "users" INNER JOIN "posts" ON ("posts"."user_id" = "users"."id")"#,
        );
        write(r#"SELECT "users"."id" FROM "users" WHERE ("users"."id" = $1) FOR UPDATE"#);
        write(r#"SELECT "users"."id" FROM "users" FOR NO KEY UPDATE SKIP LOCKED"#);
        write(r#"INSERT INTO "users" ("name") VALUES ($1) RETURNING "users"."id", "users"."name""#);
        write(
            r#"INSERT INTO "users" ("id", "name") VALUES ($1, $2) ON CONFLICT ("id") DO UPDATE SET "name" = excluded."name""#,
        );
        write(r#"UPDATE "users" SET "name" = $1 WHERE ("users"."id" = $2) RETURNING "users"."id""#);
        write(r#"DELETE FROM "users" WHERE ("users"."id" = $1)"#);
        read(
            r#"SELECT EXISTS (SELECT "users"."id" FROM "users" WHERE ("users"."name" = $1)) -- binds: ["x"]"#,
        );
        read(
            r#"SELECT "users"."id" FROM "users" WHERE ("users"."id" = ANY($1)) ORDER BY "users"."id" DESC"#,
        );
        // MySQL
        read("SELECT `users`.`id`, `users`.`name` FROM `users` WHERE (`users`.`id` = ?) LIMIT ?");
        write("SELECT `users`.`id` FROM `users` WHERE (`users`.`id` = ?) FOR UPDATE");
        write("SELECT `users`.`id` FROM `users` LOCK IN SHARE MODE");
        write("INSERT INTO `users` (`name`) VALUES (?)");
        write("REPLACE INTO `users` (`id`, `name`) VALUES (?, ?)");
        write("INSERT INTO `users` (`id`) VALUES (?) ON DUPLICATE KEY UPDATE `id` = ?");
        // SQLite
        read(
            r#"SELECT "users"."id", "users"."name" FROM "users" WHERE ("users"."id" = ?) LIMIT ?"#,
        );
        write(r#"INSERT INTO "users" ("name") VALUES (?) RETURNING "users"."id""#);
        write(r#"INSERT OR IGNORE INTO "users" ("name") VALUES (?)"#);
    }

    #[test]
    fn write_functions_are_sorted_lowercase_and_unique() {
        for pair in WRITE_FUNCTIONS.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{} must sort before {}",
                pair[0],
                pair[1]
            );
        }
        for name in WRITE_FUNCTIONS {
            assert_eq!(*name, name.to_ascii_lowercase());
            assert!(is_write_function(name));
            assert!(is_write_function(&name.to_ascii_uppercase()));
            write(&format!("SELECT {name}()"));
            read(&format!("SELECT {name} FROM t"));
        }
        assert!(!is_write_function("nextva"));
        assert!(!is_write_function("nextvals"));
        assert!(!is_write_function(""));
    }

    #[test]
    fn never_panics_on_odd_text() {
        // Deterministic pseudo-random texts from pieces that stress the lexer.
        const PIECES: &[&str] = &[
            "SELECT",
            " ",
            "\n",
            "'",
            "''",
            "\"",
            "`",
            "[",
            "]",
            "\\",
            "$",
            "$$",
            "$a$",
            "$1",
            "--",
            "-",
            "#",
            "/*",
            "*/",
            "/*!",
            "/*M!",
            "!",
            "*",
            "/",
            ";",
            "(",
            ")",
            "@",
            ":=",
            ":",
            "e",
            "E'",
            "FOR",
            "UPDATE",
            "nextval",
            ".",
            "é",
            "\u{1F600}",
            "DELETE",
            "EXPLAIN",
            "ANALYZE",
            "INTO",
            "0",
            "1.5",
            "\u{0}",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut text = String::new();
        for _ in 0..3000 {
            text.clear();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for _ in 0..state % 24 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
            }
            let _ = classify_sql(&text);
        }
    }

    #[test]
    fn every_dialect_rule_at_once_terminates() {
        let sql = "SELECT 'a\\b', \"c\\d\", E'x', a[1], 1 --x\n /* /* */ */ /*! 1 */ # c\n";
        read(sql);
        let (_, seen) = classify_with(sql, u8::MAX, SqlDialect::Any, None);
        assert_eq!(seen, u8::MAX);
        write(&format!("{sql}; DELETE FROM t"));
        read("SELECT 'a\\b', \"c\\d\", E'x', a[1], 1 --x\n /* c */ /*! 1 */ # c\n");
    }

    #[test]
    fn lexer_tokens() {
        let tokens = |sql| {
            let mut lexer = Lexer::new(sql, 0);
            std::iter::from_fn(move || lexer.next_token()).collect::<Vec<_>>()
        };
        assert_eq!(
            tokens("SELECT \"a\".`b`, 'c', $1, 2.5, $$d$$ /* e */ -- f\n:= g"),
            [
                Token::Word("SELECT"),
                Token::Quoted("a"),
                Token::Punct(b'.'),
                Token::Quoted("b"),
                Token::Punct(b','),
                Token::Literal,
                Token::Punct(b','),
                Token::Other,
                Token::Punct(b','),
                Token::Other,
                Token::Punct(b','),
                Token::Literal,
                Token::Assign,
                Token::Word("g"),
            ]
        );
        assert_eq!(
            tokens("SELECT 'x"),
            [Token::Word("SELECT"), Token::Unterminated]
        );
        assert_eq!(tokens("héllo"), [Token::Word("héllo")]);
    }

    #[test]
    fn base_reading_of_diesel_sql_is_lexed_once() {
        let sql = r#"SELECT "users"."id" FROM "users" WHERE ("users"."id" = $1)"#;
        assert_eq!(
            classify_with(sql, 0, SqlDialect::Any, None),
            (Some(Read), 0)
        );
        assert_eq!(
            classify_with("SELECT 'x", 0, SqlDialect::Any, None),
            (None, 0)
        );
        let (_, seen) = classify_with("SELECT 'a\\b' # c", 0, SqlDialect::Any, None);
        assert_eq!(seen, BACKSLASH_IN_SINGLE | HASH_COMMENTS);
    }

    #[test]
    fn type_id_hasher_passes_a_u64_through() {
        let mut hasher = TypeIdHasher::default();
        hasher.write_u64(0x1234_5678_9abc_def0);
        assert_eq!(hasher.finish(), 0x1234_5678_9abc_def0);
        let mut hasher = TypeIdHasher::default();
        hasher.write(&[1, 2, 3]);
        assert_eq!(hasher.finish(), 0x03_02_01);
        // Distinct type ids hash apart.
        let hash = |id: TypeId| {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<TypeIdHasher>::default().hash_one(id)
        };
        assert_ne!(hash(TypeId::of::<u8>()), hash(TypeId::of::<u16>()));
    }

    #[test]
    fn calls_of_the_applications_writing_functions_are_writes() {
        let functions = WritingFunctions::new(["audit_log", "app.bump", "Mixed"]);
        let with = |sql: &str, dialect| classify_sql_with(sql, dialect, &functions);
        for dialect in [
            Postgres,
            SqlDialect::Mysql,
            SqlDialect::Sqlite,
            SqlDialect::Any,
        ] {
            for sql in [
                "SELECT audit_log('x')",
                "SELECT AUDIT_LOG('x')",
                r#"SELECT "audit_log"('x')"#,
                "SELECT `audit_log`('x')",
                "SELECT public.audit_log('x')",
                "SELECT * FROM app.bump(1)",
                r#"SELECT "app"."bump"(1)"#,
                "SELECT bump (1)",
                "SELECT mixed()",
                "SELECT 1 FROM t WHERE x IN (SELECT audit_log(y) FROM u)",
                "WITH a AS (SELECT bump(1)) SELECT * FROM a",
                "SELECT 1; SELECT audit_log('x')",
            ] {
                assert_eq!(with(sql, dialect), Write, "{sql:?} under {dialect:?}");
                // Without the set (classify_sql_in / classify_sql): as before.
                assert_eq!(
                    classify_sql_in(sql, dialect),
                    Read,
                    "{sql:?} under {dialect:?}"
                );
            }
            for sql in [
                "SELECT other.bump(1)",
                "SELECT audit_log FROM t",
                "SELECT 'audit_log(1)'",
                "SELECT 1 /* bump(1) */",
                "SELECT t.audit_log_id FROM t",
                "SELECT lower(x) FROM t WHERE y IN (1, 2) AND EXISTS (SELECT 1)",
            ] {
                assert_eq!(with(sql, dialect), Read, "{sql:?} under {dialect:?}");
            }
        }
        // An empty set changes nothing.
        let none = WritingFunctions::default();
        assert_eq!(classify_sql_with("SELECT bump(1)", Postgres, &none), Read);
        assert_eq!(classify_sql_with("DELETE FROM t", Postgres, &none), Write);
    }

    #[test]
    fn keywords_before_parenthesis_are_sorted() {
        assert!(KEYWORDS_BEFORE_PARENTHESIS.windows(2).all(|w| w[0] < w[1]));
        assert!(KEYWORDS_BEFORE_PARENTHESIS.iter().all(|k| k.len() <= 9));
        assert!(is_keyword_before_parenthesis("in") && is_keyword_before_parenthesis("Within"));
        assert!(!is_keyword_before_parenthesis("audit_log"));
    }

    /// `classify_query` needs a backend's `RwBackend`: SQLite's (and MySQL's for one test).
    #[cfg(feature = "sqlite")]
    mod queries {
        use diesel::prelude::*;
        use diesel::sqlite::Sqlite;

        use super::*;

        diesel::table! {
            users (id) {
                id -> Integer,
                name -> Text,
            }
        }

        /// The static query id of `query`'s type.
        fn static_id<T: QueryId>(_: &T) -> Option<TypeId> {
            T::query_id()
        }

        fn renders() -> usize {
            RENDERS.with(Cell::get)
        }

        #[test]
        fn classify_query_caches_static_queries() {
            use users::dsl;
            // Each test runs on its own thread: the cache and the counter start empty.
            let query = dsl::users.select(dsl::id).filter(dsl::name.eq("a"));
            let id = static_id(&query);
            assert!(id.is_some(), "a plain select has a static query id");

            let before = renders();
            assert_eq!(classify_query::<Sqlite, _>(&query), Read);
            assert_eq!(renders(), before + 1);
            // Same type, other bind value: cached, not rendered again.
            let other = dsl::users.select(dsl::id).filter(dsl::name.eq("b"));
            assert_eq!(classify_query::<Sqlite, _>(&other), Read);
            assert_eq!(classify_query::<Sqlite, _>(&query), Read);
            assert_eq!(renders(), before + 1);
            assert_eq!(cached(SqlDialect::Sqlite, id.unwrap(), None), Some(Read));

            let delete = diesel::delete(dsl::users.filter(dsl::id.eq(1)));
            assert!(static_id(&delete).is_some());
            assert_eq!(classify_query::<Sqlite, _>(&delete), Write);
            assert_eq!(classify_query::<Sqlite, _>(&delete), Write);
            assert_eq!(renders(), before + 2);
            assert_eq!(
                cached(SqlDialect::Sqlite, static_id(&delete).unwrap(), None),
                Some(Write)
            );
        }

        #[test]
        fn classify_query_of_inserts() {
            use users::dsl;
            let insert = diesel::insert_into(dsl::users).values(dsl::name.eq("a"));
            assert_eq!(classify_query::<Sqlite, _>(&insert), Write);
            assert_eq!(classify_query::<Sqlite, _>(&insert), Write);
            let replace =
                diesel::replace_into(dsl::users).values((dsl::id.eq(1), dsl::name.eq("a")));
            assert_eq!(classify_query::<Sqlite, _>(&replace), Write);
        }

        #[test]
        fn classify_query_renders_dynamic_queries_every_time() {
            use users::dsl;
            let read_query = diesel::sql_query("SELECT 1");
            assert_eq!(static_id(&read_query), None);
            let before = renders();
            assert_eq!(classify_query::<Sqlite, _>(&read_query), Read);
            assert_eq!(classify_query::<Sqlite, _>(&read_query), Read);
            assert_eq!(renders(), before + 2);
            // Same type (SqlQuery), other text: the other answer.
            let write_query = diesel::sql_query("DELETE FROM users");
            assert_eq!(classify_query::<Sqlite, _>(&write_query), Write);
            assert_eq!(classify_query::<Sqlite, _>(&read_query), Read);
            assert_eq!(renders(), before + 4);

            let boxed = dsl::users.select(dsl::id).into_boxed::<Sqlite>();
            assert_eq!(classify_query::<Sqlite, _>(&boxed), Read);
            assert_eq!(classify_query::<Sqlite, _>(&boxed), Read);
            assert_eq!(renders(), before + 6);
        }

        /// A query with a static id whose rendering fails.
        #[derive(QueryId)]
        struct Unrenderable;

        impl diesel::query_builder::QueryFragment<Sqlite> for Unrenderable {
            fn walk_ast<'b>(
                &'b self,
                _: diesel::query_builder::AstPass<'_, 'b, Sqlite>,
            ) -> QueryResult<()> {
                Err(diesel::result::Error::QueryBuilderError("no".into()))
            }
        }

        #[test]
        fn classify_query_render_error_is_an_uncached_write() {
            let before = renders();
            assert_eq!(classify_query::<Sqlite, _>(&Unrenderable), Write);
            assert_eq!(classify_query::<Sqlite, _>(&Unrenderable), Write);
            assert_eq!(renders(), before + 2);
            assert_eq!(
                cached(SqlDialect::Sqlite, TypeId::of::<Unrenderable>(), None),
                None
            );
        }

        /// A query with a static id that renders to text whose kind depends on the dialect.
        #[derive(QueryId)]
        struct ExplainDelete;

        impl<DB: diesel::backend::Backend> diesel::query_builder::QueryFragment<DB> for ExplainDelete {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
            ) -> QueryResult<()> {
                out.push_sql("EXPLAIN DELETE FROM users");
                Ok(())
            }
        }

        #[cfg(feature = "mysql")]
        #[test]
        fn classify_query_caches_per_dialect() {
            let id = TypeId::of::<ExplainDelete>();
            assert_eq!(classify_query::<Sqlite, _>(&ExplainDelete), Read);
            assert_eq!(cached(SqlDialect::Sqlite, id, None), Some(Read));
            assert_eq!(cached(SqlDialect::Mysql, id, None), None);
            // The same query type on MySQL: its own answer, cached apart.
            assert_eq!(
                classify_query::<diesel::mysql::Mysql, _>(&ExplainDelete),
                Write
            );
            assert_eq!(cached(SqlDialect::Mysql, id, None), Some(Write));
            assert_eq!(classify_query::<Sqlite, _>(&ExplainDelete), Read);
        }

        diesel::define_sql_function! { fn audit_log(x: diesel::sql_types::Text) -> diesel::sql_types::Integer; }
        diesel::define_sql_function! { fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text; }

        #[test]
        fn classify_query_with_checks_cached_calls_against_the_set_as_it_is_now() {
            use users::dsl;
            let query = dsl::users.select(audit_log(dsl::name));
            let id = static_id(&query).unwrap();
            let functions = WritingFunctions::default();
            let before = renders();
            // Not (yet) known to write: a read, cached with its call.
            assert_eq!(classify_query_with::<Sqlite, _>(&query, &functions), Read);
            assert_eq!(classify_query::<Sqlite, _>(&query), Read);
            // The set learns it: the cached entry is a write from then on, not rendered again.
            functions.set_learned("main\taudit_log");
            assert_eq!(classify_query_with::<Sqlite, _>(&query, &functions), Write);
            assert_eq!(
                cached(SqlDialect::Sqlite, id, Some(&functions)),
                Some(Write)
            );
            // Without a set (classify_query) and with another set: as before.
            assert_eq!(classify_query::<Sqlite, _>(&query), Read);
            let other = WritingFunctions::new(["bump"]);
            assert_eq!(classify_query_with::<Sqlite, _>(&query, &other), Read);
            assert_eq!(renders(), before + 1);
            // A query calling only functions outside the set stays a read, and a cached write
            // stays a write.
            let plain = dsl::users.select(lower(dsl::name));
            assert_eq!(classify_query_with::<Sqlite, _>(&plain, &functions), Read);
            let delete = diesel::delete(dsl::users.filter(dsl::id.eq(1)));
            assert_eq!(classify_query_with::<Sqlite, _>(&delete, &functions), Write);
        }

        #[test]
        fn classify_query_with_classifies_dynamic_queries_with_the_set() {
            let functions = WritingFunctions::new(["app.bump"]);
            let query = diesel::sql_query("SELECT app.bump(1)");
            assert_eq!(classify_query_with::<Sqlite, _>(&query, &functions), Write);
            assert_eq!(classify_query::<Sqlite, _>(&query), Read);
            let query = diesel::sql_query("SELECT other.bump(1)");
            assert_eq!(classify_query_with::<Sqlite, _>(&query, &functions), Read);
        }

        #[test]
        fn classify_query_accepts_unsized_queries() {
            let query: Box<dyn QueryFragment<Sqlite>> = Box::new(diesel::sql_query("SELECT 1"));
            assert_eq!(
                classify_query::<Sqlite, dyn QueryFragment<Sqlite>>(&*query),
                Read
            );
        }
    }
}
