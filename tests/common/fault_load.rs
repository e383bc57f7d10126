//! Faults under load (tests/fault_load_{pg,mysql}.rs): four callers (threads, or tokio tasks
//! for the async stack) run a mixed load — three reads to one write transaction — while one
//! fault is injected through a proxy in front of a node: hung, slow, busy (pool exhausted),
//! refused, or a lost `COMMIT` reply. Each test asserts what the failure model promises (the
//! callers' latency bounded, the node ejected and re-admitted, no healthy replica ejected, fast
//! failure, and no write lost: every write reported committed is there, every write reported
//! not committed is not), and prints one row of the table in the closing note: errors surfaced,
//! max read / write latency, eject and re-admit times, writes lost.
//!
//! Waits are conditions with generous deadlines; the latency bounds are the configured
//! deadlines plus a margin wide enough for a machine whose cores are busy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The password of the test bed's URLs: it must appear in no error.
pub const PASSWORD: &str = "diesel_rw_pw";

/// Slack on top of a deadline, for a loaded machine.
pub const MARGIN: Duration = Duration::from_secs(3);

/// What the callers saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub reads: u64,
    pub writes: u64,
    /// Error variant name -> count.
    pub errors: BTreeMap<String, u64>,
    pub max_read: Duration,
    pub max_write: Duration,
    /// Tags of writes reported committed.
    pub committed: Vec<String>,
    /// Tags of writes reported not committed (`NotCommitted`, or an error before the COMMIT).
    pub not_committed: Vec<String>,
    /// Tags of writes whose outcome was reported unknown.
    pub unknown: Vec<String>,
    /// When the last read served by the replica began (for re-admission: a read begun after
    /// the fault ended).
    pub last_replica_read: Option<Instant>,
    /// Every error message, to check for the password.
    pub messages: Vec<String>,
}

impl Tally {
    pub fn error(&mut self, err: &diesel_rw::Error) {
        let name = format!("{err:?}");
        let name = name
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_owned();
        *self.errors.entry(name).or_default() += 1;
        if self.messages.len() < 10_000 {
            self.messages.push(format!("{err} {err:?}"));
        }
    }

    /// A read that began at `start` and took `took`.
    pub fn read(&mut self, start: Instant, took: Duration, on_replica: bool) {
        self.reads += 1;
        self.max_read = self.max_read.max(took);
        if on_replica {
            self.last_replica_read = Some(start);
        }
    }

    pub fn write(&mut self, took: Duration) {
        self.writes += 1;
        self.max_write = self.max_write.max(took);
    }

