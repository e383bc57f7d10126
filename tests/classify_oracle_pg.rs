//! The classifier's oracle on PostgreSQL: every statement of tests/corpus/postgres.sql runs on
//! the primary 55432 inside `BEGIN READ ONLY` (in a session whose transactions default to
//! read-only) and on the hot standby 55433, and is always rolled back; no statement that
//! `classify_sql_in(.., SqlDialect::Postgres)` calls a read may be refused by either as a write
//! (SQLSTATE 25006 read_only_sql_transaction, or "during recovery" on the standby). The objects
//! live in a schema of the run's own, dropped afterwards.
#![cfg(feature = "postgres")]

mod common;
#[path = "common/classify_oracle.rs"]
#[allow(dead_code)]
mod oracle;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_rw::SqlDialect;
use oracle::{Judge, Outcome};

/// Runs statements read-only on one server, each in a transaction that is rolled back.
struct PgJudge {
    name: String,
    url: String,
    /// Run on every new session and after each statement's `DISCARD ALL`.
    session: String,
    conn: PgConnection,
}

impl PgJudge {
    fn new(name: &str, url: &str, session: String) -> Self {
        let mut conn = PgConnection::establish(url).unwrap();
        conn.batch_execute(&session).unwrap();
        PgJudge {
            name: name.to_owned(),
            url: url.to_owned(),
            session,
            conn,
        }
    }

    fn reconnect(&mut self) {
        self.conn = PgConnection::establish(&self.url).unwrap();
        self.conn.batch_execute(&self.session).unwrap();
    }

    fn outcome(result: QueryResult<()>) -> Outcome {
        match result {
            Ok(()) => Outcome::Accepted,
            Err(Error::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, info)) => {
                Outcome::Refused(info.message().to_owned())
            }
            Err(e) => {
                let message = e.to_string();
                // The standby's refusals of WAL-writing functions: 55000 "recovery is in
                // progress", and "cannot ... during recovery".
                if message.contains("recovery is in progress")
                    || message.contains("during recovery")
                {
                    Outcome::Refused(message)
                } else {
                    Outcome::Other(message)
                }
            }
        }
    }

    fn run_once(&mut self, sql: &str) -> Outcome {
        let result = self
            .conn
            .batch_execute("BEGIN READ ONLY")
            .and_then(|()| self.conn.batch_execute(sql));
        let mut outcome = Self::outcome(result);
        if let Outcome::Other(message) = &outcome {
            if message.contains("cannot run inside a transaction block")
                || message.contains("cannot be executed inside a transaction block")
            {
                // VACUUM, CREATE DATABASE, ...: on their own, in a read-only session.
                let _ = self.conn.batch_execute("ROLLBACK");
                outcome = Self::outcome(self.conn.batch_execute(sql));
            }
        }
        outcome
    }
}

impl Judge for PgJudge {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn judge(&mut self, sql: &str) -> Outcome {
        let mut outcome = self.run_once(sql);
        if matches!(&outcome, Outcome::Other(m) if m.contains("conflict with recovery")) {
            let _ = self.conn.batch_execute("ROLLBACK");
            outcome = self.run_once(sql);
        }
        // A COPY that started leaves the connection in COPY mode: start afresh.
        let copying = outcome == Outcome::Accepted && sql.to_ascii_uppercase().contains("COPY");
        if copying
            || self.conn.batch_execute("ROLLBACK").is_err()
            || self.conn.batch_execute("DISCARD ALL").is_err()
            || self.conn.batch_execute(&self.session).is_err()
        {
            self.reconnect();
        }
        outcome
    }
}

/// Runs `sql` read-write on `url`, panicking with the statement on failure.
fn exec(conn: &mut PgConnection, sql: &str) {
    conn.batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Drops the run's schema when the test ends, whatever happens.
struct Teardown {
    url: String,
    statements: Vec<String>,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.url) {
            for sql in &self.statements {
                if let Err(e) = conn.batch_execute(sql) {
                    eprintln!("teardown: {sql}: {e}");
                }
            }
        }
    }
}

