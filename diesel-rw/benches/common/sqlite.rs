//! SQLite in memory: a "primary" and a "replica" database, each a shared-cache in-memory
//! database (`file:NAME?mode=memory&cache=shared`) that every connection of the process opens by
//! name. The bed keeps one connection to each open, so they live as long as the bed.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};

use super::ROWS;

/// The two in-memory databases of one bench.
pub struct MemBed {
    pub primary: String,
    pub replica: String,
    _keep: Vec<SqliteConnection>,
}

/// Creates both databases, each with `bench_kv` (ROWS rows) and an empty `bench_writes`.
pub fn mem_bed(name: &str) -> MemBed {
    let pid = std::process::id();
    let url =
        |side: &str| format!("file:diesel_rw_bench_{name}_{side}_{pid}?mode=memory&cache=shared");
    let (primary, replica) = (url("primary"), url("replica"));
    let keep = [&primary, &replica]
        .into_iter()
        .map(|url| {
            let mut conn = SqliteConnection::establish(url).expect("open in-memory SQLite");
            conn.batch_execute(&format!(
                "CREATE TABLE bench_kv (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
                 CREATE TABLE bench_writes (id INTEGER PRIMARY KEY, k INTEGER NOT NULL);
                 WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {ROWS})
                 INSERT INTO bench_kv SELECT x, x * 7 FROM n;"
            ))
            .expect("create the bench schema");
            conn
        })
        .collect();
    MemBed {
        primary,
        replica,
        _keep: keep,
    }
}

/// A raw r2d2 pool set up as diesel-rw sets up each node's pool: no test query on checkout.
pub fn raw_pool(url: &str) -> Pool<ConnectionManager<SqliteConnection>> {
    Pool::builder()
        .max_size(4)
        .test_on_check_out(false)
        .build(ConnectionManager::new(url))
        .expect("r2d2 pool")
}
