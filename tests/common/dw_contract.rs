//! The double-write contract, sync and async, on every backend (included by the
//! `tests/double_write_*.rs` suites after `dw`): one order for every write (the first side, then
//! the second only if the first applied it), reads that follow the pattern through each side's
//! cluster, instrumentation of both sides, and the advice of each strict-mode error.
//!
//! Each suite asserts which node served a call: `NODE_ID` is an expression each node evaluates
//! to its own identity (PostgreSQL: the port; MariaDB: port and database; SQLite: a marker row
//! per file). A replica's content is read only after waiting for its replay.
#![allow(dead_code, unused_macros, unused_imports)]

use diesel_rw::double_write::Side;

/// The four nodes of a double write over two clusters.
pub struct Clusters {
    pub source_replica: String,
    pub destination_replica: String,
    /// `NODE_ID` on the source primary, its replica, the destination primary, its replica.
    pub ids: [String; 4],
}

impl Clusters {
    pub fn primary_id(&self, side: Side) -> &str {
        match side {
            Side::Source => &self.ids[0],
            Side::Destination => &self.ids[2],
        }
    }

    pub fn replica_id(&self, side: Side) -> &str {
        match side {
            Side::Source => &self.ids[1],
            Side::Destination => &self.ids[3],
        }
    }
}

/// Sets a replication delay while it lives (and removes it, even when the test fails).
pub struct Lag(fn(u64));

impl Lag {
    pub fn new(set: fn(u64), ms: u64) -> Lag {
        set(ms);
        Lag(set)
    }
}

impl Drop for Lag {
    fn drop(&mut self) {
        (self.0)(0);
    }
}

#[cfg(feature = "postgres")]
pub mod pg {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use super::Clusters;
    use crate::dw::DwBed;

    /// A counter after three inserts into a new table: the last value issued.
    pub const COUNTER_AFTER_THREE: i64 = 3;
    /// The columns of a table with a generated key.
    pub const COUNTED_COLUMNS: &str = "id SERIAL PRIMARY KEY, x TEXT";
    pub const NODE_ID: &str = "inet_server_port()::text";
    /// The server's wall clock, to the microsecond (fixed width: compares as text).
    pub const CLOCK: &str = "to_char(clock_timestamp(), 'YYYY-MM-DD HH24:MI:SS.US')";
    pub const CLOCK_RESOLVES_ORDER: bool = true;
    /// `INSERT ... RETURNING` through `load`.
    pub const RETURNING_LOADS: bool = true;
    pub const REPLICATES: bool = true;
    pub const UNREACHABLE: &str = "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:1/diesel_rw";

    fn id(url: &str) -> String {
        diesel::select(diesel::dsl::sql::<Text>(NODE_ID))
            .get_result(&mut crate::dw::pg::direct(url))
            .unwrap()
    }

    pub fn clusters(bed: &DwBed) -> Option<Clusters> {
        let source_replica = crate::common::pg::replica_url();
        let destination_replica = crate::common::pg::dest_replica()?;
        let ids = [
            id(&bed.source),
            id(&source_replica),
            id(&bed.destination),
            id(&destination_replica),
        ];
        Some(Clusters {
            source_replica,
            destination_replica,
            ids,
        })
    }

    /// Waits until both standbys have replayed everything their primaries committed.
    pub fn wait_replicas(bed: &DwBed, cl: &Clusters) {
        crate::common::pg::wait_replayed(&bed.source, &cl.source_replica);
        crate::common::pg::wait_replayed(&bed.destination, &cl.destination_replica);
    }

    /// Delays the destination's standby.
    pub fn lag_destination(ms: u64) {
        crate::common::pg::set_dest_lag(ms);
    }
}

#[cfg(feature = "mysql")]
pub mod mysql {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use super::Clusters;
    use crate::dw::DwBed;

    /// A counter after three inserts into a new table: `AUTO_INCREMENT` is the next value.
    pub const COUNTER_AFTER_THREE: i64 = 4;
    /// The columns of a table with a generated key.
    pub const COUNTED_COLUMNS: &str = "id INT AUTO_INCREMENT PRIMARY KEY, x VARCHAR(8)";
    pub const NODE_ID: &str = "CONCAT(@@port, '/', DATABASE())";
    /// The statement's start time, to the microsecond.
    pub const CLOCK: &str = "DATE_FORMAT(NOW(6), '%Y-%m-%d %H:%i:%s.%f')";
    pub const CLOCK_RESOLVES_ORDER: bool = true;
    /// diesel's MySQL backend cannot load `INSERT ... RETURNING` (libmysqlclient reports no
    /// result metadata before it runs): writes through `load` are locking reads here.
    pub const RETURNING_LOADS: bool = false;
    pub const REPLICATES: bool = true;
    pub const UNREACHABLE: &str = "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:1/diesel_rw_dst";

    fn id(url: &str) -> String {
        diesel::select(diesel::dsl::sql::<Text>(NODE_ID))
            .get_result(&mut crate::dw::mysql::direct(url))
            .unwrap()
    }

    pub fn clusters(bed: &DwBed) -> Option<Clusters> {
        let source_replica = crate::common::mysql::replica_url();
        let destination_replica = crate::common::mysql::dest_replica()?;
        let ids = [
            id(&bed.source),
            id(&source_replica),
            id(&bed.destination),
            id(&destination_replica),
        ];
        Some(Clusters {
            source_replica,
            destination_replica,
            ids,
        })
    }

    /// Waits until the replica (of both databases) has applied everything the primary
    /// committed (GTID).
    pub fn wait_replicas(bed: &DwBed, cl: &Clusters) {
        let pos: String =
            diesel::select(diesel::dsl::sql::<Text>("CAST(@@gtid_binlog_pos AS CHAR)"))
                .get_result(&mut crate::dw::mysql::direct(&bed.source))
                .unwrap();
        if pos.is_empty() {
            return;
        }
        let waited: i32 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(&format!(
            "MASTER_GTID_WAIT('{pos}', 60)"
        )))
        .get_result(&mut crate::dw::mysql::direct(&cl.destination_replica))
        .unwrap();
        assert_eq!(waited, 0, "the replica did not apply {pos} in 60 s");
    }

    /// Delays the replica (which holds the destination database too).
    pub fn lag_destination(ms: u64) {
        crate::common::mysql::set_lag(ms);
    }
}

