//! Busy is not down (included by the routing suites): a node whose pool is exhausted is waited
//! for, then reported as `Error::PoolExhausted`, and never ejected; a node that refuses
//! connections fails a checkout at once instead of waiting out its timeout.

/// The sync suite for `$backend` (`common::$backend` provides `bed`, `IDENTITY`, `Conn`).
macro_rules! busy_suite {
    ($backend:ident) => {
        mod busy_suite {
            use std::time::{Duration, Instant};

            use diesel::prelude::*;
            use diesel::sql_types::Text;
            use diesel_rw::{Error, Node, Reason, RwConnection, RwPool};

            use crate::common::$backend as backend;

            type Conn = backend::Conn;

            macro_rules! bed {
                ($name:literal) => {
                    match backend::bed($name) {
                        Some(bed) => bed,
                        None => return,
                    }
                };
            }

            fn served_by(conn: &mut RwConnection<Conn>) -> String {
                diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                    .get_result(conn)
                    .unwrap()
            }

            // The checkout timeouts here are generous (2 s) so that making the pools' first
            // connections on a loaded machine never runs into them; only the waits for an
            // exhausted pool do.
            #[test]
            fn an_exhausted_replica_pool_is_busy_not_down() {
                let bed = bed!("busy_replica_pool");
                let pool = RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&bed.replica)
                    .replica_max_size(1)
                    .replica_timeout(Duration::from_secs(2))
                    .build()
                    .unwrap();
                // This connection holds the replica pool's only connection.
                let mut holder = pool.get().unwrap();
                assert_eq!(served_by(&mut holder), bed.replica_id);
                for _ in 0..2 {
                    let mut conn = pool.get().unwrap();
                    // Waits for the replica, then reads on the primary (Fallback::Primary).
                    assert_eq!(served_by(&mut conn), bed.primary_id);
                    let route = conn.last_route().unwrap();
                    assert_eq!((route.node, route.reason), (Node::Primary, Reason::Fallback));
                }
                let stats = pool.stats();
                assert_eq!(stats.ejections, 0, "a busy replica is not ejected: {stats:?}");
                drop(holder);
                // Free again: the replica serves at once (it was never ejected).
                assert_eq!(served_by(&mut pool.get().unwrap()), bed.replica_id);
                assert_eq!(pool.stats().ejections, 0);
            }

            #[test]
            fn an_exhausted_primary_pool_is_pool_exhausted_not_primary_unavailable() {
                let bed = bed!("busy_primary_pool");
                let pool = RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .max_size(1)
                    .connection_timeout(Duration::from_secs(2))
                    .build()
                    .unwrap();
                let mut holder = pool.primary().unwrap();
                assert_eq!(served_by(&mut holder), bed.primary_id);
                let mut conn = pool.primary().unwrap();
                let err = diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                    .get_result::<String>(&mut conn)
                    .unwrap_err();
                let err = Error::from_diesel(err);
                assert!(matches!(err, Error::PoolExhausted { waited, .. } if waited >= Duration::from_secs(2)), "{err:?}");
                assert!(err.to_string().contains("up but busy"), "{err}");
                drop(holder);
                assert_eq!(served_by(&mut conn), bed.primary_id, "served once the pool has a free connection");
            }

            #[test]
            fn a_hung_replica_is_ejected_by_the_monitor_and_new_reads_avoid_it() {
                if backend::NAME == "SQLite" {
                    return; // A file cannot hang.
                }
                let bed = bed!("hung_replica_monitor");
                let replica = crate::common::Flaky::proxied(&bed.replica);
                let deadline = Duration::from_secs(1);
                let pool = RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&replica.url)
                    .replica_timeout(deadline)
                    .health_interval(Some(Duration::from_millis(200)))
                    .eject_cooldown(Duration::from_millis(500))
                    .build()
                    .unwrap();
                // Wait until the replica serves (its first connections may be slow to make).
                let until = Instant::now() + Duration::from_secs(30);
                while served_by(&mut pool.get().unwrap()) != bed.replica_id {
                    assert!(Instant::now() < until, "the replica never served");
                    std::thread::sleep(Duration::from_millis(50));
                }
                replica.hang();
                // The monitor's probe gets no answer within its deadline: ejected.
                let hung_at = Instant::now();
                let until = hung_at + Duration::from_secs(30);
                while !pool.stats().replicas[0].ejected {
                    assert!(Instant::now() < until, "the hung replica was not ejected in 30 s");
                    std::thread::sleep(Duration::from_millis(20));
                }
                println!("hung replica ejected {:?} after it hung", hung_at.elapsed());
                // New reads avoid it: served by the primary without waiting on the replica.
                for _ in 0..5 {
                    let start = Instant::now();
                    let mut conn = pool.get().unwrap();
                    assert_eq!(served_by(&mut conn), bed.primary_id);
                    assert!(start.elapsed() < deadline, "a read waited {:?}", start.elapsed());
                }
                replica.resume();
                let until = Instant::now() + Duration::from_secs(30);
                while served_by(&mut pool.get().unwrap()) != bed.replica_id {
                    assert!(Instant::now() < until, "the replica was not re-admitted in 30 s");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }

            /// The limit of the sync stack, shown: a statement already sent to a node that
            /// then hangs returns only when the node answers again. diesel's sync connections
            /// block in libpq's / libmysqlclient's socket read, and expose neither the socket
            /// (for a receive timeout or a watchdog that closes it) nor a read-timeout option
            /// (diesel's MySQL URL takes none; libpq has none); a server-side
            /// `statement_timeout` cannot fire in a stopped server, and TCP keepalive /
            /// `tcp_user_timeout` do not notice a host whose kernel still acknowledges. What is
            /// bounded is everything else: checkouts, every probe of the lag monitor (its own
            /// thread per node), and the reads after the monitor ejected the node (the test
            /// above). The async stack bounds the statement too (`read_timeout`).
            #[test]
            fn a_statement_in_flight_to_a_hung_node_waits_for_it_on_the_sync_stack() {
                if backend::NAME == "SQLite" {
                    return; // A file cannot hang.
                }
                let bed = bed!("hung_in_flight_sync");
                let replica = crate::common::Flaky::proxied(&bed.replica);
                let pool = RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&replica.url)
                    .replica_timeout(Duration::from_secs(5))
                    .read_timeout(Some(Duration::from_secs(1)))
                    .build()
                    .unwrap();
                let mut conn = pool.get().unwrap();
                assert_eq!(served_by(&mut conn), bed.replica_id);
                replica.hang();
                let (tx, rx) = std::sync::mpsc::channel();
                let started = Instant::now();
                std::thread::spawn(move || {
                    let served = served_by(&mut conn);
                    let _ = tx.send((served, started.elapsed()));
                });
                // Well past the read_timeout (which binds the async stack only), still waiting.
                assert!(
                    rx.recv_timeout(Duration::from_secs(4)).is_err(),
                    "the sync read to the hung replica returned: if the sync stack can now bound \
                     it, update this test and the docs of read_timeout"
                );
                replica.resume();
                let (served, took) = rx
                    .recv_timeout(Duration::from_secs(60))
                    .expect("the read returns once the replica answers");
                println!("sync read to a hung replica returned after {took:?}, when it resumed");
                assert_eq!(served, bed.replica_id, "the same replica answered, late");
            }

            #[test]
            fn a_slow_replica_is_taken_out_of_rotation_and_comes_back() {
                if backend::NAME == "SQLite" {
                    return; // A file cannot be slowed.
                }
                let bed = bed!("slow_replica");
                // Two replicas on the one standby: direct, and behind a proxy that can slow it.
                let slow = crate::common::Flaky::proxied(&bed.replica);
                let pool = RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&bed.replica)
                    .replica(&slow.url)
                    .policy(diesel_rw::Policy::RoundRobin)
                    .consistency(diesel_rw::Consistency::Off)
                    .replica_timeout(Duration::from_secs(10))
                    .max_replica_latency(Some(Duration::from_millis(400)))
                    .eject_cooldown(Duration::from_secs(2))
                    .build()
                    .unwrap();
                let node = |pool: &RwPool<Conn>| {
                    let mut conn = pool.get().unwrap();
                    assert_eq!(served_by(&mut conn), bed.replica_id);
                    conn.last_route().unwrap().node
                };
                // Both serve while fast.
                let until = Instant::now() + Duration::from_secs(30);
                while node(&pool) != Node::Replica(1) {
                    assert!(Instant::now() < until, "the second replica never served");
                }
                slow.set_delay(Duration::from_millis(1500));
                // Its smoothed latency passes 400 ms within a few slow reads: out of rotation.
                let mut slow_reads = 0;
                let until = Instant::now() + Duration::from_secs(60);
                while !pool.stats().replicas[1].ejected {
                    assert!(Instant::now() < until, "the slow replica stayed in rotation");
                    slow_reads += usize::from(node(&pool) == Node::Replica(1));
                }
                println!("slow replica out of rotation after {slow_reads} slow read(s)");
                assert!(slow_reads <= 3, "{slow_reads} reads went to the slow replica");
                for _ in 0..10 {
                    assert_eq!(node(&pool), Node::Replica(0), "reads avoid the slow replica");
                }
                // Fast again: back in rotation after its cooldown.
                slow.set_delay(Duration::ZERO);
                let until = Instant::now() + Duration::from_secs(30);
                while node(&pool) != Node::Replica(1) {
                    assert!(Instant::now() < until, "the recovered replica was not re-admitted");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }

            #[test]
            fn a_refused_primary_fails_fast() {
                if backend::NAME == "SQLite" {
                    return; // A file refuses no connection.
                }
                let bed = bed!("refused_primary_fails_fast");
                let timeout = Duration::from_secs(20);
                let pool = RwPool::<Conn>::builder()
                    .primary(backend::unreachable_url(&bed))
                    .replica(&bed.replica)
                    .connection_timeout(timeout)
                    .build()
                    .unwrap();
                let mut conn = pool.get().unwrap();
                for _ in 0..3 {
                    let start = Instant::now();
                    let err = diesel::sql_query("INSERT INTO items (tag, node) VALUES ('x', 'y')")
                        .execute(&mut conn)
                        .unwrap_err();
                    let took = start.elapsed();
                    let err = Error::from_diesel(err);
                    assert!(matches!(err, Error::PrimaryUnavailable { .. }), "{err:?}");
                    // Refused at once: far less than the checkout timeout, also on a busy machine.
                    assert!(took < timeout / 4, "a refused connection took {took:?} (timeout {timeout:?})");
                    assert!(!err.to_string().contains("diesel_rw_pw"), "{err}");
                }
                // Reads go on from the replica.
                assert_eq!(served_by(&mut conn), bed.replica_id);
            }
        }
    };
}