#[test]
fn postgres_refuses_no_statement_the_classifier_calls_a_read() {
    let (primary, standby) = (common::pg::primary_url(), common::pg::replica_url());
    let mut p = match PgConnection::establish(&primary) {
        Ok(c) => c,
        Err(e) => return common::unavailable("PostgreSQL", &e.to_string()),
    };
    if let Err(e) = PgConnection::establish(&standby) {
        return common::unavailable("PostgreSQL", &format!("standby: {e}"));
    }
    let prefix = oracle::prefix();
    let corpus = oracle::load("postgres.sql", &prefix, "-- corpus");
    let _teardown = Teardown {
        url: primary.clone(),
        statements: corpus.teardown.clone(),
    };
    for sql in &corpus.setup {
        exec(&mut p, sql);
    }
    let schema = format!("{prefix}s");
    // The standby has the schema and its rows.
    common::pg::wait_replayed(&primary, &standby);
    let mut s = PgConnection::establish(&standby).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s
        .batch_execute(&format!("SELECT 1 FROM {schema}.{prefix}posts"))
        .is_err()
    {
        assert!(Instant::now() < deadline, "the standby lacks {schema}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let base = format!(
        "SET search_path = {schema}, public; SET statement_timeout = '10s'; \
         SET lock_timeout = '2s'; SET client_min_messages = error"
    );
    let mut judges: Vec<Box<dyn Judge>> = vec![
        Box::new(PgJudge::new(
            "primary 55432, BEGIN READ ONLY",
            &primary,
            format!("{base}; SET default_transaction_read_only = on"),
        )),
        Box::new(PgJudge::new("hot standby 55433", &standby, base)),
    ];
    oracle::check_judges(&mut judges, &format!("DELETE FROM {prefix}log"), "SELECT 1");
    // What a pool learns from the catalog: the corpus's VOLATILE functions among them.
    let functions = diesel_rw::WritingFunctions::default();
    functions.learn_from(&mut p).unwrap();
    assert!(functions.contains(&format!("{schema}.{prefix}write")));
    oracle::run(
        "PostgreSQL",
        SqlDialect::Postgres,
        &corpus,
        &mut judges,
        &functions,
    );

    // Nothing the corpus ran changed the tables.
    let count = |conn: &mut PgConnection, table: &str| -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT count(*) FROM {schema}.{prefix}{table})"
        )))
        .get_result(conn)
        .unwrap()
    };
    assert_eq!(count(&mut p, "users"), 20);
    assert_eq!(count(&mut p, "posts"), 50);
    assert_eq!(count(&mut p, "log"), 0);
}

/// PostgreSQL's functions of the kinds that write (WAL, transaction ids, OIDs, sequences, locks,
/// large objects, index summaries, replication slots and origins, notifications), as a pattern
/// over `pg_proc`'s names: each catalog function it matches must be in `WRITE_FUNCTIONS` or in
/// [`FAMILY_READS`], so a release that adds one fails here until it is classified.
const FAMILIES: &str = "^(pg_advisory_|pg_try_advisory_|lo_|loread$|lowrite$|brin_(de)?summarize|\
    gin_clean|pg_current_(wal|xact|snapshot|xlog)|txid_current|pg_walfile|pg_switch_|pg_create_|\
    pg_drop_|pg_copy_|pg_logical_|pg_replication_|nextval$|setval$|currval$|lastval$|pg_nextoid$|\
    pg_import_|pg_notify$|pg_backup_|pg_promote$|pg_wal_replay)";

/// The functions of [`FAMILIES`] that a replica may run, and why.
const FAMILY_READS: &[(&str, &str)] = &[
    ("lo_close", "reads a large object"),
    ("lo_export", "reads a large object"),
    ("lo_get", "reads a large object"),
    ("lo_lseek", "reads a large object"),
    ("lo_lseek64", "reads a large object"),
    ("lo_tell", "reads a large object"),
    ("lo_tell64", "reads a large object"),
    ("loread", "reads a large object"),
    ("pg_current_snapshot", "assigns no transaction id"),
    (
        "pg_current_xact_id_if_assigned",
        "assigns no transaction id",
    ),
    ("txid_current_if_assigned", "assigns no transaction id"),
    ("txid_current_snapshot", "assigns no transaction id"),
    ("pg_replication_origin_oid", "reads the origins"),
    ("pg_replication_origin_progress", "reads the origins"),
    (
        "pg_replication_origin_session_is_setup",
        "reads the session",
    ),
    (
        "pg_replication_origin_session_progress",
        "reads the session",
    ),
    (
        "pg_backup_start",
        "backs up the server it runs on; a standby takes backups",
    ),
    (
        "pg_backup_stop",
        "backs up the server it runs on; a standby takes backups",
    ),
    ("pg_promote", "is meant for a standby"),
    ("pg_wal_replay_pause", "is meant for a standby"),
    ("pg_wal_replay_resume", "is meant for a standby"),
];