#[cfg(feature = "sqlite")]
pub mod sqlite {
    use super::Clusters;
    use crate::dw::DwBed;

    /// A counter after three inserts into a new table: the last value issued.
    pub const COUNTER_AFTER_THREE: i64 = 3;
    /// The columns of a table with a generated key.
    pub const COUNTED_COLUMNS: &str = "id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT";
    pub const NODE_ID: &str = "(SELECT name FROM dw_node)";
    /// Milliseconds only: two statements may share one reading.
    pub const CLOCK: &str = "strftime('%Y-%m-%d %H:%M:%f', 'now')";
    pub const CLOCK_RESOLVES_ORDER: bool = false;
    /// A SQLite "replica" is another file: nothing replicates to it.
    /// `INSERT ... RETURNING` through `load` (SQLite 3.35+).
    pub const RETURNING_LOADS: bool = true;
    pub const REPLICATES: bool = false;
    pub const UNREACHABLE: &str = "/nonexistent-diesel-rw-dir/destination.db";

    /// Two more files, standing for the replicas of each side.
    pub fn clusters(bed: &DwBed) -> Option<Clusters> {
        let dir = bed.dir.as_ref().unwrap();
        let source_replica = crate::dw::sqlite::replica(bed);
        let destination_replica = dir.join("dst-replica.db").to_str().unwrap().to_owned();
        crate::dw::sqlite::create(&destination_replica, "dst-replica");
        Some(Clusters {
            source_replica,
            destination_replica,
            ids: ["source", "replica", "destination", "dst-replica"].map(String::from),
        })
    }

    pub fn wait_replicas(_bed: &DwBed, _cl: &Clusters) {}

    pub fn lag_destination(_ms: u64) {}
}

