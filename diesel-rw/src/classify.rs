//! SQL text -> [`StatementKind`]: step 3 of the routing order ("a write statement goes to the
//! primary").
//!
//! [`classify_sql`] decides from the SQL text alone whether a statement may run on a read replica.
//! [`classify_query`] does the same for a Diesel query and remembers the answer per thread for
//! queries whose SQL is fixed by their type, so that the routing hot path is a hash lookup.
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
//!     state that only the primary connection has (`LAST_INSERT_ID()`).
//! * A statement that starts with `EXPLAIN`, `DESCRIBE` or `DESC` is a read unless it calls a
//!   function of [`WRITE_FUNCTIONS`]: a plain `EXPLAIN` does not run the statement it explains, so
//!   `EXPLAIN DELETE ...` is a read. With `ANALYZE` (`EXPLAIN ANALYZE ...`,
//!   `EXPLAIN (ANALYZE, BUFFERS) ...`, MySQL `EXPLAIN ANALYZE FORMAT=TREE ...`) the statement is run,
//!   and the statement after the options is classified instead.
//! * Every other statement is a write: `INSERT` (also `INSERT ... RETURNING`, which arrives through
//!   `load`), `UPDATE`, `DELETE`, `REPLACE`, `MERGE`, DDL, `GRANT`, `LOCK`, `CALL`, `DO`, `COPY`,
//!   `SET`, transaction control, `PRAGMA`, `VACUUM`, `ANALYZE`, `LISTEN`, `NOTIFY`, `ATTACH`, ...,
//!   any unknown word, and any statement that does not start with a word.
//! * Text that cannot be lexed (an unterminated string, quoted identifier or comment) is a write,
//!   unless it lexes under another database's rules (see "Lexing").
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
//! The text does not say which database it is for, and a few lexical rules differ between
//! PostgreSQL, MySQL/MariaDB and SQLite: whether a backslash escapes a quote (MySQL; PostgreSQL
//! only in `E'...'` or with `standard_conforming_strings = off`), whether `#` starts a comment
//! (MySQL), whether `--` needs a following space to start one (MySQL), whether block comments nest
//! (PostgreSQL), whether `/*! ... */` and `/*M! ... */` are executable comments whose content is
//! SQL (MySQL/MariaDB), and whether `[a]` is a quoted identifier (SQLite). When the text contains
//! any of these constructs it is lexed again under every combination of the rules that matter for
//! it, and it is a write if any reading makes it one. A reading under which the text does not lex
//! is set aside (that database rejects the text), but a complete write statement before the point
//! where it stops lexing still counts, since MySQL and SQLite run statements one by one. So
//! `'O\'Brien'` is a read (it lexes as MySQL), and `'a\'; DELETE FROM t; -- '` a write (the
//! `DELETE` runs on PostgreSQL). SQL as Diesel renders it contains none of these constructs, and is
//! lexed once. Dollar quotes are recognised under every reading (a MySQL identifier such as `$a$`
//! is read as one).
//!
//! # Caching
//!
//! Diesel gives a query type a static id ([`QueryId::query_id`]) when its SQL is fixed by its type;
//! Diesel's own prepared statement cache relies on that. [`classify_query`] keeps the kind of such
//! queries in a per-thread map from that id, so the SQL is rendered and lexed once per thread and
//! query type, and a later call is a thread-local hash lookup without allocation. A program has
//! finitely many query types, so the map stays small. The map is shared by all backends: the same
//! query type renders to the same kind of statement on each of them. Queries without a static id
//! (`sql_query`, boxed queries, `IN` lists of run-time length) are rendered and classified on every
//! call.
//!
//! # Limits
//!
//! The classification routes statements; it is not what keeps writes off replicas. A function of
//! the application's that writes (a PL/pgSQL function, a stored function) called from a `SELECT`
//! is not recognised and is sent to a replica, whose read-only session rejects it; route such
//! calls to the primary explicitly (`#[master]`, `pool.primary()`).

