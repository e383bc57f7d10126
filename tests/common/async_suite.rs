//! The async routing suite, run on each backend by `async_routing_suite!(backend_module)`: the
//! tests of `suite.rs` on `AsyncRwPool` / `AsyncRwConnection`, named `async_` + the sync name,
//! plus the async-only ones (concurrent tasks, cancelled transactions). Each test asserts the node
//! that served the call, from the database itself (the `IDENTITY` expression is evaluated by the
//! server that runs the statement) and from `conn.last_route()`.
//!
//! The tests run on tokio's multi-threaded runtime: diesel-async's SQLite wrapper needs it.

macro_rules! async_routing_suite {
    ($backend:ident) => {
        use std::time::Duration;

        use diesel::prelude::{ExpressionMethods, QueryDsl, QueryResult};
        use diesel::sql_types::Text;
        use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
        use diesel_rw::{
            AsyncRwConnection, AsyncRwPool, Consistency, Error, Fallback, Node, Policy, Reason,
            Route,
        };

        use common::$backend as backend;
        use common::{items, Bed};

        type Conn = backend::AsyncConn;

        /// The replica checkout timeout of these pools: generous, so that making a first
        /// connection on a loaded machine never counts as the replica failing (the tests of
        /// timeouts set their own).
        const CHECKOUT: std::time::Duration = std::time::Duration::from_secs(10);

        fn pool(bed: &Bed) -> AsyncRwPool<Conn> {
            AsyncRwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .build()
                .unwrap()
        }

        /// The identity of the server that ran this read (routed like any read).
        async fn served_by(conn: &mut AsyncRwConnection<Conn>) -> String {
            diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                .get_result(conn)
                .await
                .unwrap()
        }

        async fn insert(conn: &mut AsyncRwConnection<Conn>, tag: &str) -> QueryResult<usize> {
            diesel::insert_into(items::table)
                .values((
                    items::tag.eq(tag),
                    items::node.eq(diesel::dsl::sql::<Text>(backend::IDENTITY)),
                ))
                .execute(conn)
                .await
        }

        async fn count(conn: &mut AsyncRwConnection<Conn>, tag: &str) -> QueryResult<i64> {
            items::table
                .filter(items::tag.eq(tag))
                .count()
                .get_result(conn)
                .await
        }

        /// The `node` column of this tag's rows, read on the primary directly.
        fn rows_on_primary(bed: &Bed, tag: &str) -> Vec<String> {
            let query = items::table
                .filter(items::tag.eq(tag))
                .select(items::node)
                .order(items::id);
            diesel::RunQueryDsl::load(query, &mut backend::direct(&bed.primary)).unwrap()
        }

        fn delete_on_primary(bed: &Bed, tag: &str) {
            use diesel::connection::SimpleConnection;
            backend::direct(&bed.primary)
                .batch_execute(&format!("DELETE FROM items WHERE tag = '{tag}'"))
                .unwrap();
        }

        fn route(conn: &AsyncRwConnection<Conn>) -> Route {
            conn.last_route().expect("a statement was routed")
        }

        macro_rules! bed {
            ($name:literal) => {
                match backend::bed($name) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_reads_go_to_replica() {
            let bed = bed!("async_reads_go_to_replica");
            let mut setup = backend::direct(&bed.primary);
            diesel::connection::SimpleConnection::batch_execute(
                &mut setup,
                &format!(
                    "INSERT INTO items (tag, node) VALUES ('{}', 'seed')",
                    bed.tag
                ),
            )
            .unwrap();
            backend::replicate(&bed);
            let pool = pool(&bed);
            let mut conn = pool.get().await.unwrap();
            assert_eq!(
                count(&mut conn, &bed.tag).await.unwrap(),
                1,
                "the replica has the replayed row"
            );
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Replica(0),
                    reason: Reason::Policy
                }
            );
            assert_eq!(served_by(&mut conn).await, bed.replica_id);
            let stats = pool.stats();
            assert_eq!(stats.primary.queries, 0);
            assert_eq!(stats.replicas[0].queries, 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_writes_go_to_primary() {
            let bed = bed!("async_writes_go_to_primary");
            let pool = pool(&bed);
            let mut conn = pool.get().await.unwrap();
            assert_eq!(insert(&mut conn, &bed.tag).await.unwrap(), 1);
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Primary,
                    reason: Reason::Write
                }
            );
            diesel::update(items::table.filter(items::tag.eq(&bed.tag)))
                .set(items::node.eq(diesel::dsl::sql::<Text>(backend::IDENTITY)))
                .execute(&mut conn)
                .await
                .unwrap();
            assert_eq!(route(&conn).node, Node::Primary);
            // The server that ran the INSERT and the UPDATE wrote its own identity.
            assert_eq!(
                rows_on_primary(&bed, &bed.tag),
                std::slice::from_ref(&bed.primary_id)
            );
            assert_eq!(pool.stats().replica_queries(), 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_insert_returning_goes_to_primary() {
            let bed = bed!("async_insert_returning_goes_to_primary");
            let pool = pool(&bed);
            let mut conn = pool.get().await.unwrap();
            let node = backend::async_insert_returning(&mut conn, &bed.tag)
                .await
                .unwrap();
            assert_eq!(
                node, bed.primary_id,
                "the INSERT ... RETURNING ran on the primary"
            );
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Primary,
                    reason: Reason::Write
                }
            );
            assert_eq!(pool.stats().replica_queries(), 0);
            assert_eq!(
                rows_on_primary(&bed, &bed.tag),
                std::slice::from_ref(&bed.primary_id)
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_select_for_update_goes_to_primary() {
            let bed = bed!("async_select_for_update_goes_to_primary");
            let pool = pool(&bed);
            insert(&mut pool.primary().await.unwrap(), &bed.tag)
                .await
                .unwrap();
            backend::replicate(&bed);
            let mut conn = pool.get().await.unwrap();
            let tag = bed.tag.clone();
            let result = conn
                .transaction(async |c| backend::async_select_for_update(c, &tag).await)
                .await;
            if backend::SUPPORTS_FOR_UPDATE {
                assert_eq!(result.unwrap(), std::slice::from_ref(&bed.primary_id));
            } else {
                assert!(result.is_err(), "this backend rejects FOR UPDATE");
            }
            // Outside a transaction too: the locking read is classified as a write.
            let mut conn = pool.get().await.unwrap();
            let result = backend::async_select_for_update(&mut conn, &bed.tag).await;
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Primary,
                    reason: Reason::Write
                }
            );
            if backend::SUPPORTS_FOR_UPDATE {
                assert_eq!(result.unwrap(), std::slice::from_ref(&bed.primary_id));
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_reads_inside_transaction_stay_on_primary() {
            let bed = bed!("async_reads_inside_transaction_stay_on_primary");
            let pool = AsyncRwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::Off)
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            let bed_ref = &bed;
            conn.transaction(async |c| {
                assert_eq!(served_by(c).await, bed_ref.primary_id);
                assert_eq!(
                    route(c),
                    Route {
                        node: Node::Primary,
                        reason: Reason::Transaction
                    }
                );
                insert(c, &bed_ref.tag).await?;
                // The read sees the transaction's own uncommitted write.
                assert_eq!(count(c, &bed_ref.tag).await?, 1);
                assert_eq!(route(c).node, Node::Primary);
                QueryResult::Ok(())
            })
            .await
            .unwrap();
            assert_eq!(conn.transaction_node(), None);
            // With Consistency::Off the next read goes back to the replica.
            assert_eq!(served_by(&mut conn).await, bed.replica_id);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_nested_transaction_rolls_back_savepoint_on_primary() {
            let bed = bed!("async_nested_transaction_rolls_back_savepoint_on_primary");
            let pool = pool(&bed);
            let mut conn = pool.get().await.unwrap();
            let (a, b, c) = (
                format!("{}-a", bed.tag),
                format!("{}-b", bed.tag),
                format!("{}-c", bed.tag),
            );
            let (a_ref, b_ref, c_ref, bed_ref) = (&a, &b, &c, &bed);
            conn.transaction(async |conn| {
                insert(conn, a_ref).await?;
                let inner: QueryResult<()> = conn
                    .transaction(async |conn| {
                        insert(conn, b_ref).await?;
                        assert_eq!(served_by(conn).await, bed_ref.primary_id);
                        Err(diesel::result::Error::RollbackTransaction)
                    })
                    .await;
                assert!(inner.is_err());
                assert_eq!(conn.transaction_node(), Some(Node::Primary));
                insert(conn, c_ref).await?;
                QueryResult::Ok(())
            })
            .await
            .unwrap();
            assert_eq!(conn.transaction_node(), None);
            assert_eq!(rows_on_primary(&bed, &a).len(), 1);
            assert_eq!(rows_on_primary(&bed, &b).len(), 0, "savepoint rolled back");
            assert_eq!(rows_on_primary(&bed, &c).len(), 1);
            for t in [&a, &b, &c] {
                delete_on_primary(&bed, t);
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_sticky_unit_of_work_reads_primary_after_write() {
            let bed = bed!("async_sticky_unit_of_work_reads_primary_after_write");
            let pool = AsyncRwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::UnitOfWork)
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            assert_eq!(served_by(&mut conn).await, bed.replica_id);
            insert(&mut conn, &bed.tag).await.unwrap();
            assert!(conn.is_sticky());
            for _ in 0..3 {
                assert_eq!(served_by(&mut conn).await, bed.primary_id);
                assert_eq!(
                    route(&conn),
                    Route {
                        node: Node::Primary,
                        reason: Reason::Sticky
                    }
                );
            }
            // Read-your-writes without waiting for replication.
            assert_eq!(count(&mut conn, &bed.tag).await.unwrap(), 1);
            // A new unit of work reads from the replica again.
            let mut next = pool.get().await.unwrap();
            assert_eq!(served_by(&mut next).await, bed.replica_id);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_sticky_window_expires() {
            let bed = bed!("async_sticky_window_expires");
            let pool = AsyncRwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::Window(Duration::from_millis(300)))
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            insert(&mut conn, &bed.tag).await.unwrap();
            assert_eq!(served_by(&mut conn).await, bed.primary_id);
            assert_eq!(route(&conn).reason, Reason::Sticky);
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(served_by(&mut conn).await, bed.replica_id);
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Replica(0),
                    reason: Reason::Policy
                }
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_write_on_replica_handle_is_rejected_before_sending() {
            let bed = bed!("async_write_on_replica_handle_is_rejected_before_sending");
            let pool = pool(&bed);
            let mut ro = pool.replica().await.unwrap();
            assert_eq!(served_by(&mut ro).await, bed.replica_id);
            let before = pool.stats();
            let err = insert(&mut ro, &bed.tag).await.unwrap_err();
            assert!(
                matches!(Error::from_diesel(err), Error::WriteOnReadRoute { .. }),
                "a WriteOnReadRoute error"
            );
            let err = ro
                .batch_execute(&format!("DELETE FROM items WHERE tag = '{}'", bed.tag))
                .await
                .unwrap_err();
            assert!(Error::from_diesel(err).is_write_on_read_route());
            let err = backend::async_insert_returning(&mut ro, &bed.tag)
                .await
                .unwrap_err();
            assert!(Error::from_diesel(err).is_write_on_read_route());
            // Nothing was sent to any node.
            assert_eq!(pool.stats(), before);
            assert!(rows_on_primary(&bed, &bed.tag).is_empty());
            // Reads still work on the handle.
            assert_eq!(served_by(&mut ro).await, bed.replica_id);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_replica_rejects_write_even_if_misrouted() {
            let bed = bed!("async_replica_rejects_write_even_if_misrouted");
            let pool = pool(&bed);
            let mut conn = pool.get().await.unwrap();
            assert_eq!(served_by(&mut conn).await, bed.replica_id);
            // Bypass the classifier: send a write straight to the replica connection the pool
            // made. The session itself refuses it.
            let sql = format!(
                "INSERT INTO items (tag, node) VALUES ('{}', 'misrouted')",
                bed.tag
            );
            let err = conn
                .replica_connection(0)
                .await
                .unwrap()
                .batch_execute(&sql)
                .await
                .unwrap_err();
            assert!(
                common::is_read_only_error(&err),
                "read-only error, got: {err}"
            );
            backend::replicate(&bed);
            assert!(rows_on_primary(&bed, &bed.tag).is_empty());
            let query = items::table.filter(items::tag.eq(&bed.tag)).count();
            let n: i64 =
                diesel::RunQueryDsl::get_result(query, &mut backend::direct(&bed.replica)).unwrap();
            assert_eq!(n, 0, "nothing was written on the replica");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_round_robin_spreads_reads() {
            let bed = bed!("async_round_robin_spreads_reads");
            // The same server twice: two replica entries, told apart by their index.
            let pool = AsyncRwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .replica(&bed.replica)
                .policy(Policy::RoundRobin)
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            let mut nodes = Vec::new();
            for _ in 0..6 {
                assert_eq!(served_by(&mut conn).await, bed.replica_id);
                nodes.push(route(&conn).node);
            }
            let first = match nodes[0] {
                Node::Replica(i) => i,
                n => panic!("read went to {n}"),
            };
            for (k, node) in nodes.iter().enumerate() {
                assert_eq!(*node, Node::Replica((first + k) % 2));
            }
            let stats = pool.stats();
            assert_eq!(stats.replicas[0].queries, 3);
            assert_eq!(stats.replicas[1].queries, 3);
            assert_eq!(stats.primary.queries, 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_weighted_policy_follows_weights() {
            let bed = bed!("async_weighted_policy_follows_weights");
            let pool = AsyncRwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica_weighted(&bed.replica, 1)
                .replica_weighted(&bed.replica, 3)
                .policy(Policy::Weighted)
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            for _ in 0..400 {
                assert_eq!(served_by(&mut conn).await, bed.replica_id);
            }
            let stats = pool.stats();
            let heavy = stats.replicas[1].queries as f64 / 400.0;
            assert!(
                (0.62..0.88).contains(&heavy),
                "weight 3 of 4 got {heavy:.2} of the reads"
            );
            assert_eq!(stats.primary.queries, 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_replica_down_falls_back_to_primary() {
            let bed = bed!("async_replica_down_falls_back_to_primary");
            let pool = AsyncRwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(backend::unreachable_url(&bed))
                .replica_timeout(Duration::from_millis(300))
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            assert_eq!(served_by(&mut conn).await, bed.primary_id);
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Primary,
                    reason: Reason::Fallback
                }
            );
            // Ejected: the next read does not try the replica again.
            let start = std::time::Instant::now();
            assert_eq!(served_by(&mut conn).await, bed.primary_id);
            assert!(start.elapsed() < Duration::from_millis(250));
            let stats = pool.stats();
            assert_eq!(stats.fallbacks, 2);
            assert_eq!(stats.ejections, 1);
            assert!(stats.replicas[0].ejected);
            assert_eq!(stats.replicas[0].queries, 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_fallback_error_policy_returns_error() {
            let bed = bed!("async_fallback_error_policy_returns_error");
            let pool = AsyncRwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(backend::unreachable_url(&bed))
                .replica_timeout(Duration::from_millis(300))
                .fallback(Fallback::Error)
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            let err = diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                .get_result::<String>(&mut conn)
                .await
                .unwrap_err();
            assert!(matches!(
                Error::from_diesel(err),
                Error::NoReplicaAvailable { replicas: 1 }
            ));
            assert_eq!(
                pool.stats().primary.queries,
                0,
                "the read did not reach the primary"
            );
            // Writes are unaffected.
            insert(&mut conn, &bed.tag).await.unwrap();
            assert_eq!(
                rows_on_primary(&bed, &bed.tag),
                std::slice::from_ref(&bed.primary_id)
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_replica_recovers_after_cooldown() {
            let bed = bed!("async_replica_recovers_after_cooldown");
            let flaky = backend::flaky_replica(&bed);
            flaky.down();
            let cooldown = Duration::from_millis(500);
            let pool = AsyncRwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&flaky.url)
                .replica_timeout(Duration::from_secs(10))
                .eject_cooldown(cooldown)
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            assert_eq!(served_by(&mut conn).await, bed.primary_id);
            let ejected_at = std::time::Instant::now();
            assert_eq!(route(&conn).reason, Reason::Fallback);
            assert!(pool.stats().replicas[0].ejected);
            flaky.up();
            // Still in its cooldown: not tried.
            let served = served_by(&mut conn).await;
            if ejected_at.elapsed() < cooldown {
                assert_eq!(served, bed.primary_id);
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while served_by(&mut conn).await != bed.replica_id {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the replica was not re-admitted in 30 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(route(&conn).node, Node::Replica(0));
            let stats = pool.stats();
            assert!(!stats.replicas[0].ejected);
            assert_eq!(stats.ejections, 1);
        }

        /// Migrations are sync in diesel_migrations: they run through diesel-async's
        /// `AsyncConnectionWrapper` around an `AsyncRwConnection`, on a blocking thread.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_migrations_run_through_rwconnection() {
            use diesel::connection::SimpleConnection;
            use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
            use diesel_migrations::{FileBasedMigrations, MigrationHarness};
            let bed = bed!("async_migrations_run_through_rwconnection");
            let table = format!("amig_{}", std::process::id());
            let dir = common::test_dir("async-migrations");
            let m = dir.join("2024-01-02-000000_create_amig");
            std::fs::create_dir_all(&m).unwrap();
            std::fs::write(
                m.join("up.sql"),
                format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY)"),
            )
            .unwrap();
            std::fs::write(m.join("down.sql"), format!("DROP TABLE {table}")).unwrap();
            let mut admin = backend::direct(&bed.primary);
            admin
                .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
                .unwrap();
            let _ = admin.batch_execute(
                "DELETE FROM __diesel_schema_migrations WHERE version = '20240102000000'",
            );
            backend::replicate(&bed);

            // `establish` with a primary and a replica, as a migration tool would.
            let spec = format!("primary={} replica={}", bed.primary, bed.replica);
            let conn = AsyncRwConnection::<Conn>::establish(&spec).await.unwrap();
            let migrations = dir.clone();
            let conn = tokio::task::spawn_blocking(move || {
                let mut wrapped = AsyncConnectionWrapper::<AsyncRwConnection<Conn>>::from(conn);
                let applied = wrapped
                    .run_pending_migrations(FileBasedMigrations::from_path(&migrations).unwrap())
                    .unwrap();
                assert_eq!(applied.len(), 1);
                assert!(!wrapped
                    .has_pending_migration(FileBasedMigrations::from_path(&migrations).unwrap())
                    .unwrap());
                wrapped.into_inner()
            })
            .await
            .unwrap();
            assert_eq!(route(&conn).node, Node::Primary);
            // Every statement went to the primary (the migrations table is created first, a
            // write, which makes the connection sticky), none to the replica.
            let stats = conn.stats();
            assert!(stats.primary.queries >= 3, "{stats:?}");
            assert_eq!(stats.replica_queries(), 0, "{stats:?}");
            diesel::RunQueryDsl::execute(
                diesel::sql_query(format!("SELECT id FROM {table}")),
                &mut admin,
            )
            .expect("the table exists on the primary");

            // And through a diesel-async deadpool of AsyncRwConnections.
            use diesel_async::pooled_connection::deadpool::Pool;
            use diesel_async::pooled_connection::AsyncDieselConnectionManager;
            let manager = AsyncDieselConnectionManager::<AsyncRwConnection<Conn>>::new(spec);
            let deadpool = Pool::builder(manager).max_size(1).build().unwrap();
            let mut pooled = deadpool.get().await.unwrap();
            // A fresh unit of work: its read goes to the replica.
            assert_eq!(served_by(&mut pooled).await, bed.replica_id);
            assert_eq!(pooled.last_route().unwrap().node, Node::Replica(0));
            drop(pooled);
            admin
                .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
                .unwrap();
            admin
                .batch_execute(
                    "DELETE FROM __diesel_schema_migrations WHERE version = '20240102000000'",
                )
                .unwrap();
            let _ = std::fs::remove_dir_all(&dir);
        }

        #[derive(
            diesel::Queryable, diesel::Identifiable, diesel::AsChangeset, Debug, PartialEq,
        )]
        #[diesel(table_name = items)]
        struct Item {
            id: i32,
            tag: String,
            node: String,
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_save_changes_runs_on_primary() {
            use diesel_async::SaveChangesDsl;
            let bed = bed!("async_save_changes_runs_on_primary");
            let pool = pool(&bed);
            insert(&mut pool.primary().await.unwrap(), &bed.tag)
                .await
                .unwrap();
            backend::replicate(&bed);
            let mut conn = pool.get().await.unwrap();
            let mut item: Item = items::table
                .filter(items::tag.eq(&bed.tag))
                .first(&mut conn)
                .await
                .unwrap();
            assert_eq!(route(&conn).node, Node::Replica(0));
            item.node = "saved".into();
            let saved: Item = item.save_changes(&mut conn).await.unwrap();
            assert_eq!(saved.node, "saved");
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Primary,
                    reason: Reason::Write
                }
            );
            assert_eq!(rows_on_primary(&bed, &bed.tag), ["saved"]);
            // The replica handle refuses it before sending.
            let err = item
                .save_changes::<Item>(&mut pool.replica().await.unwrap())
                .await
                .unwrap_err();
            assert!(Error::from_diesel(err).is_write_on_read_route());
        }

        /// An instrumentation set on the routing connection sees the queries of the node
        /// connections it holds (a read on the replica, a write on the primary), and nothing of
        /// them once they are back in their pools.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_instrumentation_sees_node_queries_while_held() {
            use diesel::connection::InstrumentationEvent;
            let bed = bed!("async_instrumentation_sees_node_queries_while_held");
            // One connection per node: the second checkout gets the same connections back.
            let pool = AsyncRwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .max_size(1)
                .replica_max_size(1)
                .build()
                .unwrap();
            let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let record = seen.clone();
            let mut conn = pool.get().await.unwrap();
            conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                if let InstrumentationEvent::StartQuery { query, .. } = event {
                    record.lock().unwrap().push(query.to_string());
                }
            });
            assert_eq!(served_by(&mut conn).await, bed.replica_id);
            insert(&mut conn, &bed.tag).await.unwrap();
            assert_eq!(route(&conn).node, Node::Primary);
            let queries = seen.lock().unwrap().clone();
            assert!(
                queries.iter().any(|q| q.contains(backend::IDENTITY)),
                "{queries:?}"
            );
            assert!(queries.iter().any(|q| q.contains("INSERT")), "{queries:?}");
            drop(conn);
            let before = seen.lock().unwrap().len();
            let mut other = pool.get().await.unwrap();
            assert_eq!(served_by(&mut other).await, bed.replica_id);
            insert(&mut other, &bed.tag).await.unwrap();
            assert_eq!(
                seen.lock().unwrap().len(),
                before,
                "given back, they forward nothing"
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_begin_test_transaction_runs_on_primary_and_never_commits() {
            let bed = bed!("async_begin_test_transaction_runs_on_primary_and_never_commits");
            let pool = AsyncRwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .max_size(1)
                .build()
                .unwrap();
            {
                let mut conn = pool.get().await.unwrap();
                conn.begin_test_transaction().await.unwrap();
                assert_eq!(conn.transaction_node(), Some(Node::Primary));
                insert(&mut conn, &bed.tag).await.unwrap();
                assert_eq!(served_by(&mut conn).await, bed.primary_id);
                assert_eq!(route(&conn).reason, Reason::Transaction);
                assert_eq!(
                    count(&mut conn, &bed.tag).await.unwrap(),
                    1,
                    "the test transaction sees its write"
                );
            }
            // Dropped without commit: the connection was closed, nothing was committed.
            assert!(rows_on_primary(&bed, &bed.tag).is_empty());
            let status = pool.status();
            assert!(status.all_idle() && status.primary.size == 0, "{status:?}");
            let mut conn = pool.get().await.unwrap();
            assert_eq!(conn.transaction_node(), None);
            assert_eq!(served_by(&mut conn).await, bed.replica_id);
            // The one primary connection of the pool is a new one: its write commits.
            insert(&mut conn, &bed.tag).await.unwrap();
            drop(conn);
            assert_eq!(
                rows_on_primary(&bed, &bed.tag),
                std::slice::from_ref(&bed.primary_id)
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_password_not_in_debug_output() {
            let bed = bed!("async_password_not_in_debug_output");
            let secret = "s3cr3t-pw-not-for-logs";
            let with_secret = |url: &str| -> String {
                match url.find("://") {
                    Some(i) if url[i + 3..].contains('@') => {
                        let at = url.rfind('@').unwrap();
                        let user_end = url[i + 3..at].find(':').map_or(at, |c| i + 3 + c);
                        format!("{}:{secret}{}", &url[..user_end], &url[at..])
                    }
                    _ => backend::url_with_password(&bed, secret),
                }
            };
            let unreachable = with_secret(&backend::unreachable_url(&bed));
            // Installs the capturing subscriber before anything is logged.
            common::capture_logs(|| ());
            let pool = AsyncRwPool::<Conn>::builder()
                .primary(with_secret(&bed.primary))
                .replica(&unreachable)
                .replica_timeout(Duration::from_millis(200))
                .build()
                .unwrap();
            let dbg = format!("{pool:?}");
            assert!(!dbg.contains(secret), "{dbg}");
            let mut conn = pool.get().await.unwrap();
            let _ = diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                .get_result::<String>(&mut conn)
                .await;
            let dbg = format!("{conn:?} {:?} {:?}", pool.stats(), pool.status());
            assert!(!dbg.contains(secret), "{dbg}");
            let err = AsyncRwPool::<Conn>::builder()
                .primary(format!("{} bad", with_secret(backend::malformed_url())))
                .build()
                .unwrap_err();
            assert!(!format!("{err} {err:?}").contains(secret));
            let logs = common::capture_logs(|| ());
            assert!(logs.contains("diesel_rw"), "events were captured: {logs}");
            assert!(!logs.contains(secret), "{logs}");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_malformed_url_is_a_clear_error() {
            let _bed = bed!("async_malformed_url_is_a_clear_error");
            let err = AsyncRwPool::<Conn>::builder()
                .primary(backend::malformed_url())
                .build()
                .unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{msg}");
            assert!(msg.contains("invalid database URL"), "{msg}");
            assert!(!msg.contains("s3cr3t-pw"), "{msg}");
            let err = AsyncRwPool::<Conn>::builder().build().unwrap_err();
            assert!(err.to_string().contains("no primary URL"), "{err}");
            let err = AsyncRwConnection::<Conn>::establish(&format!(
                "primary={} bogus=1",
                backend::malformed_url()
            ))
            .await
            .unwrap_err();
            assert!(err.to_string().contains("bogus=1"), "{err}");
        }

        /// 32 tasks over a pool of 4 connections per node, mixing reads, writes and
        /// transactions: no read inside a transaction reaches a replica, and afterwards every
        /// connection is back in its pool.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_concurrent_tasks_never_read_replica_inside_transaction() {
            let bed = bed!("async_concurrent_tasks_never_read_replica_inside_transaction");
            let pool = AsyncRwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&bed.replica)
                .max_size(backend::ASYNC_PRIMARY_POOL)
                .replica_max_size(4)
                .connection_timeout(Duration::from_secs(30))
                .replica_timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let bed = std::sync::Arc::new(bed);
            let mut tasks = Vec::new();
            for i in 0..32 {
                let (pool, bed) = (pool.clone(), bed.clone());
                tasks.push(tokio::spawn(async move {
                    let tag = format!("{}-{i}", bed.tag);
                    let mut conn = pool.get().await.unwrap();
                    match i % 4 {
                        // A read on its own: a replica.
                        0 => {
                            assert_eq!(served_by(&mut conn).await, bed.replica_id);
                            assert_eq!(route(&conn).reason, Reason::Policy);
                        }
                        // A write, then a read that sticks to the primary.
                        1 => {
                            insert(&mut conn, &tag).await.unwrap();
                            assert_eq!(count(&mut conn, &tag).await.unwrap(), 1);
                            assert_eq!(route(&conn).reason, Reason::Sticky);
                        }
                        // A transaction that reads first, then writes and reads its write.
                        _ => {
                            let (tag, bed) = (&tag, &bed);
                            conn.transaction(async |c| {
                                for _ in 0..3 {
                                    assert_eq!(served_by(c).await, bed.primary_id);
                                    assert_eq!(
                                        route(c),
                                        Route {
                                            node: Node::Primary,
                                            reason: Reason::Transaction
                                        }
                                    );
                                    tokio::task::yield_now().await;
                                }
                                insert(c, tag).await?;
                                assert_eq!(count(c, tag).await?, 1);
                                assert_eq!(route(c).node, Node::Primary);
                                QueryResult::Ok(())
                            })
                            .await
                            .unwrap();
                            // After the transaction, reads stick to the primary (a write).
                            assert_eq!(served_by(&mut conn).await, bed.primary_id);
                        }
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let status = pool.status();
            assert!(status.all_idle(), "{status:?}");
            assert!(
                status.primary.size <= backend::ASYNC_PRIMARY_POOL as usize,
                "{status:?}"
            );
            assert!(status.replicas[0].size <= 4, "{status:?}");
            let stats = pool.stats();
            // 8 lone reads on the replica; everything else on the primary.
            assert_eq!(stats.replicas[0].queries, 8, "{stats:?}");
            for i in 0..32 {
                let rows = rows_on_primary(&bed, &format!("{}-{i}", bed.tag));
                assert_eq!(rows.len(), usize::from(i % 4 != 0), "task {i}");
                delete_on_primary(&bed, &format!("{}-{i}", bed.tag));
            }
        }

        /// A task dropped inside a transaction: the connection with the open transaction is
        /// closed instead of going back to the pool, so no checkout ever gets it.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_cancelled_transaction_does_not_leak_pinned_connection() {
            let bed = bed!("async_cancelled_transaction_does_not_leak_pinned_connection");
            // One primary connection: whatever the next checkout gets is the one the cancelled
            // task held, or a new one.
            let pool = AsyncRwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .max_size(1)
                .build()
                .unwrap();
            let cancelled = format!("{}-cancelled", bed.tag);
            let (began, began_rx) = tokio::sync::oneshot::channel::<()>();
            let task = {
                let (pool, cancelled) = (pool.clone(), cancelled.clone());
                tokio::spawn(async move {
                    let mut conn = pool.get().await.unwrap();
                    let began = std::sync::Mutex::new(Some(began));
                    let (cancelled, began) = (&cancelled, &began);
                    conn.transaction(async |c| {
                        insert(c, cancelled).await?;
                        assert_eq!(c.transaction_node(), Some(Node::Primary));
                        let _ = began.lock().unwrap().take().unwrap().send(());
                        std::future::pending::<()>().await;
                        QueryResult::Ok(())
                    })
                    .await
                })
            };
            began_rx.await.unwrap();
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            let status = pool.status();
            assert!(
                status.all_idle(),
                "the connection went back to its pool: {status:?}"
            );

            // The next checkout is not inside the cancelled transaction: its write commits.
            let mut conn = pool.get().await.unwrap();
            insert(&mut conn, &bed.tag).await.unwrap();
            assert_eq!(route(&conn).node, Node::Primary);
            assert_eq!(
                count(&mut conn, &cancelled).await.unwrap(),
                0,
                "rolled back"
            );
            drop(conn);
            assert_eq!(
                rows_on_primary(&bed, &bed.tag),
                std::slice::from_ref(&bed.primary_id)
            );
            assert!(rows_on_primary(&bed, &cancelled).is_empty());
            // And a transaction begins at depth one, not as a savepoint of the leaked one.
            let mut conn = pool.get().await.unwrap();
            conn.transaction(async |c| {
                insert(c, &cancelled).await?;
                QueryResult::Ok(())
            })
            .await
            .unwrap();
            drop(conn);
            assert_eq!(rows_on_primary(&bed, &cancelled).len(), 1, "committed");
            delete_on_primary(&bed, &cancelled);
            let status = pool.status();
            assert!(status.all_idle(), "{status:?}");
            assert!(status.primary.size <= 1, "{status:?}");
        }
    };
}
