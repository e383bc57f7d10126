//! The `#[read_only]` / `#[master]` suite, run on each backend by `macros_suite!(backend_module)`.
//!
//! Each test asserts the node that served each annotated call from the server itself: every read
//! that reports ([`served`]) selects, in one statement routed like any other, the identity of the
//! server that runs it (`backend::IDENTITY`), the id of the session (so "the same connection" is
//! the server's word too) and whether the server runs it in a read-only transaction; a write's
//! target is the `node` column of its row, which the server that ran the INSERT fills with its own
//! identity. The route diesel-rw recorded (`conn.last_route()`) is checked beside it.
//!
//! The server beds have one replica. Where a test needs two (a read-only transaction keeps to one
//! replica while round robin would alternate), the pool lists that replica twice: two slots,
//! `Node::Replica(0)` and `Node::Replica(1)`, on one server; the server's session id then shows
//! that every statement of the transaction ran on one connection.

/// Per backend, SQL the server evaluates to (the id of the session that runs the statement,
/// whether its current transaction is read-only as `'on'`/`'off'`). SQLite has no session id:
/// the file's name stands in, so the session checks there are as strong as the node checks.
macro_rules! macros_session_sql {
    (pg) => {
        (
            "pg_backend_pid()::text",
            "current_setting('transaction_read_only')",
        )
    };
    (mysql) => {
        (
            "CAST(CONNECTION_ID() AS CHAR)",
            "IF(@@tx_read_only, 'on', 'off')",
        )
    };
    (sqlite) => {
        (
            "(SELECT name FROM node)",
            "(SELECT CASE query_only WHEN 1 THEN 'on' ELSE 'off' END FROM pragma_query_only)",
        )
    };
}