use std::any::TypeId;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use diesel::backend::Backend;
use diesel::query_builder::{QueryBuilder, QueryFragment, QueryId};

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
    "changes",           // SQLite: rows changed by the last statement
    "currval",           // PostgreSQL: session's last value of a sequence
    "dblink_exec",       // PostgreSQL dblink: runs a command
    "found_rows",        // MySQL: session state of the last SELECT
    "get_lock",          // MySQL
    "last_insert_id",    // MySQL: session state; with an argument, sets it
    "last_insert_rowid", // SQLite: session state
    "lastval",           // PostgreSQL, MariaDB: session state
    "lo_creat",          // PostgreSQL large objects
    "lo_create",
    "lo_from_bytea",
    "lo_import",
    "lo_put",
    "lo_truncate",
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
    "pg_create_restore_point",   // PostgreSQL: writes WAL
    "pg_current_wal_insert_lsn", // PostgreSQL: primary-only WAL positions
    "pg_current_wal_lsn",
    "pg_current_xact_id",              // PostgreSQL: assigns a transaction id
    "pg_current_xlog_insert_location", // PostgreSQL < 10 names of the WAL functions
    "pg_current_xlog_location",
    "pg_logical_emit_message", // PostgreSQL: writes WAL
    "pg_notify",               // PostgreSQL: NOTIFY
    "pg_switch_wal",           // PostgreSQL: writes WAL
    "pg_switch_xlog",
    "pg_try_advisory_lock", // PostgreSQL advisory locks
    "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
    "release_all_locks", // MySQL
    "release_lock",      // MySQL
    "row_count",         // MySQL: session state
    "set_config",        // PostgreSQL: sets a session setting
    "setval",            // PostgreSQL, MariaDB sequences
    "total_changes",     // SQLite: session state
    "txid_current",      // PostgreSQL: assigns a transaction id
    "uuid_short",        // MySQL: server counter
];

/// Classifies SQL text. Unknown or unparsable text is a [`StatementKind::Write`] (conservative).
///
/// The text is a read only when every `;`-separated statement in it is a plain read:
///
/// * one that starts (after any `(`) with `SELECT`, `WITH`, `VALUES`, `TABLE`, `SHOW` or `HELP`,
///   and contains no locking clause (`FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`, ...), no
///   `INTO`, no data-modifying statement (`WITH x AS (DELETE ...) SELECT ...`), and no call of a
///   function that writes, takes a lock or reads the writing session's state (`nextval`,
///   `pg_advisory_lock`, `GET_LOCK`, `LAST_INSERT_ID`, ...);
/// * a plain `EXPLAIN` or `DESCRIBE`, which does not run its statement (`EXPLAIN ANALYZE` does:
///   the statement it explains is classified instead).
///
/// Text that holds only whitespace and comments is a read. Keywords are case-insensitive. Strings,
/// quoted identifiers and comments are never read as SQL, under the lexical rules of PostgreSQL,
/// MySQL/MariaDB and SQLite alike: when these differ for the text, it is a write if any of them
/// makes it one. Does not allocate.
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
    // Lex under the base rules first; every pass reports which dialect rules changed how it read
    // the text, and the text is lexed again under each untried combination of those rules.
    let mut tried = [0_u64; 4]; // one bit per combination of the 8 rule flags
    let mut relevant: Rules = 0;
    let mut lexes = false;
    'search: loop {
        let mut rules = relevant;
        loop {
            let (slot, bit) = (usize::from(rules >> 6), rules & 63);
            if tried[slot] & (1 << bit) == 0 {
                tried[slot] |= 1 << bit;
                let (kind, seen) = classify_with(sql, rules);
                match kind {
                    Some(StatementKind::Write) => return StatementKind::Write,
                    Some(StatementKind::Read) => lexes = true,
                    None => {}
                }
                if seen & !relevant != 0 {
                    relevant |= seen;
                    continue 'search;
                }
            }
            if rules == 0 {
                // A read under every reading in which the text lexes; a write if it lexes in none.
                return if lexes {
                    StatementKind::Read
                } else {
                    StatementKind::Write
                };
            }
            // next smaller subset of `relevant`
            rules = (rules - 1) & relevant;
        }
    }
}

