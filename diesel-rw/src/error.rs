//! The one error type of diesel-rw.
//!
//! Every variant says what happened and what to do about it. Functions that return diesel's
//! [`QueryResult`](diesel::QueryResult) can use `?` on a [`Result<_, Error>`](Error) because
//! `diesel::result::Error: From<Error>`; the conversion keeps database errors as they are and
//! wraps the rest in [`diesel::result::Error::QueryBuilderError`], from which
//! [`Error::from_diesel`] recovers the original.

use std::time::Duration;

use crate::route::Role;

/// What went wrong in diesel-rw.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A connection URL could not be used. The URL in the message has its password redacted.
    #[error("invalid database URL `{url}`: {reason}; fix the URL")]
    InvalidUrl {
        /// The URL as given, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The builder was given settings that cannot work together.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A required environment variable is not set or not unicode.
    #[error(
        "environment variable `{name}` is not set: set it to a database URL (see RwPool::from_env)"
    )]
    MissingEnv {
        /// The variable's name.
        name: &'static str,
    },

    /// A write was about to be sent on a read-only route (a replica handle, a `#[read_only]`
    /// function or a read-only transaction). It was not sent. Use the primary
    /// (`pool.primary()`, `pool.get()` or `#[master]`) for writes.
    #[error("write rejected on a read-only route before it was sent: `{sql}`; use the primary (`#[master]`, `pool.primary()` or `pool.get()`) for writes")]
    WriteOnReadRoute {
        /// The statement's SQL text (binds are not included).
        sql: String,
    },

    /// No replica could serve a read and the pool is configured with
    /// [`Fallback::Error`](crate::Fallback::Error). Check the replicas, or use
    /// `Fallback::Primary` to let the primary serve reads while they are down.
    #[error("no replica available ({replicas} configured, all down or ejected) and the fallback policy is Error; check the replicas or use Fallback::Primary")]
    NoReplicaAvailable {
        /// How many replicas the pool has.
        replicas: usize,
    },

    /// The primary could not be reached: no connection within the checkout timeout, or the
    /// connection broke under a statement outside a transaction. In both cases the primary's
    /// connections made so far are retired, so the next statement connects anew, and fails as
    /// fast as the timeout allows while the primary stays down. Reads keep going to replicas.
    #[error("{}", primary_unavailable_message(*timeout, *maybe_applied, &**source))]
    PrimaryUnavailable {
        /// The timeout of the checkout that found no connection (it returns sooner when the
        /// server refuses outright); `None` when no pool was asked: a direct connection
        /// attempt failed, or the connection broke under the statement.
        timeout: Option<Duration>,
        /// Whether a write was in flight when its connection broke: the primary may have
        /// applied it before it went away, so check before running it again. `false`: nothing
        /// was applied (no connection, or a read).
        maybe_applied: bool,
        /// The pool's or the connection's error (connection URLs redacted).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Every connection of a node's pool was in use for the whole checkout timeout: the node is
    /// up but busy (no connection attempt failed). Nothing was sent, and the node is not
    /// counted as down (a busy replica is not ejected). Run it again, or size the pool for the
    /// load (`max_size`, `replica_max_size`) or wait longer (`connection_timeout`,
    /// `replica_timeout`).
    #[error("every connection of the pool of {role} `{node}` stayed in use for {waited:?}: the node is up but busy; nothing was sent: run it again, or give the pool more connections (max_size) or a longer checkout timeout")]
    PoolExhausted {
        /// The node's role.
        role: Role,
        /// The node's name (redacted URL).
        node: String,
        /// How long the checkout waited.
        waited: Duration,
    },

    /// A statement had no answer from its node within its deadline (`read_timeout` or
    /// `write_timeout`): the node may be hung. Its connection is discarded and the node's
    /// connections retired (a replica is ejected); a read outside a transaction already ran
    /// once more on another node before this is returned. With `maybe_applied` (a write), the
    /// node may still apply it: check before running it again.
    #[error("`{node}` gave no answer within {after:?}{}", if *maybe_applied { ": the write may still be applied there; check before running it again" } else { ": nothing was changed (a read); run it again, it goes to a node that answers" })]
    Timeout {
        /// The node (redacted URL).
        node: String,
        /// The deadline that passed.
        after: Duration,
        /// Whether it was a write, which the node may still apply.
        maybe_applied: bool,
    },

    /// A connection could not be checked out of a node's pool.
    #[error("could not get a connection to {role} `{node}` within {timeout:?}: {source}; check that the server is up and reachable at that URL (a replica's reads go to another node meanwhile)")]
    Checkout {
        /// The node's role.
        role: Role,
        /// The node's name (redacted URL).
        node: String,
        /// How long the checkout waited.
        timeout: Duration,
        /// The pool's error.
        #[source]
        source: r2d2::Error,
    },

    /// A connection could not be established.
    #[error("could not connect to {role} `{node}`: {source}; check that the server is up and reachable, and the URL's user, password and database")]
    Connect {
        /// The node's role.
        role: Role,
        /// The node's name (redacted URL).
        node: String,
        /// Diesel's connection error.
        #[source]
        source: diesel::ConnectionError,
    },

    /// The operation is not possible in the connection's current state, e.g. a write inside a
    /// transaction that was begun on a replica.
    #[error("{0}")]
    InvalidState(String),

    /// Double write: a write was applied on the first side of the pattern and failed on the
    /// second (strict mode; lenient mode journals it and returns the first side's result).
    ///
    /// Outside a transaction the write is applied on `applied` only: do not repeat it (it would
    /// apply twice there); it is journaled for repair of `failed`. Inside a transaction nothing
    /// is committed yet: roll the transaction back (returning this error from the transaction
    /// closure does) and nothing is applied on either side, so the whole transaction is safe to
    /// run again; committing it anyway commits it on `applied` alone
    /// ([`Error::PartialCommit`]).
    #[error("{}", secondary_write_failed_message(*applied, *failed, sql, *in_transaction, *outcome_unknown, source))]
    SecondaryWriteFailed {
        /// The side that applied the write.
        applied: crate::double_write::Side,
        /// The side that failed.
        failed: crate::double_write::Side,
        /// The statement's SQL text (binds are not included).
        sql: String,
        /// Whether it was inside a transaction (then nothing is committed yet).
        in_transaction: bool,
        /// The connection to `failed` broke while the write was in flight: it may be applied
        /// there after all (check before repairing).
        outcome_unknown: bool,
        /// The second side's error.
        #[source]
        source: Box<Error>,
    },

    /// Double write: a transaction committed on one side and not on the other. It is committed
    /// on `committed`: do not run it again. Its writes are journaled for repair of `failed`.
    #[error("double write: the transaction committed on the {committed}, not on the {failed}: {reason}; do not run it again (it would apply twice on the {committed}); repair the {failed}: its {writes} write(s) are journaled")]
    PartialCommit {
        /// The side where the transaction committed.
        committed: crate::double_write::Side,
        /// The side where it did not.
        failed: crate::double_write::Side,
        /// How many write statements the transaction had (each is journaled).
        writes: usize,
        /// Why the other side did not commit.
        reason: String,
    },

    /// Double write: a step failed on one side and was undone on the other, so nothing is
    /// applied on either side: running it again is safe. Returned when the second side cannot
    /// `BEGIN` (the first side's `BEGIN` is rolled back), and when the first side refuses the
    /// `COMMIT` (the second side's transaction is rolled back). For a `SAVEPOINT` (strict mode),
    /// the enclosing transaction can no longer commit on both sides: roll it back and run it
    /// again whole.
    #[error("{}", nothing_applied_message(what, *failed, source))]
    NothingApplied {
        /// What failed (`BEGIN`, `COMMIT`).
        what: &'static str,
        /// The side where it failed.
        failed: crate::double_write::Side,
        /// That side's error.
        #[source]
        source: Box<Error>,
    },

    /// Double write: the connection to the first side broke while a write was in flight, so it
    /// may or may not be applied there; it was not sent to the second side. Check the first
    /// side before running it again (outside a transaction it is journaled for repair).
    #[error("double write: the connection to `{node}` broke while `{sql}` was in flight: it may be applied there{detail}; check whether it is before running it again: {source}")]
    WriteOutcomeUnknown {
        /// The node (redacted URL) whose connection broke.
        node: String,
        /// The statement's SQL text (binds are not included).
        sql: String,
        /// Which side that is, and what was not sent where.
        detail: String,
        /// The error that broke the connection.
        #[source]
        source: Box<Error>,
    },

    /// The reply to a `COMMIT` was lost (the connection broke after it was sent): the
    /// transaction may or may not have committed on `node`. Check on that node whether its
    /// writes are there before running it again.
    #[error("the reply to COMMIT on `{node}` was lost: the transaction may have committed there{detail}; check whether its writes are there before running it again: {source}")]
    CommitOutcomeUnknown {
        /// The node (redacted URL) whose reply was lost.
        node: String,
        /// What else is known (for a double write: the other side was rolled back).
        detail: String,
        /// The error that broke the connection.
        #[source]
        source: Box<Error>,
    },

    /// The connection broke (or passed its deadline) while the transaction was being
    /// committed, and it is known not to have committed: the `COMMIT` was never sent, or the
    /// server, asked afterwards (PostgreSQL `txid_status`), reports it rolled back. None of its
    /// writes are committed, so running the whole transaction again is safe. What broke is the
    /// [`source`](std::error::Error::source).
    #[error("the connection to `{node}` broke while the transaction was being committed, and it did not commit (the COMMIT never reached the server, or the server reports the transaction rolled back): none of its writes are committed; it is safe to run the whole transaction again")]
    NotCommitted {
        /// The node (redacted URL).
        node: String,
        /// The error that broke the connection.
        #[source]
        source: Box<Error>,
    },

    /// A double-write pattern switch that skips a phase (or goes past the first or last one,
    /// then `from == to`). Nothing was switched.
    #[error("{}", crate::double_write::transition_message(*from, *to))]
    InvalidTransition {
        /// The current pattern.
        from: crate::double_write::Pattern,
        /// The pattern asked for.
        to: crate::double_write::Pattern,
    },

    /// A double-write pattern name that is not one of the four, in none of the spellings that
    /// [`Pattern`](crate::double_write::Pattern)'s `FromStr` accepts.
    #[error("unknown double-write pattern `{name}`: expected one of src_only, src_first, dst_first, dst_only (ASCII case ignored; the two words joined by one `_`, `-` or space, or by nothing: src_first, SrcFirst, SRC-FIRST and `src first` all name src_first)")]
    UnknownPattern {
        /// The name as given.
        name: String,
    },

    /// A side of a double write could not be connected. Nothing was sent to it.
    #[error(
        "could not connect to the double-write {side} `{node}`: {source}; nothing was sent to it"
    )]
    SideUnavailable {
        /// The side.
        side: crate::double_write::Side,
        /// Its URL, password redacted.
        node: String,
        /// Diesel's connection error.
        #[source]
        source: diesel::ConnectionError,
    },

    /// No double-write connection could be checked out of the pool in time. Nothing was sent;
    /// the first side of the current pattern must be reachable.
    #[error("could not get a double-write connection within {timeout:?}: {reason}; nothing was sent; check that the first side of the current pattern is reachable")]
    DoubleWriteUnavailable {
        /// How long the checkout waited.
        timeout: Duration,
        /// The pool's error.
        reason: String,
    },

    /// The database returned an error.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),

    /// Double write: the step of the pattern to `DstFirst`, where the destination starts to
    /// generate the keys, was refused because some of the destination's generated-key
    /// counters (sequences, `AUTO_INCREMENT`) are behind the source's: the destination would
    /// issue keys the source has already issued. Nothing was switched. Run
    /// [`sync_sequences`](crate::double_write::DoubleWriteConnection::sync_sequences), then
    /// advance again; or, if every insert writes its keys explicitly, advance with
    /// [`advance_pattern_forced`](crate::double_write::DoubleWriteConnection::advance_pattern_forced).
    ///
    /// ```
    /// use diesel_rw::Error;
    ///
    /// fn explain(err: &Error) {
    ///     if let Error::KeyCountersBehind { behind } = err {
    ///         for lag in behind {
    ///             // e.g. `public.users.id (sequence public.users_id_seq): source 500, destination 10`
    ///             eprintln!("{lag}");
    ///         }
    ///     }
    /// }
    /// # explain(&Error::InvalidState("example".into()));
    /// ```
    #[error("{}", crate::double_write::counters_behind_message(behind))]
    KeyCountersBehind {
        /// Each counter of the destination that is behind, with the source's (both as read).
        behind: Vec<crate::double_write::CounterLag>,
    },

    /// Migration toolkit: the table named is not in the database (or is not a table). Nothing
    /// was read or written. Check the name: `table` or `schema.table` (PostgreSQL resolves an
    /// unqualified name through the `search_path`; MariaDB looks in the connection's database).
    #[error("table `{table}` not found: check its name (`table` or `schema.table`) and the database the connection is on; nothing was written")]
    UnknownTable {
        /// The name as given.
        table: String,
    },

    /// Migration toolkit: a column named (a key, a "changed at" column) is not a column of the
    /// table. Nothing was read or written.
    #[error("table `{table}` has no column `{column}`: check the column names given to TableSpec; nothing was written")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The column named.
        column: String,
    },

    /// Migration toolkit: the table has no primary key, so its rows cannot be walked in key
    /// order nor matched between the two sides. Nothing was read or written. Add a primary key,
    /// or name a unique, not-null key with `TableSpec::key`.
    #[error("table `{table}` has no primary key: add one, or name a unique, not-null key with TableSpec::key([...]); nothing was written")]
    NoPrimaryKey {
        /// The table.
        table: String,
    },

    /// Migration toolkit: the destination's table lacks columns that the source's has, so rows
    /// cannot be copied whole. Nothing was written. Add the columns on the destination.
    #[error("destination table `{table}` has no column(s) {}: add them on the destination (the source's table has them); nothing was written", missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))]
    DestinationMissingColumns {
        /// The destination's table.
        table: String,
        /// The source's columns that the destination lacks.
        missing: Vec<String>,
    },

    /// Migration toolkit: the checkpoint of that name belongs to another table (or to another
    /// key of the table), so resuming from it would skip or repeat rows. Nothing was written.
    /// Give this backfill its own checkpoint name, or restart it (which discards the
    /// checkpoint).
    #[error("checkpoint `{checkpoint}` is of table `{found}`, not of `{expected}`: give this backfill its own checkpoint name (Backfill::checkpoint_name) or restart it; nothing was written")]
    CheckpointMismatch {
        /// The checkpoint's name.
        checkpoint: String,
        /// The table (and key) of this run.
        expected: String,
        /// The table (and key) the checkpoint records.
        found: String,
    },

    /// Migration toolkit, verify: a column's type is one the verifier cannot compare by value
    /// (e.g. PostgreSQL `interval`, `money`, arrays; MariaDB spatial types). Nothing was read
    /// or written. Name how to compare it (`Verify::compare_as`, e.g. `Canon::Plain` for a
    /// type whose text output is exact), or leave the table out.
    #[error("table `{table}`: the verifier cannot compare column `{column}` of type `{type_name}` by value: compare it as another type with Verify::compare_as (e.g. Canon::Plain: the server's text output), or leave the table out; nothing was read or written")]
    UncomparableType {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Its declared type.
        type_name: String,
    },

    /// Migration toolkit, verify: a column has types on the two sides whose values cannot be
    /// compared (e.g. text on one, integer on the other). Nothing was read or written. Make the
    /// types agree, or compare the column as one class on both (`Verify::compare_as`).
    #[error("table `{table}`: column `{column}` is `{source_type}` on the source and `{destination_type}` on the destination, which do not compare by value: make the types agree or use Verify::compare_as; nothing was read or written")]
    ColumnTypesDiffer {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Its type on the source (and how it would be compared).
        source_type: String,
        /// Its type on the destination.
        destination_type: String,
    },

    /// Migration toolkit, verify and repair: the table's key is not the same on the two
    /// sides, so their rows cannot be matched. Nothing was read or written. Give both the same
    /// primary key, or name the key with `TableSpec::key`.
    #[error("table `{table}` has the key ({}) on the source and ({}) on the destination: rows cannot be matched; give both the same primary key or name one with TableSpec::key; nothing was read or written", source_key.join(", "), destination_key.join(", "))]
    KeysDiffer {
        /// The table.
        table: String,
        /// The source's key columns.
        source_key: Vec<String>,
        /// The destination's key columns.
        destination_key: Vec<String>,
    },

    /// Migration control: this switch follows the phase kept in a control table, which every
    /// instance of the service applies; a switch of this process alone would take it away from
    /// the fleet. Nothing was switched: step the migration in the table (`diesel-rw migrate
    /// advance|retreat`, or [`Fleet`](crate::migrate::control::Fleet)).
    #[error("the pattern of migration `{migration}` is kept in the control table `{table}`, which every instance follows: step it there (`diesel-rw migrate advance|retreat`, or Fleet::advance / Fleet::retreat); nothing was switched")]
    PatternControlled {
        /// The migration.
        migration: String,
        /// The control table.
        table: String,
    },

    /// Migration control: the migration is not in the control table. Nothing was changed.
    #[error("no migration `{migration}` in the control table `{table}`: start it with `diesel-rw migrate init` (or Fleet::init), or check its name and the database; nothing was changed")]
    UnknownMigration {
        /// The migration.
        migration: String,
        /// The control table.
        table: String,
    },

    /// Migration control: the control table could not be read when an instance started, so
    /// it does not start (it never guesses a phase). Check the source database.
    #[error("could not read the phase of migration `{migration}` from the control table `{table}`: {reason}; an instance does not start without it (it never guesses a phase): check that the source database is up and the table readable, then start again")]
    ControlUnreadable {
        /// The migration.
        migration: String,
        /// The control table.
        table: String,
        /// What failed (URL passwords redacted).
        reason: String,
    },

    /// Migration control: a step was not taken because live instances have not applied the
    /// current phase yet (a step then could put two instances two phases apart). Nothing was
    /// changed. Wait for them (their next poll), or stop them: a stopped instance counts as
    /// gone once its heartbeat is older than the limit.
    #[error("migration `{migration}`: not stepped: {} live instance(s) have not applied the current phase (epoch {epoch}) yet: {}; wait for their next poll and step again (or wait with a timeout), or stop them: an instance counts as gone once its heartbeat is older than the limit; nothing was changed", lagging.len(), lagging.join("; "))]
    InstancesLag {
        /// The migration.
        migration: String,
        /// The epoch they have not applied.
        epoch: i64,
        /// Each lagging instance: its id, host, pid, the phase and epoch it applies, its
        /// heartbeat's age.
        lagging: Vec<String>,
    },

    /// Migration control: a cutover gate refused the step forward. Nothing was changed. Fix
    /// what the gate names and step again, or force the step with a reason (recorded in the
    /// control table's log).
    #[error("migration `{migration}`: not advanced from {from} to {to}: {gate}: {reason}; fix it and step again, or force the step with a reason (`--force --reason ..`), which is recorded; nothing was changed")]
    GateRefused {
        /// The migration.
        migration: String,
        /// The phase it is in.
        from: crate::double_write::Pattern,
        /// The phase the step was to.
        to: crate::double_write::Pattern,
        /// The gate (`destination schema`, `backfill`, `verify`, `journal`, `key counters`).
        gate: String,
        /// Why it refused.
        reason: String,
    },

    /// Migration control: another step of the same migration came first (two operators at
    /// once); this one changed nothing. Check the status and step again if still needed.
    #[error("migration `{migration}`: another step came first (epoch {expected_epoch} is now {found_epoch}, phase {found}); this one changed nothing: check `diesel-rw migrate status` and step again if still needed")]
    StepConflict {
        /// The migration.
        migration: String,
        /// The epoch this step was based on.
        expected_epoch: i64,
        /// The epoch found.
        found_epoch: i64,
        /// The phase found.
        found: crate::double_write::Pattern,
    },
}