/// The sync contract suite for `$backend` (`double_write_suite!` must have run in this module:
/// its `bed!`, `builder`, `insert`, `nodes`, `journal` ... are used).
macro_rules! dw_contract_suite {
    ($backend:ident) => {
        mod contract_suite {
            use std::sync::{Arc, Mutex};

            use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
            use diesel::prelude::*;
            use diesel::sql_types::{BigInt, Integer, Text};
            use diesel_rw::double_write::{
                DoubleWrite, DoubleWriteConnection, Pattern, PatternSwitch, Side,
            };
            use diesel_rw::{Consistency, Error, RwConnection, RwPool};

            use super::{backend, builder, insert, insert_src_only, journal, nodes, Conn};
            use crate::contract::$backend as cl;
            use crate::contract::{Clusters, Lag};
            use crate::dw::DwBed;

            macro_rules! bed {
                ($name:literal) => {
                    match backend::bed($name) {
                        Some(bed) => bed,
                        None => return,
                    }
                };
            }

            type ClConn = DoubleWriteConnection<RwConnection<Conn>>;

            #[derive(QueryableByName, Debug)]
            struct Node {
                #[diesel(sql_type = Text)]
                node: String,
            }

            #[derive(QueryableByName, Debug)]
            struct CountAt {
                #[diesel(sql_type = BigInt)]
                n: i64,
                #[diesel(sql_type = Text)]
                node: String,
            }

            fn cluster_pool(
                bed: &DwBed,
                cl: &Clusters,
                switch: PatternSwitch,
                consistency: Consistency,
            ) -> DoubleWrite<RwConnection<Conn>> {
                let cluster = |primary: &str, replica: &str| {
                    RwPool::<Conn>::builder()
                        .primary(primary)
                        .replica(replica)
                        .consistency(consistency)
                        .max_size(4)
                        .build()
                        .unwrap()
                };
                DoubleWrite::<RwConnection<Conn>>::builder()
                    .source_cluster(cluster(&bed.source, &cl.source_replica))
                    .destination_cluster(cluster(&bed.destination, &cl.destination_replica))
                    .pattern(switch)
                    .max_size(2)
                    .build()
                    .unwrap()
            }

            /// The node that served a read through `conn`.
            fn node_id(conn: &mut ClConn) -> String {
                diesel::select(diesel::dsl::sql::<Text>(cl::NODE_ID))
                    .get_result(conn)
                    .unwrap()
            }

            /// Inserts a row tagged `tag` whose `node` is the identity of the side that ran it.
            fn put(conn: &mut ClConn, tag: &str) {
                diesel::sql_query(format!(
                    "INSERT INTO dw_items (tag, node) VALUES ('{tag}', {})",
                    backend::SIDE_ID
                ))
                .execute(conn)
                .unwrap();
            }

            /// How many rows `tag` has, as read through `conn`, and the node that read them.
            fn count_at(conn: &mut ClConn, tag: &str) -> (i64, String) {
                let row: CountAt = diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n, {} AS node FROM dw_items WHERE tag = '{tag}'",
                    cl::NODE_ID
                ))
                .get_result(conn)
                .unwrap();
                (row.n, row.node)
            }

            fn count_direct(url: &str, tag: &str) -> usize {
                dw_items_tags(url, tag)
            }

            fn dw_items_tags(url: &str, tag: &str) -> usize {
                let rows: Vec<Node> = diesel::sql_query(format!(
                    "SELECT node FROM dw_items WHERE tag = '{tag}'"
                ))
                .load(&mut backend::direct(url))
                .unwrap();
                rows.len()
            }

            fn keys_with(url: &str, id: i32) -> usize {
                let rows: Vec<Node> = diesel::sql_query(format!(
                    "SELECT tag AS node FROM dw_keys WHERE id = {id}"
                ))
                .load(&mut backend::direct(url))
                .unwrap();
                rows.len()
            }

            /// A key no other run uses at the same time (each test process has its own range).
            fn key(offset: u32) -> i32 {
                (7_000_000 + (std::process::id() % 100_000) * 16 + offset) as i32
            }

            #[test]
            fn cluster_reads_follow_the_pattern_to_that_sides_replica() {
                let bed = bed!("dwc_cluster_reads");
                let Some(cl) = cl::clusters(&bed) else { return };
                let switch = PatternSwitch::new(Pattern::SrcOnly);
                let pool = cluster_pool(&bed, &cl, switch.clone(), Consistency::UnitOfWork);
                for (i, pattern) in Pattern::ALL.into_iter().enumerate() {
                    if i > 0 {
                        switch.advance().unwrap();
                    }
                    let read_side = pattern.reads_from();
                    let mut conn = pool.get().unwrap();
                    assert_eq!(
                        node_id(&mut conn),
                        cl.replica_id(read_side),
                        "{pattern}: a read goes to the {read_side}'s replica"
                    );
                    let tag = format!("{}:{pattern}", bed.tag);
                    put(&mut conn, &tag);
                    for side in [Side::Source, Side::Destination] {
                        let want = if pattern.writes_to(side) { vec![bed.id(side).to_owned()] } else { vec![] };
                        assert_eq!(nodes(&bed, side, &tag), want, "{pattern}: the write on the {side}'s primary");
                    }
                    // After the write, the read side's cluster keeps this checkout's reads on
                    // its primary (UnitOfWork), which has the row.
                    assert_eq!(count_at(&mut conn, &tag), (1, cl.primary_id(read_side).to_owned()), "{pattern}");
                    drop(conn);
                    // A new checkout starts with fresh routing state: the replica again.
                    assert_eq!(node_id(&mut pool.get().unwrap()), cl.replica_id(read_side), "{pattern}");
                }
            }

            #[test]
            fn cluster_key_counters_are_read_on_each_sides_primary() {
                let bed = bed!("dwc_cluster_counters");
                let Some(cl) = cl::clusters(&bed) else { return };
                let table = format!("dwc_counted_{}", std::process::id());
                for url in [&bed.source, &bed.destination] {
                    backend::direct(url)
                        .batch_execute(&format!(
                            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({})",
                            cl::COUNTED_COLUMNS
                        ))
                        .unwrap();
                }
                cl::wait_replicas(&bed, &cl);
                let pool = cluster_pool(&bed, &cl, PatternSwitch::new(Pattern::SrcOnly), Consistency::Off);
                let mut conn = pool.get().unwrap();
                for _ in 0..3 {
                    diesel::sql_query(format!("INSERT INTO {table} (x) VALUES ('a')"))
                        .execute(&mut *conn)
                        .unwrap();
                }
                // Read on the source's primary, which issued the keys (its replica may not have
                // them yet; the SQLite "replica" never does).
                let counters = conn.key_counters(Side::Source).unwrap();
                let mine = counters.iter().find(|c| c.table.as_deref().is_some_and(|t| t.contains(&table)));
                assert_eq!(mine.and_then(|c| c.value), Some(cl::COUNTER_AFTER_THREE), "{counters:#?}");
                for url in [&bed.source, &bed.destination] {
                    backend::direct(url).batch_execute(&format!("DROP TABLE IF EXISTS {table}")).unwrap();
                }
            }

            #[test]
            fn cluster_transactions_run_on_both_primaries() {
                let bed = bed!("dwc_cluster_transactions");
                let Some(cl) = cl::clusters(&bed) else { return };
                for pattern in [Pattern::SrcFirst, Pattern::DstFirst] {
                    let pool = cluster_pool(&bed, &cl, PatternSwitch::new(pattern), Consistency::Off);
                    let mut conn = pool.get().unwrap();
                    let tag = format!("{}:{pattern}", bed.tag);
                    let inside = conn
                        .transaction(|c| {
                            put(c, &tag);
                            QueryResult::Ok(count_at(c, &tag))
                        })
                        .unwrap();
                    // Read inside the transaction: the read side's primary, seeing the write.
                    assert_eq!(inside, (1, cl.primary_id(pattern.reads_from()).to_owned()), "{pattern}");
                    for side in [Side::Source, Side::Destination] {
                        assert_eq!(nodes(&bed, side, &tag), [bed.id(side)], "{pattern}: committed on the {side}");
                    }
                }
            }

            #[test]
            fn read_your_writes_on_the_destination_under_dst_first_with_lag() {
                if !cl::REPLICATES {
                    return; // SQLite: nothing replicates, so nothing can lag.
                }
                let bed = bed!("dwc_causal_destination");
                let Some(cl) = cl::clusters(&bed) else { return };
                let _lock = crate::common::bed_lock();
                cl::wait_replicas(&bed, &cl);
                let switch = PatternSwitch::new(Pattern::SrcOnly);
                switch.advance().unwrap();
                switch.advance().unwrap();
                let pool = cluster_pool(&bed, &cl, switch, Consistency::Causal);
                let lag = Lag::new(cl::lag_destination, 2_000);
                let (mut stale_on_replica, mut by_primary) = (0, 0);
                for i in 0..20 {
                    let tag = format!("{}:{i}", bed.tag);
                    let mut conn = pool.get().unwrap();
                    put(&mut conn, &tag);
                    let (n, node) = count_at(&mut conn, &tag);
                    assert_eq!(n, 1, "cycle {i}: the write is read back (served by {node})");
                    assert!(node == cl.primary_id(Side::Destination) || node == cl.replica_id(Side::Destination), "cycle {i}: read on the destination cluster, not {node}");
                    by_primary += usize::from(node == cl.primary_id(Side::Destination));
                    // The lag is real: the destination's replica has not replayed it yet.
                    stale_on_replica += usize::from(count_direct(&cl.destination_replica, &tag) == 0);
                }
                println!("under 2 s lag: {stale_on_replica}/20 writes missing on the destination replica, {by_primary}/20 reads served by the destination primary");
                assert!(stale_on_replica > 0, "the injected lag never showed");
                drop(lag);
                cl::wait_replicas(&bed, &cl);
                // Caught up: a fresh read is served by the destination's replica and sees all.
                let mut conn = pool.get().unwrap();
                let (n, node) = count_at(&mut conn, &format!("{}:0", bed.tag));
                assert_eq!((n, node.as_str()), (1, cl.replica_id(Side::Destination)));
            }

            #[test]
            fn a_write_the_first_side_rejects_never_reaches_the_second() {
                let bed = bed!("dwc_first_side_rejects");
                if !cl::RETURNING_LOADS {
                    diesel::sql_query("CREATE TABLE IF NOT EXISTS dw_dst_only (a VARCHAR(64))")
                        .execute(&mut backend::direct(&bed.destination))
                        .unwrap();
                }
                let mut offset = 0;
                for pattern in [Pattern::SrcFirst, Pattern::DstFirst] {
                    for strict in [false, true] {
                        let (first, second) = (pattern.first(), pattern.second().unwrap());
                        let id = key(offset);
                        offset += 1;
                        for side in [Side::Source, Side::Destination] {
                            diesel::sql_query(format!("DELETE FROM dw_keys WHERE id = {id}"))
                                .execute(&mut backend::direct(bed.url(side)))
                                .unwrap();
                        }
                        // The key is taken on the first side only.
                        diesel::sql_query(format!("INSERT INTO dw_keys (id, tag) VALUES ({id}, 'taken')"))
                            .execute(&mut backend::direct(bed.url(first)))
                            .unwrap();
                        let pool = builder(&bed, pattern).strict(strict).build().unwrap();
                        let mut conn = pool.get().unwrap();
                        let executed = diesel::sql_query(format!("INSERT INTO dw_keys (id, tag) VALUES ({id}, 'dup')"))
                            .execute(&mut *conn);
                        let mut errors = vec![("execute", executed.map(|_| ()).unwrap_err())];
                        if cl::RETURNING_LOADS {
                            let loaded = diesel::sql_query(format!(
                                "INSERT INTO dw_keys (id, tag) VALUES ({id}, 'dup') RETURNING tag AS node"
                            ))
                            .load::<Node>(&mut *conn);
                            errors.push(("load", loaded.map(|_| ()).unwrap_err()));
                        } else {
                            // A locking read (a write through `load`) of a table the first
                            // side does not have.
                            let table = match first { Side::Source => "dw_dst_only", Side::Destination => "dw_src_only" };
                            let loaded = diesel::sql_query(format!("SELECT a AS node FROM {table} FOR UPDATE"))
                                .load::<Node>(&mut *conn);
                            errors.push(("load", loaded.map(|_| ()).unwrap_err()));
                        }
                        for (how, err) in errors {
                            assert!(
                                matches!(err, diesel::result::Error::DatabaseError(..)),
                                "{pattern} strict={strict} {how}: the first side's own error, got {err:?}"
                            );
                        }
                        assert_eq!(keys_with(bed.url(second), id), 0, "{pattern} strict={strict}: the {second} is untouched");
                        assert_eq!(keys_with(bed.url(first), id), 1);
                        assert!(journal(&pool).is_empty(), "{pattern}: nothing diverged: {:#?}", journal(&pool));
                        assert_eq!(pool.metrics().side(second).successes, 0, "{pattern}: the {second} ran nothing");
                    }
                }
            }

            #[test]
            fn each_write_runs_on_the_first_side_then_the_second() {
                let bed = bed!("dwc_order");
                for pattern in [Pattern::SrcFirst, Pattern::DstFirst] {
                    let (first, second) = (pattern.first(), pattern.second().unwrap());
                    let pool = builder(&bed, pattern).build().unwrap();
                    let mut conn = pool.get().unwrap();
                    let at = |tag: &str, side: Side| nodes(&bed, side, tag).pop().unwrap();
                    let check = |tag: &str, how: &str| {
                        let (a, b) = (at(tag, first), at(tag, second));
                        if cl::CLOCK_RESOLVES_ORDER {
                            assert!(a < b, "{pattern} {how}: the {first} ran it at {a}, the {second} at {b}");
                        } else {
                            assert!(a <= b, "{pattern} {how}: the {first} ran it at {a}, the {second} at {b}");
                        }
                    };
                    let executed = format!("{}:{pattern}:execute", bed.tag);
                    diesel::sql_query(format!("INSERT INTO dw_items (tag, node) VALUES ('{executed}', {})", cl::CLOCK))
                        .execute(&mut *conn)
                        .unwrap();
                    check(&executed, "execute");
                    if cl::RETURNING_LOADS {
                        let loaded = format!("{}:{pattern}:load", bed.tag);
                        let returned: Vec<Node> = diesel::sql_query(format!(
                            "INSERT INTO dw_items (tag, node) VALUES ('{loaded}', {}) RETURNING node",
                            cl::CLOCK
                        ))
                        .load(&mut *conn)
                        .unwrap();
                        check(&loaded, "load");
                        assert_eq!(returned[0].node, at(&loaded, first), "{pattern}: the caller gets the {first}'s rows");
                    }
                    let batch = format!("{}:{pattern}:batch", bed.tag);
                    conn.batch_execute(&format!("INSERT INTO dw_items (tag, node) VALUES ('{batch}', {})", cl::CLOCK))
                        .unwrap();
                    check(&batch, "batch_execute");
                }
            }

            #[derive(Clone, Default)]
            struct Events(Arc<Mutex<Vec<String>>>);

            impl Events {
                fn count(&self, what: &str) -> usize {
                    self.0.lock().unwrap().iter().filter(|e| e.contains(what)).count()
                }
            }

            impl Instrumentation for Events {
                fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
                    let line = match event {
                        InstrumentationEvent::StartQuery { query, .. } => format!("query {query}"),
                        InstrumentationEvent::BeginTransaction { .. } => "begin".into(),
                        InstrumentationEvent::CommitTransaction { .. } => "commit".into(),
                        InstrumentationEvent::RollbackTransaction { .. } => "rollback".into(),
                        _ => return,
                    };
                    self.0.lock().unwrap().push(line);
                }
            }

            #[test]
            fn instrumentation_sees_both_sides() {
                let bed = bed!("dwc_instrumentation");
                let switch = PatternSwitch::new(Pattern::SrcOnly);
                let pool = builder(&bed, switch.clone()).build().unwrap();
                let mut conn = pool.get().unwrap();
                let events = Events::default();
                conn.set_instrumentation(events.clone());
                // The destination connects after the instrumentation was set: it reports too.
                switch.advance().unwrap();
                insert(&mut conn, &bed.tag).unwrap();
                assert_eq!(events.count("INSERT INTO"), 2, "{:#?}", events.0.lock().unwrap());
                conn.transaction(|c| insert(c, &bed.tag)).unwrap();
                assert_eq!(events.count("INSERT INTO"), 4, "{:#?}", events.0.lock().unwrap());
                assert_eq!((events.count("begin"), events.count("commit")), (2, 2));
                let _ = conn.transaction(|c| {
                    insert(c, &bed.tag)?;
                    Err::<(), _>(diesel::result::Error::RollbackTransaction)
                });
                assert_eq!(events.count("rollback"), 2, "{:#?}", events.0.lock().unwrap());
                // Reads go to one side only.
                let before = events.count("query");
                let _ = nodes(&bed, Side::Source, &bed.tag);
                diesel::select(diesel::dsl::sql::<Integer>("1")).get_result::<i32>(&mut *conn).unwrap();
                assert_eq!(events.count("query"), before + 1);
            }

            #[test]
            fn strict_errors_say_what_holds() {
                let bed = bed!("dwc_strict_advice");
                let pool = builder(&bed, Pattern::SrcFirst).strict(true).build().unwrap();
                let mut conn = pool.get().unwrap();
                // Outside a transaction: applied on the source only.
                let tag = format!("{}:outside", bed.tag);
                let err = Error::from_diesel(insert_src_only(&mut conn, &tag).unwrap_err());
                let message = err.to_string();
                for words in ["was applied on the source, not on the destination", "do not repeat it", "repair the destination"] {
                    assert!(message.contains(words), "{message}");
                }
                // Inside a transaction that then rolls back: nothing applied anywhere.
                let tag = format!("{}:rolled-back", bed.tag);
                let err = conn
                    .transaction(|c| {
                        insert(c, &tag)?;
                        insert_src_only(c, &tag)?;
                        QueryResult::Ok(())
                    })
                    .unwrap_err();
                let message = Error::from_diesel(err).to_string();
                assert!(message.contains("nothing is applied on either side: safe to run the whole transaction again"), "{message}");
                assert!(!message.contains("do not repeat"), "{message}");
                for side in [Side::Source, Side::Destination] {
                    assert!(nodes(&bed, side, &tag).is_empty(), "rolled back on the {side}");
                }
                // Committed anyway after the second side failed: a partial commit.
                let tag = format!("{}:partial", bed.tag);
                let err = conn
                    .transaction(|c| {
                        insert(c, &tag)?;
                        let _ = insert_src_only(c, &tag);
                        QueryResult::Ok(())
                    })
                    .unwrap_err();
                let err = Error::from_diesel(err);
                assert!(matches!(err, Error::PartialCommit { .. }), "{err:?}");
                let message = err.to_string();
                for words in ["committed on the source, not on the destination", "do not run it again", "repair the destination"] {
                    assert!(message.contains(words), "{message}");
                }
                assert_eq!(nodes(&bed, Side::Source, &tag), [bed.id(Side::Source)]);
                assert!(nodes(&bed, Side::Destination, &tag).is_empty());
            }

            #[test]
            fn a_first_side_connection_lost_under_a_write_is_an_unknown_outcome() {
                if !cl::REPLICATES {
                    return; // SQLite: a file does not drop a connection.
                }
                let bed = bed!("dwc_first_side_lost");
                let source = crate::common::Flaky::proxied(&bed.source);
                for strict in [false, true] {
                    let pool = DoubleWrite::<Conn>::builder()
                        .source(&source.url)
                        .destination(&bed.destination)
                        .pattern(Pattern::SrcFirst)
                        .strict(strict)
                        .max_size(1)
                        .build()
                        .unwrap();
                    let mut conn = pool.get().unwrap();
                    let (before, after) = (format!("{}:{strict}:1", bed.tag), format!("{}:{strict}:2", bed.tag));
                    insert(&mut conn, &before).unwrap();
                    // The source's connection is cut: the next write is sent on a dead connection.
                    source.down();
                    let err = Error::from_diesel(insert(&mut conn, &after).unwrap_err());
                    source.up();
                    assert!(matches!(err, Error::WriteOutcomeUnknown { .. }), "strict={strict}: {err:?}");
                    let message = err.to_string();
                    for words in ["may be applied there", "it was not sent to the destination", "check whether it is before running it again"] {
                        assert!(message.contains(words), "{message}");
                    }
                    assert!(!message.contains("diesel_rw_pw"), "{message}");
                    assert!(nodes(&bed, Side::Destination, &after).is_empty(), "never sent to the destination");
                    let entries = journal(&pool);
                    assert_eq!(entries.len(), 1, "{entries:#?}");
                    assert_eq!(entries[0].side, Side::Destination);
                    assert!(entries[0].error.starts_with("outcome unknown"), "{}", entries[0].error);
                }
            }

            #[test]
            fn a_second_side_that_cannot_begin_leaves_nothing_applied() {
                let bed = bed!("dwc_begin_fails");
                for strict in [false, true] {
                    let pool = DoubleWrite::<Conn>::builder()
                        .source(&bed.source)
                        .destination(cl::UNREACHABLE)
                        .pattern(Pattern::SrcFirst)
                        .strict(strict)
                        .build()
                        .unwrap();
                    let mut conn = pool.get().unwrap();
                    let tag = format!("{}:{strict}", bed.tag);
                    let err = Error::from_diesel(conn.transaction(|c| insert(c, &tag)).unwrap_err());
                    assert!(matches!(err, Error::NothingApplied { what: "BEGIN", failed: Side::Destination, .. }), "{err:?}");
                    assert!(err.to_string().contains("nothing is applied on either side: safe to run it again"), "{err}");
                    assert!(nodes(&bed, Side::Source, &tag).is_empty(), "nothing on the source");
                    assert!(!err.to_string().contains("diesel_rw_pw"), "{err}");
                }
            }

            #[test]
            fn pattern_names_in_every_spelling() {
                let bed = bed!("dwc_pattern_names");
                for name in ["SrcFirst", "src_first", "SRC_FIRST", "src-first", "%20src_first%20"] {
                    let name = name.replace("%20", "");
                    let spec = format!("source={} destination={} pattern={name}", bed.source, bed.destination);
                    let conn = DoubleWriteConnection::<Conn>::establish(&spec).unwrap();
                    assert_eq!(conn.pattern(), Pattern::SrcFirst, "{name}");
                }
                for name in ["SrcFirst", " src-first ", "Src First", "srcfirst", "DST_ONLY"] {
                    let want = if name == "DST_ONLY" { Pattern::DstOnly } else { Pattern::SrcFirst };
                    assert_eq!(name.parse::<Pattern>().unwrap(), want, "{name:?}");
                }
                let err = "sideways".parse::<Pattern>().unwrap_err().to_string();
                for accepted in ["src_only", "src_first", "dst_first", "dst_only"] {
                    assert!(err.contains(accepted), "{err}");
                }
            }
        }
    };
}

