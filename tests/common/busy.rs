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