/// The result type of diesel-rw's own operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Recovers a diesel-rw error that travelled through diesel's error type.
    ///
    /// Inside diesel's [`Connection`](diesel::Connection) methods, diesel-rw errors are carried
    /// as [`diesel::result::Error::QueryBuilderError`]; this gives the original back, or wraps
    /// any other diesel error in [`Error::Database`].
    ///
    /// ```
    /// use diesel_rw::Error;
    /// let e: diesel::result::Error = Error::NoReplicaAvailable { replicas: 2 }.into();
    /// assert!(matches!(Error::from_diesel(e), Error::NoReplicaAvailable { replicas: 2 }));
    /// ```
    pub fn from_diesel(error: diesel::result::Error) -> Error {
        match error {
            diesel::result::Error::QueryBuilderError(inner) if inner.is::<Error>() => {
                *inner.downcast::<Error>().expect("checked by is::<Error>()")
            }
            other => Error::Database(other),
        }
    }

    /// A node's connection could not be made: for the primary, [`Error::PrimaryUnavailable`]
    /// (nothing was sent); for a replica, [`Error::Connect`].
    pub(crate) fn connect_failed(role: Role, node: &str, source: diesel::ConnectionError) -> Error {
        match role {
            Role::Primary => Error::PrimaryUnavailable {
                timeout: None,
                maybe_applied: false,
                source: Box::new(source),
            },
            Role::Replica => Error::Connect {
                role,
                node: node.to_owned(),
                source,
            },
        }
    }

    /// Whether this is [`Error::WriteOnReadRoute`].
    pub fn is_write_on_read_route(&self) -> bool {
        matches!(self, Error::WriteOnReadRoute { .. })
    }
}