    pub fn errors_of(&self, name: &str) -> u64 {
        self.errors.get(name).copied().unwrap_or(0)
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Asserts no error message carries the password.
    pub fn assert_no_password(&self) {
        for m in &self.messages {
            assert!(!m.contains(PASSWORD), "a password in an error: {m}");
        }
    }
}

pub type Shared = Arc<Mutex<Tally>>;

/// Waits until `done` holds, up to `within`; `None` if it never did.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if done() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// One row of the closing note's table.
pub fn report(
    backend: &str,
    stack: &str,
    fault: &str,
    t: &Tally,
    eject: Option<Duration>,
    readmit: Option<Duration>,
    lost: usize,
) {
    let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{} ms", d.as_millis()));
    println!(
        "FAULT-TABLE | {backend} | {stack} | {fault} | reads {} writes {} | errors {:?} | \
         max read {} ms | max write {} ms | ejected after {} | re-admitted after {} | \
         unknown outcomes {} | writes lost {lost}",
        t.reads,
        t.writes,
        t.errors,
        t.max_read.as_millis(),
        t.max_write.as_millis(),
        ms(eject),
        ms(readmit),
        t.unknown.len(),
    );
}

/// The sync suite for `$backend` (PostgreSQL or MariaDB).
macro_rules! fault_load_suite {
    ($backend:ident) => {
        mod fault_load {
            use std::sync::atomic::{AtomicBool, Ordering};
            use std::sync::{Arc, Mutex};
            use std::time::{Duration, Instant};

            use diesel::prelude::*;
            use diesel::sql_types::Text;
            use diesel_rw::{Error, RwPool};

            use crate::common::fault_load::{report, wait_until, Shared, Tally, MARGIN};
            use crate::common::$backend as backend;
            use crate::common::Flaky;

            type Conn = backend::Conn;

            macro_rules! bed {
                ($name:literal) => {
                    match backend::bed($name) {
                        Some(bed) => bed,
                        None => return,
                    }
                };
            }

            /// Four threads of mixed load on `pool` until `stop`.
            struct Load {
                stop: Arc<AtomicBool>,
                threads: Vec<std::thread::JoinHandle<()>>,
                tally: Shared,
            }

            impl Load {
                fn start(pool: &RwPool<Conn>, tag: &str, replica_id: &str) -> Load {
                    Self::holding(pool, tag, replica_id, None)
                }

                /// With `hold`, each write transaction also runs it (a statement that takes a
                /// while), so callers hold their connections longer.
                fn holding(
                    pool: &RwPool<Conn>,
                    tag: &str,
                    replica_id: &str,
                    hold: Option<&'static str>,
                ) -> Load {
                    let stop = Arc::new(AtomicBool::new(false));
                    let tally: Shared = Arc::new(Mutex::new(Tally::default()));
                    let threads = (0..4)
                        .map(|id| {
                            let (pool, stop, tally) = (pool.clone(), stop.clone(), tally.clone());
                            let (tag, replica_id) = (tag.to_owned(), replica_id.to_owned());
                            std::thread::spawn(move || {
                                let mut i = 0u64;
                                while !stop.load(Ordering::SeqCst) {
                                    i += 1;
                                    if i % 4 == 0 {
                                        write(&pool, &format!("{tag}-{id}-{i}"), hold, &tally);
                                    } else {
                                        read(&pool, &replica_id, &tally);
                                    }
                                    std::thread::sleep(Duration::from_millis(5));
                                }
                            })
                        })
                        .collect();
                    Load {
                        stop,
                        threads,
                        tally,
                    }
                }

                fn stop(self) -> Tally {
                    self.stop.store(true, Ordering::SeqCst);
                    for t in self.threads {
                        t.join().unwrap();
                    }
                    Arc::try_unwrap(self.tally).unwrap().into_inner().unwrap()
                }

                fn last_replica_read(&self) -> Option<Instant> {
                    self.tally.lock().unwrap().last_replica_read
                }
            }

            fn read(pool: &RwPool<Conn>, replica_id: &str, tally: &Shared) {
                let start = Instant::now();
                let result = pool.get().and_then(|mut c| {
                    diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                        .get_result::<String>(&mut c)
                        .map_err(Error::from_diesel)
                });
                let took = start.elapsed();
                let mut t = tally.lock().unwrap();
                match result {
                    Ok(served) => t.read(start, took, served == replica_id),
                    Err(e) => {
                        t.read(start, took, false);
                        t.error(&e);
                    }
                }
            }

            fn write(pool: &RwPool<Conn>, tag: &str, hold: Option<&str>, tally: &Shared) {
                let start = Instant::now();
                let result = pool.get().and_then(|mut c| {
                    c.transaction(|c| {
                        if let Some(sql) = hold {
                            diesel::connection::SimpleConnection::batch_execute(c, sql)?;
                        }
                        diesel::sql_query(format!(
                            "INSERT INTO items (tag, node) VALUES ('{tag}', 'x')"
                        ))
                        .execute(c)
                    })
                    .map_err(Error::from_diesel)
                });
                let took = start.elapsed();
                let mut t = tally.lock().unwrap();
                t.write(took);
                match result {
                    Ok(_) => t.committed.push(tag.to_owned()),
                    Err(e) => {
                        match &e {
                            Error::CommitOutcomeUnknown { .. } => t.unknown.push(tag.to_owned()),
                            // Anything else failed before or at the COMMIT and did not commit.
                            _ => t.not_committed.push(tag.to_owned()),
                        }
                        t.error(&e);
                    }
                }
            }

            /// Writes reported committed that are not there, plus writes reported not
            /// committed that are: both are lost truths.
            fn writes_lost(bed: &crate::common::Bed, tally: &Tally) -> usize {
                let run = run_tag(bed);
                #[derive(QueryableByName)]
                struct Tag {
                    #[diesel(sql_type = Text)]
                    tag: String,
                }
                let present: std::collections::HashSet<String> =
                    diesel::sql_query(format!("SELECT tag FROM items WHERE tag LIKE '{run}-%'"))
                        .load::<Tag>(&mut backend::direct(&bed.primary))
                        .unwrap()
                        .into_iter()
                        .map(|t| t.tag)
                        .collect();
                let missing = tally
                    .committed
                    .iter()
                    .filter(|t| !present.contains(*t))
                    .count();
                let phantom = tally
                    .not_committed
                    .iter()
                    .filter(|t| present.contains(*t))
                    .count();
                missing + phantom
            }

            /// The tag prefix of this run's writes (runs of the same test do not meet).
            fn run_tag(bed: &crate::common::Bed) -> String {
                static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
                let started = STARTED.get_or_init(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_micros()
                });
                format!("{}-{}-{started}", bed.tag, std::process::id())
            }

            fn wait_replica_serves(pool: &RwPool<Conn>, replica_id: &str) {
                let served = wait_until(Duration::from_secs(60), || {
                    pool.get()
                        .ok()
                        .and_then(|mut c| {
                            diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                                .get_result::<String>(&mut c)
                                .ok()
                        })
                        .is_some_and(|s| s == replica_id)
                });
                assert!(served.is_some(), "the replica never served");
            }

            #[test]
            fn hung_replica_under_load() {
                let bed = bed!("fault_hung_replica");
                let replica = Flaky::proxied(&bed.replica);
                let pool = RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&replica.url)
                    .replica_timeout(Duration::from_secs(1))
                    .health_interval(Some(Duration::from_millis(200)))
                    .eject_cooldown(Duration::from_millis(500))
                    .build()
                    .unwrap();
                wait_replica_serves(&pool, &bed.replica_id);
                let load = Load::start(&pool, &run_tag(&bed), &bed.replica_id);
                std::thread::sleep(Duration::from_millis(500));
                let hang = Duration::from_secs(3);
                replica.hang();
                let hung_at = Instant::now();
                let eject =
                    wait_until(Duration::from_secs(30), || pool.stats().replicas[0].ejected);
                assert!(eject.is_some(), "the hung replica was not ejected");
                // Reads sent before the monitor ejected it wait for it (the sync limit); new
                // reads go to the primary.
                std::thread::sleep(hang.saturating_sub(hung_at.elapsed()));
                replica.resume();
                let resumed = Instant::now();
                let readmit = wait_until(Duration::from_secs(30), || {
                    load.last_replica_read().is_some_and(|t| t > resumed)
                });
                assert!(readmit.is_some(), "the replica was not re-admitted");
                let tally = load.stop();
                let lost = writes_lost(&bed, &tally);
                report(
                    backend::NAME,
                    "sync",
                    "hung replica (3 s)",
                    &tally,
                    eject,
                    readmit,
                    lost,
                );
                tally.assert_no_password();
                assert_eq!(lost, 0);
                assert_eq!(
                    tally.total_errors(),
                    0,
                    "reads went elsewhere: {:?}",
                    tally.errors
                );
                // Bounded by the hang itself: the sync stack cannot cut a read in flight.
                assert!(
                    tally.max_read < hang + MARGIN,
                    "max read {:?}",
                    tally.max_read
                );
            }

            #[test]
            fn slow_replica_under_load() {
                let bed = bed!("fault_slow_replica");
                let replica = Flaky::proxied(&bed.replica);
                let limit = Duration::from_millis(300);
                let pool = RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&replica.url)
                    .replica_timeout(Duration::from_secs(5))
                    .max_replica_latency(Some(limit))
                    .eject_cooldown(Duration::from_millis(500))
                    .build()
                    .unwrap();
                wait_replica_serves(&pool, &bed.replica_id);
                let load = Load::start(&pool, &run_tag(&bed), &bed.replica_id);
                std::thread::sleep(Duration::from_millis(500));
                let delay = Duration::from_secs(1);
                replica.set_delay(delay);
                let eject =
                    wait_until(Duration::from_secs(30), || pool.stats().replicas[0].ejected);
                assert!(
                    eject.is_some(),
                    "the slow replica was not taken out of rotation"
                );
                std::thread::sleep(Duration::from_secs(1));
                replica.set_delay(Duration::ZERO);
                let fast_at = Instant::now();
                let readmit = wait_until(Duration::from_secs(30), || {
                    load.last_replica_read().is_some_and(|t| t > fast_at)
                        && !pool.stats().replicas[0].ejected
                });
                assert!(
                    readmit.is_some(),
                    "the recovered replica was not re-admitted"
                );
                let tally = load.stop();
                let lost = writes_lost(&bed, &tally);
                report(
                    backend::NAME,
                    "sync",
                    "slow replica (+1 s per reply)",
                    &tally,
                    eject,
                    readmit,
                    lost,
                );
                tally.assert_no_password();
                assert_eq!(lost, 0);
                assert_eq!(tally.total_errors(), 0, "{:?}", tally.errors);
                // A read that met the slow replica took its delay (a few round trips of it, as a
                // probe after the cooldown can), not more.
                assert!(
                    tally.max_read < delay * 4 + MARGIN,
                    "max read {:?}",
                    tally.max_read
                );
            }

