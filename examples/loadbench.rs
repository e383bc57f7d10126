//! Load bench: select-only throughput and latency on the PostgreSQL pair of the test bed, through
//! a raw r2d2 pool, diesel-rw and pgpool-II, interleaved within one run. See BENCHMARKS.md.
//!
//! ```sh
//! scripts/db up --pgpool
//! cargo run --release --example loadbench --features postgres -- --duration 3 --rounds 2
//! ```
//!
//! Options: `--duration SECS` per run (default 3), `--rounds N` (default 2), `--threads 1,4,16`,
//! `--configs a,b,...` (default: all, in the order below), `--warmup SECS` (default 0.5).
//!
//! Configurations (each thread does one request after another for the whole run):
//!
//! | name | a request |
//! |---|---|
//! | `raw_primary` | raw r2d2 pool of the primary: checkout, one read by primary key |
//! | `raw_standby` | raw r2d2 pool of the standby: the same |
//! | `rw_standby` | diesel-rw `RwPool::get()`, the read routed to the standby |
//! | `pgpool` | raw r2d2 pool of pgpool-II (127.0.0.1:59999, statement-level load balancing over both) |
//! | `raw_mix` | 10 statements routed by hand, each a single-row insert with probability 0.1 (raw pool of the primary), else a read (raw pool of the standby); no read-your-writes |
//! | `rw_mix_causal` | the same 10 statements on one `RwConnection` of a pool with `Consistency::Causal` |
//! | `rw_mix_uow` | the same on a pool with `Consistency::UnitOfWork` (reads after the write go to the primary) |
//!
//! Raw pools are set up as diesel-rw sets up its node pools (`test_on_check_out(false)`, as many
//! connections as threads, all opened before the runs). Throughput counts statements per second;
//! latency is per statement (for the mixes, per statement within the request). Every run of one
//! thread count is interleaved with the others (a b c ... a b c ...), and each `ratio` line is
//! the median over rounds of the ratio within a round: throughput on this 2-core machine moves
//! by tens of percent between runs, ratios of neighbouring runs much less.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_rw::{Consistency, RwConnection, RwPool};

diesel::table! {
    bench_kv (id) {
        id -> Integer,
        v -> Integer,
    }
}

diesel::table! {
    bench_writes (id) {
        id -> Integer,
        k -> Integer,
    }
}

const ROWS: i32 = 1000;
/// Statements per request in the mixes.
const MIX_STATEMENTS: usize = 10;
/// Probability that a statement of a mix is a write.
const MIX_WRITE_SHARE: f64 = 0.1;

type RawPool = Pool<ConnectionManager<PgConnection>>;
type RawConn = PooledConnection<ConnectionManager<PgConnection>>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

struct Args {
    duration: Duration,
    warmup: Duration,
    rounds: usize,
    threads: Vec<usize>,
    configs: Vec<String>,
}

const ALL_CONFIGS: [&str; 7] = [
    "raw_primary",
    "raw_standby",
    "rw_standby",
    "pgpool",
    "raw_mix",
    "rw_mix_causal",
    "rw_mix_uow",
];

fn parse_args() -> Args {
    let mut args = Args {
        duration: Duration::from_secs(3),
        warmup: Duration::from_millis(500),
        rounds: 2,
        threads: vec![1, 4, 16],
        configs: ALL_CONFIGS.iter().map(|s| s.to_string()).collect(),
    };
    let mut it = std::env::args().skip(1);
    let secs = |v: Option<String>, what: &str| -> Duration {
        let v = v.unwrap_or_else(|| die(&format!("{what} needs a value")));
        Duration::from_secs_f64(
            v.parse::<f64>()
                .unwrap_or_else(|_| die(&format!("{what}: `{v}` is not a number of seconds"))),
        )
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--duration" => args.duration = secs(it.next(), "--duration"),
            "--warmup" => args.warmup = secs(it.next(), "--warmup"),
            "--rounds" => {
                args.rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| die("--rounds needs a positive number"))
            }
            "--threads" => {
                args.threads = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|t| {
                        t.trim().parse().ok().filter(|&n| n > 0).unwrap_or_else(|| {
                            die(&format!("--threads: `{t}` is not a thread count"))
                        })
                    })
                    .collect()
            }
            "--configs" => {
                args.configs = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|c| {
                        let c = c.trim();
                        if !ALL_CONFIGS.contains(&c) {
                            die(&format!(
                                "--configs: unknown configuration `{c}` (known: {})",
                                ALL_CONFIGS.join(", ")
                            ));
                        }
                        c.to_owned()
                    })
                    .collect()
            }
            "-h" | "--help" => {
                println!(
                    "loadbench [--duration SECS] [--rounds N] [--threads 1,4,16] [--configs {}] [--warmup SECS]",
                    ALL_CONFIGS.join(",")
                );
                std::process::exit(0);
            }
            other => die(&format!("unknown argument `{other}` (try --help)")),
        }
    }
    args
}

