//! The classifier's oracle on MariaDB: every statement of tests/corpus/mariadb.sql runs on the
//! primary 33306 in a read-only session inside `START TRANSACTION READ ONLY`, and on the replica
//! 33307 (`read_only`, which the test user cannot bypass), each on a connection of its own, in a
//! transaction that is rolled back; no statement that
//! `classify_sql_in(.., SqlDialect::Mysql)` calls a read may be refused by either as a write
//! (error 1792 ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, 1290 read_only). The objects have a
//! prefix of the run's own and are dropped afterwards.
#![cfg(feature = "mysql")]

mod common;
#[path = "common/classify_oracle.rs"]
#[allow(dead_code)]
mod oracle;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_rw::SqlDialect;
use oracle::{Judge, Outcome};

/// Runs each statement read-only on a fresh connection to one server, in a transaction that is
/// rolled back.
struct MysqlJudge {
    name: String,
    url: String,
    session: String,
    begin: &'static str,
}

impl MysqlJudge {
    fn outcome(result: QueryResult<()>) -> Outcome {
        match result {
            Ok(()) => Outcome::Accepted,
            Err(e) => {
                let message = e.to_string();
                if message.contains("in a READ ONLY transaction")
                    || message.contains("--read-only option")
                {
                    Outcome::Refused(message)
                } else {
                    Outcome::Other(message)
                }
            }
        }
    }
}

impl Judge for MysqlJudge {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn judge(&mut self, sql: &str) -> Outcome {
        let mut conn = MysqlConnection::establish(&self.url).unwrap();
        conn.batch_execute(&self.session).unwrap();
        conn.batch_execute(self.begin).unwrap();
        let outcome = Self::outcome(conn.batch_execute(sql));
        let _ = conn.batch_execute("ROLLBACK");
        outcome
    }
}

/// Drops the run's objects when the test ends, whatever happens.
struct Teardown {
    url: String,
    statements: Vec<String>,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Ok(mut conn) = MysqlConnection::establish(&self.url) {
            for sql in &self.statements {
                if let Err(e) = conn.batch_execute(sql) {
                    eprintln!("teardown: {sql}: {e}");
                }
            }
        }
    }
}

fn count(conn: &mut MysqlConnection, sql: &str) -> i64 {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "({sql})"
    )))
    .get_result(conn)
    .unwrap()
}

#[test]
fn mariadb_refuses_no_statement_the_classifier_calls_a_read() {
    let (primary, replica) = (common::mysql::primary_url(), common::mysql::replica_url());
    let mut p = match MysqlConnection::establish(&primary) {
        Ok(c) => c,
        Err(e) => return common::unavailable("MariaDB", &e.to_string()),
    };
    let mut r = match MysqlConnection::establish(&replica) {
        Ok(c) => c,
        Err(e) => return common::unavailable("MariaDB", &format!("replica: {e}")),
    };
    let prefix = oracle::prefix();
    let corpus = oracle::load("mariadb.sql", &prefix, "# corpus");
    let _teardown = Teardown {
        url: primary.clone(),
        statements: corpus.teardown.clone(),
    };
    for sql in &corpus.setup {
        p.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    if !corpus.setup_admin.is_empty() {
        let admin = common::env_or(
            "DIESEL_RW_MYSQL_ADMIN_URL",
            "mysql://root@127.0.0.1:33306/mysql",
        );
        let db: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("DATABASE()"))
            .get_result(&mut p)
            .unwrap();
        let mut a = MysqlConnection::establish(&admin).unwrap();
        for sql in &corpus.setup_admin {
            let sql = sql.replace("{db}", &db);
            a.batch_execute(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    // The replica has the tables and their rows.
    let deadline = Instant::now() + Duration::from_secs(60);
    let posts = format!("SELECT COUNT(*) FROM {prefix}posts");
    while r
        .batch_execute(&format!("SELECT 1 FROM {prefix}posts LIMIT 1"))
        .is_err()
        || count(&mut r, &posts) != 50
    {
        assert!(Instant::now() < deadline, "the replica lacks {prefix}posts");
        std::thread::sleep(Duration::from_millis(50));
    }

    let timeouts =
        "SET SESSION max_statement_time = 10, lock_wait_timeout = 2, innodb_lock_wait_timeout = 2";
    let mut judges: Vec<Box<dyn Judge>> = vec![
        Box::new(MysqlJudge {
            name: "primary 33306, read-only session, START TRANSACTION READ ONLY".into(),
            url: primary.clone(),
            session: format!("{timeouts}; SET SESSION TRANSACTION READ ONLY"),
            begin: "START TRANSACTION READ ONLY",
        }),
        Box::new(MysqlJudge {
            name: "replica 33307, read_only".into(),
            url: replica.clone(),
            session: timeouts.to_owned(),
            begin: "START TRANSACTION",
        }),
    ];
    oracle::check_judges(&mut judges, &format!("DELETE FROM {prefix}log"), "SELECT 1");
    // What a pool learns from the catalog: the corpus's MODIFIES SQL DATA function among them.
    let functions = diesel_rw::WritingFunctions::default();
    functions.learn_from(&mut p).unwrap();
    assert!(functions.contains(&format!("{prefix}write")));
    oracle::run(
        "MariaDB",
        SqlDialect::Mysql,
        &corpus,
        &mut judges,
        &functions,
    );

    // Nothing the corpus ran changed the tables.
    assert_eq!(
        count(&mut p, &format!("SELECT COUNT(*) FROM {prefix}users")),
        20
    );
    assert_eq!(count(&mut p, &posts), 50);
    assert_eq!(
        count(&mut p, &format!("SELECT COUNT(*) FROM {prefix}log")),
        0
    );
}