            #[test]
            fn busy_pools_under_load() {
                let bed = bed!("fault_busy_pools");
                // Four callers on one replica connection and two primary connections.
                let checkout = Duration::from_millis(100);
                let pool = RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&bed.replica)
                    .max_size(1)
                    .replica_timeout(checkout)
                    .connection_timeout(checkout)
                    .build()
                    .unwrap();
                wait_replica_serves(&pool, &bed.replica_id);
                // Each write holds the primary's one connection for 300 ms: callers wait past
                // the 100 ms checkout timeout.
                let hold = if backend::NAME == "PostgreSQL" {
                    "SELECT pg_sleep(0.3)"
                } else {
                    "SELECT SLEEP(0.3)"
                };
                let load = Load::holding(&pool, &run_tag(&bed), &bed.replica_id, Some(hold));
                std::thread::sleep(Duration::from_secs(4));
                let tally = load.stop();
                let stats = pool.stats();
                let lost = writes_lost(&bed, &tally);
                report(
                    backend::NAME,
                    "sync",
                    "busy (pools of 1, 4 callers)",
                    &tally,
                    None,
                    None,
                    lost,
                );
                tally.assert_no_password();
                assert_eq!(lost, 0);
                assert_eq!(
                    stats.ejections, 0,
                    "a busy replica is not ejected: {stats:?}"
                );
                assert_eq!(
                    tally.errors_of("PrimaryUnavailable"),
                    0,
                    "busy is not down: {:?}",
                    tally.errors
                );
                let other = tally.total_errors() - tally.errors_of("PoolExhausted");
                assert_eq!(other, 0, "only PoolExhausted: {:?}", tally.errors);
                assert!(
                    tally.errors_of("PoolExhausted") > 0,
                    "the pools were exhausted: {:?}",
                    tally.errors
                );
                // Waits are bounded by the checkout timeouts (a read may wait for the replica,
                // then for the primary), plus the statement.
                assert!(
                    tally.max_read < checkout * 2 + MARGIN,
                    "max read {:?}",
                    tally.max_read
                );
                assert!(
                    tally.max_write < checkout + Duration::from_millis(300) + MARGIN,
                    "max write {:?}",
                    tally.max_write
                );
            }

            #[test]
            fn refused_primary_under_load() {
                let bed = bed!("fault_refused_primary");
                let primary = Flaky::proxied(&bed.primary);
                let checkout = Duration::from_secs(10);
                let pool = RwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .replica(&bed.replica)
                    .replica_timeout(Duration::from_secs(5))
                    .connection_timeout(checkout)
                    .build()
                    .unwrap();
                wait_replica_serves(&pool, &bed.replica_id);
                let load = Load::start(&pool, &run_tag(&bed), &bed.replica_id);
                std::thread::sleep(Duration::from_millis(500));
                primary.down();
                std::thread::sleep(Duration::from_secs(2));
                let during = load.tally.lock().unwrap().total_errors();
                primary.up();
                let up_at = Instant::now();
                let back = wait_until(Duration::from_secs(30), || {
                    load.tally.lock().unwrap().committed.len() > 0
                        && pool.get().is_ok_and(|mut c| {
                            c.transaction(|c| {
                                diesel::sql_query(format!(
                                    "INSERT INTO items (tag, node) VALUES ('{}-probe-{}', 'x')",
                                    bed.tag,
                                    up_at.elapsed().as_nanos()
                                ))
                                .execute(c)
                            })
                            .is_ok()
                        })
                });
                assert!(back.is_some(), "writes did not come back");
                let tally = load.stop();
                let lost = writes_lost(&bed, &tally);
                report(
                    backend::NAME,
                    "sync",
                    "refused primary (2 s)",
                    &tally,
                    None,
                    back,
                    lost,
                );
                tally.assert_no_password();
                assert_eq!(lost, 0);
                assert!(
                    during > 0,
                    "writes failed while the primary refused: {:?}",
                    tally.errors
                );
                // Fast: far below the 10 s checkout timeout (the first write after the cut may
                // meet a connection the cut broke, which fails at once too).
                assert!(
                    tally.max_write < Duration::from_secs(2) + MARGIN,
                    "max write {:?}",
                    tally.max_write
                );
                let read_errors: u64 = tally
                    .errors
                    .iter()
                    .filter(|(k, _)| k.as_str() == "Checkout")
                    .map(|(_, v)| v)
                    .sum();
                assert_eq!(
                    read_errors, 0,
                    "reads continue on the replica: {:?}",
                    tally.errors
                );
            }

            #[test]
            fn lost_commit_replies_under_load() {
                let bed = bed!("fault_lost_commits");
                let primary = Flaky::proxied(&bed.primary);
                let pool = RwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .replica(&bed.replica)
                    .replica_timeout(Duration::from_secs(5))
                    .connection_timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                wait_replica_serves(&pool, &bed.replica_id);
                let load = Load::start(&pool, &run_tag(&bed), &bed.replica_id);
                let traps = 10;
                for n in 1..=traps {
                    std::thread::sleep(Duration::from_millis(100));
                    primary.lose_reply_to(b"COMMIT");
                    let sprung = wait_until(Duration::from_secs(30), || primary.sprung() >= n);
                    assert!(sprung.is_some(), "trap {n} was not sprung");
                }
                std::thread::sleep(Duration::from_millis(500));
                let tally = load.stop();
                println!(
                    "{} lost COMMIT replies; unknown: {}",
                    primary.sprung(),
                    tally.unknown.len()
                );
                let lost = writes_lost(&bed, &tally);
                report(
                    backend::NAME,
                    "sync",
                    "lost COMMIT replies (10)",
                    &tally,
                    None,
                    None,
                    lost,
                );
                tally.assert_no_password();
                assert_eq!(
                    lost, 0,
                    "a write reported committed is missing, or one reported not committed is there"
                );
                let unexpected: u64 = tally
                    .errors
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "CommitOutcomeUnknown" | "NotCommitted" | "PrimaryUnavailable"
                        )
                    })
                    .map(|(_, v)| v)
                    .sum();
                assert_eq!(unexpected, 0, "{:?}", tally.errors);
                if backend::NAME == "PostgreSQL" {
                    assert!(
                        tally.unknown.is_empty(),
                        "PostgreSQL resolves every lost reply: {:?}",
                        tally.errors
                    );
                } else {
                    assert_eq!(
                        tally.unknown.len() as u64,
                        traps,
                        "MariaDB reports each unknown"
                    );
                }
            }
        }
    };
}