/// The names of `WRITE_FUNCTIONS` that PostgreSQL's catalog does not have, and whose they are.
const NOT_IN_THE_CATALOG: &[(&str, &str)] = &[
    ("changes", "SQLite"),
    ("last_insert_rowid", "SQLite"),
    ("total_changes", "SQLite"),
    ("found_rows", "MySQL/MariaDB"),
    ("get_lock", "MySQL/MariaDB"),
    ("last_insert_id", "MySQL/MariaDB"),
    ("release_all_locks", "MySQL/MariaDB"),
    ("release_lock", "MySQL/MariaDB"),
    ("row_count", "MySQL/MariaDB"),
    ("uuid_short", "MySQL/MariaDB"),
    ("pg_current_xlog_flush_location", "PostgreSQL before 10"),
    ("pg_current_xlog_insert_location", "PostgreSQL before 10"),
    ("pg_current_xlog_location", "PostgreSQL before 10"),
    ("pg_switch_xlog", "PostgreSQL before 10"),
    ("dblink_exec", "the dblink extension"),
    ("diesel_manage_updated_at", "diesel's setup migration"),
];

/// The built-in functions listed as writes, checked against the server's own catalog: each is
/// PostgreSQL's or named as another's ([`NOT_IN_THE_CATALOG`]), and each function of the kinds
/// that write is listed or named as a read ([`FAMILY_READS`]). (The oracle above runs the
/// corpus's calls of them on the hot standby.)
#[test]
fn the_listed_write_functions_match_postgresql_s_catalog() {
    let primary = common::pg::primary_url();
    let mut p = match PgConnection::establish(&primary) {
        Ok(c) => c,
        Err(e) => return common::unavailable("PostgreSQL", &e.to_string()),
    };
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        proname: String,
    }
    let names = |conn: &mut PgConnection, filter: &str| -> std::collections::BTreeSet<String> {
        diesel::sql_query(format!(
            "SELECT DISTINCT proname::text AS proname FROM pg_proc \
             WHERE pronamespace = 'pg_catalog'::regnamespace {filter}"
        ))
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|n| n.proname)
        .collect()
    };
    let catalog = names(&mut p, "");
    assert!(
        catalog.len() > 1000,
        "pg_catalog has {} functions",
        catalog.len()
    );
    let family = names(&mut p, &format!("AND proname ~ '{FAMILIES}'"));
    let elsewhere: std::collections::BTreeMap<_, _> = NOT_IN_THE_CATALOG.iter().copied().collect();
    let reads: std::collections::BTreeMap<_, _> = FAMILY_READS.iter().copied().collect();

    let mut wrong = Vec::new();
    for name in diesel_rw::WRITE_FUNCTIONS {
        match (catalog.contains(*name), elsewhere.get(name)) {
            (true, Some(whose)) => {
                wrong.push(format!("{name}: in the catalog, named as {whose}'s"))
            }
            (false, None) => wrong.push(format!("{name}: listed, but not in pg_catalog")),
            _ => {}
        }
    }
    for name in &family {
        let listed = diesel_rw::WRITE_FUNCTIONS.contains(&name.as_str());
        match (listed, reads.get(name.as_str())) {
            (false, None) => wrong.push(format!("{name}: writes (by its kind) but is not listed")),
            (true, Some(why)) => wrong.push(format!("{name}: listed, and named as a read ({why})")),
            _ => {}
        }
    }
    for name in reads.keys() {
        if !family.contains(*name) {
            wrong.push(format!(
                "{name}: named as a read, not in the catalog's families"
            ));
        }
    }
    println!(
        "WRITE-FUNCTIONS vs pg_catalog: {} listed, {} of them PostgreSQL's built-ins; {} catalog \
         functions of the writing kinds, {} of them reads",
        diesel_rw::WRITE_FUNCTIONS.len(),
        diesel_rw::WRITE_FUNCTIONS.len() - NOT_IN_THE_CATALOG.len(),
        family.len(),
        reads.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
