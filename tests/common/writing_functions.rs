//! The application's functions that write, learned from the catalog (issue #15 item 2): the
//! same tests on PostgreSQL and MariaDB. Each test file gives a module `ddl` with the backend's
//! SQL: `create(admin)` makes the functions of this suite (`wf_*`) and their log table
//! `wf_log (tag, node)`, where a writing function records the server that ran it. Every test
//! asserts which node served the call (the route, and the server's own identity) and what the
//! primary's log holds.

#[macro_export]
macro_rules! writing_functions_suite {
    ($backend:ident) => {
        use std::time::Duration;

        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel::sql_types::{Integer, Text};
        use diesel_rw::{Consistency, Node, RwPool};

        use common::$backend as backend;
        use common::Bed;

        type Conn = backend::Conn;

        diesel::define_sql_function! {
            /// VOLATILE / MODIFIES SQL DATA: inserts `tag` into wf_log and returns 1.
            fn wf_write(tag: Text) -> Integer;
        }
        diesel::define_sql_function! {
            /// STABLE / READS SQL DATA: returns `i + 1`.
            fn wf_read(i: Integer) -> Integer;
        }
        diesel::define_sql_function! {
            /// Made after the pool learned its catalog: VOLATILE / MODIFIES SQL DATA.
            fn wf_late(tag: Text) -> Integer;
        }
        diesel::define_sql_function! {
            /// Named by the builder of a pool that does not learn: VOLATILE / MODIFIES SQL DATA.
            fn wf_named(tag: Text) -> Integer;
        }

        #[derive(QueryableByName, Debug)]
        struct Served {
            #[diesel(sql_type = Integer)]
            v: i32,
            #[diesel(sql_type = Text)]
            node: String,
            /// The server's own word: `NOT pg_is_in_recovery()`, `@@read_only = 0`.
            #[diesel(sql_type = diesel::sql_types::Bool)]
            on_primary: bool,
        }

        /// `SELECT <call> AS v, <identity> AS node, <is primary> AS on_primary`.
        fn served_sql(call: &str) -> String {
            format!(
                "SELECT {call} AS v, {} AS node, {} AS on_primary",
                backend::IDENTITY,
                ddl::IS_PRIMARY
            )
        }

        /// The bed with this suite's functions made (once per process) and replicated.
        fn bed(test: &str) -> Option<Bed> {
            static MADE: std::sync::Once = std::sync::Once::new();
            let bed = backend::bed(test)?;
            MADE.call_once(|| {
                ddl::drop_late();
                for sql in ddl::create() {
                    ddl::admin()
                        .batch_execute(&sql)
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
            });
            backend::replicate(&bed);
            Some(bed)
        }

        fn pool(bed: &Bed) -> RwPool<Conn> {
            RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&bed.replica)
                .replica_timeout(Duration::from_secs(10))
                .consistency(Consistency::Off)
                .build()
                .unwrap()
        }

        /// The rows of wf_log tagged `tag`, with the node that ran the function, on the primary.
        fn logged(bed: &Bed, tag: &str) -> Vec<String> {
            diesel::sql_query(format!("SELECT node FROM wf_log WHERE tag = '{tag}'"))
                .load::<NodeRow>(&mut backend::direct(&bed.primary))
                .unwrap()
                .into_iter()
                .map(|r| r.node)
                .collect()
        }

        #[derive(QueryableByName)]
        struct NodeRow {
            #[diesel(sql_type = Text)]
            node: String,
        }

        fn tag(bed: &Bed, what: &str) -> String {
            format!("{}-{what}-{}", bed.tag, std::process::id())
        }

        #[test]
        fn a_call_of_a_volatile_function_runs_on_the_primary_once_learned() {
            let Some(bed) = bed("wf_learned") else { return };
            let pool = pool(&bed);
            // The first connection waits for the catalog.
            let mut conn = pool.get().unwrap();
            assert!(
                pool.writing_functions().contains("wf_write"),
                "not learned: {:?}",
                pool.writing_functions().names()
            );
            assert!(!pool.writing_functions().contains("wf_read"));

            // Text (sql_query: classified on every call).
            let t = tag(&bed, "text");
            let served: Served = diesel::sql_query(served_sql(&format!("wf_write('{t}')")))
                .get_result(&mut conn)
                .unwrap();
            assert_eq!(served.v, 1);
            assert_eq!(
                served.node, bed.primary_id,
                "the writing function ran off the primary"
            );
            assert!(served.on_primary);
            assert_eq!(conn.last_route().unwrap().node, Node::Primary);
            assert_eq!(logged(&bed, &t), std::slice::from_ref(&bed.primary_id));

            // Diesel's DSL (a static query id: classified once per thread, then cached).
            let t = tag(&bed, "dsl");
            for _ in 0..3 {
                let v: i32 = diesel::select(wf_write(&t)).get_result(&mut conn).unwrap();
                assert_eq!(v, 1);
                assert_eq!(conn.last_route().unwrap().node, Node::Primary);
            }
            assert_eq!(logged(&bed, &t).len(), 3);

            // A function that only reads: on the replica, as any read.
            let served: Served = diesel::sql_query(served_sql("wf_read(1)"))
                .get_result(&mut conn)
                .unwrap();
            assert_eq!(served.v, 2);
            assert_eq!(
                served.node, bed.replica_id,
                "the reading function left the replica"
            );
            assert!(!served.on_primary);
            assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
            let v: i32 = diesel::select(wf_read(1)).get_result(&mut conn).unwrap();
            assert_eq!(v, 2);
            assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
        }

        #[test]
        fn a_function_made_after_learning_is_a_write_from_the_refresh_on() {
            let Some(bed) = bed("wf_late") else { return };
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&bed.replica)
                .replica_timeout(Duration::from_secs(10))
                .consistency(Consistency::Off)
                .writing_functions_refresh(None)
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            assert!(!pool.writing_functions().contains("wf_late"));
            let generation = pool.writing_functions().generation();
            ddl::drop_late();
            for sql in ddl::create_late() {
                ddl::admin()
                    .batch_execute(&sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            backend::replicate(&bed);
            // Not learned yet: classified a read, sent to the replica, refused there (the
            // classification is not what keeps writes off replicas).
            let t = tag(&bed, "late");
            let refused = diesel::select(wf_late(&t)).get_result::<i32>(&mut conn);
            let e = refused.expect_err("the replica ran a writing function");
            assert!(common::is_read_only_error(&e), "{e}");
            assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
            // Learned: the same query type (cached as a read on this thread) is a write now.
            let learned = pool.refresh_writing_functions().unwrap();
            assert!(learned >= 3, "the catalog named {learned} functions");
            assert!(pool.writing_functions().generation() > generation);
            assert!(pool.writing_functions().contains("wf_late"));
            let v: i32 = diesel::select(wf_late(&t)).get_result(&mut conn).unwrap();
            assert_eq!(v, 1);
            assert_eq!(conn.last_route().unwrap().node, Node::Primary);
            assert_eq!(logged(&bed, &t), std::slice::from_ref(&bed.primary_id));
        }

        #[test]
        fn functions_named_by_the_builder_are_writes_without_the_catalog() {
            let Some(bed) = bed("wf_named") else { return };
            let build = |named: &[&str]| {
                RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .replica(&bed.replica)
                    .replica_timeout(Duration::from_secs(10))
                    .consistency(Consistency::Off)
                    .learn_writing_functions(false)
                    .writing_functions(named.iter().copied())
                    .build()
                    .unwrap()
            };
            // Learning off and nothing named: the call goes to the replica, which refuses it.
            let pool = build(&[]);
            let mut conn = pool.get().unwrap();
            assert!(pool.writing_functions().names().is_empty());
            assert_eq!(pool.refresh_writing_functions().unwrap(), 0);
            let t = tag(&bed, "named");
            let e = diesel::select(wf_named(&t))
                .get_result::<i32>(&mut conn)
                .expect_err("the replica ran a writing function");
            assert!(common::is_read_only_error(&e), "{e}");
            // Named (with its schema): the primary.
            let pool = build(&[ddl::QUALIFIED_NAMED]);
            let mut conn = pool.get().unwrap();
            let served: Served = diesel::sql_query(served_sql(&format!("wf_named('{t}')")))
                .get_result(&mut conn)
                .unwrap();
            assert_eq!(served.node, bed.primary_id);
            assert!(served.on_primary);
            let v: i32 = diesel::select(wf_named(&t)).get_result(&mut conn).unwrap();
            assert_eq!(v, 1);
            assert_eq!(conn.last_route().unwrap().node, Node::Primary);
            assert_eq!(logged(&bed, &t).len(), 2);
        }

        #[test]
        fn a_primary_that_refuses_or_hangs_delays_the_first_connection_at_most_its_timeout() {
            let Some(bed) = bed("wf_down") else { return };
            let hung = common::Flaky::proxied(&bed.primary);
            hung.hang();
            let mut pools = Vec::new();
            for primary in [backend::unreachable_url(&bed), hung.url.clone()] {
                let pool = RwPool::<Conn>::builder()
                    .primary(&primary)
                    .replica(&bed.replica)
                    .replica_timeout(Duration::from_secs(10))
                    .connection_timeout(Duration::from_secs(1))
                    .build()
                    .unwrap();
                let start = std::time::Instant::now();
                let mut conn = pool.get().unwrap();
                let waited = start.elapsed();
                assert!(
                    waited < Duration::from_secs(3),
                    "{primary}: get waited {waited:?}"
                );
                assert!(!pool.writing_functions().contains("wf_write"));
                // Later connections do not wait again; reads still go to the replica.
                let start = std::time::Instant::now();
                let mut again = pool.get().unwrap();
                assert!(start.elapsed() < Duration::from_millis(500));
                let served: Served = diesel::sql_query(served_sql("wf_read(1)"))
                    .get_result(&mut conn)
                    .unwrap();
                assert_eq!(served.node, bed.replica_id);
                let v: i32 = diesel::select(wf_read(2)).get_result(&mut again).unwrap();
                assert_eq!(v, 3);
                pools.push(pool);
            }
            // The primary answers again: the learning under way ends (and its thread with it,
            // before the process exits), and the next connections see the catalog.
            hung.resume();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !pools[1].writing_functions().contains("wf_write") {
                assert!(
                    std::time::Instant::now() < deadline,
                    "not learned after the primary resumed"
                );
                std::thread::sleep(Duration::from_millis(20));
                let _ = pools[1].get();
            }
        }

        #[test]
        fn a_named_function_is_double_written() {
            use diesel_rw::{DoubleWrite, Pattern};
            let Some(bed) = bed("wf_double") else { return };
            for sql in ddl::create() {
                ddl::destination_admin()
                    .batch_execute(&sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            let destination = ddl::destination();
            let on = |url: &str, tag: &str| -> usize {
                diesel::sql_query(format!("SELECT node FROM wf_log WHERE tag = '{tag}'"))
                    .load::<NodeRow>(&mut backend::direct(url))
                    .unwrap()
                    .len()
            };
            for named in [false, true] {
                let mut builder = DoubleWrite::<Conn>::builder()
                    .source(&bed.primary)
                    .destination(&destination)
                    .pattern(Pattern::SrcFirst);
                if named {
                    builder = builder.writing_functions(["wf_write"]);
                }
                let pool = builder.build().unwrap();
                let mut conn = pool.get().unwrap();
                let t = tag(&bed, &format!("double-{named}"));
                let v: i32 = diesel::select(wf_write(&t)).get_result(&mut conn).unwrap();
                assert_eq!(v, 1);
                let served: Served = diesel::sql_query(served_sql(&format!("wf_write('{t}')")))
                    .get_result(&mut conn)
                    .unwrap();
                assert_eq!(served.v, 1);
                assert_eq!(on(&bed.primary, &t), 2, "the source ran both calls");
                // Unnamed: a read, run on the reading side only; named: a write, on both.
                assert_eq!(
                    on(&destination, &t),
                    if named { 2 } else { 0 },
                    "named={named}"
                );
            }
        }

        #[cfg(feature = "async")]
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_async_pool_learns_its_catalog_at_its_first_connection() {
            let Some(bed) = tokio::task::spawn_blocking(|| bed("wf_async"))
                .await
                .unwrap()
            else {
                return;
            };
            let pool = diesel_rw::AsyncRwPool::<backend::AsyncConn>::builder()
                .primary(&bed.primary)
                .replica(&bed.replica)
                .replica_timeout(Duration::from_secs(10))
                .consistency(Consistency::Off)
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            assert!(pool.writing_functions().contains("wf_write"));
            let t = tag(&bed, "async");
            let served: Served = diesel_async::RunQueryDsl::get_result(
                diesel::sql_query(served_sql(&format!("wf_write('{t}')"))),
                &mut conn,
            )
            .await
            .unwrap();
            assert_eq!(served.node, bed.primary_id);
            assert!(served.on_primary);
            let v: i32 =
                diesel_async::RunQueryDsl::get_result(diesel::select(wf_write(&t)), &mut conn)
                    .await
                    .unwrap();
            assert_eq!(v, 1);
            assert_eq!(conn.last_route().unwrap().node, Node::Primary);
            let served: Served = diesel_async::RunQueryDsl::get_result(
                diesel::sql_query(served_sql("wf_read(1)")),
                &mut conn,
            )
            .await
            .unwrap();
            assert_eq!(served.node, bed.replica_id);
            assert!(!served.on_primary);
            assert_eq!(pool.refresh_writing_functions().await.unwrap() >= 2, true);
            let logged = tokio::task::spawn_blocking(move || logged(&bed, &t))
                .await
                .unwrap();
            assert_eq!(logged.len(), 2);
        }
    };
}