fn die(msg: &str) -> ! {
    eprintln!("loadbench: {msg}");
    std::process::exit(2);
}

/// A small xorshift generator per thread: keys and the read/write draw.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn key(&mut self) -> i32 {
        (self.next() % ROWS as u64) as i32 + 1
    }
    fn is_write(&mut self) -> bool {
        (self.next() % 1_000_000) < (MIX_WRITE_SHARE * 1_000_000.0) as u64
    }
}

fn read<C>(conn: &mut C, id: i32) -> QueryResult<()>
where
    C: diesel::connection::LoadConnection<Backend = diesel::pg::Pg>,
{
    let row: (i32, i32) = bench_kv::table.find(id).get_result(conn)?;
    std::hint::black_box(row);
    Ok(())
}

fn insert<C>(conn: &mut C, k: i32) -> QueryResult<()>
where
    C: Connection<Backend = diesel::pg::Pg>,
{
    diesel::insert_into(bench_writes::table)
        .values(bench_writes::k.eq(k))
        .execute(conn)
        .map(drop)
}

/// What one configuration needs: its pools.
enum Target {
    Raw(RawPool),
    Rw(RwPool<PgConnection>),
    RawMix { primary: RawPool, standby: RawPool },
    RwMix(RwPool<PgConnection>),
}

