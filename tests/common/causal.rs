//! Read-your-writes by replication position, lag-aware selection and failover, on the real
//! replicated pairs: `causal_suite!(pg)` / `causal_suite!(mysql)`. Every test takes the bed
//! lock: they inject lag into, or stop, the shared replica.

macro_rules! causal_suite {
    ($backend:ident) => {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        use std::time::{Duration, Instant};

        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel_rw::{
            Consistency, Error, MaxLag, Node, Reason, RwConnection, RwPool, WriteToken,
        };

        use common::$backend as backend;
        use common::{items, Bed};

        type Conn = backend::Conn;

        macro_rules! bed {
            ($name:literal) => {
                match backend::bed($name) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        /// Undoes injected lag when dropped, even when the test fails.
        struct Lag;
        impl Lag {
            fn inject(ms: u64) -> Lag {
                backend::set_lag(ms);
                Lag
            }
        }
        impl Drop for Lag {
            fn drop(&mut self) {
                backend::set_lag(0);
            }
        }

        fn seed(bed: &Bed) {
            backend::direct(&bed.primary)
                .batch_execute(&format!(
                    "INSERT INTO items (tag, node) VALUES ('{}', '0')",
                    bed.tag
                ))
                .unwrap();
            backend::replicate(bed);
        }

        fn write(conn: &mut RwConnection<Conn>, tag: &str, value: u64) {
            diesel::update(items::table.filter(items::tag.eq(tag)))
                .set(items::node.eq(value.to_string()))
                .execute(conn)
                .unwrap();
        }

        fn read(conn: &mut RwConnection<Conn>, tag: &str) -> u64 {
            items::table
                .filter(items::tag.eq(tag))
                .select(items::node)
                .first::<String>(conn)
                .unwrap()
                .parse()
                .unwrap()
        }

        fn causal_pool(bed: &Bed) -> RwPool<Conn> {
            RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::Causal)
                .build()
                .unwrap()
        }

        #[test]
        fn causal_reads_never_stale_under_lag() {
            let _lock = common::bed_lock();
            let bed = bed!("causal_reads_never_stale_under_lag");
            seed(&bed);
            let _lag = Lag::inject(1000);
            let pool = causal_pool(&bed);
            let (mut stale, mut on_replica) = (0, 0);
            for i in 1..=1000 {
                let mut conn = pool.get().unwrap();
                write(&mut conn, &bed.tag, i);
                if read(&mut conn, &bed.tag) != i {
                    stale += 1;
                }
                if conn.last_route().unwrap().node != Node::Primary {
                    on_replica += 1;
                }
            }
            eprintln!("causal under lag: 1000 cycles, {stale} stale, {on_replica} reads on the replica");
            assert_eq!(stale, 0);
            // A fresh connection without the token reads the lagging replica: the lag is real.
            let mut fresh = pool.get().unwrap();
            assert_ne!(read(&mut fresh, &bed.tag), 1000, "the replica lags");
            assert_eq!(fresh.last_route().unwrap().node, Node::Replica(0));
        }

        #[test]
        fn window_policy_shows_stale_reads_when_lag_exceeds_window() {
            let _lock = common::bed_lock();
            let bed = bed!("window_policy_shows_stale_reads_when_lag_exceeds_window");
            seed(&bed);
            let _lag = Lag::inject(1000);
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::Window(Duration::from_millis(20)))
                .build()
                .unwrap();
            let mut stale = 0;
            for i in 1..=50 {
                let mut conn = pool.get().unwrap();
                write(&mut conn, &bed.tag, i);
                std::thread::sleep(Duration::from_millis(30));
                if read(&mut conn, &bed.tag) != i {
                    stale += 1;
                }
            }
            eprintln!("window 20 ms under 1 s lag: 50 cycles, {stale} stale");
            assert!(stale > 25, "a window shorter than the lag reads stale data: {stale}/50");
        }

        #[test]
        fn causal_reads_use_replicas_when_caught_up() {
            let _lock = common::bed_lock();
            let bed = bed!("causal_reads_use_replicas_when_caught_up");
            seed(&bed);
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::Causal)
                .causal_wait(Some(Duration::from_millis(500)))
                .build()
                .unwrap();
            let (mut stale, mut on_replica) = (0, 0);
            for i in 1..=200 {
                let mut conn = pool.get().unwrap();
                write(&mut conn, &bed.tag, i);
                if read(&mut conn, &bed.tag) != i {
                    stale += 1;
                }
                if conn.last_route().unwrap().node == Node::Replica(0) {
                    on_replica += 1;
                }
            }
            eprintln!("causal without lag: 200 cycles, {on_replica} reads on the replica, {stale} stale");
            assert_eq!(stale, 0);
            assert!(on_replica >= 180, "at least 90% on the replica: {on_replica}/200");
        }

        #[test]
        fn write_token_carries_read_your_writes_to_new_connection() {
            let _lock = common::bed_lock();
            let bed = bed!("write_token_carries_read_your_writes_to_new_connection");
            seed(&bed);
            let _lag = Lag::inject(1000);
            let pool = causal_pool(&bed);
            let token: WriteToken = {
                let mut writer = pool.get().unwrap();
                write(&mut writer, &bed.tag, 7);
                writer.write_token().expect("a token after a write")
            };
            // The token survives a round trip through text (a cookie, a job payload).
            let text = serde_json::to_string(&token).unwrap();
            let token: WriteToken = serde_json::from_str(&text).unwrap();
            let mut reader = pool.get_after(&token).unwrap();
            assert_eq!(read(&mut reader, &bed.tag), 7, "read-your-writes across connections");
            assert_eq!(reader.last_route().unwrap().node, Node::Primary);
            let mut plain = pool.get().unwrap();
            assert_ne!(read(&mut plain, &bed.tag), 7, "without the token: the lagging replica");
            drop(_lag);
            // Once the replica has replayed the write, the token lets reads go there.
            backend::replicate(&bed);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let mut reader = pool.get_after(&token).unwrap();
                assert_eq!(read(&mut reader, &bed.tag), 7);
                if reader.last_route().unwrap().node == Node::Replica(0) {
                    break;
                }
                assert!(Instant::now() < deadline, "the replica never served the token's reads");
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        #[test]
        fn lagging_replica_is_excluded_by_max_lag() {
            let _lock = common::bed_lock();
            let bed = bed!("lagging_replica_is_excluded_by_max_lag");
            seed(&bed);
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::Off)
                .max_replica_lag(MaxLag::Time(Duration::from_millis(300)))
                .health_interval(Some(Duration::from_millis(50)))
                .build()
                .unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let mut conn = pool.get().unwrap();
            read(&mut conn, &bed.tag);
            assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
            let lag = Lag::inject(3000);
            write(&mut pool.primary().unwrap(), &bed.tag, 1);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !pool.stats().replicas[0].lagging {
                assert!(Instant::now() < deadline, "never marked lagging: {:?}", pool.stats());
                std::thread::sleep(Duration::from_millis(50));
            }
            let stats = pool.stats();
            eprintln!("lagging replica: {:?}", stats.replicas[0]);
            assert!(stats.replicas[0].lag >= Duration::from_millis(300));
            let mut conn = pool.get().unwrap();
            assert_eq!(read(&mut conn, &bed.tag), 1, "the primary serves while the replica lags");
            assert_eq!(conn.last_route().unwrap().node, Node::Primary);
            assert_eq!(conn.last_route().unwrap().reason, Reason::Fallback);
            drop(lag);
            let deadline = Instant::now() + Duration::from_secs(15);
            while pool.stats().replicas[0].lagging {
                assert!(Instant::now() < deadline, "never caught up: {:?}", pool.stats());
                std::thread::sleep(Duration::from_millis(50));
            }
            let mut conn = pool.get().unwrap();
            assert_eq!(read(&mut conn, &bed.tag), 1);
            assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
        }

        /// Four threads read for 10 s while the real replica is stopped (immediate shutdown)
        /// and started again. Two threads read through `load` (`first`), two through the
        /// execute path (`sql_query(..).execute`). A read that fails on the dead replica with a
        /// connection error runs once more on another node, on both paths: 0 errors. The
        /// replica is ejected, and re-admitted after it is started again. A standby restarted
        /// after an immediate stop serves an older snapshot for a moment: the load threads
        /// count those stale reads apart (they are not errors; `Consistency::Off` allows them).
        #[test]
        fn replica_killed_under_load_surfaces_no_read_errors() {
            let _lock = common::bed_lock();
            let bed = bed!("replica_killed_under_load_surfaces_no_read_errors");
            seed(&bed);
            struct Restart;
            impl Drop for Restart {
                fn drop(&mut self) {
                    common::testbed(&["start", backend::REPLICA_NODE]);
                }
            }
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::Off)
                .replica_timeout(Duration::from_secs(10))
                .eject_cooldown(Duration::from_millis(500))
                .health_interval(Some(Duration::from_millis(100)))
                .build()
                .unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let load_errors = Arc::new(AtomicU64::new(0));
            let execute_errors = Arc::new(AtomicU64::new(0));
            let reads = Arc::new(AtomicU64::new(0));
            let stale = Arc::new(AtomicU64::new(0));
            let messages = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let (pool, stop, reads) = (pool.clone(), stop.clone(), reads.clone());
                    let messages = messages.clone();
                    let stale = stale.clone();
                    let errors = if t < 2 { load_errors.clone() } else { execute_errors.clone() };
                    let tag = bed.tag.clone();
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            let mut conn = pool.get().unwrap();
                            let result = if t < 2 {
                                items::table
                                    .filter(items::tag.eq(&tag))
                                    .select(items::node)
                                    .first::<String>(&mut conn)
                                    .map(|_| ())
                            } else {
                                diesel::sql_query(format!(
                                    "SELECT node FROM items WHERE tag = '{tag}'"
                                ))
                                .execute(&mut conn)
                                .map(|_| ())
                            };
                            // A restarted standby serves an older snapshot for a moment (it
                            // replays from its last restartpoint): a stale read, not an error.
                            if let Err(diesel::result::Error::NotFound) = result {
                                stale.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            if let Err(e) = &result {
                                let mut m = messages.lock().unwrap();
                                if m.len() < 8 {
                                    m.push(format!("{:?} {e}", conn.last_route()));
                                }
                            }
                            if result.is_ok() {
                                reads.fetch_add(1, Ordering::Relaxed);
                            } else {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_secs(2));
            let restart = Restart;
            common::testbed(&["stop", backend::REPLICA_NODE]);
            // A dead replica cycles between ejected (its cooldown) and probed (a checkout that
            // waits out its timeout): watch the whole down window, not one instant.
            let mut ejected = false;
            let down_until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < down_until {
                ejected |= pool.stats().replicas[0].ejected;
                std::thread::sleep(Duration::from_millis(10));
            }
            let served_while_down = reads.load(Ordering::Relaxed);
            drop(restart);
            std::thread::sleep(Duration::from_secs(6));
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                t.join().unwrap();
            }
            let stats = pool.stats();
            eprintln!(
                "replica killed under load: {} reads ({} stale), load errors {}, execute errors {}, {:?}",
                reads.load(Ordering::Relaxed),
                stale.load(Ordering::Relaxed),
                load_errors.load(Ordering::Relaxed),
                execute_errors.load(Ordering::Relaxed),
                stats
            );
            eprintln!("first errors: {:#?}", messages.lock().unwrap());
            assert!(ejected, "the replica was ejected while down");
            assert!(stats.ejections >= 1);
            assert!(served_while_down > 0);
            assert_eq!(execute_errors.load(Ordering::Relaxed), 0, "retried reads never fail");
            assert_eq!(load_errors.load(Ordering::Relaxed), 0, "retried loads never fail");
            assert!(!stats.replicas[0].ejected, "re-admitted after the restart");
            let mut conn = pool.get().unwrap();
            let _ = items::table.count().get_result::<i64>(&mut conn).unwrap();
            assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
        }

        /// A read through `load` whose replica connection is cut under it runs once more on
        /// another node (the primary, the only other one here): the caller sees no error, the
        /// retry is counted and the replica ejected.
        #[test]
        fn load_cut_on_its_replica_runs_again_elsewhere() {
            let _lock = common::bed_lock();
            let bed = bed!("load_cut_on_its_replica_runs_again_elsewhere");
            seed(&bed);
            let replica = common::Flaky::proxied(&bed.replica);
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&replica.url)
                .consistency(Consistency::Off)
                .replica_timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let identity = || {
                diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(backend::IDENTITY))
            };
            let primary: String =
                identity().get_result(&mut backend::direct(&bed.primary)).unwrap();
            let standby: String =
                identity().get_result(&mut backend::direct(&bed.replica)).unwrap();
            let mut conn = pool.get().unwrap();
            assert_eq!(identity().get_result::<String>(&mut conn).unwrap(), standby);
            assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
            replica.down();
            // A `load`: cut under it on the replica, run again and served by the primary.
            assert_eq!(identity().get_result::<String>(&mut conn).unwrap(), primary);
            assert_eq!(conn.last_route().unwrap().node, Node::Primary);
            let stats = pool.stats();
            assert_eq!(stats.read_retries, 1);
            assert!(stats.replicas[0].ejected);
            replica.up();
        }

        #[test]
        fn primary_down_fails_writes_fast_reads_continue() {
            let _lock = common::bed_lock();
            let bed = bed!("primary_down_fails_writes_fast_reads_continue");
            seed(&bed);
            let primary = common::Flaky::proxied(&bed.primary);
            let pool = RwPool::<Conn>::builder()
                .primary(&primary.url)
                .replica(&bed.replica)
                .connection_timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            write(&mut pool.get().unwrap(), &bed.tag, 1);
            primary.down();
            // Every write fails within the connect timeout with PrimaryUnavailable. The first
            // may meet the pooled connection the outage cut: it was in flight when the
            // connection broke (`maybe_applied`, no checkout wait). That retires the primary's
            // connections; from then on a write finds no primary at checkout: nothing sent.
            for attempt in 0..4 {
                let start = Instant::now();
                let err = diesel::update(items::table.filter(items::tag.eq(&bed.tag)))
                    .set(items::node.eq("2"))
                    .execute(&mut pool.get().unwrap())
                    .unwrap_err();
                let took = start.elapsed();
                // Refused at once: well within the 5 s checkout timeout, also on a busy machine.
                assert!(took < Duration::from_millis(2500), "failed fast: {took:?}");
                let err = Error::from_diesel(err);
                eprintln!("write {attempt} after {took:?}: {err}");
                match err {
                    Error::PrimaryUnavailable { timeout: Some(t), maybe_applied: false, .. } => {
                        assert_eq!(t, Duration::from_secs(5));
                    }
                    Error::PrimaryUnavailable { timeout: None, maybe_applied: true, .. }
                        if attempt == 0 => {}
                    // The node refused the last attempt: tried once at once, refused again.
                    Error::PrimaryUnavailable { timeout: None, maybe_applied: false, .. } => {}
                    other => panic!("write {attempt}: expected PrimaryUnavailable, got {other:?}"),
                }
            }
            for _ in 0..20 {
                let mut conn = pool.get().unwrap();
                read(&mut conn, &bed.tag);
                assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
            }
            primary.up();
            write(&mut pool.get().unwrap(), &bed.tag, 3);
        }
    };
}