/// Classifies a Diesel query, caching the answer per thread when the query has a static id.
///
/// If `T::query_id()` is `Some(type_id)`, the kind is kept in a per-thread map from that id, so
/// the SQL is rendered only the first time on each thread; a later call is a thread-local hash
/// lookup that does not allocate. Otherwise the SQL is rendered on every call. The SQL is rendered
/// with `DB::QueryBuilder::default()`, [`QueryFragment::to_sql`] against `DB::default()` and
/// [`QueryBuilder::finish`], then passed to [`classify_sql`]. A render error gives
/// [`StatementKind::Write`] and is not cached.
#[must_use]
pub fn classify_query<DB, T>(source: &T) -> StatementKind
where
    DB: Backend + Default,
    DB::QueryBuilder: Default,
    T: QueryFragment<DB> + QueryId + ?Sized,
{
    let Some(id) = T::query_id() else {
        return render_and_classify::<DB, T>(source).unwrap_or(StatementKind::Write);
    };
    if let Some(kind) = cached(id) {
        return kind;
    }
    match render_and_classify::<DB, T>(source) {
        Some(kind) => {
            // `try_with`: during thread teardown the map may be gone; then just don't cache.
            let _ = KINDS.try_with(|kinds| {
                if let Ok(mut kinds) = kinds.try_borrow_mut() {
                    kinds.insert(id, kind);
                }
            });
            kind
        }
        None => StatementKind::Write,
    }
}

/// The cached kind of the query with static id `id`, if this thread has classified it.
#[inline]
fn cached(id: TypeId) -> Option<StatementKind> {
    KINDS
        .try_with(|kinds| kinds.try_borrow().ok()?.get(&id).copied())
        .ok()
        .flatten()
}

/// Renders `source` to SQL and classifies it; `None` if rendering failed.
fn render_and_classify<DB, T>(source: &T) -> Option<StatementKind>
where
    DB: Backend + Default,
    DB::QueryBuilder: Default,
    T: QueryFragment<DB> + ?Sized,
{
    #[cfg(test)]
    tests::RENDERS.with(|renders| renders.set(renders.get() + 1));
    let mut query_builder = DB::QueryBuilder::default();
    source.to_sql(&mut query_builder, &DB::default()).ok()?;
    Some(classify_sql(&query_builder.finish()))
}

