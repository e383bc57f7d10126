//! `classify`: what classifying SQL text costs (`classify_sql_in`), the routing path of a query
//! without a static `QueryId` (`sql_query`, boxed queries, `batch_execute`).
//!
//! * `insert_100_b` vs `insert_200_kb`: an `INSERT` is settled at its first keyword, so the two
//!   cost the same whatever the length of the text.
//! * `select_100_b` vs `select_200_kb`: a read is read to its end (it is a read only if nothing
//!   in it writes), so its cost grows with its length.
//! * the corpus of tests/corpus/ (the oracle's statements, PostgreSQL and MariaDB, each under its
//!   own dialect): each statement timed on its own, and the median printed
//!   (`CORPUS-MEDIAN ...`); criterion times the whole corpus once per iteration.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel_rw::{classify_sql_in, SqlDialect};

/// A multi-row INSERT of at least `len` bytes, as diesel renders a batch insert.
fn insert(len: usize) -> String {
    let mut sql = String::from(r#"INSERT INTO "users" ("name", "email") VALUES "#);
    let mut i = 0;
    while sql.len() < len {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("('user {i}', 'user{i}@example.com')"));
        i += 1;
    }
    sql
}

/// A SELECT with an IN list of at least `len` bytes.
fn select(len: usize) -> String {
    let mut sql =
        String::from(r#"SELECT "users"."id", "users"."name" FROM "users" WHERE "users"."id" IN ("#);
    let mut i = 0;
    while sql.len() < len {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&i.to_string());
        i += 1;
    }
    sql.push(')');
    sql
}

/// The oracle corpus's statements (tests/corpus/*.sql), each with its dialect.
fn corpus() -> Vec<(SqlDialect, String)> {
    let mut out = Vec::new();
    for (file, dialect) in [
        ("postgres.sql", SqlDialect::Postgres),
        ("mariadb.sql", SqlDialect::Mysql),
    ] {
        let path = format!("{}/../tests/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("no corpus at {path}");
            continue;
        };
        let mut section = "";
        let mut entries: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("// [").and_then(|r| r.strip_suffix(']')) {
                section = if name == "statements" {
                    "statements"
                } else {
                    ""
                };
                continue;
            }
            if section.is_empty() || line.starts_with("//") || line.trim().is_empty() {
                continue;
            }
            match line.strip_prefix("  ") {
                Some(rest) if !entries.is_empty() => {
                    let last = entries.last_mut().unwrap();
                    last.push('\n');
                    last.push_str(rest);
                }
                _ => entries.push(line.to_owned()),
            }
        }
        out.extend(entries.into_iter().map(|s| (dialect, s)));
    }
    out
}

/// The median over `corpus` of each statement's time to classify, in ns.
/// Also over the statements that are reads (read to their end): `[median, p90, reads' median,
/// reads' p90]`.
fn corpus_median(corpus: &[(SqlDialect, String)]) -> [f64; 4] {
    // `cargo bench` passes `--bench`; `cargo test --benches` (a smoke test, unoptimized) does not.
    let rounds: u32 = if std::env::args().any(|a| a == "--bench") {
        2_000
    } else {
        2
    };
    let times: Vec<f64> = corpus
        .iter()
        .map(|(dialect, sql)| {
            // warm up, then the best of three rounds (the machine is shared)
            for _ in 0..rounds / 20 {
                black_box(classify_sql_in(black_box(sql), *dialect));
            }
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..rounds {
                        black_box(classify_sql_in(black_box(sql), *dialect));
                    }
                    start.elapsed().as_nanos() as f64 / f64::from(rounds)
                })
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let median_of = |mut times: Vec<f64>| {
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
        let p90 = times.get(times.len() * 9 / 10).copied().unwrap_or(f64::NAN);
        (median, p90)
    };
    let reads: Vec<f64> = corpus
        .iter()
        .zip(&times)
        .filter(|((dialect, sql), _)| classify_sql_in(sql, *dialect).is_read())
        .map(|(_, t)| *t)
        .collect();
    let (median, p90) = median_of(times);
    let (reads_median, reads_p90) = median_of(reads);
    [median, p90, reads_median, reads_p90]
}

fn bench(c: &mut Criterion) {
    let (short_insert, long_insert) = (insert(100), insert(200 * 1024));
    let (short_select, long_select) = (select(100), select(200 * 1024));
    let mut group = c.benchmark_group("classify");
    for (name, sql) in [
        ("insert_100_b", &short_insert),
        ("insert_200_kb", &long_insert),
        ("select_100_b", &short_select),
        ("select_200_kb", &long_select),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| classify_sql_in(black_box(sql), SqlDialect::Postgres))
        });
    }
    group.bench_function("insert_200_kb_any_dialect", |b| {
        b.iter(|| diesel_rw::classify_sql(black_box(&long_insert)))
    });
    let corpus = corpus();
    group.bench_function("corpus_all", |b| {
        b.iter(|| {
            for (dialect, sql) in &corpus {
                black_box(classify_sql_in(black_box(sql), *dialect));
            }
        })
    });
    group.finish();
    let [median, p90, reads_median, reads_p90] = corpus_median(&corpus);
    let reads = corpus
        .iter()
        .filter(|(dialect, sql)| classify_sql_in(sql, *dialect).is_read())
        .count();
    println!(
        "CORPUS-MEDIAN statements={} median_ns={median:.0} p90_ns={p90:.0} reads={reads} \
         reads_median_ns={reads_median:.0} reads_p90_ns={reads_p90:.0} (insert bytes {} and {})",
        corpus.len(),
        short_insert.len(),
        long_insert.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
