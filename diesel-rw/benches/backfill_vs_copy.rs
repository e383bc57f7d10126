//! `backfill_vs_copy`: [`Backfill::run_overlapped`] (two source connections) of a 1,000,000-row table from the test bed's PostgreSQL
//! primary 55432 to the second primary 55434, against a plain bulk copy of the same table
//! between the same servers (`psql -c "COPY ... TO STDOUT" | psql -c "COPY ... FROM STDIN"`),
//! side by side, alternating, in one run. During each backfill a writer thread double-writes
//! (`DoubleWrite`, `SrcFirst`) at a fixed rate into the table being copied.
//!
//! `cargo bench -p diesel-rw --features postgres --bench backfill_vs_copy` (needs `scripts/db up`
//! and `psql`). Settings: `BACKFILL_BENCH_ROWS` (1000000), `BACKFILL_BENCH_ROUNDS` (3),
//! `BACKFILL_BENCH_WRITES_PER_SEC` (200), `BACKFILL_BENCH_CHUNK` (first chunk, 20000 rows),
//! `BACKFILL_BENCH_TARGET_MS` (target time per chunk, 1000; 0: a fixed chunk size). Prints each round, the medians and the ratio of
//! throughputs (backfill / copy).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch};
use diesel_rw::migrate::{Backfill, Checkpoint, MigrateConnection};

const TABLE: &str = "mig1_bench_accounts";
const COPY_TABLE: &str = "mig1_bench_accounts_copy";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn table_sql(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, balance NUMERIC(14,2) NOT NULL, \
         opened_at TIMESTAMPTZ NOT NULL, note TEXT, closed_at TIMESTAMPTZ, score INTEGER)"
    )
}