/// The async suite for `$backend`.
#[cfg(feature = "async")]
macro_rules! async_busy_suite {
    ($backend:ident) => {
        mod async_busy_suite {
            use std::time::{Duration, Instant};

            use diesel::sql_types::Text;
            use diesel_async::RunQueryDsl;
            use diesel_rw::{AsyncRwConnection, AsyncRwPool, Error, Node, Reason};

            use crate::common;
            use crate::common::$backend as backend;

            type Conn = backend::AsyncConn;

            macro_rules! bed {
                ($name:literal) => {
                    match backend::bed($name) {
                        Some(bed) => bed,
                        None => return,
                    }
                };
            }

            async fn served_by(conn: &mut AsyncRwConnection<Conn>) -> String {
                diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                    .get_result(conn)
                    .await
                    .unwrap()
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_an_exhausted_replica_pool_is_busy_not_down() {
                let bed = bed!("async_busy_replica_pool");
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&bed.replica)
                    .replica_max_size(1)
                    .replica_timeout(Duration::from_secs(2))
                    .build()
                    .unwrap();
                let mut holder = pool.get().await.unwrap();
                assert_eq!(served_by(&mut holder).await, bed.replica_id);
                for _ in 0..2 {
                    let mut conn = pool.get().await.unwrap();
                    assert_eq!(served_by(&mut conn).await, bed.primary_id);
                    let route = conn.last_route().unwrap();
                    assert_eq!(
                        (route.node, route.reason),
                        (Node::Primary, Reason::Fallback)
                    );
                }
                assert_eq!(pool.stats().ejections, 0, "a busy replica is not ejected");
                drop(holder);
                assert_eq!(
                    served_by(&mut pool.get().await.unwrap()).await,
                    bed.replica_id
                );
                assert_eq!(pool.stats().ejections, 0);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_an_exhausted_primary_pool_is_pool_exhausted() {
                let bed = bed!("async_busy_primary_pool");
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .max_size(1)
                    .connection_timeout(Duration::from_secs(2))
                    .build()
                    .unwrap();
                let mut holder = pool.primary().await.unwrap();
                assert_eq!(served_by(&mut holder).await, bed.primary_id);
                let mut conn = pool.primary().await.unwrap();
                let err = diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                    .get_result::<String>(&mut conn)
                    .await
                    .unwrap_err();
                let err = Error::from_diesel(err);
                assert!(matches!(err, Error::PoolExhausted { .. }), "{err:?}");
                drop(holder);
                assert_eq!(served_by(&mut conn).await, bed.primary_id);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_a_hung_replica_costs_a_read_its_deadline_then_is_ejected() {
                if backend::NAME == "SQLite" {
                    return; // A file cannot hang.
                }
                let bed = bed!("async_hung_replica");
                let replica = backend::flaky_replica(&bed);
                let deadline = Duration::from_secs(1);
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&replica.url)
                    .read_timeout(Some(deadline))
                    .replica_timeout(Duration::from_secs(10))
                    .eject_cooldown(Duration::from_millis(500))
                    .build()
                    .unwrap();
                let mut conn = pool.get().await.unwrap();
                assert_eq!(served_by(&mut conn).await, bed.replica_id);
                replica.hang();
                let start = Instant::now();
                // The read on the hung replica runs out its deadline, then runs on the primary.
                assert_eq!(served_by(&mut conn).await, bed.primary_id);
                let took = start.elapsed();
                assert!(took >= deadline, "took {took:?}");
                assert!(
                    took < deadline + Duration::from_secs(10),
                    "a hung replica held a read for {took:?}"
                );
                let stats = pool.stats();
                assert!(
                    stats.replicas[0].ejected,
                    "the hung replica is ejected: {stats:?}"
                );
                assert_eq!(stats.read_retries, 1);
                // While it is ejected, reads avoid it at once.
                let start = Instant::now();
                let mut fresh = pool.get().await.unwrap();
                assert_eq!(served_by(&mut fresh).await, bed.primary_id);
                assert!(
                    start.elapsed() < deadline,
                    "an ejected replica is not tried"
                );
                replica.resume();
                // Answering again: re-admitted after its cooldown (waited for).
                let until = Instant::now() + Duration::from_secs(30);
                loop {
                    let mut conn = pool.get().await.unwrap();
                    if served_by(&mut conn).await == bed.replica_id {
                        break;
                    }
                    assert!(
                        Instant::now() < until,
                        "the replica was not re-admitted in 30 s"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_a_write_to_a_hung_primary_is_a_timeout_that_may_have_applied() {
                if backend::NAME == "SQLite" {
                    return; // A file cannot hang.
                }
                let bed = bed!("async_hung_primary");
                let primary = backend::flaky_replica(&common::Bed {
                    primary: bed.primary.clone(),
                    replica: bed.primary.clone(),
                    primary_id: bed.primary_id.clone(),
                    replica_id: bed.primary_id.clone(),
                    tag: "hung-primary".into(),
                    dir: None,
                });
                let deadline = Duration::from_secs(1);
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .write_timeout(Some(deadline))
                    .build()
                    .unwrap();
                let mut conn = pool.get().await.unwrap();
                let tag = format!("{}-{}", bed.tag, std::process::id());
                let insert = |tag: String| {
                    diesel::sql_query(format!(
                        "INSERT INTO items (tag, node) VALUES ('{tag}', 'x')"
                    ))
                };
                insert(format!("{tag}:before"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                primary.hang();
                let start = Instant::now();
                let err = insert(format!("{tag}:hung"))
                    .execute(&mut conn)
                    .await
                    .unwrap_err();
                let took = start.elapsed();
                primary.resume();
                let err = Error::from_diesel(err);
                assert!(
                    matches!(
                        err,
                        Error::Timeout {
                            maybe_applied: true,
                            ..
                        }
                    ),
                    "{err:?}"
                );
                assert!(
                    err.to_string().contains("check before running it again"),
                    "{err}"
                );
                assert!(
                    took >= deadline && took < deadline + Duration::from_secs(10),
                    "took {took:?}"
                );
                assert!(!err.to_string().contains("diesel_rw_pw"), "{err}");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_a_slow_replica_is_taken_out_of_rotation_and_comes_back() {
                if backend::NAME == "SQLite" {
                    return; // A file cannot be slowed.
                }
                let bed = bed!("async_slow_replica");
                let slow = crate::common::Flaky::proxied(&bed.replica);
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&bed.replica)
                    .replica(&slow.url)
                    .policy(diesel_rw::Policy::RoundRobin)
                    .consistency(diesel_rw::Consistency::Off)
                    .replica_timeout(Duration::from_secs(10))
                    .max_replica_latency(Some(Duration::from_millis(400)))
                    .eject_cooldown(Duration::from_secs(2))
                    .build()
                    .unwrap();
                async fn node(pool: &AsyncRwPool<Conn>, replica_id: &str) -> Node {
                    let mut conn = pool.get().await.unwrap();
                    assert_eq!(served_by(&mut conn).await, replica_id);
                    conn.last_route().unwrap().node
                }
                let until = Instant::now() + Duration::from_secs(30);
                while node(&pool, &bed.replica_id).await != Node::Replica(1) {
                    assert!(Instant::now() < until, "the second replica never served");
                }
                slow.set_delay(Duration::from_millis(1500));
                let mut slow_reads = 0;
                let until = Instant::now() + Duration::from_secs(60);
                while !pool.stats().replicas[1].ejected {
                    assert!(
                        Instant::now() < until,
                        "the slow replica stayed in rotation"
                    );
                    slow_reads +=
                        usize::from(node(&pool, &bed.replica_id).await == Node::Replica(1));
                }
                assert!(
                    slow_reads <= 3,
                    "{slow_reads} reads went to the slow replica"
                );
                for _ in 0..10 {
                    assert_eq!(
                        node(&pool, &bed.replica_id).await,
                        Node::Replica(0),
                        "reads avoid the slow replica"
                    );
                }
                slow.set_delay(Duration::ZERO);
                let until = Instant::now() + Duration::from_secs(30);
                while node(&pool, &bed.replica_id).await != Node::Replica(1) {
                    assert!(
                        Instant::now() < until,
                        "the recovered replica was not re-admitted"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_a_refused_primary_fails_fast() {
                if backend::NAME == "SQLite" {
                    return; // A file refuses no connection.
                }
                let bed = bed!("async_refused_primary_fails_fast");
                let timeout = Duration::from_secs(20);
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(backend::unreachable_url(&bed))
                    .replica(&bed.replica)
                    .connection_timeout(timeout)
                    .build()
                    .unwrap();
                let mut conn = pool.get().await.unwrap();
                for _ in 0..3 {
                    let start = Instant::now();
                    let err = diesel::sql_query("INSERT INTO items (tag, node) VALUES ('x', 'y')")
                        .execute(&mut conn)
                        .await
                        .unwrap_err();
                    let took = start.elapsed();
                    let err = Error::from_diesel(err);
                    assert!(matches!(err, Error::PrimaryUnavailable { .. }), "{err:?}");
                    assert!(took < timeout / 4, "a refused connection took {took:?}");
                }
                assert_eq!(served_by(&mut conn).await, bed.replica_id);
            }
        }
    };
}
