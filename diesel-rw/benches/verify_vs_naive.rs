//! Verify with server-side chunk checksums against the naive way (stream both tables ordered by
//! key and compare every row in the client), on the same PostgreSQL table on the source (55432)
//! and the destination (55434), side by side in one run.
//!
//! `cargo bench -p diesel-rw --features postgres --bench verify_vs_naive`
//!
//! The table `mig2_bench` (bigint key, text, numeric, timestamptz, a nullable text; 1,000,000
//! rows, or `DIESEL_RW_BENCH_ROWS`) is created with the same rows on both servers, then 10 rows
//! are changed on the destination: both ways must find exactly those. Each way runs in a child
//! process of its own, twice, alternating, and reports its wall time and its peak resident
//! memory (`VmHWM`), so the figures of one do not include the other's.

use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_rw::migrate::{verify::Verify, TableSpec};

const TABLE: &str = "mig2_bench";
const PAGE: i64 = 10_000;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn urls() -> (String, String) {
    (
        env_or(
            "DIESEL_RW_PG_PRIMARY_URL",
            "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
        ),
        env_or(
            "DIESEL_RW_PG_DEST_URL",
            "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55434/diesel_rw",
        ),
    )
}

/// The peak resident memory of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    amount: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    at: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    note: Option<String>,
}

impl Row {
    fn same(&self, other: &Row) -> bool {
        (&self.name, &self.amount, &self.at, &self.note)
            == (&other.name, &other.amount, &other.at, &other.note)
    }
}

fn page(conn: &mut PgConnection, after: i64) -> Vec<Row> {
    diesel::sql_query(format!(
        "SELECT id, name, amount::text AS amount, at::text AS at, note FROM {TABLE} \
         WHERE id > $1 ORDER BY id LIMIT {PAGE}"
    ))
    .bind::<BigInt, _>(after)
    .load(conn)
    .unwrap()
}

/// The naive way: both tables in key order, page by page (so the client's memory stays
/// bounded), merged and compared row by row in the client. Returns (rows, differences).
fn naive(src: &mut PgConnection, dst: &mut PgConnection) -> (u64, u64) {
    let (mut rows, mut diffs) = (0, 0);
    let (mut a, mut b) = (
        page(src, 0).into_iter().peekable(),
        page(dst, 0).into_iter().peekable(),
    );
    let (mut last_a, mut last_b) = (0, 0);
    let (mut a_done, mut b_done) = (false, false);
    loop {
        if a.peek().is_none() && !a_done {
            a = page(src, last_a).into_iter().peekable();
            a_done = a.peek().is_none();
        }
        if b.peek().is_none() && !b_done {
            b = page(dst, last_b).into_iter().peekable();
            b_done = b.peek().is_none();
        }
        match (a.peek(), b.peek()) {
            (None, None) => return (rows, diffs),
            (Some(x), Some(y)) if x.id == y.id => {
                if !x.same(y) {
                    diffs += 1;
                }
                last_a = x.id;
                last_b = y.id;
                a.next();
                b.next();
            }
            (Some(x), Some(y)) if x.id < y.id => {
                diffs += 1;
                last_a = x.id;
                a.next();
            }
            (Some(x), None) => {
                diffs += 1;
                last_a = x.id;
                a.next();
            }
            (_, Some(y)) => {
                diffs += 1;
                last_b = y.id;
                b.next();
            }
        }
        rows += 1;
    }
}

/// A child process: runs one way once and prints its figures.
fn child(mode: &str) {
    let (src_url, dst_url) = urls();
    let mut src = PgConnection::establish(&src_url).unwrap();
    let mut dst = PgConnection::establish(&dst_url).unwrap();
    let started = Instant::now();
    let (rows, diffs) = match mode {
        "server" => {
            let report = Verify::new(TableSpec::new(TABLE))
                .chunk_rows(env_or("DIESEL_RW_BENCH_CHUNK", "10000").parse().unwrap())
                .rechecks(1)
                .recheck_delay(Duration::from_millis(100))
                .run(&mut src, &mut dst)
                .unwrap();
            (report.rows_compared, report.differences() as u64)
        }
        "naive" => naive(&mut src, &mut dst),
        other => panic!("unknown mode {other}"),
    };
    println!(
        "elapsed_ms={} rows={rows} diffs={diffs} peak_rss_kib={}",
        started.elapsed().as_millis(),
        peak_rss_kib()
    );
}

