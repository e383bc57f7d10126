//! Every variant of `diesel_rw::Error` has a message a person can act on: not empty, naming what
//! it is about (the node, the statement, the side, the pattern), and saying what to do.
//!
//! Each case below builds one variant, through the library where that is cheap (SQLite files, a
//! builder, a parse) and by hand otherwise, with the words its message must contain.
//! `every_variant_has_a_case` reads the variants off `diesel-rw/src/error.rs` itself: a variant
//! added there without a case here fails it, naming the variant.
#![cfg(feature = "sqlite")]

use std::collections::BTreeSet;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch, Side};
use diesel_rw::{Error, Role, RwPool};

/// One variant's error and what its message must contain.
struct Case {
    /// What this case shows (for the failure message).
    what: &'static str,
    error: Error,
    /// What it is about: each must appear in the message.
    names: Vec<String>,
    /// What to do: each must appear in the message.
    advice: &'static [&'static str],
}

fn case(what: &'static str, error: Error, names: &[&str], advice: &'static [&'static str]) -> Case {
    Case {
        what,
        error,
        names: names.iter().map(|s| s.to_string()).collect(),
        advice,
    }
}

/// The variant's name, as `Debug` prints it first.
fn variant(error: &Error) -> String {
    format!("{error:?}")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The variants declared in `pub enum Error { ... }`, read from the source: a line indented by
/// four spaces that starts with an upper-case name (fields, doc comments and attributes are
/// indented further or start with `/`, `#`).
fn declared_variants() -> BTreeSet<String> {
    let source = include_str!("../diesel-rw/src/error.rs");
    let body = source
        .split_once("pub enum Error {")
        .expect("diesel-rw/src/error.rs declares `pub enum Error {`")
        .1;
    let body = &body[..body.find("\n}").expect("the enum's closing brace")];
    body.lines()
        .filter_map(|line| line.strip_prefix("    "))
        .filter(|line| line.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|line| {
            line.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Two SQLite files in a directory of this test's own.
struct Files {
    dir: std::path::PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let dir = std::env::temp_dir().join(format!(
            "diesel-rw-error-display-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An r2d2 checkout that times out, as a node's pool reports it.
fn r2d2_timeout() -> diesel::r2d2::PoolError {
    let manager =
        diesel::r2d2::ConnectionManager::<SqliteConnection>::new("/nonexistent-dir/x/y.db");
    let pool = diesel::r2d2::Pool::builder()
        .connection_timeout(Duration::from_millis(50))
        .build_unchecked(manager);
    pool.get()
        .err()
        .expect("no connection to a file in a missing directory")
}

fn boxed(message: &str) -> Box<Error> {
    Box::new(Error::Database(diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(message.to_owned()),
    )))
}

fn cases(files: &Files) -> Vec<Case> {
    let node = "postgres://app:***@10.0.0.2/app";
    let sql = "INSERT INTO users (name) VALUES ($1)";
    let mut cases = Vec::new();

    // Built through the library.
    let invalid_url = RwPool::<SqliteConnection>::builder()
        .primary("")
        .build()
        .expect_err("an empty SQLite path is refused");
    cases.push(case(
        "an empty URL",
        invalid_url,
        &["invalid database URL", "empty"],
        &["fix the URL"],
    ));
    let no_primary = RwPool::<SqliteConnection>::builder()
        .build()
        .expect_err("a pool without a primary is refused");
    cases.push(case(
        "no primary",
        no_primary,
        &["no primary URL"],
        &["call .primary(url)"],
    ));
    cases.push(case(
        "from_env without DATABASE_URL",
        Error::MissingEnv {
            name: diesel_rw::DATABASE_URL,
        },
        &["DATABASE_URL"],
        &["set it"],
    ));

    let (primary, replica) = (files.path("primary.db"), files.path("replica.db"));
    for path in [&primary, &replica] {
        SqliteConnection::establish(path)
            .unwrap()
            .batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
            .unwrap();
    }
    let pool = RwPool::<SqliteConnection>::builder()
        .primary(primary.as_str())
        .replica(replica.as_str())
        .build()
        .unwrap();
    let mut read_only = pool.replica().unwrap();
    let write = diesel::sql_query("DELETE FROM t")
        .execute(&mut read_only)
        .expect_err("the replica handle rejects a write");
    cases.push(case(
        "a write on the replica handle",
        Error::from_diesel(write),
        &["DELETE FROM t"],
        &["use the primary"],
    ));

    // A double write over the two files: the source's key counter ahead of the destination's.
    let switch = PatternSwitch::new(Pattern::SrcFirst);
    let dw = DoubleWrite::<SqliteConnection>::builder()
        .source(primary.as_str())
        .destination(replica.as_str())
        .pattern(switch.clone())
        .build()
        .unwrap();
    let mut conn = dw.get().unwrap();
    conn.with_side(Side::Source, |c| {
        c.batch_execute("INSERT INTO t (v) VALUES ('a'), ('b')")
    })
    .unwrap()
    .unwrap();
    let behind = conn
        .advance_pattern()
        .expect_err("the destination's counter is behind");
    cases.push(case(
        "the step to dst_first with a counter behind",
        behind,
        &["src_first", "dst_first", "t"],
        &["sync_sequences"],
    ));
    let in_transaction = conn
        .transaction(|c| Ok::<_, Error>(c.sync_sequences()))
        .unwrap()
        .expect_err("sync_sequences refuses to run in a transaction");
    cases.push(case(
        "sync_sequences in a transaction",
        in_transaction,
        &["sync_sequences()"],
        &["run it outside one"],
    ));
    let skip = PatternSwitch::new(Pattern::SrcOnly)
        .set(Pattern::DstFirst)
        .expect_err("a skipped phase");
    cases.push(case(
        "a skipped phase",
        skip,
        &["src_only", "dst_first"],
        &["one step at a time", "switch through each phase"],
    ));
    let unknown = "sideways"
        .parse::<Pattern>()
        .expect_err("not a pattern name");
    cases.push(case(
        "an unknown pattern name",
        unknown,
        &["sideways"],
        &["expected one of src_only, src_first, dst_first, dst_only"],
    ));

    // By hand: failures that need a server in the state they describe.
    cases.push(case(
        "every replica down with Fallback::Error",
        Error::NoReplicaAvailable { replicas: 2 },
        &["2 configured"],
        &["check the replicas", "Fallback::Primary"],
    ));
    for (timeout, maybe_applied, advice) in [
        (
            Some(Duration::from_secs(5)),
            false,
            &["nothing was sent", "run it again when the primary is back"][..],
        ),
        (
            None,
            false,
            &[
                "nothing was applied",
                "run it again when the primary is back",
            ],
        ),
        (
            None,
            true,
            &["may have applied it", "check before running it again"],
        ),
    ] {
        let error = Error::PrimaryUnavailable {
            timeout,
            maybe_applied,
            source: "Connection refused".into(),
        };
        let text = error.to_string();
        for a in advice {
            assert!(text.contains(a), "PrimaryUnavailable: `{text}` lacks `{a}`");
        }
        cases.push(case(
            "the primary down",
            error,
            &["primary unavailable", "Connection refused"],
            &["again"],
        ));
    }
    cases.push(case(
        "a busy pool",
        Error::PoolExhausted {
            role: Role::Primary,
            node: node.into(),
            waited: Duration::from_secs(5),
        },
        &[node, "busy"],
        &["run it again", "max_size"],
    ));
    cases.push(case(
        "a read without an answer",
        Error::Timeout {
            node: node.into(),
            after: Duration::from_secs(30),
            maybe_applied: false,
        },
        &[node, "30s"],
        &["run it again"],
    ));
    cases.push(case(
        "a write without an answer",
        Error::Timeout {
            node: node.into(),
            after: Duration::from_secs(60),
            maybe_applied: true,
        },
        &[node, "60s"],
        &["check before running it again"],
    ));
    cases.push(case(
        "a replica's checkout timed out",
        Error::Checkout {
            role: Role::Replica,
            node: node.into(),
            timeout: Duration::from_millis(50),
            source: r2d2_timeout(),
        },
        &[node, "replica", "50ms"],
        &["check that the server is up"],
    ));
    cases.push(case(
        "a replica refused the connection",
        Error::Connect {
            role: Role::Replica,
            node: node.into(),
            source: diesel::ConnectionError::BadConnection("Connection refused".into()),
        },
        &[node, "Connection refused"],
        &["check that the server is up"],
    ));
    for (in_transaction, outcome_unknown, advice) in [
        (
            false,
            false,
            &["do not repeat it", "repair the destination"][..],
        ),
        (false, true, &["do not repeat it", "check the destination"]),
        (true, false, &["roll the transaction back", "safe to run"]),
        (true, true, &["roll the transaction back", "safe to run"]),
    ] {
        let error = Error::SecondaryWriteFailed {
            applied: Side::Source,
            failed: Side::Destination,
            sql: sql.into(),
            in_transaction,
            outcome_unknown,
            source: boxed("duplicate key"),
        };
        let text = error.to_string();
        for a in advice {
            assert!(
                text.contains(a),
                "SecondaryWriteFailed: `{text}` lacks `{a}`"
            );
        }
        cases.push(case(
            "the second side failed a write",
            error,
            &[sql, "source", "destination", "duplicate key"],
            &["double write"],
        ));
    }
    cases.push(case(
        "a transaction committed on one side",
        Error::PartialCommit {
            committed: Side::Destination,
            failed: Side::Source,
            writes: 3,
            reason: "server closed the connection".into(),
        },
        &["destination", "source", "3 write(s)"],
        &["do not run it again", "repair the source"],
    ));
    for (what, advice) in [
        ("BEGIN", &["safe to run it again"][..]),
        ("COMMIT", &["safe to run it again"]),
        ("SAVEPOINT", &["roll the whole transaction back"]),
    ] {
        let error = Error::NothingApplied {
            what,
            failed: Side::Destination,
            source: boxed("connection refused"),
        };
        let text = error.to_string();
        for a in advice {
            assert!(text.contains(a), "NothingApplied: `{text}` lacks `{a}`");
        }
        cases.push(case(
            "a step undone on the other side",
            error,
            &[what, "destination", "connection refused"],
            &["double write"],
        ));
    }
    cases.push(case(
        "the first side's connection broke under a write",
        Error::WriteOutcomeUnknown {
            node: node.into(),
            sql: sql.into(),
            detail: " (the source); it was not sent to the destination".into(),
            source: boxed("server closed the connection"),
        },
        &[node, sql],
        &["check whether it is before running it again"],
    ));
    cases.push(case(
        "a COMMIT whose reply was lost",
        Error::CommitOutcomeUnknown {
            node: node.into(),
            detail: String::new(),
            source: boxed("server closed the connection"),
        },
        &[node, "COMMIT"],
        &["check whether its writes are there before running it again"],
    ));
    cases.push(case(
        "a COMMIT known not to have committed",
        Error::NotCommitted {
            node: node.into(),
            source: boxed("server closed the connection"),
        },
        &[node, "did not commit"],
        &["safe to run the whole transaction again"],
    ));
    cases.push(case(
        "a side that cannot connect",
        Error::SideUnavailable {
            side: Side::Destination,
            node: node.into(),
            source: diesel::ConnectionError::BadConnection("Connection refused".into()),
        },
        &["destination", node, "Connection refused"],
        &["nothing was sent to it"],
    ));
    cases.push(case(
        "no double-write connection",
        Error::DoubleWriteUnavailable {
            timeout: Duration::from_secs(5),
            reason: "timed out waiting for connection".into(),
        },
        &["5s", "timed out waiting for connection"],
        &["check that the first side of the current pattern is reachable"],
    ));
    // The migration toolkit's refusals: nothing was written.
    cases.push(case(
        "a table that is not there",
        Error::UnknownTable {
            table: "public.userz".into(),
        },
        &["public.userz"],
        &["check its name", "nothing was written"],
    ));
    cases.push(case(
        "a column that is not there",
        Error::UnknownColumn {
            table: "users".into(),
            column: "updated".into(),
        },
        &["users", "updated"],
        &["check the column names", "nothing was written"],
    ));
    cases.push(case(
        "a table without a primary key",
        Error::NoPrimaryKey {
            table: "events".into(),
        },
        &["events"],
        &["add one", "TableSpec::key"],
    ));
    cases.push(case(
        "destination columns missing",
        Error::DestinationMissingColumns {
            table: "users".into(),
            missing: vec!["email".into(), "created_at".into()],
        },
        &["users", "`email`", "`created_at`"],
        &["add them on the destination"],
    ));
    cases.push(case(
        "a checkpoint of another table",
        Error::CheckpointMismatch {
            checkpoint: "backfill".into(),
            expected: "users (id)".into(),
            found: "orders (id)".into(),
        },
        &["backfill", "users (id)", "orders (id)"],
        &["give this backfill its own checkpoint name", "restart it"],
    ));
    cases.push(case(
        "a column type the verifier cannot compare",
        Error::UncomparableType {
            table: "users".into(),
            column: "period".into(),
            type_name: "interval".into(),
        },
        &["users", "period", "interval"],
        &["Verify::compare_as", "leave the table out"],
    ));
    cases.push(case(
        "a column typed differently on the two sides",
        Error::ColumnTypesDiffer {
            table: "users".into(),
            column: "age".into(),
            source_type: "integer".into(),
            destination_type: "text".into(),
        },
        &["users", "age", "integer", "text"],
        &["make the types agree"],
    ));
    cases.push(case(
        "keys that differ between the sides",
        Error::KeysDiffer {
            table: "users".into(),
            source_key: vec!["id".into()],
            destination_key: vec!["tenant".into(), "id".into()],
        },
        &["users", "(id)", "(tenant, id)"],
        &["give both the same primary key"],
    ));

    // Migration control: a real controlled switch (SQLite file) for the first.
    // Each test builds the cases: a file of its own.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let ctl_dir = std::env::temp_dir().join(format!(
        "diesel-rw-error-display-ctl-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&ctl_dir).unwrap();
    let ctl_db = ctl_dir.join("control.db");
    let _ = std::fs::remove_file(&ctl_db);
    let ctl_url = ctl_db.to_str().unwrap().to_owned();
    let fleet = diesel_rw::migrate::control::Fleet::new("orders_move");
    fleet
        .init(
            &mut SqliteConnection::establish(&ctl_url).unwrap(),
            Pattern::SrcOnly,
        )
        .unwrap();
    let control = diesel_rw::migrate::control::Control::builder::<SqliteConnection>(
        ctl_url.clone(),
        "orders_move",
    )
    .start()
    .unwrap();
    cases.push(case(
        "a local step of a switch that follows the control table",
        control.switch().advance().unwrap_err(),
        &["orders_move", "diesel_rw_control"],
        &[
            "step it there",
            "diesel-rw migrate advance",
            "nothing was switched",
        ],
    ));
    drop(control);
    cases.push(case(
        "a migration not in the control table",
        diesel_rw::migrate::control::Control::builder::<SqliteConnection>(
            ctl_url.clone(),
            "nosuch",
        )
        .start()
        .unwrap_err(),
        &["nosuch", "diesel_rw_control"],
        &["diesel-rw migrate init", "check its name"],
    ));
    cases.push(case(
        "a control table that cannot be read at start",
        Error::ControlUnreadable {
            migration: "orders_move".into(),
            table: "diesel_rw_control".into(),
            reason: "connection refused".into(),
        },
        &["orders_move", "diesel_rw_control", "connection refused"],
        &["never guesses", "check that the source database is up"],
    ));
    cases.push(case(
        "instances that have not applied the phase",
        Error::InstancesLag {
            migration: "orders_move".into(),
            epoch: 4,
            lagging: vec![
                "`web-2` (host h2, pid 41) applies src_first (epoch 3), heartbeat 0.4 s ago".into(),
            ],
        },
        &["orders_move", "epoch 4", "web-2", "pid 41"],
        &["wait for their next poll", "nothing was changed"],
    ));
    cases.push(case(
        "a gate that refused",
        Error::GateRefused {
            migration: "orders_move".into(),
            from: Pattern::SrcFirst,
            to: Pattern::DstFirst,
            gate: "backfill".into(),
            reason: "table `orders`: not complete".into(),
        },
        &[
            "orders_move",
            "src_first",
            "dst_first",
            "backfill",
            "not complete",
        ],
        &[
            "fix it and step again",
            "--force --reason",
            "nothing was changed",
        ],
    ));
    cases.push(case(
        "two steps at once",
        Error::StepConflict {
            migration: "orders_move".into(),
            expected_epoch: 3,
            found_epoch: 4,
            found: Pattern::DstFirst,
        },
        &["orders_move", "epoch 3", "4", "dst_first"],
        &["another step came first", "diesel-rw migrate status"],
    ));
    let _ = std::fs::remove_dir_all(&ctl_dir);
    cases
}

#[test]
fn every_message_names_what_happened_and_what_to_do() {
    let files = Files::new("messages");
    let mut failures = Vec::new();
    for Case {
        what,
        error,
        names,
        advice,
    } in cases(&files)
    {
        let text = error.to_string();
        println!("{} ({what}): {text}", variant(&error));
        if text.trim().is_empty() {
            failures.push(format!("{} ({what}): empty message", variant(&error)));
        }
        for name in &names {
            if !text.contains(name.as_str()) {
                failures.push(format!(
                    "{} ({what}): `{text}` does not name `{name}`",
                    variant(&error)
                ));
            }
        }
        for a in advice {
            if !text.contains(a) {
                failures.push(format!(
                    "{} ({what}): `{text}` does not say `{a}`",
                    variant(&error)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A database's own error goes through as the database worded it: `Error::Database` is
/// transparent, and converting back to diesel's error unwraps it.
#[test]
fn database_errors_keep_the_database_s_words() {
    let inner = diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::UniqueViolation,
        Box::new("duplicate key value violates unique constraint \"users_pkey\"".to_owned()),
    );
    let words = inner.to_string();
    assert!(!words.is_empty());
    let error = Error::Database(inner);
    assert_eq!(error.to_string(), words);
    assert_eq!(diesel::result::Error::from(error).to_string(), words);
}

#[test]
fn every_variant_has_a_case() {
    let files = Files::new("variants");
    let mut covered: BTreeSet<String> = cases(&files).iter().map(|c| variant(&c.error)).collect();
    covered.insert("Database".into()); // database_errors_keep_the_database_s_words
    let declared = declared_variants();
    assert!(declared.len() >= 20, "read too few variants: {declared:?}");
    let missing: Vec<_> = declared.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "Error variant(s) {missing:?} have no case in tests/error_display.rs: add one that builds \
         each and lists what its message must name and what it must tell the reader to do"
    );
    let unknown: Vec<_> = covered.difference(&declared).collect();
    assert!(
        unknown.is_empty(),
        "cases for undeclared variants: {unknown:?}"
    );
}