/// The async suite for `$backend`: the faults the async stack's deadlines bound (a hung
/// replica, a hung primary) and lost `COMMIT` replies, under four tokio tasks of mixed load.
#[cfg(feature = "async")]
macro_rules! async_fault_load_suite {
    ($backend:ident) => {
        mod async_fault_load {
            use std::sync::atomic::{AtomicBool, Ordering};
            use std::sync::{Arc, Mutex};
            use std::time::{Duration, Instant};

            use diesel::sql_types::Text;
            use diesel_async::{AsyncConnection, RunQueryDsl};
            use diesel_rw::{AsyncRwPool, Error};

            use crate::common::fault_load::{report, wait_until, Shared, Tally, MARGIN};
            use crate::common::$backend as backend;
            use crate::common::Flaky;

            type Conn = backend::AsyncConn;

            macro_rules! bed {
                ($name:literal) => {
                    match backend::bed($name) {
                        Some(bed) => bed,
                        None => return,
                    }
                };
            }

            fn run_tag(bed: &crate::common::Bed) -> String {
                let micros = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_micros();
                format!("{}-{}-{micros}", bed.tag, std::process::id())
            }

            struct Load {
                stop: Arc<AtomicBool>,
                tasks: Vec<tokio::task::JoinHandle<()>>,
                tally: Shared,
            }

            impl Load {
                fn start(pool: &AsyncRwPool<Conn>, run: &str, replica_id: &str) -> Load {
                    let stop = Arc::new(AtomicBool::new(false));
                    let tally: Shared = Arc::new(Mutex::new(Tally::default()));
                    let tasks = (0..4)
                        .map(|id| {
                            let (pool, stop, tally) = (pool.clone(), stop.clone(), tally.clone());
                            let (run, replica_id) = (run.to_owned(), replica_id.to_owned());
                            tokio::spawn(async move {
                                let mut i = 0u64;
                                while !AtomicBool::load(&stop, Ordering::SeqCst) {
                                    i += 1;
                                    if i % 4 == 0 {
                                        write(&pool, &format!("{run}-{id}-{i}"), &tally).await;
                                    } else {
                                        read(&pool, &replica_id, &tally).await;
                                    }
                                    tokio::time::sleep(Duration::from_millis(5)).await;
                                }
                            })
                        })
                        .collect();
                    Load { stop, tasks, tally }
                }

                async fn stop(self) -> Tally {
                    AtomicBool::store(&self.stop, true, Ordering::SeqCst);
                    for t in self.tasks {
                        t.await.unwrap();
                    }
                    Arc::try_unwrap(self.tally).unwrap().into_inner().unwrap()
                }

                fn last_replica_read(&self) -> Option<Instant> {
                    self.tally.lock().unwrap().last_replica_read
                }
            }

            async fn read(pool: &AsyncRwPool<Conn>, replica_id: &str, tally: &Shared) {
                let start = Instant::now();
                let result = match pool.get().await {
                    Ok(mut c) => diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                        .get_result::<String>(&mut c)
                        .await
                        .map_err(Error::from_diesel),
                    Err(e) => Err(e),
                };
                let took = start.elapsed();
                let mut t = tally.lock().unwrap();
                match result {
                    Ok(served) => t.read(start, took, served == replica_id),
                    Err(e) => {
                        t.read(start, took, false);
                        t.error(&e);
                    }
                }
            }

            async fn write(pool: &AsyncRwPool<Conn>, tag: &str, tally: &Shared) {
                let start = Instant::now();
                let result = match pool.get().await {
                    Ok(mut c) => c
                        .transaction::<_, diesel::result::Error, _>(async |c| {
                            diesel::sql_query(format!(
                                "INSERT INTO items (tag, node) VALUES ('{tag}', 'x')"
                            ))
                            .execute(c)
                            .await
                        })
                        .await
                        .map_err(Error::from_diesel),
                    Err(e) => Err(e),
                };
                let took = start.elapsed();
                let mut t = tally.lock().unwrap();
                t.write(took);
                match result {
                    Ok(_) => t.committed.push(tag.to_owned()),
                    Err(e) => {
                        match &e {
                            Error::CommitOutcomeUnknown { .. } => t.unknown.push(tag.to_owned()),
                            _ => t.not_committed.push(tag.to_owned()),
                        }
                        t.error(&e);
                    }
                }
            }

            fn writes_lost(bed: &crate::common::Bed, run: &str, tally: &Tally) -> usize {
                #[derive(diesel::QueryableByName)]
                struct Tag {
                    #[diesel(sql_type = Text)]
                    tag: String,
                }
                let query =
                    diesel::sql_query(format!("SELECT tag FROM items WHERE tag LIKE '{run}-%'"));
                let present: std::collections::HashSet<String> =
                    diesel::RunQueryDsl::load::<Tag>(query, &mut backend::direct(&bed.primary))
                        .unwrap()
                        .into_iter()
                        .map(|t| t.tag)
                        .collect();
                let missing = tally
                    .committed
                    .iter()
                    .filter(|t| !present.contains(*t))
                    .count();
                let phantom = tally
                    .not_committed
                    .iter()
                    .filter(|t| present.contains(*t))
                    .count();
                missing + phantom
            }

            async fn wait_replica_serves(pool: &AsyncRwPool<Conn>, replica_id: &str) {
                let until = Instant::now() + Duration::from_secs(60);
                loop {
                    if let Ok(mut c) = pool.get().await {
                        let served = diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                            .get_result::<String>(&mut c)
                            .await;
                        if served.is_ok_and(|s| s == replica_id) {
                            return;
                        }
                    }
                    assert!(Instant::now() < until, "the replica never served");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }

            /// Waits for `done` on the runtime's blocking pool (the tasks keep running).
            async fn until(
                within: Duration,
                done: impl FnMut() -> bool + Send + 'static,
            ) -> Option<Duration> {
                tokio::task::spawn_blocking(move || wait_until(within, done))
                    .await
                    .unwrap()
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn async_hung_replica_under_load() {
                let bed = bed!("async_fault_hung_replica");
                let replica = Flaky::proxied(&bed.replica);
                let deadline = Duration::from_secs(1);
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&replica.url)
                    .replica_timeout(Duration::from_secs(2))
                    .read_timeout(Some(deadline))
                    .health_interval(Some(Duration::from_millis(200)))
                    .eject_cooldown(Duration::from_millis(500))
                    .build()
                    .unwrap();
                wait_replica_serves(&pool, &bed.replica_id).await;
                let run = run_tag(&bed);
                let load = Load::start(&pool, &run, &bed.replica_id);
                tokio::time::sleep(Duration::from_millis(500)).await;
                replica.hang();
                let stats_pool = pool.clone();
                let eject = until(Duration::from_secs(30), move || {
                    stats_pool.stats().replicas[0].ejected
                })
                .await;
                assert!(eject.is_some(), "the hung replica was not ejected");
                tokio::time::sleep(Duration::from_secs(2)).await;
                replica.resume();
                let resumed = Instant::now();
                let tally_ref = load.tally.clone();
                let readmit = until(Duration::from_secs(30), move || {
                    tally_ref
                        .lock()
                        .unwrap()
                        .last_replica_read
                        .is_some_and(|t| t > resumed)
                })
                .await;
                assert!(readmit.is_some(), "the replica was not re-admitted");
                let _ = load.last_replica_read();
                let tally = load.stop().await;
                let lost = writes_lost(&bed, &run, &tally);
                report(
                    backend::NAME,
                    "async",
                    "hung replica (3 s)",
                    &tally,
                    eject,
                    readmit,
                    lost,
                );
                tally.assert_no_password();
                assert_eq!(lost, 0);
                assert_eq!(
                    tally.total_errors(),
                    0,
                    "a timed-out read runs again elsewhere: {:?}",
                    tally.errors
                );
                // The deadline, then the read once more on the primary.
                assert!(
                    tally.max_read < deadline + MARGIN,
                    "max read {:?}",
                    tally.max_read
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn async_hung_primary_under_load() {
                let bed = bed!("async_fault_hung_primary");
                let primary = Flaky::proxied(&bed.primary);
                let deadline = Duration::from_secs(1);
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .replica(&bed.replica)
                    .replica_timeout(Duration::from_secs(5))
                    .write_timeout(Some(deadline))
                    .read_timeout(Some(deadline))
                    .connection_timeout(Duration::from_secs(1))
                    .build()
                    .unwrap();
                wait_replica_serves(&pool, &bed.replica_id).await;
                let run = run_tag(&bed);
                let load = Load::start(&pool, &run, &bed.replica_id);
                tokio::time::sleep(Duration::from_millis(500)).await;
                primary.hang();
                tokio::time::sleep(Duration::from_secs(3)).await;
                primary.resume();
                let resumed = Instant::now();
                let tally_ref = load.tally.clone();
                let back = until(Duration::from_secs(30), move || {
                    // A write that began after the primary came back, committed.
                    let t = tally_ref.lock().unwrap();
                    t.committed.len() > 0 && resumed.elapsed() > Duration::from_millis(200)
                })
                .await;
                assert!(back.is_some(), "writes did not come back");
                let tally = load.stop().await;
                let lost = writes_lost(&bed, &run, &tally);
                report(
                    backend::NAME,
                    "async",
                    "hung primary (3 s)",
                    &tally,
                    None,
                    back,
                    lost,
                );
                tally.assert_no_password();
                assert_eq!(lost, 0, "reported outcomes match the data");
                assert!(
                    tally.total_errors() > 0,
                    "writes to the hung primary failed: {:?}",
                    tally.errors
                );
                let unexpected: u64 = tally
                    .errors
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "Timeout"
                                | "CommitOutcomeUnknown"
                                | "NotCommitted"
                                | "PrimaryUnavailable"
                                | "PoolExhausted"
                        )
                    })
                    .map(|(_, v)| v)
                    .sum();
                assert_eq!(unexpected, 0, "{:?}", tally.errors);
                // A write costs at most its deadline (plus, for a lost COMMIT, the resolution,
                // bounded by the checkout timeout).
                assert!(
                    tally.max_write < deadline * 3 + MARGIN,
                    "max write {:?}",
                    tally.max_write
                );
                assert!(
                    tally.max_read < deadline + MARGIN,
                    "reads continue on the replica: {:?}",
                    tally.max_read
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn async_lost_commit_replies_under_load() {
                let bed = bed!("async_fault_lost_commits");
                let primary = Arc::new(Flaky::proxied(&bed.primary));
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .replica(&bed.replica)
                    .replica_timeout(Duration::from_secs(5))
                    .connection_timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                wait_replica_serves(&pool, &bed.replica_id).await;
                let run = run_tag(&bed);
                let load = Load::start(&pool, &run, &bed.replica_id);
                let traps = 10u64;
                for n in 1..=traps {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    primary.lose_reply_to(b"COMMIT");
                    let p = primary.clone();
                    let sprung = until(Duration::from_secs(30), move || p.sprung() >= n).await;
                    assert!(sprung.is_some(), "trap {n} was not sprung");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let tally = load.stop().await;
                let lost = writes_lost(&bed, &run, &tally);
                report(
                    backend::NAME,
                    "async",
                    "lost COMMIT replies (10)",
                    &tally,
                    None,
                    None,
                    lost,
                );
                tally.assert_no_password();
                assert_eq!(lost, 0);
                if backend::NAME == "PostgreSQL" {
                    assert!(
                        tally.unknown.is_empty(),
                        "PostgreSQL resolves every lost reply: {:?}",
                        tally.errors
                    );
                    assert_eq!(tally.total_errors(), 0, "{:?}", tally.errors);
                } else {
                    assert_eq!(
                        tally.unknown.len() as u64,
                        traps,
                        "MariaDB reports each unknown: {:?}",
                        tally.errors
                    );
                }
            }
        }
    };
}