/// What one thread measured.
#[derive(Default)]
struct ThreadResult {
    latencies_ns: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl ThreadResult {
    fn record<T, E: std::fmt::Display>(&mut self, t0: Instant, r: Result<T, E>) {
        let ns = t0.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32;
        match r {
            Ok(_) => self.latencies_ns.push(ns),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

impl Target {
    /// Runs requests until `end`.
    fn work(&self, rng: &mut Rng, end: Instant, out: &mut ThreadResult) {
        while Instant::now() < end {
            match self {
                Target::Raw(pool) => {
                    let t0 = Instant::now();
                    let r = pool
                        .get()
                        .map_err(|e| e.to_string())
                        .and_then(|mut c| read(&mut *c, rng.key()).map_err(|e| e.to_string()));
                    out.record(t0, r);
                }
                Target::Rw(pool) => {
                    let t0 = Instant::now();
                    let r = pool
                        .get()
                        .map_err(|e| e.to_string())
                        .and_then(|mut c| read(&mut c, rng.key()).map_err(|e| e.to_string()));
                    out.record(t0, r);
                }
                Target::RawMix { primary, standby } => {
                    let (mut p, mut s): (Option<RawConn>, Option<RawConn>) = (None, None);
                    for _ in 0..MIX_STATEMENTS {
                        let write = rng.is_write();
                        let t0 = Instant::now();
                        let (slot, pool) = if write {
                            (&mut p, primary)
                        } else {
                            (&mut s, standby)
                        };
                        let r = match slot {
                            Some(c) => Ok(c),
                            None => pool.get().map(|c| slot.insert(c)),
                        }
                        .map_err(|e| e.to_string())
                        .and_then(|c| {
                            if write {
                                insert(&mut **c, rng.key())
                            } else {
                                read(&mut **c, rng.key())
                            }
                            .map_err(|e| e.to_string())
                        });
                        out.record(t0, r);
                    }
                }
                Target::RwMix(pool) => {
                    let mut conn: Option<RwConnection<PgConnection>> = None;
                    for _ in 0..MIX_STATEMENTS {
                        let write = rng.is_write();
                        let t0 = Instant::now();
                        let r = match &mut conn {
                            Some(c) => Ok(c),
                            None => pool.get().map(|c| conn.insert(c)),
                        }
                        .map_err(|e| e.to_string())
                        .and_then(|c| {
                            if write {
                                insert(c, rng.key())
                            } else {
                                read(c, rng.key())
                            }
                            .map_err(|e| e.to_string())
                        });
                        out.record(t0, r);
                    }
                }
            }
        }
    }
}

/// One run: `threads` threads for `duration`.
struct Run {
    ops_per_s: f64,
    latencies_ns: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

fn run(target: &Target, threads: usize, duration: Duration) -> Run {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let results: Vec<ThreadResult> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    let mut rng =
                        Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x2545_F491_4F6C_DD1D));
                    let mut out = ThreadResult {
                        latencies_ns: Vec::with_capacity(1 << 16),
                        ..Default::default()
                    };
                    barrier.wait();
                    let end = Instant::now() + duration;
                    target.work(&mut rng, end, &mut out);
                    out
                })
            })
            .collect();
        barrier.wait();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut run = Run {
        ops_per_s: 0.0,
        latencies_ns: Vec::new(),
        errors: 0,
        first_error: None,
    };
    for r in results {
        run.latencies_ns.extend_from_slice(&r.latencies_ns);
        run.errors += r.errors;
        if run.first_error.is_none() {
            run.first_error = r.first_error;
        }
    }
    run.ops_per_s = run.latencies_ns.len() as f64 / duration.as_secs_f64();
    run
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(ns: u32) -> String {
    format!("{:.1} us", f64::from(ns) / 1000.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn raw_pool(url: &str, size: u32) -> Result<RawPool, String> {
    Pool::builder()
        .max_size(size)
        .min_idle(Some(size))
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(10))
        .build(ConnectionManager::new(url))
        .map_err(|e| e.to_string())
}

fn rw_pool(
    primary: &str,
    standby: &str,
    size: u32,
    consistency: Consistency,
) -> RwPool<PgConnection> {
    RwPool::<PgConnection>::builder()
        .primary(primary)
        .replica(standby)
        .max_size(size)
        .min_idle(None)
        .connection_timeout(Duration::from_secs(10))
        .replica_timeout(Duration::from_secs(10))
        .consistency(consistency)
        .build()
        .unwrap_or_else(|e| die(&format!("diesel-rw pool: {e}")))
}

fn setup_schema(primary: &str, standby: &str) {
    let mut p = PgConnection::establish(primary).unwrap_or_else(|e| {
        die(&format!(
            "PostgreSQL primary: {e} (run scripts/db up --pgpool)"
        ))
    });
    let mut s = PgConnection::establish(standby).unwrap_or_else(|e| {
        die(&format!(
            "PostgreSQL standby: {e} (run scripts/db up --pgpool)"
        ))
    });
    p.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS bench_kv (id INT PRIMARY KEY, v INT NOT NULL);
         INSERT INTO bench_kv SELECT g, g * 7 FROM generate_series(1, {ROWS}) g ON CONFLICT DO NOTHING;
         CREATE TABLE IF NOT EXISTS bench_writes (id SERIAL PRIMARY KEY, k INT NOT NULL);
         TRUNCATE bench_writes;"
    ))
    .unwrap_or_else(|e| die(&format!("schema on the primary: {e}")));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n: QueryResult<i64> = bench_kv::table.count().get_result(&mut s);
        if matches!(n, Ok(c) if c == i64::from(ROWS)) {
            return;
        }
        if Instant::now() > deadline {
            die(&format!(
                "the standby did not replicate bench_kv in 15 s ({n:?})"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    let args = parse_args();
    let primary = env_or(
        "DIESEL_RW_PG_PRIMARY_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
    );
    let standby = env_or(
        "DIESEL_RW_PG_REPLICA_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55433/diesel_rw",
    );
    let pgpool = env_or(
        "DIESEL_RW_PGPOOL_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:59999/diesel_rw",
    );
    setup_schema(&primary, &standby);
    let size = *args.threads.iter().max().unwrap() as u32;

    println!(
        "loadbench: PostgreSQL primary {}, standby {}, pgpool-II {}",
        diesel_rw::redact(&primary),
        diesel_rw::redact(&standby),
        diesel_rw::redact(&pgpool)
    );
    println!(
        "loadbench: {} s per run, {} round(s), threads {:?}, {} cores, pools of {size}",
        args.duration.as_secs_f64(),
        args.rounds,
        args.threads,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let mut targets: Vec<(String, Target)> = Vec::new();
    for name in &args.configs {
        let target = match name.as_str() {
            "raw_primary" => Target::Raw(raw_pool(&primary, size).unwrap_or_else(|e| die(&e))),
            "raw_standby" => Target::Raw(raw_pool(&standby, size).unwrap_or_else(|e| die(&e))),
            "rw_standby" => Target::Rw(rw_pool(&primary, &standby, size, Consistency::UnitOfWork)),
            "pgpool" => match raw_pool(&pgpool, size) {
                Ok(p) => Target::Raw(p),
                Err(e) => {
                    println!("SKIPPED pgpool: {e} (start it with `scripts/db up --pgpool`)");
                    continue;
                }
            },
            "raw_mix" => Target::RawMix {
                primary: raw_pool(&primary, size).unwrap_or_else(|e| die(&e)),
                standby: raw_pool(&standby, size).unwrap_or_else(|e| die(&e)),
            },
            "rw_mix_causal" => {
                Target::RwMix(rw_pool(&primary, &standby, size, Consistency::Causal))
            }
            "rw_mix_uow" => {
                Target::RwMix(rw_pool(&primary, &standby, size, Consistency::UnitOfWork))
            }
            _ => unreachable!("checked by parse_args"),
        };
        targets.push((name.clone(), target));
    }

    // Warm every configuration at the largest thread count: connections opened, statements
    // prepared, caches filled.
    if !args.warmup.is_zero() {
        for (name, target) in &targets {
            let r = run(target, size as usize, args.warmup);
            if let Some(e) = &r.first_error {
                println!("warm-up {name}: {} errors, first: {e}", r.errors);
            }
        }
    }

    // results[config][threads] = one Run per round.
    let mut results: Vec<Vec<Vec<Run>>> = targets
        .iter()
        .map(|_| args.threads.iter().map(|_| Vec::new()).collect())
        .collect();
    for (ti, &threads) in args.threads.iter().enumerate() {
        for round in 1..=args.rounds {
            for (ci, (name, target)) in targets.iter().enumerate() {
                let mut r = run(target, threads, args.duration);
                r.latencies_ns.sort_unstable();
                println!(
                    "run threads={threads:<2} round={round} {name:<14} {:>9.0} ops/s  p50 {:>9}  p99 {:>9}  errors {}{}",
                    r.ops_per_s,
                    us(percentile(&r.latencies_ns, 0.50)),
                    us(percentile(&r.latencies_ns, 0.99)),
                    r.errors,
                    r.first_error
                        .as_ref()
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default()
                );
                results[ci][ti].push(r);
            }
        }
    }

    println!();
    println!("| configuration | threads | ops/s (median of rounds) | p50 | p99 | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (ti, &threads) in args.threads.iter().enumerate() {
        for (ci, (name, _)) in targets.iter().enumerate() {
            let runs = &results[ci][ti];
            let mut all: Vec<u32> = runs
                .iter()
                .flat_map(|r| r.latencies_ns.iter().copied())
                .collect();
            all.sort_unstable();
            println!(
                "| {name} | {threads} | {:.0} | {} | {} | {} |",
                median(runs.iter().map(|r| r.ops_per_s).collect()),
                us(percentile(&all, 0.50)),
                us(percentile(&all, 0.99)),
                runs.iter().map(|r| r.errors).sum::<u64>()
            );
        }
    }

    // Where diesel-rw sent the statements.
    println!();
    for (name, target) in &targets {
        let stats = match target {
            Target::Rw(pool) | Target::RwMix(pool) => pool.stats(),
            _ => continue,
        };
        println!(
            "stats {name}: primary {} statements, standby {}, causal reads sent to the primary {}, fallbacks {}",
            stats.primary.queries,
            stats.replica_queries(),
            stats.causal_primary_reads,
            stats.fallbacks
        );
    }

    // Ratios of throughput within each round, median over rounds.
    println!();
    let index = |name: &str| targets.iter().position(|(n, _)| n == name);
    let comparisons = [
        ("rw_standby_vs_raw_standby", "rw_standby", "raw_standby"),
        ("rw_standby_vs_raw_primary", "rw_standby", "raw_primary"),
        ("rw_standby_vs_pgpool", "rw_standby", "pgpool"),
        ("rw_mix_causal_vs_raw_mix", "rw_mix_causal", "raw_mix"),
        ("rw_mix_causal_vs_rw_mix_uow", "rw_mix_causal", "rw_mix_uow"),
    ];
    for (ti, &threads) in args.threads.iter().enumerate() {
        for (label, ours, theirs) in comparisons {
            let (Some(a), Some(b)) = (index(ours), index(theirs)) else {
                continue;
            };
            let ratio = median(
                results[a][ti]
                    .iter()
                    .zip(&results[b][ti])
                    .map(|(x, y)| x.ops_per_s / y.ops_per_s)
                    .collect(),
            );
            println!("ratio {label}_t{threads} {ratio:.3}");
        }
    }
}
