//! The `#[read_only]` / `#[master]` suite on `async fn`s, run on each backend by
//! `async_macros_suite!(backend_module)`: the tests of `macros.rs`, named `async_` + the sync
//! name, on `AsyncRwPool` / `AsyncRwConnection`, plus `async_trait_methods_route_like_async_fns`
//! for the `#[async_trait]` form.
//!
//! As in `macros.rs`, each test asserts the node that served each annotated call from the server
//! itself: a read that reports ([`served`]) selects the identity of the server that runs it
//! (`backend::IDENTITY`), the id of its session and whether it runs in a read-only transaction;
//! a write's target is the `node` column of its row, filled by the server that ran the INSERT.
//! The route diesel-rw recorded (`conn.last_route()`) is checked beside it. Row counts outside
//! the pool use the backend's sync connection (`backend::direct`).
//!
//! The tests run on tokio's multi-threaded runtime: diesel-async's SQLite wrapper needs it.

macro_rules! async_macros_suite {
    ($backend:ident) => {
        use async_trait::async_trait;
        use diesel::dsl::sql;
        use diesel::prelude::{ExpressionMethods, QueryDsl, QueryResult};
        use diesel::sql_types::Text;
        use diesel_async::RunQueryDsl;
        use diesel_rw::{
            master, read_only, AsyncRouter, AsyncRwConnection, AsyncRwPool, Consistency, Error,
            Node, Policy, Reason, Route,
        };

        use common::$backend as backend;
        use common::{items, Bed};

        type Conn = backend::AsyncConn;
        type Db = AsyncRwPool<Conn>;

        /// SQL for the id of the session running a statement, and for whether its transaction
        /// is read-only (`on`/`off`).
        const SESSION: (&str, &str) = macros_session_sql!($backend);

        /// A pool over the bed's primary and `replicas` slots of its replica (round robin,
        /// sticky for the rest of a connection's life after a write).
        fn pool(bed: &Bed, replicas: usize) -> Db {
            let mut builder = AsyncRwPool::<Conn>::builder()
                .primary(&bed.primary)
                .policy(Policy::RoundRobin)
                .consistency(Consistency::UnitOfWork);
            for _ in 0..replicas {
                builder = builder.replica(&bed.replica);
            }
            builder.build().unwrap()
        }

        /// What the server said about a statement it ran, and where diesel-rw routed it.
        #[derive(Debug, Clone, PartialEq)]
        struct Served {
            /// The server's identity (`backend::IDENTITY`).
            node: String,
            /// The id of the server session (the connection) that ran it.
            session: String,
            /// Whether the server ran it in a read-only transaction: `on` / `off`.
            read_only: String,
            /// The route diesel-rw recorded for it.
            route: Option<Route>,
        }

        /// Which server, session and transaction mode served a read on `conn` (a plain read,
        /// routed like any other).
        async fn served(conn: &mut AsyncRwConnection<Conn>) -> QueryResult<Served> {
            let (node, session, read_only) = diesel::select((
                sql::<Text>(backend::IDENTITY),
                sql::<Text>(SESSION.0),
                sql::<Text>(SESSION.1),
            ))
            .get_result::<(String, String, String)>(conn)
            .await?;
            Ok(Served {
                node,
                session,
                read_only,
                route: conn.last_route(),
            })
        }

        #[track_caller]
        fn assert_served(served: &Served, server: &str, node: Node, reason: Reason) {
            assert_eq!(served.node, server, "the server that answered: {served:?}");
            assert_eq!(served.route, Some(Route { node, reason }), "the route");
        }

        /// Inserts a row whose `node` the server running the INSERT fills with its identity.
        async fn insert(conn: &mut AsyncRwConnection<Conn>, tag: &str) -> QueryResult<usize> {
            diesel::insert_into(items::table)
                .values((
                    items::tag.eq(tag),
                    items::node.eq(sql::<Text>(backend::IDENTITY)),
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

        /// This tag's rows on the server at `url`, read on a sync connection of its own
        /// (outside any transaction of the test).
        fn count_direct(url: &str, tag: &str) -> i64 {
            let query = items::table.filter(items::tag.eq(tag)).count();
            diesel::RunQueryDsl::get_result(query, &mut backend::direct(url)).unwrap()
        }

        /// The `node` column of this tag's rows, read on the primary directly: which server ran
        /// each INSERT.
        fn rows_on_primary(bed: &Bed) -> Vec<String> {
            let query = items::table
                .filter(items::tag.eq(&bed.tag))
                .select(items::node)
                .order(items::id);
            diesel::RunQueryDsl::load(query, &mut backend::direct(&bed.primary)).unwrap()
        }

        /// Seeds a row on the primary, outside diesel-rw.
        fn insert_direct(url: &str, tag: &str) {
            let query = diesel::insert_into(items::table).values((
                items::tag.eq(tag),
                items::node.eq(sql::<Text>(backend::IDENTITY)),
            ));
            diesel::RunQueryDsl::execute(query, &mut backend::direct(url)).unwrap();
        }

        fn is_write_on_read_route(e: diesel::result::Error) -> bool {
            Error::from_diesel(e).is_write_on_read_route()
        }

        // -----------------------------------------------------------------------------------
        // The annotated functions. Generic over `AsyncRouter`, they take a pool or another
        // function's `conn`.

        #[read_only]
        async fn read_node<R: AsyncRouter<Connection = Conn>>(db: R) -> QueryResult<Served> {
            assert!(conn.is_read_only());
            served(conn).await
        }

        #[read_only]
        async fn count_items<R: AsyncRouter<Connection = Conn>>(
            db: R,
            tag: &str,
        ) -> QueryResult<(i64, Served)> {
            let n = count(conn, tag).await?;
            Ok((n, served(conn).await?))
        }

        #[master]
        async fn add_item<R: AsyncRouter<Connection = Conn>>(
            db: R,
            tag: &str,
        ) -> QueryResult<Served> {
            assert!(!conn.is_read_only());
            insert(conn, tag).await?;
            served(conn).await
        }

        /// What [`add_items`] saw inside its transaction.
        #[derive(Debug)]
        struct Inside {
            /// The tag's rows as the transaction sees them.
            seen: i64,
            /// The tag's rows as another connection to the primary sees them meanwhile.
            outside: i64,
            served: Served,
        }

        /// The error of [`add_items`]: its own type, so a rollback can carry what it saw.
        #[derive(Debug)]
        enum TxError {
            RolledBack(Inside),
            Db(diesel::result::Error),
            Route(Error),
        }

        impl std::fmt::Display for TxError {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    TxError::RolledBack(inside) => write!(f, "rolled back: {inside:?}"),
                    TxError::Db(e) => write!(f, "database: {e}"),
                    TxError::Route(e) => write!(f, "route: {e}"),
                }
            }
        }

        impl From<diesel::result::Error> for TxError {
            fn from(e: diesel::result::Error) -> Self {
                TxError::Db(e)
            }
        }

        impl From<Error> for TxError {
            fn from(e: Error) -> Self {
                TxError::Route(e)
            }
        }

        #[master(transaction)]
        async fn add_items(db: &Db, bed: &Bed, n: usize, commit: bool) -> Result<Inside, TxError> {
            for _ in 0..n {
                insert(conn, &bed.tag).await?;
            }
            assert_eq!(conn.transaction_node(), Some(Node::Primary));
            let inside = Inside {
                seen: count(conn, &bed.tag).await?,
                outside: count_direct(&bed.primary, &bed.tag),
                served: served(conn).await?,
            };
            if commit {
                Ok(inside)
            } else {
                Err(TxError::RolledBack(inside))
            }
        }

        /// What [`add_and_count`] saw: the nested write and read, and the row count outside the
        /// transaction before it committed.
        #[derive(Debug)]
        struct Nested {
            wrote: Served,
            count: i64,
            read: Served,
            outside_primary: i64,
            outside_replica: i64,
        }

        #[master(transaction)]
        async fn add_and_count(db: &Db, bed: &Bed) -> QueryResult<Nested> {
            let wrote = add_item(&mut *conn, &bed.tag).await?;
            let (count, read) = count_items(&mut *conn, &bed.tag).await?;
            // The nested calls restored the route: this connection still writes.
            assert!(!conn.is_read_only());
            Ok(Nested {
                wrote,
                count,
                read,
                outside_primary: count_direct(&bed.primary, &bed.tag),
                outside_replica: count_direct(&bed.replica, &bed.tag),
            })
        }

        #[read_only(transaction)]
        async fn read_snapshot(db: &Db, reads: usize) -> QueryResult<(Option<Node>, Vec<Served>)> {
            let mut seen = Vec::with_capacity(reads);
            for _ in 0..reads {
                seen.push(served(conn).await?);
            }
            Ok((conn.transaction_node(), seen))
        }

        #[read_only(transaction)]
        async fn write_in_read_only_transaction(db: &Db, tag: &str) -> QueryResult<usize> {
            // Built at run time, so the compile-time check cannot see it; the connection
            // rejects it.
            let sql = format!("INSERT INTO items (tag, node) VALUES ('{tag}', 'none')");
            diesel::sql_query(sql).execute(conn).await
        }

        #[read_only]
        async fn read_then_add(db: &Db, tag: &str) -> QueryResult<Served> {
            let read = served(conn).await?;
            add_item(&mut *conn, tag).await?;
            Ok(read)
        }

        /// The `#[async_trait]` form: async_trait rewrites the methods first, then the
        /// attributes route inside the boxed futures.
        #[async_trait]
        trait ItemStore {
            async fn read_node(&self) -> QueryResult<Served>;
            async fn add_and_read(&self, tag: &str) -> QueryResult<(Served, i64, Served)>;
            async fn add_in(
                &self,
                db: &mut AsyncRwConnection<Conn>,
                tag: &str,
            ) -> QueryResult<Served>;
        }

        struct Items {
            pool: Db,
        }

        #[async_trait]
        impl ItemStore for Items {
            #[read_only(pool = &self.pool)]
            async fn read_node(&self) -> QueryResult<Served> {
                assert!(conn.is_read_only());
                served(conn).await
            }

            #[master(pool = &self.pool, transaction)]
            async fn add_and_read(&self, tag: &str) -> QueryResult<(Served, i64, Served)> {
                let wrote = self.add_in(&mut *conn, tag).await?;
                let (n, read) = count_items(&mut *conn, tag).await?;
                Ok((wrote, n, read))
            }

            #[master(pool = db)]
            async fn add_in(
                &self,
                db: &mut AsyncRwConnection<Conn>,
                tag: &str,
            ) -> QueryResult<Served> {
                insert(conn, tag).await?;
                served(conn).await
            }
        }

        macro_rules! bed {
            ($name:literal) => {
                match backend::bed($name) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        // -----------------------------------------------------------------------------------
        // The tests.

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_read_only_fn_reads_replica() {
            let bed = bed!("async_read_only_fn_reads_replica");
            insert_direct(&bed.primary, &bed.tag);
            backend::replicate(&bed);
            let pool = pool(&bed, 1);

            let read = read_node(&pool).await.unwrap();
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);
            assert_eq!(read.read_only, "on", "the replica session is read-only");

            // The replayed row is what the read sees, on the replica.
            let (n, read) = count_items(&pool, &bed.tag).await.unwrap();
            assert_eq!(n, 1);
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);

            // With a routing connection: read-only for the call, as it was afterwards.
            let mut conn = pool.get().await.unwrap();
            let read = read_node(&mut conn).await.unwrap();
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);
            assert!(!conn.is_read_only());

            // A connection that has written reads its writes: its reads stick to the primary,
            // and a `#[read_only]` call keeps to that (read-only there, still).
            let wrote = add_item(&mut conn, &bed.tag).await.unwrap();
            assert_served(&wrote, &bed.primary_id, Node::Primary, Reason::Explicit);
            let (n, read) = count_items(&mut conn, &bed.tag).await.unwrap();
            assert_eq!(n, 2);
            assert_served(&read, &bed.primary_id, Node::Primary, Reason::Sticky);
            assert_eq!(read.session, wrote.session, "the connection that wrote");
            assert!(!conn.is_read_only());
            assert_eq!(pool.stats().replicas[0].queries, 4);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_master_fn_writes_primary() {
            let bed = bed!("async_master_fn_writes_primary");
            let pool = pool(&bed, 1);

            let wrote = add_item(&pool, &bed.tag).await.unwrap();
            assert_served(&wrote, &bed.primary_id, Node::Primary, Reason::Explicit);
            assert_eq!(wrote.read_only, "off", "a read-write session");
            // The server that ran the INSERT wrote its own identity.
            assert_eq!(rows_on_primary(&bed), vec![bed.primary_id.clone()]);

            // With a routing connection: pinned to the primary for the call only.
            let mut conn = pool.get().await.unwrap();
            let wrote = add_item(&mut conn, &bed.tag).await.unwrap();
            assert_served(&wrote, &bed.primary_id, Node::Primary, Reason::Explicit);
            assert_eq!(rows_on_primary(&bed), vec![bed.primary_id.clone(); 2]);
            assert_eq!(pool.stats().replica_queries(), 0);

            // The replica has the rows once replication has replayed them, and no others.
            backend::replicate(&bed);
            assert_eq!(count_direct(&bed.replica, &bed.tag), 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_master_transaction_commits_and_rolls_back() {
            let bed = bed!("async_master_transaction_commits_and_rolls_back");
            let pool = pool(&bed, 1);

            let inside = add_items(&pool, &bed, 2, true).await.unwrap();
            assert_served(
                &inside.served,
                &bed.primary_id,
                Node::Primary,
                Reason::Transaction,
            );
            assert_eq!(inside.served.read_only, "off", "a read-write transaction");
            assert_eq!(inside.seen, 2, "the transaction sees its writes");
            assert_eq!(inside.outside, 0, "no one else does before the commit");
            assert_eq!(rows_on_primary(&bed), vec![bed.primary_id.clone(); 2]);

            match add_items(&pool, &bed, 2, false).await {
                Err(TxError::RolledBack(inside)) => {
                    assert_served(
                        &inside.served,
                        &bed.primary_id,
                        Node::Primary,
                        Reason::Transaction,
                    );
                    assert_eq!(inside.seen, 4, "the rolled-back rows were written");
                    assert_eq!(inside.outside, 2);
                }
                Err(e) => panic!("expected the rollback, got {e}"),
                Ok(inside) => panic!("expected the rollback, got a commit: {inside:?}"),
            }
            assert_eq!(
                rows_on_primary(&bed),
                vec![bed.primary_id.clone(); 2],
                "rolled back"
            );

            // The pool's connections are usable afterwards: nothing was left open.
            let inside = add_items(&pool, &bed, 1, true).await.unwrap();
            assert_served(
                &inside.served,
                &bed.primary_id,
                Node::Primary,
                Reason::Transaction,
            );
            assert_eq!(rows_on_primary(&bed), vec![bed.primary_id.clone(); 3]);
            assert_eq!(pool.stats().replica_queries(), 0);
            assert!(pool.status().all_idle(), "no connection left checked out");
            backend::replicate(&bed);
            assert_eq!(count_direct(&bed.replica, &bed.tag), 3);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_nested_read_only_in_master_transaction_sees_uncommitted_write() {
            let bed = bed!("async_nested_read_only_in_master_transaction_sees_uncommitted_write");
            let pool = pool(&bed, 1);

            let nested = add_and_count(&pool, &bed).await.unwrap();
            assert_served(
                &nested.wrote,
                &bed.primary_id,
                Node::Primary,
                Reason::Transaction,
            );
            // The nested read ran in the transaction: on the primary, in the session that
            // wrote, in its read-write transaction, and it saw the uncommitted row...
            assert_eq!(nested.count, 1);
            assert_served(
                &nested.read,
                &bed.primary_id,
                Node::Primary,
                Reason::Transaction,
            );
            assert_eq!(nested.read.session, nested.wrote.session);
            assert_eq!(nested.read.read_only, "off");
            // ...which no other session could see yet: a read routed to the replica (or to
            // another primary connection) would have missed it.
            assert_eq!(nested.outside_primary, 0);
            assert_eq!(nested.outside_replica, 0);
            assert_eq!(pool.stats().replica_queries(), 0);

            assert_eq!(rows_on_primary(&bed), vec![bed.primary_id.clone()]);
            backend::replicate(&bed);
            let (count, read) = count_items(&pool, &bed.tag).await.unwrap();
            assert_eq!(count, 1);
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_read_only_transaction_runs_on_one_replica() {
            let bed = bed!("async_read_only_transaction_runs_on_one_replica");
            let pool = pool(&bed, 2);

            // Outside a transaction, reads take the replica slots in turn...
            let first = read_node(&pool).await.unwrap();
            let second = read_node(&pool).await.unwrap();
            assert_eq!(first.node, bed.replica_id);
            assert_eq!(second.node, bed.replica_id);
            let slots = [first.route.unwrap().node, second.route.unwrap().node];
            assert!(
                slots.contains(&Node::Replica(0)) && slots.contains(&Node::Replica(1)),
                "round robin over two slots, got {slots:?}"
            );

            // ...inside one, every read is on the slot and the server session that began it,
            // in a transaction the server runs read-only.
            let (node, seen) = read_snapshot(&pool, 4).await.unwrap();
            let Some(node @ Node::Replica(_)) = node else {
                panic!("a read-only transaction on a replica, got {node:?}");
            };
            assert_eq!(seen.len(), 4);
            for read in &seen {
                assert_served(read, &bed.replica_id, node, Reason::Transaction);
                assert_eq!(read.session, seen[0].session, "one server session");
                assert_eq!(read.read_only, "on", "a read-only transaction");
            }
            assert_eq!(pool.stats().primary.queries, 0);

            // It is read-only: a write is rejected before it is sent.
            let err = write_in_read_only_transaction(&pool, &bed.tag)
                .await
                .unwrap_err();
            assert!(is_write_on_read_route(err));
            assert!(rows_on_primary(&bed).is_empty());
            assert_eq!(pool.stats().primary.queries, 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_master_called_with_read_only_conn_is_rejected() {
            let bed = bed!("async_master_called_with_read_only_conn_is_rejected");
            let pool = pool(&bed, 1);

            // Nested: the `#[read_only]` function's `conn` is not escalated to the primary.
            let err = read_then_add(&pool, &bed.tag).await.unwrap_err();
            assert!(is_write_on_read_route(err));
            assert!(rows_on_primary(&bed).is_empty());
            assert_eq!(pool.stats().primary.queries, 0);

            // Directly, with a read-only handle: rejected before anything is sent.
            let mut conn = pool.replica().await.unwrap();
            let err = add_item(&mut conn, &bed.tag).await.unwrap_err();
            assert!(is_write_on_read_route(err));
            assert_eq!(conn.last_route(), None);
            assert!(rows_on_primary(&bed).is_empty());
            // The handle is still read-only and still reads from the replica.
            assert!(conn.is_read_only());
            let read = read_node(&mut conn).await.unwrap();
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);
            assert_eq!(read.read_only, "on");
            assert_eq!(pool.stats().primary.queries, 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_trait_methods_route_like_async_fns() {
            let bed = bed!("async_trait_methods_route_like_async_fns");
            let items = Items {
                pool: pool(&bed, 1),
            };
            // Boxed `Send` futures: usable from spawned tasks and behind `dyn ItemStore`.
            let store: std::sync::Arc<dyn ItemStore + Send + Sync> = std::sync::Arc::new(items);

            let read = tokio::spawn({
                let store = store.clone();
                async move { store.read_node().await }
            })
            .await
            .unwrap()
            .unwrap();
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);
            assert_eq!(read.read_only, "on");

            // A transaction on the primary; the nested trait method and the nested read run
            // in it, and the read sees the uncommitted row.
            let (wrote, n, read) = store.add_and_read(&bed.tag).await.unwrap();
            assert_served(&wrote, &bed.primary_id, Node::Primary, Reason::Transaction);
            assert_eq!(n, 1);
            assert_served(&read, &bed.primary_id, Node::Primary, Reason::Transaction);
            assert_eq!(read.session, wrote.session);
            assert_eq!(rows_on_primary(&bed), vec![bed.primary_id.clone()]);

            // `#[master]` on a read-only connection is rejected, as for an `async fn`.
            let pool = pool(&bed, 1);
            let mut ro = pool.replica().await.unwrap();
            let err = store.add_in(&mut ro, &bed.tag).await.unwrap_err();
            assert!(is_write_on_read_route(err));
            assert_eq!(rows_on_primary(&bed).len(), 1);
        }
    };
}