thread_local! {
    /// Per-thread cache of [`classify_query`]: static query id -> kind.
    static KINDS: RefCell<HashMap<TypeId, StatementKind, BuildHasherDefault<TypeIdHasher>>> =
        RefCell::new(HashMap::default());
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

/// Classifies `sql` under one set of lexical `rules`: `None` if the text does not lex under them
/// before a write statement is complete. Also returns the rules that mattered.
///
/// A write statement followed by text that does not lex (`DELETE FROM t; SELECT 'x`) is a write:
/// MySQL and SQLite run the statements one by one.
fn classify_with(sql: &str, rules: Rules) -> (Option<StatementKind>, Rules) {
    let mut lexer = Lexer::new(sql, rules);
    loop {
        match statement(&mut lexer) {
            Verdict::Read { more: true } => {}
            Verdict::Read { more: false } => return (Some(StatementKind::Read), lexer.seen),
            Verdict::Unlexable => return (None, lexer.seen),
            Verdict::Write => {
                // A write statement is a write if it lexes to its end.
                let lexes = lexer.rest_of_statement_lexes();
                return (lexes.then_some(StatementKind::Write), lexer.seen);
            }
        }
    }
}

/// The outcome of one statement.
enum Verdict {
    /// The statement is a write (the rest of it is not consumed).
    Write,
    /// The statement holds an unterminated string, quoted identifier or comment: the text does not
    /// lex (under the rules in force).
    Unlexable,
    /// The statement is a read; `more` if a `;` ended it (more statements may follow).
    Read {
        /// Whether the statement ended at a `;` rather than at the end of the text.
        more: bool,
    },
}

/// First keywords of statements that are reads unless they contain a write (see [`scan_read`]).
const READ_STARTS: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE", "SHOW", "HELP"];
/// First keywords of statements that show a plan (see [`explain_options`]).
const EXPLAIN_STARTS: &[&str] = &["EXPLAIN", "DESCRIBE", "DESC"];
/// Keywords of a data-modifying statement nested in a read (`WITH x AS (DELETE ...)`).
const DATA_MODIFYING: &[&str] = &["INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE"];

/// Classifies the statement that starts at the lexer's position, and consumes it (up to and
/// including its `;`) unless it is a write.
fn statement(lexer: &mut Lexer<'_>) -> Verdict {
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
                    Ok(false) => return scan_read(lexer, false),
                    Err(verdict) => return verdict,
                }
            }
            Some(Token::Unterminated) => return Verdict::Unlexable,
            Some(_) => return Verdict::Write,
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
    if ahead.next_token() == Some(Token::Punct(b'(')) {
        *lexer = ahead;
        let mut depth = 1_usize;
        let mut previous = None;
        while depth > 0 {
            let token = lexer.next_token().ok_or(Verdict::Write)?;
            match token {
                Token::Punct(b'(') if previous.is_some_and(calls_write_function) => {
                    return Err(Verdict::Write);
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
    let mut previous = None;
    let mut before_previous = None;
    loop {
        let Some(token) = lexer.next_token() else {
            return Verdict::Read { more: false };
        };
        match token {
            Token::Punct(b';') => return Verdict::Read { more: true },
            Token::Unterminated => return Verdict::Unlexable,
            Token::Punct(b'(') if previous.is_some_and(calls_write_function) => {
                return Verdict::Write;
            }
            Token::Word(word)
                if full
                    && previous != Some(Token::Punct(b'.'))
                    && word_makes_write(word, lexer) =>
            {
                return Verdict::Write;
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
                return Verdict::Write;
            }
            _ => {}
        }
        before_previous = previous;
        previous = Some(token);
    }
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
        self.pos += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
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

    use diesel::prelude::*;
    use diesel::sqlite::Sqlite;

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

    #[test]
    fn explain() {
        read("EXPLAIN SELECT * FROM t");
        read("EXPLAIN DELETE FROM t");
        read("explain insert into t values (1)");
        read("EXPLAIN VERBOSE UPDATE t SET a = 1");
        read("EXPLAIN (COSTS OFF, FORMAT JSON) DELETE FROM t");
        read("EXPLAIN QUERY PLAN SELECT * FROM t");
        read("EXPLAIN FORMAT=JSON DELETE FROM t");
        read("EXPLAIN FORMAT = 'JSON' DELETE FROM t");
        read("EXPLAIN FORMAT JSON SELECT 1");
        write("EXPLAIN FORMAT; DELETE FROM t");
        write("EXPLAIN FORMAT=; DELETE FROM t");
        write("EXPLAIN (SELECT nextval('s'))");
        read("EXPLAIN (SELECT 1)");
        read("DESCRIBE SELECT * FROM t");
        write("EXPLAIN SELECT nextval('s')");
        write("EXPLAIN ANALYZE DELETE FROM t");
        write("EXPLAIN ANALYSE UPDATE t SET a = 1");
        write("explain analyze verbose insert into t values (1)");
        write("EXPLAIN (ANALYZE) DELETE FROM t");
        write("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) DELETE FROM t");
        write("EXPLAIN (FORMAT JSON, ANALYZE true) INSERT INTO t VALUES (1)");
        write("EXPLAIN ANALYZE FORMAT=TREE DELETE FROM t");
        write("EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE");
        write("EXPLAIN ANALYZE SELECT nextval('s')");
        write("EXPLAIN (ANALYZE");
        read("EXPLAIN ANALYZE SELECT * FROM t");
        read("EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t JOIN u ON u.id = t.id");
        read("EXPLAIN ANALYZE (SELECT 1) UNION (SELECT 2)");
        read("EXPLAIN ANALYZE WITH x AS (SELECT 1) SELECT * FROM x");
        read("EXPLAIN DELETE FROM t; SELECT 1");
        write("EXPLAIN SELECT 1; DELETE FROM t");
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
        let (_, seen) = classify_with(sql, u8::MAX);
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
        assert_eq!(classify_with(sql, 0), (Some(Read), 0));
        assert_eq!(classify_with("SELECT 'x", 0), (None, 0));
        let (_, seen) = classify_with("SELECT 'a\\b' # c", 0);
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
        assert_eq!(cached(id.unwrap()), Some(Read));

        let delete = diesel::delete(dsl::users.filter(dsl::id.eq(1)));
        assert!(static_id(&delete).is_some());
        assert_eq!(classify_query::<Sqlite, _>(&delete), Write);
        assert_eq!(classify_query::<Sqlite, _>(&delete), Write);
        assert_eq!(renders(), before + 2);
        assert_eq!(cached(static_id(&delete).unwrap()), Some(Write));
    }

    #[test]
    fn classify_query_of_inserts() {
        use users::dsl;
        let insert = diesel::insert_into(dsl::users).values(dsl::name.eq("a"));
        assert_eq!(classify_query::<Sqlite, _>(&insert), Write);
        assert_eq!(classify_query::<Sqlite, _>(&insert), Write);
        let replace = diesel::replace_into(dsl::users).values((dsl::id.eq(1), dsl::name.eq("a")));
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
        assert_eq!(cached(TypeId::of::<Unrenderable>()), None);
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
