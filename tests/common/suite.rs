//! The routing suite, run on each backend by `routing_suite!(backend_module)`. Each test asserts
//! the node that served the call, from the database itself (the `IDENTITY` expression is
//! evaluated by the server that runs the statement) and from `conn.last_route()`.

macro_rules! routing_suite {
    ($backend:ident) => {
        use std::time::Duration;

        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel::sql_types::Text;
        use diesel_rw::{
            Consistency, Error, Fallback, Node, Policy, Reason, Route, RwConnection, RwPool,
        };

        use common::$backend as backend;
        use common::{items, Bed};

        type Conn = backend::Conn;

        /// The replica checkout timeout of these pools: generous, so that making a first
        /// connection on a loaded machine never counts as the replica failing (the tests of
        /// timeouts set their own).
        const CHECKOUT: std::time::Duration = std::time::Duration::from_secs(10);

        fn pool(bed: &Bed) -> RwPool<Conn> {
            RwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .build()
                .unwrap()
        }

        /// The identity of the server that ran this read (routed like any read).
        fn served_by(conn: &mut RwConnection<Conn>) -> String {
            diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                .get_result(conn)
                .unwrap()
        }

        fn insert(conn: &mut RwConnection<Conn>, tag: &str) -> QueryResult<usize> {
            diesel::insert_into(items::table)
                .values((
                    items::tag.eq(tag),
                    items::node.eq(diesel::dsl::sql::<Text>(backend::IDENTITY)),
                ))
                .execute(conn)
        }

        /// The `node` column of this tag's rows, read on the primary directly.
        fn rows_on_primary(bed: &Bed, tag: &str) -> Vec<String> {
            items::table
                .filter(items::tag.eq(tag))
                .select(items::node)
                .order(items::id)
                .load(&mut backend::direct(&bed.primary))
                .unwrap()
        }

        fn route(conn: &RwConnection<Conn>) -> Route {
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

        #[test]
        fn reads_go_to_replica() {
            let bed = bed!("reads_go_to_replica");
            let mut setup = backend::direct(&bed.primary);
            setup
                .batch_execute(&format!(
                    "INSERT INTO items (tag, node) VALUES ('{}', 'seed')",
                    bed.tag
                ))
                .unwrap();
            backend::replicate(&bed);
            let pool = pool(&bed);
            let mut conn = pool.get().unwrap();
            let n: i64 = items::table
                .filter(items::tag.eq(&bed.tag))
                .count()
                .get_result(&mut conn)
                .unwrap();
            assert_eq!(n, 1, "the replica has the replayed row");
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Replica(0),
                    reason: Reason::Policy
                }
            );
            assert_eq!(served_by(&mut conn), bed.replica_id);
            let stats = pool.stats();
            assert_eq!(stats.primary.queries, 0);
            assert_eq!(stats.replicas[0].queries, 2);
        }

        #[test]
        fn writes_go_to_primary() {
            let bed = bed!("writes_go_to_primary");
            let pool = pool(&bed);
            let mut conn = pool.get().unwrap();
            assert_eq!(insert(&mut conn, &bed.tag).unwrap(), 1);
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
                .unwrap();
            assert_eq!(route(&conn).node, Node::Primary);
            // The server that ran the INSERT and the UPDATE wrote its own identity.
            assert_eq!(
                rows_on_primary(&bed, &bed.tag),
                std::slice::from_ref(&bed.primary_id)
            );
            assert_eq!(pool.stats().replica_queries(), 0);
        }

        #[test]
        fn insert_returning_goes_to_primary() {
            let bed = bed!("insert_returning_goes_to_primary");
            let pool = pool(&bed);
            let mut conn = pool.get().unwrap();
            let node = backend::insert_returning(&mut conn, &bed.tag).unwrap();
            assert_eq!(
                node, bed.primary_id,
                "the INSERT ... RETURNING ran on the primary"
            );
            assert_eq!(route(&conn).node, Node::Primary);
            assert_eq!(pool.stats().replica_queries(), 0);
            assert_eq!(
                rows_on_primary(&bed, &bed.tag),
                std::slice::from_ref(&bed.primary_id)
            );
        }

        #[test]
        fn select_for_update_goes_to_primary() {
            let bed = bed!("select_for_update_goes_to_primary");
            let pool = pool(&bed);
            insert(&mut pool.primary().unwrap(), &bed.tag).unwrap();
            backend::replicate(&bed);
            let mut conn = pool.get().unwrap();
            let result = conn.transaction(|c| backend::select_for_update(c, &bed.tag));
            if backend::SUPPORTS_FOR_UPDATE {
                assert_eq!(result.unwrap(), std::slice::from_ref(&bed.primary_id));
            } else {
                assert!(result.is_err(), "this backend rejects FOR UPDATE");
            }
            // Outside a transaction too: the locking read is classified as a write.
            let mut conn = pool.get().unwrap();
            let result = backend::select_for_update(&mut conn, &bed.tag);
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

        #[test]
        fn reads_inside_transaction_stay_on_primary() {
            let bed = bed!("reads_inside_transaction_stay_on_primary");
            let pool = RwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::Off)
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            conn.transaction(|c| {
                assert_eq!(served_by(c), bed.primary_id);
                assert_eq!(
                    route(c),
                    Route {
                        node: Node::Primary,
                        reason: Reason::Transaction
                    }
                );
                insert(c, &bed.tag)?;
                // The read sees the transaction's own uncommitted write.
                let n: i64 = items::table
                    .filter(items::tag.eq(&bed.tag))
                    .count()
                    .get_result(c)?;
                assert_eq!(n, 1);
                assert_eq!(route(c).node, Node::Primary);
                QueryResult::Ok(())
            })
            .unwrap();
            assert_eq!(conn.transaction_node(), None);
            // With Consistency::Off the next read goes back to the replica.
            assert_eq!(served_by(&mut conn), bed.replica_id);
        }

        #[test]
        fn nested_transaction_rolls_back_savepoint_on_primary() {
            let bed = bed!("nested_transaction_rolls_back_savepoint_on_primary");
            let pool = pool(&bed);
            let mut conn = pool.get().unwrap();
            let (a, b, c) = (
                format!("{}-a", bed.tag),
                format!("{}-b", bed.tag),
                format!("{}-c", bed.tag),
            );
            conn.transaction(|conn| {
                insert(conn, &a)?;
                let inner: QueryResult<()> = conn.transaction(|conn| {
                    insert(conn, &b)?;
                    assert_eq!(served_by(conn), bed.primary_id);
                    Err(diesel::result::Error::RollbackTransaction)
                });
                assert!(inner.is_err());
                assert_eq!(conn.transaction_node(), Some(Node::Primary));
                insert(conn, &c)?;
                QueryResult::Ok(())
            })
            .unwrap();
            assert_eq!(rows_on_primary(&bed, &a).len(), 1);
            assert_eq!(rows_on_primary(&bed, &b).len(), 0, "savepoint rolled back");
            assert_eq!(rows_on_primary(&bed, &c).len(), 1);
            for t in [&a, &b, &c] {
                backend::direct(&bed.primary)
                    .batch_execute(&format!("DELETE FROM items WHERE tag = '{t}'"))
                    .unwrap();
            }
        }

        #[test]
        fn sticky_unit_of_work_reads_primary_after_write() {
            let bed = bed!("sticky_unit_of_work_reads_primary_after_write");
            let pool = RwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::UnitOfWork)
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            assert_eq!(served_by(&mut conn), bed.replica_id);
            insert(&mut conn, &bed.tag).unwrap();
            assert!(conn.is_sticky());
            for _ in 0..3 {
                assert_eq!(served_by(&mut conn), bed.primary_id);
                assert_eq!(
                    route(&conn),
                    Route {
                        node: Node::Primary,
                        reason: Reason::Sticky
                    }
                );
            }
            // Read-your-writes without waiting for replication.
            let n: i64 = items::table
                .filter(items::tag.eq(&bed.tag))
                .count()
                .get_result(&mut conn)
                .unwrap();
            assert_eq!(n, 1);
            // A new unit of work reads from the replica again.
            let mut next = pool.get().unwrap();
            assert_eq!(served_by(&mut next), bed.replica_id);
        }

        #[test]
        fn sticky_window_expires() {
            let bed = bed!("sticky_window_expires");
            let pool = RwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .consistency(Consistency::Window(Duration::from_millis(300)))
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            insert(&mut conn, &bed.tag).unwrap();
            assert_eq!(served_by(&mut conn), bed.primary_id);
            assert_eq!(route(&conn).reason, Reason::Sticky);
            std::thread::sleep(Duration::from_millis(400));
            assert_eq!(served_by(&mut conn), bed.replica_id);
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Replica(0),
                    reason: Reason::Policy
                }
            );
        }

        #[test]
        fn write_on_replica_handle_is_rejected_before_sending() {
            let bed = bed!("write_on_replica_handle_is_rejected_before_sending");
            let pool = pool(&bed);
            let mut ro = pool.replica().unwrap();
            assert_eq!(served_by(&mut ro), bed.replica_id);
            let before = pool.stats();
            let err = insert(&mut ro, &bed.tag).unwrap_err();
            assert!(
                matches!(Error::from_diesel(err), Error::WriteOnReadRoute { .. }),
                "a WriteOnReadRoute error"
            );
            let err = ro
                .batch_execute(&format!("DELETE FROM items WHERE tag = '{}'", bed.tag))
                .unwrap_err();
            assert!(Error::from_diesel(err).is_write_on_read_route());
            let err = backend::insert_returning(&mut ro, &bed.tag).unwrap_err();
            assert!(Error::from_diesel(err).is_write_on_read_route());
            // Nothing was sent to any node.
            assert_eq!(pool.stats(), before);
            assert!(rows_on_primary(&bed, &bed.tag).is_empty());
            // Reads still work on the handle.
            assert_eq!(served_by(&mut ro), bed.replica_id);
        }

        #[test]
        fn replica_rejects_write_even_if_misrouted() {
            let bed = bed!("replica_rejects_write_even_if_misrouted");
            let pool = pool(&bed);
            let mut conn = pool.get().unwrap();
            assert_eq!(served_by(&mut conn), bed.replica_id);
            // Bypass the classifier: send a write straight to the replica connection the pool
            // made. The session itself refuses it.
            let sql = format!(
                "INSERT INTO items (tag, node) VALUES ('{}', 'misrouted')",
                bed.tag
            );
            let err = conn
                .with_replica(0, |c| c.batch_execute(&sql))
                .unwrap()
                .unwrap_err();
            assert!(
                common::is_read_only_error(&err),
                "read-only error, got: {err}"
            );
            backend::replicate(&bed);
            assert!(rows_on_primary(&bed, &bed.tag).is_empty());
            let n: i64 = items::table
                .filter(items::tag.eq(&bed.tag))
                .count()
                .get_result(&mut backend::direct(&bed.replica))
                .unwrap();
            assert_eq!(n, 0, "nothing was written on the replica");
        }

        #[test]
        fn round_robin_spreads_reads() {
            let bed = bed!("round_robin_spreads_reads");
            // The same server twice: two replica entries, told apart by their index.
            let pool = RwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .replica(&bed.replica)
                .policy(Policy::RoundRobin)
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            let mut nodes = Vec::new();
            for _ in 0..6 {
                assert_eq!(served_by(&mut conn), bed.replica_id);
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

        #[test]
        fn weighted_policy_follows_weights() {
            let bed = bed!("weighted_policy_follows_weights");
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica_weighted(&bed.replica, 1)
                .replica_weighted(&bed.replica, 3)
                .policy(Policy::Weighted)
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            for _ in 0..400 {
                assert_eq!(served_by(&mut conn), bed.replica_id);
            }
            let stats = pool.stats();
            let heavy = stats.replicas[1].queries as f64 / 400.0;
            assert!(
                (0.62..0.88).contains(&heavy),
                "weight 3 of 4 got {heavy:.2} of the reads"
            );
            assert_eq!(stats.primary.queries, 0);
        }

        #[test]
        fn replica_down_falls_back_to_primary() {
            let bed = bed!("replica_down_falls_back_to_primary");
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(backend::unreachable_url(&bed))
                .replica_timeout(Duration::from_millis(300))
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            assert_eq!(served_by(&mut conn), bed.primary_id);
            assert_eq!(
                route(&conn),
                Route {
                    node: Node::Primary,
                    reason: Reason::Fallback
                }
            );
            // Ejected: the next read does not try the replica again.
            let start = std::time::Instant::now();
            assert_eq!(served_by(&mut conn), bed.primary_id);
            assert!(start.elapsed() < Duration::from_millis(250));
            let stats = pool.stats();
            assert_eq!(stats.fallbacks, 2);
            assert_eq!(stats.ejections, 1);
            assert!(stats.replicas[0].ejected);
            assert_eq!(stats.replicas[0].queries, 0);
        }

        #[test]
        fn fallback_error_policy_returns_error() {
            let bed = bed!("fallback_error_policy_returns_error");
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(backend::unreachable_url(&bed))
                .replica_timeout(Duration::from_millis(300))
                .fallback(Fallback::Error)
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            let err = diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                .get_result::<String>(&mut conn)
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
            insert(&mut conn, &bed.tag).unwrap();
            assert_eq!(
                rows_on_primary(&bed, &bed.tag),
                std::slice::from_ref(&bed.primary_id)
            );
        }

        #[test]
        fn replica_recovers_after_cooldown() {
            let bed = bed!("replica_recovers_after_cooldown");
            let flaky = backend::flaky_replica(&bed);
            flaky.down();
            let cooldown = Duration::from_millis(500);
            // A refused connection fails at once: the checkout timeout only bounds a slow
            // connect, and is generous so that a loaded machine does not eject again.
            let pool = RwPool::<Conn>::builder()
                .primary(&bed.primary)
                .replica(&flaky.url)
                .replica_timeout(Duration::from_secs(10))
                .eject_cooldown(cooldown)
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            assert_eq!(served_by(&mut conn), bed.primary_id);
            let ejected_at = std::time::Instant::now();
            assert_eq!(route(&conn).reason, Reason::Fallback);
            assert!(pool.stats().replicas[0].ejected);
            flaky.up();
            // Still in its cooldown: not tried.
            let served = served_by(&mut conn);
            if ejected_at.elapsed() < cooldown {
                assert_eq!(served, bed.primary_id);
            }
            // After the cooldown the replica is tried again and serves (waited for, with a
            // generous deadline: a busy machine may take a while).
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while served_by(&mut conn) != bed.replica_id {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the replica was not re-admitted in 30 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(route(&conn).node, Node::Replica(0));
            let stats = pool.stats();
            assert!(!stats.replicas[0].ejected);
            assert_eq!(stats.ejections, 1);
        }

        #[test]
        fn migrations_run_through_rwconnection() {
            use diesel_migrations::{FileBasedMigrations, MigrationHarness};
            let bed = bed!("migrations_run_through_rwconnection");
            let table = format!("mig_{}", std::process::id());
            let dir = common::test_dir("migrations");
            let m = dir.join("2024-01-01-000000_create_mig");
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
                "DELETE FROM __diesel_schema_migrations WHERE version = '20240101000000'",
            );
            backend::replicate(&bed);

            // `establish` with a primary and a replica, as diesel_migrations' CLI-style code does.
            let spec = format!("primary={} replica={}", bed.primary, bed.replica);
            let mut conn = <RwConnection<Conn> as Connection>::establish(&spec).unwrap();
            let applied = conn
                .run_pending_migrations(FileBasedMigrations::from_path(&dir).unwrap())
                .unwrap();
            assert_eq!(applied.len(), 1);
            assert_eq!(route(&conn).node, Node::Primary);
            // Every statement went to the primary (migrations pin it), none to the replica.
            let stats = conn.stats();
            assert!(stats.primary.queries >= 3, "{stats:?}");
            assert_eq!(stats.replica_queries(), 0, "{stats:?}");
            diesel::sql_query(format!("SELECT id FROM {table}"))
                .execute(&mut admin)
                .expect("the table exists on the primary");
            // Nothing pending now, read through the same connection.
            assert!(!conn
                .has_pending_migration(FileBasedMigrations::from_path(&dir).unwrap())
                .unwrap());
            assert_eq!(route(&conn).node, Node::Primary);

            // And through an r2d2 pool of RwConnections.
            let manager = diesel::r2d2::ConnectionManager::<RwConnection<Conn>>::new(spec);
            let r2d2 = diesel::r2d2::Pool::builder()
                .max_size(1)
                .build(manager)
                .unwrap();
            let mut pooled = r2d2.get().unwrap();
            assert!(!pooled
                .has_pending_migration(FileBasedMigrations::from_path(&dir).unwrap())
                .unwrap());
            drop(pooled);
            admin
                .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
                .unwrap();
            admin
                .batch_execute(
                    "DELETE FROM __diesel_schema_migrations WHERE version = '20240101000000'",
                )
                .unwrap();
            let _ = std::fs::remove_dir_all(&dir);
        }

        #[derive(Queryable, Identifiable, AsChangeset, Debug, PartialEq)]
        #[diesel(table_name = items)]
        struct Item {
            id: i32,
            tag: String,
            node: String,
        }

        #[test]
        fn save_changes_runs_on_primary() {
            let bed = bed!("save_changes_runs_on_primary");
            let pool = pool(&bed);
            insert(&mut pool.primary().unwrap(), &bed.tag).unwrap();
            backend::replicate(&bed);
            let mut conn = pool.get().unwrap();
            let mut item: Item = items::table
                .filter(items::tag.eq(&bed.tag))
                .first(&mut conn)
                .unwrap();
            assert_eq!(route(&conn).node, Node::Replica(0));
            item.node = "saved".into();
            let saved: Item = item.save_changes(&mut conn).unwrap();
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
                .save_changes::<Item>(&mut pool.replica().unwrap())
                .unwrap_err();
            assert!(Error::from_diesel(err).is_write_on_read_route());
        }

        /// An instrumentation set on the routing connection sees the queries of the node
        /// connections it holds (a read on the replica, a write on the primary), and nothing of
        /// them once they are back in their pools.
        #[test]
        fn instrumentation_sees_node_queries_while_held() {
            use diesel::connection::InstrumentationEvent;
            let bed = bed!("instrumentation_sees_node_queries_while_held");
            // One connection per node: the second checkout gets the same connections back.
            let pool = RwPool::<Conn>::builder()
                .replica_timeout(CHECKOUT)
                .primary(&bed.primary)
                .replica(&bed.replica)
                .max_size(1)
                .replica_max_size(1)
                .build()
                .unwrap();
            let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let record = seen.clone();
            let mut conn = pool.get().unwrap();
            conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                if let InstrumentationEvent::StartQuery { query, .. } = event {
                    record.lock().unwrap().push(query.to_string());
                }
            });
            assert_eq!(served_by(&mut conn), bed.replica_id);
            insert(&mut conn, &bed.tag).unwrap();
            assert_eq!(route(&conn).node, Node::Primary);
            let queries = seen.lock().unwrap().clone();
            assert!(
                queries.iter().any(|q| q.contains(backend::IDENTITY)),
                "{queries:?}"
            );
            assert!(queries.iter().any(|q| q.contains("INSERT")), "{queries:?}");
            drop(conn);
            let before = seen.lock().unwrap().len();
            let mut other = pool.get().unwrap();
            assert_eq!(served_by(&mut other), bed.replica_id);
            insert(&mut other, &bed.tag).unwrap();
            assert_eq!(
                seen.lock().unwrap().len(),
                before,
                "given back, they forward nothing"
            );
        }

        #[test]
        fn begin_test_transaction_runs_on_primary_and_never_commits() {
            let bed = bed!("begin_test_transaction_runs_on_primary_and_never_commits");
            let pool = pool(&bed);
            {
                let mut conn = pool.get().unwrap();
                conn.begin_test_transaction().unwrap();
                assert_eq!(conn.transaction_node(), Some(Node::Primary));
                insert(&mut conn, &bed.tag).unwrap();
                assert_eq!(served_by(&mut conn), bed.primary_id);
                assert_eq!(route(&conn).reason, Reason::Transaction);
                let n: i64 = items::table
                    .filter(items::tag.eq(&bed.tag))
                    .count()
                    .get_result(&mut conn)
                    .unwrap();
                assert_eq!(n, 1, "the test transaction sees its write");
            }
            // Dropped without commit: the pool discarded the connection, nothing was committed.
            assert!(rows_on_primary(&bed, &bed.tag).is_empty());
            let mut conn = pool.get().unwrap();
            assert_eq!(conn.transaction_node(), None);
            assert_eq!(served_by(&mut conn), bed.replica_id);
        }

        #[test]
        fn password_not_in_debug_output() {
            let bed = bed!("password_not_in_debug_output");
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
            let logs = common::capture_logs(|| {
                let pool = RwPool::<Conn>::builder()
                    .primary(with_secret(&bed.primary))
                    .replica(&unreachable)
                    .replica_timeout(Duration::from_millis(200))
                    .build()
                    .unwrap();
                let dbg = format!("{pool:?}");
                assert!(!dbg.contains(secret), "{dbg}");
                let mut conn = pool.get().unwrap();
                let _ = diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                    .get_result::<String>(&mut conn);
                let dbg = format!("{conn:?} {:?}", pool.stats());
                assert!(!dbg.contains(secret), "{dbg}");
                let err = RwPool::<Conn>::builder()
                    .primary(format!("{} bad", with_secret(backend::malformed_url())))
                    .build()
                    .unwrap_err();
                assert!(!format!("{err} {err:?}").contains(secret));
            });
            assert!(logs.contains("diesel_rw"), "events were captured: {logs}");
            assert!(!logs.contains(secret), "{logs}");
        }

        #[test]
        fn malformed_url_is_a_clear_error() {
            let _bed = bed!("malformed_url_is_a_clear_error");
            let err = RwPool::<Conn>::builder()
                .primary(backend::malformed_url())
                .build()
                .unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{msg}");
            assert!(msg.contains("invalid database URL"), "{msg}");
            assert!(!msg.contains("s3cr3t-pw"), "{msg}");
            let err = RwPool::<Conn>::builder().build().unwrap_err();
            assert!(err.to_string().contains("no primary URL"), "{err}");
            let err = <RwConnection<Conn> as Connection>::establish(&format!(
                "primary={} bogus=1",
                backend::malformed_url()
            ))
            .unwrap_err();
            assert!(err.to_string().contains("bogus=1"), "{err}");
        }
    };
}