impl From<Error> for diesel::result::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Database(inner) => inner,
            other => diesel::result::Error::QueryBuilderError(Box::new(other)),
        }
    }
}

/// The message of [`Error::PrimaryUnavailable`].
fn primary_unavailable_message(
    timeout: Option<Duration>,
    maybe_applied: bool,
    source: &(dyn std::error::Error + Send + Sync),
) -> String {
    // libpq's messages span lines ("...unexpectedly\n\tThis probably means..."): one line.
    let source = source
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match (timeout, maybe_applied) {
        (Some(timeout), _) => format!(
            "primary unavailable: no connection (checkout timeout {timeout:?}): {source}; \
             nothing was sent, run it again when the primary is back"
        ),
        (None, false) => format!(
            "primary unavailable: {source}; nothing was applied, run it again when the primary \
             is back"
        ),
        (None, true) => format!(
            "primary unavailable: the connection broke while a write was in flight: {source}; \
             the primary may have applied it before it went away: check before running it again"
        ),
    }
}

/// Whether a diesel error means the connection itself failed (the server went away, the
/// socket broke), as opposed to an error in the statement. diesel's `ClosedConnection` always
/// does; otherwise the message tells, as each driver words it (libpq, mysqlclient,
/// tokio-postgres, mysql_async). `UnableToSendCommand` alone does not: diesel and diesel-async
/// also use it for statements that could not be encoded.
pub(crate) fn is_connection_error(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error as E};
    match error {
        E::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        E::DatabaseError(_, info) => is_connection_message(info.message()),
        // A COMMIT that failed, then a ROLLBACK that failed too (MariaDB: "server has gone
        // away" twice): the commit's error tells.
        E::RollbackErrorOnCommit { commit_error, .. } => is_connection_error(commit_error),
        _ => false,
    }
}

