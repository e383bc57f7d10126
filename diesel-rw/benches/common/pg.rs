//! The PostgreSQL pair of the test bed (`scripts/db up`): the primary on 55432 and its streaming
//! hot standby on 55433, or the URLs in `DIESEL_RW_PG_PRIMARY_URL` / `DIESEL_RW_PG_REPLICA_URL`.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};

use super::{bench_kv, skip, ROWS};

/// The URLs of the pair, once the bench schema is on both.
pub struct PgBed {
    pub primary: String,
    pub replica: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The pair with `bench_kv` (ROWS rows, replicated) and an empty `bench_writes`; `None`, after a
/// printed note, when a server does not answer.
pub fn bed(what: &str) -> Option<PgBed> {
    let primary = env_or(
        "DIESEL_RW_PG_PRIMARY_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
    );
    let replica = env_or(
        "DIESEL_RW_PG_REPLICA_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55433/diesel_rw",
    );
    let mut p = match PgConnection::establish(&primary) {
        Ok(c) => c,
        Err(e) => {
            skip(what, &format!("PostgreSQL primary: {e}"));
            return None;
        }
    };
    let mut r = match PgConnection::establish(&replica) {
        Ok(c) => c,
        Err(e) => {
            skip(what, &format!("PostgreSQL standby: {e}"));
            return None;
        }
    };
    p.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS bench_kv (id INT PRIMARY KEY, v INT NOT NULL);
         INSERT INTO bench_kv SELECT g, g * 7 FROM generate_series(1, {ROWS}) g ON CONFLICT DO NOTHING;
         CREATE TABLE IF NOT EXISTS bench_writes (id SERIAL PRIMARY KEY, k INT NOT NULL);
         TRUNCATE bench_writes;"
    ))
    .expect("create the bench schema on the primary");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n: QueryResult<i64> = bench_kv::table.count().get_result(&mut r);
        if matches!(n, Ok(c) if c == i64::from(ROWS)) {
            break;
        }
        if Instant::now() > deadline {
            skip(
                what,
                &format!("the standby did not replicate bench_kv in 15 s ({n:?})"),
            );
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(PgBed { primary, replica })
}

/// A raw r2d2 pool set up as diesel-rw sets up each node's pool: no test query on checkout.
pub fn raw_pool(url: &str) -> Pool<ConnectionManager<PgConnection>> {
    Pool::builder()
        .max_size(4)
        .test_on_check_out(false)
        .build(ConnectionManager::new(url))
        .expect("r2d2 pool")
}

/// The source and destination of a double-write bench: the test bed's primary (55432) and its
/// independent second primary (55434, `DIESEL_RW_PG_DEST_URL`), each with an empty
/// `bench_writes`; `None`, after a printed note, when a server does not answer.
pub fn dest_pair(what: &str) -> Option<(String, String)> {
    let source = env_or(
        "DIESEL_RW_PG_PRIMARY_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
    );
    let destination = env_or(
        "DIESEL_RW_PG_DEST_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55434/diesel_rw",
    );
    for url in [&source, &destination] {
        let mut conn = match PgConnection::establish(url) {
            Ok(c) => c,
            Err(e) => {
                skip(what, &format!("PostgreSQL {}: {e}", diesel_rw::redact(url)));
                return None;
            }
        };
        conn.batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_writes (id SERIAL PRIMARY KEY, k INT NOT NULL);
             TRUNCATE bench_writes;",
        )
        .expect("create bench_writes");
    }
    Some((source, destination))
}