macro_rules! macros_suite {
    ($backend:ident) => {
        use diesel::dsl::sql;
        use diesel::prelude::*;
        use diesel::sql_types::Text;
        use diesel_rw::{
            master, read_only, Consistency, Error, Node, Policy, Reason, Route, Router,
            RwConnection, RwPool,
        };

        use common::$backend as backend;
        use common::{items, Bed};

        type Conn = backend::Conn;
        type Db = RwPool<Conn>;

        /// SQL for the id of the session running a statement, and for whether its transaction
        /// is read-only (`on`/`off`).
        const SESSION: (&str, &str) = macros_session_sql!($backend);

        /// A pool over the bed's primary and `replicas` slots of its replica (round robin,
        /// sticky for the rest of a connection's life after a write).
        fn pool(bed: &Bed, replicas: usize) -> Db {
            let mut builder = RwPool::<Conn>::builder()
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
        fn served(conn: &mut RwConnection<Conn>) -> QueryResult<Served> {
            let (node, session, read_only) = diesel::select((
                sql::<Text>(backend::IDENTITY),
                sql::<Text>(SESSION.0),
                sql::<Text>(SESSION.1),
            ))
            .get_result::<(String, String, String)>(conn)?;
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
        fn insert(conn: &mut RwConnection<Conn>, tag: &str) -> QueryResult<usize> {
            diesel::insert_into(items::table)
                .values((
                    items::tag.eq(tag),
                    items::node.eq(sql::<Text>(backend::IDENTITY)),
                ))
                .execute(conn)
        }

        fn count(conn: &mut RwConnection<Conn>, tag: &str) -> QueryResult<i64> {
            items::table
                .filter(items::tag.eq(tag))
                .count()
                .get_result(conn)
        }

        /// This tag's rows on the server at `url`, read on a connection of its own (outside any
        /// transaction of the test).
        fn count_direct(url: &str, tag: &str) -> i64 {
            items::table
                .filter(items::tag.eq(tag))
                .count()
                .get_result(&mut backend::direct(url))
                .unwrap()
        }

        /// The `node` column of this tag's rows, read on the primary directly: which server ran
        /// each INSERT.
        fn rows_on_primary(bed: &Bed) -> Vec<String> {
            items::table
                .filter(items::tag.eq(&bed.tag))
                .select(items::node)
                .order(items::id)
                .load(&mut backend::direct(&bed.primary))
                .unwrap()
        }

        fn is_write_on_read_route(e: diesel::result::Error) -> bool {
            Error::from_diesel(e).is_write_on_read_route()
        }

        // -----------------------------------------------------------------------------------
        // The annotated functions. Generic over `Router`, they take a pool or another
        // function's `conn`.

        #[read_only]
        fn read_node<R: Router<Connection = Conn>>(db: R) -> QueryResult<Served> {
            assert!(conn.is_read_only());
            served(conn)
        }

        #[read_only]
        fn count_items<R: Router<Connection = Conn>>(
            db: R,
            tag: &str,
        ) -> QueryResult<(i64, Served)> {
            let n = count(conn, tag)?;
            Ok((n, served(conn)?))
        }

        #[master]
        fn add_item<R: Router<Connection = Conn>>(db: R, tag: &str) -> QueryResult<Served> {
            assert!(!conn.is_read_only());
            insert(conn, tag)?;
            served(conn)
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
        fn add_items(db: &Db, bed: &Bed, n: usize, commit: bool) -> Result<Inside, TxError> {
            for _ in 0..n {
                insert(conn, &bed.tag)?;
            }
            assert_eq!(conn.transaction_node(), Some(Node::Primary));
            let inside = Inside {
                seen: count(conn, &bed.tag)?,
                outside: count_direct(&bed.primary, &bed.tag),
                served: served(conn)?,
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
        fn add_and_count(db: &Db, bed: &Bed) -> QueryResult<Nested> {
            let wrote = add_item(&mut *conn, &bed.tag)?;
            let (count, read) = count_items(&mut *conn, &bed.tag)?;
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
        fn read_snapshot(db: &Db, reads: usize) -> QueryResult<(Option<Node>, Vec<Served>)> {
            let seen = (0..reads)
                .map(|_| served(conn))
                .collect::<QueryResult<Vec<_>>>()?;
            Ok((conn.transaction_node(), seen))
        }

        #[read_only(transaction)]
        fn write_in_read_only_transaction(db: &Db, tag: &str) -> QueryResult<usize> {
            // Built at run time, so the compile-time check cannot see it; the connection
            // rejects it.
            let sql = format!("INSERT INTO items (tag, node) VALUES ('{tag}', 'none')");
            diesel::sql_query(sql).execute(conn)
        }

        #[read_only]
        fn read_then_add(db: &Db, tag: &str) -> QueryResult<Served> {
            let read = served(conn)?;
            add_item(&mut *conn, tag)?;
            Ok(read)
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

        #[test]
        fn read_only_fn_reads_replica() {
            let bed = bed!("read_only_fn_reads_replica");
            let mut seed = backend::direct(&bed.primary);
            insert_direct(&mut seed, &bed.tag);
            backend::replicate(&bed);
            let pool = pool(&bed, 1);

            let read = read_node(&pool).unwrap();
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);
            assert_eq!(read.read_only, "on", "the replica session is read-only");

            // The replayed row is what the read sees, on the replica.
            let (n, read) = count_items(&pool, &bed.tag).unwrap();
            assert_eq!(n, 1);
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);

            // With a routing connection: read-only for the call, as it was afterwards.
            let mut conn = pool.get().unwrap();
            let read = read_node(&mut conn).unwrap();
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);
            assert!(!conn.is_read_only());

            // A connection that has written reads its writes: its reads stick to the primary,
            // and a `#[read_only]` call keeps to that (read-only there, still).
            let wrote = add_item(&mut conn, &bed.tag).unwrap();
            assert_served(&wrote, &bed.primary_id, Node::Primary, Reason::Explicit);
            let (n, read) = count_items(&mut conn, &bed.tag).unwrap();
            assert_eq!(n, 2);
            assert_served(&read, &bed.primary_id, Node::Primary, Reason::Sticky);
            assert_eq!(read.session, wrote.session, "the connection that wrote");
            assert!(!conn.is_read_only());
            assert_eq!(pool.stats().replicas[0].queries, 4);
        }

        /// Seeds a row on the primary, outside diesel-rw.
        fn insert_direct(conn: &mut Conn, tag: &str) {
            diesel::insert_into(items::table)
                .values((
                    items::tag.eq(tag),
                    items::node.eq(sql::<Text>(backend::IDENTITY)),
                ))
                .execute(conn)
                .unwrap();
        }

        #[test]
        fn master_fn_writes_primary() {
            let bed = bed!("master_fn_writes_primary");
            let pool = pool(&bed, 1);

            let wrote = add_item(&pool, &bed.tag).unwrap();
            assert_served(&wrote, &bed.primary_id, Node::Primary, Reason::Explicit);
            assert_eq!(wrote.read_only, "off", "a read-write session");
            // The server that ran the INSERT wrote its own identity.
            assert_eq!(rows_on_primary(&bed), vec![bed.primary_id.clone()]);

            // With a routing connection: pinned to the primary for the call only.
            let mut conn = pool.get().unwrap();
            let wrote = add_item(&mut conn, &bed.tag).unwrap();
            assert_served(&wrote, &bed.primary_id, Node::Primary, Reason::Explicit);
            assert_eq!(rows_on_primary(&bed), vec![bed.primary_id.clone(); 2]);
            assert_eq!(pool.stats().replica_queries(), 0);

            // The replica has the rows once replication has replayed them, and no others.
            backend::replicate(&bed);
            assert_eq!(count_direct(&bed.replica, &bed.tag), 2);
        }

        #[test]
        fn master_transaction_commits_and_rolls_back() {
            let bed = bed!("master_transaction_commits_and_rolls_back");
            let pool = pool(&bed, 1);

            let inside = add_items(&pool, &bed, 2, true).unwrap();
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

            match add_items(&pool, &bed, 2, false) {
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
            let inside = add_items(&pool, &bed, 1, true).unwrap();
            assert_served(
                &inside.served,
                &bed.primary_id,
                Node::Primary,
                Reason::Transaction,
            );
            assert_eq!(rows_on_primary(&bed), vec![bed.primary_id.clone(); 3]);
            assert_eq!(pool.stats().replica_queries(), 0);
            backend::replicate(&bed);
            assert_eq!(count_direct(&bed.replica, &bed.tag), 3);
        }

        #[test]
        fn nested_read_only_in_master_transaction_sees_uncommitted_write() {
            let bed = bed!("nested_read_only_in_master_transaction_sees_uncommitted_write");
            let pool = pool(&bed, 1);

            let nested = add_and_count(&pool, &bed).unwrap();
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
            let (count, read) = count_items(&pool, &bed.tag).unwrap();
            assert_eq!(count, 1);
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);
        }

        #[test]
        fn read_only_transaction_runs_on_one_replica() {
            let bed = bed!("read_only_transaction_runs_on_one_replica");
            let pool = pool(&bed, 2);

            // Outside a transaction, reads take the replica slots in turn...
            let first = read_node(&pool).unwrap();
            let second = read_node(&pool).unwrap();
            assert_eq!(first.node, bed.replica_id);
            assert_eq!(second.node, bed.replica_id);
            let slots = [first.route.unwrap().node, second.route.unwrap().node];
            assert!(
                slots.contains(&Node::Replica(0)) && slots.contains(&Node::Replica(1)),
                "round robin over two slots, got {slots:?}"
            );

            // ...inside one, every read is on the slot and the server session that began it,
            // in a transaction the server runs read-only.
            let (node, seen) = read_snapshot(&pool, 4).unwrap();
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
            let err = write_in_read_only_transaction(&pool, &bed.tag).unwrap_err();
            assert!(is_write_on_read_route(err));
            assert!(rows_on_primary(&bed).is_empty());
            assert_eq!(pool.stats().primary.queries, 0);
        }

        #[test]
        fn master_called_with_read_only_conn_is_rejected() {
            let bed = bed!("master_called_with_read_only_conn_is_rejected");
            let pool = pool(&bed, 1);

            // Nested: the `#[read_only]` function's `conn` is not escalated to the primary.
            let err = read_then_add(&pool, &bed.tag).unwrap_err();
            assert!(is_write_on_read_route(err));
            assert!(rows_on_primary(&bed).is_empty());
            assert_eq!(pool.stats().primary.queries, 0);

            // Directly, with a read-only handle: rejected before anything is sent.
            let mut conn = pool.replica().unwrap();
            let err = add_item(&mut conn, &bed.tag).unwrap_err();
            assert!(is_write_on_read_route(err));
            assert_eq!(conn.last_route(), None);
            assert!(rows_on_primary(&bed).is_empty());
            // The handle is still read-only and still reads from the replica.
            assert!(conn.is_read_only());
            let read = read_node(&mut conn).unwrap();
            assert_served(&read, &bed.replica_id, Node::Replica(0), Reason::Explicit);
            assert_eq!(read.read_only, "on");
            assert_eq!(pool.stats().primary.queries, 0);
        }
    };
}