/// Whether an error message, as a driver words it, says that the connection failed.
pub(crate) fn is_connection_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    // mysql_async's I/O errors; a storage engine's I/O error is worded otherwise.
    m.starts_with("input/output error") || CONNECTION_FAILURES.iter().any(|n| m.contains(n))
}

/// How drivers word a failed connection, lowercase.
const CONNECTION_FAILURES: &[&str] = &[
    // libpq and the PostgreSQL server
    "server closed the connection",
    "terminating connection",
    "connection refused",
    "connection to server at",
    "could not connect to server",
    "no connection to the server",
    "could not receive data",
    "could not send data",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "ssl syscall error",
    "eof detected",
    // tokio-postgres
    "error communicating with the server",
    "connection closed",
    // mysqlclient and mysql_async
    "lost connection",
    "server has gone away",
    "can't connect to",
    "connection to the server is closed",
    // the operating system
    "broken pipe",
    "connection reset",
];

/// The message of [`Error::NothingApplied`].
fn nothing_applied_message(
    what: &str,
    failed: crate::double_write::Side,
    source: &Error,
) -> String {
    if what == "SAVEPOINT" {
        format!(
            "double write: SAVEPOINT failed on the {failed}: {source}; it was undone on the other side, but the open transaction can no longer commit on both sides: roll the whole transaction back (nothing is committed on either side) and run it again"
        )
    } else {
        format!(
            "double write: {what} failed on the {failed}: {source}; nothing is applied on either side: safe to run it again"
        )
    }
}