/// The async contract suite for `$backend` (`double_write_async_suite!` must have run in this
/// module: its `bed!`, `builder`, `insert`, `nodes`, `journal` ... are used).
macro_rules! dw_contract_async_suite {
    ($backend:ident) => {
        mod contract_async_suite {
            use std::sync::{Arc, Mutex};

            use diesel::connection::{Instrumentation, InstrumentationEvent};
            use diesel::sql_types::{BigInt, Integer, Text};
            use diesel::QueryableByName;
            use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
            use diesel_rw::double_write::{
                AsyncDoubleWrite, AsyncDoubleWriteConnection, Pattern, PatternSwitch, Side,
            };
            use diesel_rw::{AsyncRwConnection, AsyncRwPool, Consistency, Error};

            use super::{backend, builder, insert, insert_src_only, journal, nodes, Conn};
            use crate::contract::$backend as cl;
            use crate::contract::{Clusters, Lag};
            use crate::dw::DwBed;

            macro_rules! bed {
                ($name:literal) => {
                    match backend::bed($name) {
                        Some(bed) => bed,
                        None => return,
                    }
                };
            }

            type ClConn = AsyncDoubleWriteConnection<AsyncRwConnection<Conn>>;

            #[derive(QueryableByName, Debug)]
            struct Node {
                #[diesel(sql_type = Text)]
                node: String,
            }

            #[derive(QueryableByName, Debug)]
            struct CountAt {
                #[diesel(sql_type = BigInt)]
                n: i64,
                #[diesel(sql_type = Text)]
                node: String,
            }

            fn cluster_pool(
                bed: &DwBed,
                cl: &Clusters,
                switch: PatternSwitch,
                consistency: Consistency,
            ) -> AsyncDoubleWrite<AsyncRwConnection<Conn>> {
                let cluster = |primary: &str, replica: &str| {
                    AsyncRwPool::<Conn>::builder()
                        .primary(primary)
                        .replica(replica)
                        .consistency(consistency)
                        .max_size(4)
                        .build()
                        .unwrap()
                };
                AsyncDoubleWrite::<AsyncRwConnection<Conn>>::builder()
                    .source_cluster(cluster(&bed.source, &cl.source_replica))
                    .destination_cluster(cluster(&bed.destination, &cl.destination_replica))
                    .pattern(switch)
                    .max_size(2)
                    .build()
                    .unwrap()
            }

            async fn node_id(conn: &mut ClConn) -> String {
                diesel::select(diesel::dsl::sql::<Text>(cl::NODE_ID))
                    .get_result(conn)
                    .await
                    .unwrap()
            }

            async fn put(conn: &mut ClConn, tag: &str) {
                diesel::sql_query(format!(
                    "INSERT INTO dw_items (tag, node) VALUES ('{tag}', {})",
                    backend::SIDE_ID
                ))
                .execute(conn)
                .await
                .unwrap();
            }

            async fn count_at(conn: &mut ClConn, tag: &str) -> (i64, String) {
                let row: CountAt = diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n, {} AS node FROM dw_items WHERE tag = '{tag}'",
                    cl::NODE_ID
                ))
                .get_result(conn)
                .await
                .unwrap();
                (row.n, row.node)
            }

            /// Rows of `sql` (a `SELECT ... AS node`) read directly on `url` (sync).
            fn direct_rows(url: &str, sql: &str) -> usize {
                diesel::RunQueryDsl::load::<Node>(diesel::sql_query(sql), &mut backend::direct(url))
                    .unwrap()
                    .len()
            }

            fn direct_exec(url: &str, sql: &str) {
                diesel::RunQueryDsl::execute(diesel::sql_query(sql), &mut backend::direct(url)).unwrap();
            }

            fn key(offset: u32) -> i32 {
                (7_500_000 + (std::process::id() % 100_000) * 16 + offset) as i32
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_cluster_reads_follow_the_pattern_to_that_sides_replica() {
                let bed = bed!("dwc_async_cluster_reads");
                let Some(cl) = cl::clusters(&bed) else { return };
                let switch = PatternSwitch::new(Pattern::SrcOnly);
                let pool = cluster_pool(&bed, &cl, switch.clone(), Consistency::UnitOfWork);
                for (i, pattern) in Pattern::ALL.into_iter().enumerate() {
                    if i > 0 {
                        switch.advance().unwrap();
                    }
                    let read_side = pattern.reads_from();
                    let mut conn = pool.get().await.unwrap();
                    assert_eq!(node_id(&mut conn).await, cl.replica_id(read_side), "{pattern}: a read goes to the {read_side}'s replica");
                    let tag = format!("{}:{pattern}", bed.tag);
                    put(&mut conn, &tag).await;
                    for side in [Side::Source, Side::Destination] {
                        let want = if pattern.writes_to(side) { vec![bed.id(side).to_owned()] } else { vec![] };
                        assert_eq!(nodes(&bed, side, &tag), want, "{pattern}: the write on the {side}'s primary");
                    }
                    assert_eq!(count_at(&mut conn, &tag).await, (1, cl.primary_id(read_side).to_owned()), "{pattern}");
                    drop(conn);
                    let mut conn = pool.get().await.unwrap();
                    assert_eq!(node_id(&mut conn).await, cl.replica_id(read_side), "{pattern}: a new checkout starts afresh");
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_cluster_transactions_run_on_both_primaries() {
                let bed = bed!("dwc_async_cluster_transactions");
                let Some(cl) = cl::clusters(&bed) else { return };
                for pattern in [Pattern::SrcFirst, Pattern::DstFirst] {
                    let pool = cluster_pool(&bed, &cl, PatternSwitch::new(pattern), Consistency::Off);
                    let mut conn = pool.get().await.unwrap();
                    let tag = format!("{}:{pattern}", bed.tag);
                    let inside = conn
                        .transaction::<_, diesel::result::Error, _>(async |c| {
                            put(c, &tag).await;
                            Ok(count_at(c, &tag).await)
                        })
                        .await
                        .unwrap();
                    assert_eq!(inside, (1, cl.primary_id(pattern.reads_from()).to_owned()), "{pattern}");
                    for side in [Side::Source, Side::Destination] {
                        assert_eq!(nodes(&bed, side, &tag), [bed.id(side)], "{pattern}: committed on the {side}");
                    }
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_read_your_writes_on_the_destination_under_dst_first_with_lag() {
                if !cl::REPLICATES {
                    return; // SQLite: nothing replicates, so nothing can lag.
                }
                let bed = bed!("dwc_async_causal_destination");
                let Some(cl) = cl::clusters(&bed) else { return };
                let _lock = tokio::task::block_in_place(crate::common::bed_lock);
                cl::wait_replicas(&bed, &cl);
                let switch = PatternSwitch::new(Pattern::SrcOnly);
                switch.advance().unwrap();
                switch.advance().unwrap();
                let pool = cluster_pool(&bed, &cl, switch, Consistency::Causal);
                let lag = Lag::new(cl::lag_destination, 2_000);
                let (mut stale_on_replica, mut by_primary) = (0, 0);
                for i in 0..20 {
                    let tag = format!("{}:{i}", bed.tag);
                    let mut conn = pool.get().await.unwrap();
                    put(&mut conn, &tag).await;
                    let (n, node) = count_at(&mut conn, &tag).await;
                    assert_eq!(n, 1, "cycle {i}: the write is read back (served by {node})");
                    assert!(node == cl.primary_id(Side::Destination) || node == cl.replica_id(Side::Destination), "cycle {i}: read on the destination cluster, not {node}");
                    by_primary += usize::from(node == cl.primary_id(Side::Destination));
                    let missing = direct_rows(&cl.destination_replica, &format!("SELECT tag AS node FROM dw_items WHERE tag = '{tag}'")) == 0;
                    stale_on_replica += usize::from(missing);
                }
                println!("async, under 2 s lag: {stale_on_replica}/20 writes missing on the destination replica, {by_primary}/20 reads served by the destination primary");
                assert!(stale_on_replica > 0, "the injected lag never showed");
                drop(lag);
                cl::wait_replicas(&bed, &cl);
                let mut conn = pool.get().await.unwrap();
                let (n, node) = count_at(&mut conn, &format!("{}:0", bed.tag)).await;
                assert_eq!((n, node.as_str()), (1, cl.replica_id(Side::Destination)));
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_a_write_the_first_side_rejects_never_reaches_the_second() {
                let bed = bed!("dwc_async_first_side_rejects");
                if !cl::RETURNING_LOADS {
                    direct_exec(&bed.destination, "CREATE TABLE IF NOT EXISTS dw_dst_only (a VARCHAR(64))");
                }
                let mut offset = 0;
                for pattern in [Pattern::SrcFirst, Pattern::DstFirst] {
                    for strict in [false, true] {
                        let (first, second) = (pattern.first(), pattern.second().unwrap());
                        let id = key(offset);
                        offset += 1;
                        for side in [Side::Source, Side::Destination] {
                            direct_exec(bed.url(side), &format!("DELETE FROM dw_keys WHERE id = {id}"));
                        }
                        direct_exec(bed.url(first), &format!("INSERT INTO dw_keys (id, tag) VALUES ({id}, 'taken')"));
                        let pool = builder(&bed, pattern).strict(strict).build().unwrap();
                        let mut conn = pool.get().await.unwrap();
                        let executed = diesel::sql_query(format!("INSERT INTO dw_keys (id, tag) VALUES ({id}, 'dup')"))
                            .execute(&mut *conn)
                            .await;
                        let mut errors = vec![("execute", executed.map(|_| ()).unwrap_err())];
                        let loaded = if cl::RETURNING_LOADS {
                            diesel::sql_query(format!("INSERT INTO dw_keys (id, tag) VALUES ({id}, 'dup') RETURNING tag AS node"))
                                .load::<Node>(&mut *conn)
                                .await
                        } else {
                            let table = match first { Side::Source => "dw_dst_only", Side::Destination => "dw_src_only" };
                            diesel::sql_query(format!("SELECT a AS node FROM {table} FOR UPDATE"))
                                .load::<Node>(&mut *conn)
                                .await
                        };
                        errors.push(("load", loaded.map(|_| ()).unwrap_err()));
                        for (how, err) in errors {
                            assert!(
                                matches!(err, diesel::result::Error::DatabaseError(..)),
                                "{pattern} strict={strict} {how}: the first side's own error, got {err:?}"
                            );
                        }
                        let keys = |url: &str| direct_rows(url, &format!("SELECT tag AS node FROM dw_keys WHERE id = {id}"));
                        assert_eq!(keys(bed.url(second)), 0, "{pattern} strict={strict}: the {second} is untouched");
                        assert_eq!(keys(bed.url(first)), 1);
                        assert!(journal(&pool).is_empty(), "{pattern}: nothing diverged: {:#?}", journal(&pool));
                        assert_eq!(pool.metrics().side(second).successes, 0, "{pattern}: the {second} ran nothing");
                    }
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_each_write_runs_on_the_first_side_then_the_second() {
                let bed = bed!("dwc_async_order");
                for pattern in [Pattern::SrcFirst, Pattern::DstFirst] {
                    let (first, second) = (pattern.first(), pattern.second().unwrap());
                    let pool = builder(&bed, pattern).build().unwrap();
                    let mut conn = pool.get().await.unwrap();
                    let at = |tag: &str, side: Side| nodes(&bed, side, tag).pop().unwrap();
                    let check = |tag: &str, how: &str| {
                        let (a, b) = (at(tag, first), at(tag, second));
                        if cl::CLOCK_RESOLVES_ORDER {
                            assert!(a < b, "{pattern} {how}: the {first} ran it at {a}, the {second} at {b}");
                        } else {
                            assert!(a <= b, "{pattern} {how}: the {first} ran it at {a}, the {second} at {b}");
                        }
                    };
                    let executed = format!("{}:{pattern}:execute", bed.tag);
                    diesel::sql_query(format!("INSERT INTO dw_items (tag, node) VALUES ('{executed}', {})", cl::CLOCK))
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    check(&executed, "execute");
                    if cl::RETURNING_LOADS {
                        let loaded = format!("{}:{pattern}:load", bed.tag);
                        let returned: Vec<Node> = diesel::sql_query(format!(
                            "INSERT INTO dw_items (tag, node) VALUES ('{loaded}', {}) RETURNING node",
                            cl::CLOCK
                        ))
                        .load(&mut *conn)
                        .await
                        .unwrap();
                        check(&loaded, "load");
                        assert_eq!(returned[0].node, at(&loaded, first), "{pattern}: the caller gets the {first}'s rows");
                    }
                    let batch = format!("{}:{pattern}:batch", bed.tag);
                    conn.batch_execute(&format!("INSERT INTO dw_items (tag, node) VALUES ('{batch}', {})", cl::CLOCK))
                        .await
                        .unwrap();
                    check(&batch, "batch_execute");
                }
            }

            #[derive(Clone, Default)]
            struct Events(Arc<Mutex<Vec<String>>>);

            impl Events {
                fn count(&self, what: &str) -> usize {
                    self.0.lock().unwrap().iter().filter(|e| e.contains(what)).count()
                }
            }

            impl Instrumentation for Events {
                fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
                    let line = match event {
                        InstrumentationEvent::StartQuery { query, .. } => format!("query {query}"),
                        InstrumentationEvent::BeginTransaction { .. } => "begin".into(),
                        InstrumentationEvent::CommitTransaction { .. } => "commit".into(),
                        InstrumentationEvent::RollbackTransaction { .. } => "rollback".into(),
                        _ => return,
                    };
                    self.0.lock().unwrap().push(line);
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_instrumentation_sees_both_sides() {
                let bed = bed!("dwc_async_instrumentation");
                let switch = PatternSwitch::new(Pattern::SrcOnly);
                let pool = builder(&bed, switch.clone()).build().unwrap();
                let mut conn = pool.get().await.unwrap();
                let events = Events::default();
                conn.set_instrumentation(events.clone());
                switch.advance().unwrap();
                insert(&mut conn, &bed.tag).await.unwrap();
                assert_eq!(events.count("INSERT INTO"), 2, "{:#?}", events.0.lock().unwrap());
                conn.transaction::<_, diesel::result::Error, _>(async |c| insert(c, &bed.tag).await)
                    .await
                    .unwrap();
                assert_eq!(events.count("INSERT INTO"), 4, "{:#?}", events.0.lock().unwrap());
                assert_eq!((events.count("begin"), events.count("commit")), (2, 2));
                let _ = conn
                    .transaction::<(), diesel::result::Error, _>(async |c| {
                        insert(c, &bed.tag).await?;
                        Err(diesel::result::Error::RollbackTransaction)
                    })
                    .await;
                assert_eq!(events.count("rollback"), 2, "{:#?}", events.0.lock().unwrap());
                let before = events.count("query");
                diesel::select(diesel::dsl::sql::<Integer>("1")).get_result::<i32>(&mut *conn).await.unwrap();
                assert_eq!(events.count("query"), before + 1);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_strict_errors_say_what_holds() {
                let bed = bed!("dwc_async_strict_advice");
                let pool = builder(&bed, Pattern::SrcFirst).strict(true).build().unwrap();
                let mut conn = pool.get().await.unwrap();
                let tag = format!("{}:outside", bed.tag);
                let err = Error::from_diesel(insert_src_only(&mut conn, &tag).await.unwrap_err());
                let message = err.to_string();
                for words in ["was applied on the source, not on the destination", "do not repeat it", "repair the destination"] {
                    assert!(message.contains(words), "{message}");
                }
                let tag = format!("{}:rolled-back", bed.tag);
                let err = conn
                    .transaction::<(), diesel::result::Error, _>(async |c| {
                        insert(c, &tag).await?;
                        insert_src_only(c, &tag).await?;
                        Ok(())
                    })
                    .await
                    .unwrap_err();
                let message = Error::from_diesel(err).to_string();
                assert!(message.contains("nothing is applied on either side: safe to run the whole transaction again"), "{message}");
                for side in [Side::Source, Side::Destination] {
                    assert!(nodes(&bed, side, &tag).is_empty(), "rolled back on the {side}");
                }
                let tag = format!("{}:partial", bed.tag);
                let err = conn
                    .transaction::<(), diesel::result::Error, _>(async |c| {
                        insert(c, &tag).await?;
                        let _ = insert_src_only(c, &tag).await;
                        Ok(())
                    })
                    .await
                    .unwrap_err();
                let err = Error::from_diesel(err);
                assert!(matches!(err, Error::PartialCommit { .. }), "{err:?}");
                let message = err.to_string();
                for words in ["committed on the source, not on the destination", "do not run it again", "repair the destination"] {
                    assert!(message.contains(words), "{message}");
                }
                assert_eq!(nodes(&bed, Side::Source, &tag), [bed.id(Side::Source)]);
                assert!(nodes(&bed, Side::Destination, &tag).is_empty());
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_a_second_side_that_cannot_begin_leaves_nothing_applied() {
                let bed = bed!("dwc_async_begin_fails");
                for strict in [false, true] {
                    let pool = AsyncDoubleWrite::<Conn>::builder()
                        .source(&bed.source)
                        .destination(cl::UNREACHABLE)
                        .pattern(Pattern::SrcFirst)
                        .strict(strict)
                        .build()
                        .unwrap();
                    let mut conn = pool.get().await.unwrap();
                    let tag = format!("{}:{strict}", bed.tag);
                    let err = conn
                        .transaction::<_, diesel::result::Error, _>(async |c| insert(c, &tag).await)
                        .await
                        .unwrap_err();
                    let err = Error::from_diesel(err);
                    assert!(matches!(err, Error::NothingApplied { what: "BEGIN", failed: Side::Destination, .. }), "{err:?}");
                    assert!(err.to_string().contains("nothing is applied on either side: safe to run it again"), "{err}");
                    assert!(nodes(&bed, Side::Source, &tag).is_empty(), "nothing on the source");
                    assert!(!err.to_string().contains("diesel_rw_pw"), "{err}");
                }
            }
        }
    };
}