fn count(conn: &mut PgConnection, table: &str) -> u64 {
    conn.query_texts(&format!("SELECT count(*)::text AS value FROM {table}"), &[])
        .unwrap()[0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// The source table with `rows` rows (made once, kept between runs).
fn source_table(src: &mut PgConnection, rows: u64) {
    let exists = src
        .query_texts(
            &format!("SELECT to_regclass('{TABLE}')::text AS value"),
            &[],
        )
        .unwrap()[0]
        .is_some();
    if exists && count(src, TABLE) == rows {
        return;
    }
    println!("making {TABLE} with {rows} rows on the source...");
    src.batch_execute(&format!(
        "DROP TABLE IF EXISTS {TABLE}; {}",
        table_sql(TABLE)
    ))
    .unwrap();
    src.batch_execute(&format!(
        "INSERT INTO {TABLE} SELECT i, 'owner ' || i || ' ünïcode', (i % 100000) * 1.25, \
           timestamptz '2020-01-01 00:00:00+00' + i * interval '1 second', \
           CASE WHEN i % 3 = 0 THEN NULL ELSE repeat('n', (i % 40)::int) END, \
           CASE WHEN i % 5 = 0 THEN now() END, CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 1000)::int END \
         FROM generate_series(1, {rows}) i"
    ))
    .unwrap();
    src.batch_execute(&format!("VACUUM ANALYZE {TABLE}"))
        .unwrap();
}

/// `COPY TO STDOUT` on the source piped into `COPY FROM STDIN` on the destination.
fn bulk_copy(src_url: &str, dst_url: &str, dst: &mut PgConnection) -> Duration {
    dst.batch_execute(&format!(
        "DROP TABLE IF EXISTS {COPY_TABLE}; {}",
        table_sql(COPY_TABLE)
    ))
    .unwrap();
    let started = Instant::now();
    let mut out = Command::new("psql")
        .args([
            src_url,
            "-X",
            "-q",
            "-c",
            &format!("COPY {TABLE} TO STDOUT"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("psql");
    let into = Command::new("psql")
        .args([
            dst_url,
            "-X",
            "-q",
            "-c",
            &format!("COPY {COPY_TABLE} FROM STDIN"),
        ])
        .stdin(out.stdout.take().unwrap())
        .status()
        .expect("psql");
    assert!(
        out.wait().unwrap().success() && into.success(),
        "psql COPY failed"
    );
    started.elapsed()
}

/// The backfill, with a writer double-writing at `rate` writes per second meanwhile.
fn backfill(
    src: &mut PgConnection,
    second: &mut PgConnection,
    dst: &mut PgConnection,
    pool: &DoubleWrite<PgConnection>,
    rate: u64,
    rows: u64,
) -> (Duration, u64, Duration) {
    dst.batch_execute(&format!(
        "DROP TABLE IF EXISTS {TABLE}; {}",
        table_sql(TABLE)
    ))
    .unwrap();
    Checkpoint::delete(dst, &format!("public.{TABLE}")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let writer = {
        let (pool, stop, writes, slowest) =
            (pool.clone(), stop.clone(), writes.clone(), slowest.clone());
        std::thread::spawn(move || {
            let mut c = pool.get().unwrap();
            let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
            let mut next = Instant::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = 1 + (i * 7919) % rows;
                let t0 = Instant::now();
                c.batch_execute(&format!(
                    "UPDATE {TABLE} SET note = 'written {i}', balance = {i}.50 WHERE id = {id}"
                ))
                .unwrap();
                slowest.fetch_max(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                writes.fetch_add(1, Ordering::Relaxed);
                next += period;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };
    let started = Instant::now();
    let chunk = setting("BACKFILL_BENCH_CHUNK", 20_000);
    let target = setting("BACKFILL_BENCH_TARGET_MS", 1_000);
    let report = Backfill::new(TABLE)
        .chunk_size(chunk)
        .chunk_limits(1_000, 100_000)
        .target_chunk_time((target > 0).then(|| Duration::from_millis(target)))
        .count_rows(false)
        .run_overlapped(src, second, dst)
        .unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(report.done);
    assert_eq!(count(dst, TABLE), rows);
    (
        took,
        writes.load(Ordering::Relaxed),
        Duration::from_micros(slowest.load(Ordering::Relaxed)),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let rows = setting("BACKFILL_BENCH_ROWS", 1_000_000);
    let rounds = setting("BACKFILL_BENCH_ROUNDS", 3);
    let rate = setting("BACKFILL_BENCH_WRITES_PER_SEC", 200);
    let src_url = env_or(
        "DIESEL_RW_PG_PRIMARY_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
    );
    let dst_url = env_or(
        "DIESEL_RW_PG_DEST_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55434/diesel_rw",
    );
    // The tests that stop and start the bed's servers hold this lock (tests/common/mod.rs,
    // `bed_lock`): holding it keeps the destination up for the whole run.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("diesel-rw-bed-tests.lock"))
        .expect("open the bed lock file");
    // `File::lock` (Rust 1.89), as the tests take it; benches run on a current toolchain.
    #[allow(clippy::incompatible_msrv)]
    lock.lock().expect("lock the bed lock file");
    let connect = |url: &str| {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            match PgConnection::establish(url) {
                Ok(c) => return Some(c),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_secs(1)),
                Err(_) => return None,
            }
        }
    };
    let (Some(mut src), Some(mut dst)) = (connect(&src_url), connect(&dst_url)) else {
        println!("SKIPPED: the PostgreSQL test bed is not up (scripts/db up)");
        return;
    };
    source_table(&mut src, rows);
    let mut second = connect(&src_url).expect("a second source connection");
    let pool = DoubleWrite::<PgConnection>::builder()
        .source(src_url.as_str())
        .destination(dst_url.as_str())
        .pattern(PatternSwitch::new(Pattern::SrcFirst))
        .max_size(2)
        .build()
        .unwrap();
    println!("backfill_vs_copy: {rows} rows, PostgreSQL 55432 -> 55434, {rounds} rounds, writer {rate}/s during the backfill");
    let (mut copy_rates, mut backfill_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let copy = bulk_copy(&src_url, &dst_url, &mut dst);
        let (bf, writes, slowest) = backfill(&mut src, &mut second, &mut dst, &pool, rate, rows);
        let (c, b) = (
            rows as f64 / copy.as_secs_f64(),
            rows as f64 / bf.as_secs_f64(),
        );
        println!(
            "round {round}: copy {:.2} s ({:.0} rows/s), backfill {:.2} s ({:.0} rows/s; {writes} double writes meanwhile, {:.0}/s, the slowest {:.0} ms), ratio {:.2}",
            copy.as_secs_f64(),
            c,
            bf.as_secs_f64(),
            b,
            writes as f64 / bf.as_secs_f64(),
            slowest.as_secs_f64() * 1000.0,
            b / c
        );
        std::io::stdout().flush().unwrap();
        copy_rates.push(c);
        backfill_rates.push(b);
        ratios.push(b / c);
    }
    println!(
        "median: copy {:.0} rows/s, backfill {:.0} rows/s, ratio (backfill / copy) {:.2} (target >= 0.5)",
        median(copy_rates),
        median(backfill_rates),
        median(ratios)
    );
    dst.batch_execute(&format!("DROP TABLE IF EXISTS {COPY_TABLE}"))
        .unwrap();
}