/// The message of [`Error::SecondaryWriteFailed`]: what holds, in or out of a transaction.
fn secondary_write_failed_message(
    applied: crate::double_write::Side,
    failed: crate::double_write::Side,
    sql: &str,
    in_transaction: bool,
    outcome_unknown: bool,
    source: &Error,
) -> String {
    if outcome_unknown && !in_transaction {
        return format!(
            "double write: `{sql}` was applied on the {applied}; on the {failed} the connection broke while it was in flight, so it may or may not be applied there: {source}; do not repeat it (it would apply twice on the {applied}); check the {failed} and repair it: the write is journaled"
        );
    }
    if in_transaction {
        format!(
            "double write: `{sql}` ran on the {applied} inside the open transaction and failed on the {failed}: {source}; nothing is committed: roll the transaction back (returning this error from the transaction does) and nothing is applied on either side: safe to run the whole transaction again (committing it anyway commits it on the {applied} alone)"
        )
    } else {
        format!(
            "double write: `{sql}` was applied on the {applied}, not on the {failed}: {source}; do not repeat it (it would apply twice on the {applied}); repair the {failed}: the write is journaled"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::is_connection_error;
    use diesel::result::{DatabaseErrorKind as K, Error as E};

    fn db(kind: K, message: &str) -> E {
        E::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn connection_failures_as_drivers_word_them() {
        for (kind, message) in [
            (K::ClosedConnection, "anything"),
            (
                K::UnableToSendCommand,
                "server closed the connection unexpectedly",
            ),
            (
                K::Unknown,
                "FATAL: terminating connection due to administrator command",
            ),
            (
                K::UnableToSendCommand,
                "error communicating with the server: Connection reset by peer (os error 104)",
            ),
            (K::UnableToSendCommand, "connection closed"),
            (K::Unknown, "Lost connection to MySQL server during query"),
            (K::Unknown, "MySQL server has gone away"),
            (
                K::Unknown,
                "Input/output error: Input/output error: connection closed",
            ),
            (K::Unknown, "Input/output error: broken pipe"),
        ] {
            assert!(is_connection_error(&db(kind, message)), "{message}");
        }
    }

    #[test]
    fn primary_unavailable_says_whether_a_write_may_have_applied() {
        use super::Error;
        let broke = Error::PrimaryUnavailable {
            timeout: None,
            maybe_applied: true,
            source: "server closed the connection unexpectedly\n\tThis probably means".into(),
        };
        assert_eq!(
            broke.to_string(),
            "primary unavailable: the connection broke while a write was in flight: server \
             closed the connection unexpectedly This probably means; the primary may have \
             applied it before it went away: check before running it again"
        );
        let down = Error::PrimaryUnavailable {
            timeout: Some(std::time::Duration::from_millis(500)),
            maybe_applied: false,
            source: "Connection refused".into(),
        };
        assert!(down.to_string().contains("checkout timeout 500ms"));
        assert!(down.to_string().contains("nothing was sent"));
    }

    #[test]
    fn statement_errors_are_not_connection_failures() {
        for (kind, message) in [
            (
                K::UnableToSendCommand,
                "error serializing parameter 0: out of range",
            ),
            (
                K::UnableToSendCommand,
                "SQLite functions cannot take more than 127 parameters",
            ),
            (
                K::Unknown,
                "Got error 5 \"Input/output error\" from storage engine InnoDB",
            ),
            (
                K::UniqueViolation,
                "duplicate key value violates unique constraint",
            ),
            (
                K::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction",
            ),
        ] {
            assert!(!is_connection_error(&db(kind, message)), "{message}");
        }
        assert!(!is_connection_error(&E::NotFound));
    }
}
