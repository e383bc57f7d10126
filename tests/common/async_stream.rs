//! The rows of an async load when the replica fails after the load began (PostgreSQL: the
//! proxy reads its protocol to stop a reply at a row): before the first row the read runs
//! again elsewhere (cut) or after its deadline (hung); after the first row the stream ends with
//! `Error::Timeout` within the deadline. `async_stream_suite!()` in `async_routing_pg.rs`.

macro_rules! async_stream_suite {
    () => {
        mod async_stream_suite {
            use std::time::{Duration, Instant};

            use diesel::sql_types::{Integer, Text};
            use diesel_async::RunQueryDsl;
            use diesel_rw::{AsyncRwConnection, AsyncRwPool, Consistency, Error, Node};
            use futures_util::StreamExt;

            use crate::common;
            use crate::common::pg as backend;
            use crate::common::proxy::AtRow;

            type Conn = backend::AsyncConn;

            /// The read deadline of these pools: long enough for a loaded machine, short enough
            /// for a test.
            const READ_DEADLINE: Duration = Duration::from_secs(3);

            macro_rules! bed {
                ($name:literal) => {
                    match backend::bed($name) {
                        Some(bed) => bed,
                        None => return,
                    }
                };
            }

            #[derive(diesel::QueryableByName, Debug, PartialEq)]
            struct N {
                #[diesel(sql_type = Integer)]
                n: i32,
            }

            /// The node's identity, by a statement whose text carries `marker` (the proxy's
            /// trap finds it).
            async fn served_by(conn: &mut AsyncRwConnection<Conn>, marker: &str) -> String {
                diesel::select(diesel::dsl::sql::<Text>(&format!(
                    "{} /* {marker} */",
                    backend::IDENTITY
                )))
                .get_result(conn)
                .await
                .unwrap()
            }

            fn pool(replica: &str, primary: &str) -> AsyncRwPool<Conn> {
                AsyncRwPool::<Conn>::builder()
                    .primary(primary)
                    .replica(replica)
                    .consistency(Consistency::Off)
                    .replica_timeout(Duration::from_secs(10))
                    .read_timeout(Some(READ_DEADLINE))
                    .build()
                    .unwrap()
            }

            /// The replica's connection is cut after the server accepted the statement
            /// (`BindComplete` arrived: diesel-async's load has its stream) but before the first
            /// row: the read is run again on the primary and the caller sees no error.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_replica_cut_before_the_first_row_runs_the_read_again() {
                let bed = bed!("async_stream_cut_before_first_row");
                let replica = common::Flaky::proxied(&bed.replica);
                let pool = pool(&replica.url, &bed.primary);
                let mut conn = pool.get().await.unwrap();
                assert_eq!(served_by(&mut conn, "warm").await, bed.replica_id);
                assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
                replica.before_row(b"cut_before_first_row", 0, AtRow::Cut);
                let served = served_by(&mut conn, "cut_before_first_row").await;
                assert_eq!(replica.sprung(), 1, "the trap was sprung");
                assert_eq!(served, bed.primary_id, "run again on the primary");
                assert_eq!(conn.last_route().unwrap().node, Node::Primary);
                let stats = pool.stats();
                assert_eq!(stats.read_retries, 1);
                assert!(stats.replicas[0].failures >= 1, "{stats:?}");
            }

            /// The replica stops answering after the server accepted the statement and before
            /// the first row: the read waits out its deadline, not the stall, and is run again
            /// on the primary.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_replica_hung_before_the_first_row_times_out_and_runs_again() {
                let bed = bed!("async_stream_hung_before_first_row");
                let replica = common::Flaky::proxied(&bed.replica);
                let pool = pool(&replica.url, &bed.primary);
                let mut conn = pool.get().await.unwrap();
                assert_eq!(served_by(&mut conn, "warm").await, bed.replica_id);
                replica.before_row(b"hung_before_first_row", 0, AtRow::Hang);
                let start = Instant::now();
                let served = served_by(&mut conn, "hung_before_first_row").await;
                let took = start.elapsed();
                assert_eq!(replica.sprung(), 1, "the trap was sprung");
                assert_eq!(served, bed.primary_id, "run again on the primary");
                assert!(took >= READ_DEADLINE, "waited for the deadline: {took:?}");
                // Bounded by the deadline, with a margin for a busy machine.
                assert!(took < READ_DEADLINE * 10, "bounded: {took:?}");
                assert_eq!(pool.stats().read_retries, 1);
            }

            /// The replica stops answering after the first row of three: the stream gives that
            /// row, then `Error::Timeout` from the replica once the read deadline has passed
            /// without the next one (rows handed out are not taken back, so the read is not run
            /// again); the connection goes on serving reads.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_replica_hung_mid_result_ends_the_stream_with_a_timeout() {
                let bed = bed!("async_stream_hung_mid_result");
                let replica = common::Flaky::proxied(&bed.replica);
                let pool = pool(&replica.url, &bed.primary);
                let mut conn = pool.get().await.unwrap();
                assert_eq!(served_by(&mut conn, "warm").await, bed.replica_id);
                replica.before_row(b"hung_mid_result", 1, AtRow::Hang);
                let query = diesel::sql_query(
                    "SELECT g::int4 AS n FROM generate_series(1, 3) g /* hung_mid_result */",
                );
                let mut rows = query.load_stream::<N>(&mut conn).await.unwrap();
                let first = rows.next().await.expect("a first row").unwrap();
                assert_eq!(first, N { n: 1 });
                let start = Instant::now();
                // Bounded here too, so that a stream without its deadline fails, not hangs.
                let second = tokio::time::timeout(READ_DEADLINE * 10, rows.next())
                    .await
                    .expect("the stream's deadline ended the wait")
                    .expect("an error, not the end");
                let took = start.elapsed();
                let error = Error::from_diesel(second.unwrap_err());
                match &error {
                    Error::Timeout {
                        node,
                        after,
                        maybe_applied: false,
                    } => {
                        assert_eq!(*after, READ_DEADLINE);
                        assert!(
                            node.contains(&format!(":{}", common::addr_of(&replica.url).port()))
                        );
                    }
                    other => panic!("expected Error::Timeout from the replica, got {other:?}"),
                }
                assert!(!error.to_string().contains("secret"), "{error}");
                assert!(took >= READ_DEADLINE, "waited for the deadline: {took:?}");
                assert!(took < READ_DEADLINE * 10, "bounded: {took:?}");
                assert!(
                    rows.next().await.is_none(),
                    "the stream ends after its error"
                );
                drop(rows);
                assert_eq!(replica.sprung(), 1);
                // The connection serves reads again (the hung replica's connection is given up).
                let served = served_by(&mut conn, "after_hang").await;
                assert!(
                    served == bed.primary_id || served == bed.replica_id,
                    "served by a node of the pool: {served}"
                );
            }
        }
    };
}