fn setup(rows: u64) {
    let (src_url, dst_url) = urls();
    let ddl = format!(
        "DROP TABLE IF EXISTS {TABLE};
         CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC(12,2),
                               at TIMESTAMPTZ, note TEXT);
         INSERT INTO {TABLE}
           SELECT g, 'name ' || g, (g % 100000) / 100.0,
                  TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 second',
                  CASE WHEN g % 10 = 0 THEN NULL ELSE md5(g::text) END
           FROM generate_series(1, {rows}) g;"
    );
    let started = Instant::now();
    std::thread::scope(|s| {
        for url in [&src_url, &dst_url] {
            let ddl = &ddl;
            s.spawn(move || {
                let mut c = PgConnection::establish(url).unwrap();
                c.batch_execute(ddl).unwrap();
                c.batch_execute(&format!("VACUUM ANALYZE {TABLE}")).unwrap();
            });
        }
    });
    PgConnection::establish(&dst_url)
        .unwrap()
        .batch_execute(&format!(
            "UPDATE {TABLE} SET note = 'changed' WHERE id % 100000 = 7"
        ))
        .unwrap();
    eprintln!(
        "set up {rows} rows on both servers in {:?}",
        started.elapsed()
    );
}

struct Figures {
    elapsed_ms: u64,
    rows: u64,
    diffs: u64,
    peak_rss_kib: u64,
}

fn run_child(mode: &str) -> Figures {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--mode", mode])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> u64 {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{mode}: no {name} in `{text}`"))
    };
    Figures {
        elapsed_ms: field("elapsed_ms"),
        rows: field("rows"),
        diffs: field("diffs"),
        peak_rss_kib: field("peak_rss_kib"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--mode") {
        child(&args[i + 1]);
        return;
    }
    if PgConnection::establish(&urls().0).is_err() || PgConnection::establish(&urls().1).is_err() {
        eprintln!("SKIPPED: the PostgreSQL test bed is not up (scripts/db up)");
        return;
    }
    let rows: u64 = env_or("DIESEL_RW_BENCH_ROWS", "1000000").parse().unwrap();
    setup(rows);
    let rounds: usize = env_or("DIESEL_RW_BENCH_ROUNDS", "3").parse().unwrap();
    let mut results: Vec<(&str, Figures)> = Vec::new();
    for _ in 0..rounds {
        for mode in ["server", "naive"] {
            let f = run_child(mode);
            eprintln!(
                "{mode:>6}: {:>6} ms, {} rows, {} differences, peak RSS {:.1} MiB",
                f.elapsed_ms,
                f.rows,
                f.diffs,
                f.peak_rss_kib as f64 / 1024.0
            );
            assert_eq!(
                f.diffs,
                rows / 100_000,
                "{mode} found {} differences",
                f.diffs
            );
            results.push((mode, f));
        }
    }
    let best = |mode: &str| {
        results
            .iter()
            .filter(|(m, _)| *m == mode)
            .map(|(_, f)| f)
            .min_by_key(|f| f.elapsed_ms)
            .unwrap()
    };
    let median = |mode: &str| {
        let mut ms: Vec<u64> = results
            .iter()
            .filter(|(m, _)| *m == mode)
            .map(|(_, f)| f.elapsed_ms)
            .collect();
        ms.sort_unstable();
        ms[ms.len() / 2]
    };
    // Each round's ratio: the two ways ran back to back, under the same load.
    let ratios: Vec<String> = results
        .chunks(2)
        .map(|p| {
            format!(
                "{:.1}",
                p[1].1.elapsed_ms as f64 / p[0].1.elapsed_ms.max(1) as f64
            )
        })
        .collect();
    let (s, n) = (best("server"), best("naive"));
    println!(
        "verify_vs_naive ({rows} rows, {rounds} rounds): server-side checksums best {} ms, median {} ms \
         (peak RSS {:.1} MiB); naive best {} ms, median {} ms (peak RSS {:.1} MiB); \
         median ratio {:.1}x, per round {}",
        s.elapsed_ms,
        median("server"),
        s.peak_rss_kib as f64 / 1024.0,
        n.elapsed_ms,
        median("naive"),
        n.peak_rss_kib as f64 / 1024.0,
        median("naive") as f64 / median("server").max(1) as f64,
        ratios.join(", ")
    );
    let _ = (s.rows, n.rows);
}
