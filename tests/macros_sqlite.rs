//! `#[read_only]` and `#[master]` at run time, on SQLite files standing in for a primary and its
//! replicas.
//!
//! Each file has a table `node(name TEXT)` naming itself, so `SELECT name FROM node` tells which
//! file served a read ([`served`]); a write's target is proven by the row landing in the primary's
//! file and not in a replica's. Each test asserts the node that served each annotated call, from
//! the database and from `conn.last_route()`.
//!
//! Porting to another backend: [`Bed`] (the pool and direct row counts per node) and [`served`]
//! (which node answered) are the backend-specific parts; the annotated functions and the test
//! bodies stay as they are.

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_rw::{
    master, read_only, Consistency, Error, Node, Policy, Reason, Route, Router, RwConnection,
    RwPool,
};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

type Conn = SqliteConnection;
type Db = RwPool<Conn>;

// ---------------------------------------------------------------------------------------------
// The test bed.

/// A primary and `replicas` replicas, each a SQLite file in a fresh directory, and a pool over
/// them. The directory is removed on drop.
struct Bed {
    dir: PathBuf,
    primary: PathBuf,
    replicas: Vec<PathBuf>,
    pool: Db,
}

impl Bed {
    fn new(test: &str, replicas: usize) -> Bed {
        let dir = std::env::temp_dir().join(format!(
            "diesel-rw-macros-{test}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let primary = dir.join("primary.db");
        let replica_files: Vec<PathBuf> = (0..replicas)
            .map(|i| dir.join(format!("replica{i}.db")))
            .collect();
        let nodes = std::iter::once((&primary, Node::Primary)).chain(
            replica_files
                .iter()
                .enumerate()
                .map(|(i, f)| (f, Node::Replica(i))),
        );
        for (file, node) in nodes {
            direct(file)
                .batch_execute(&format!(
                    "CREATE TABLE node (name TEXT NOT NULL);
                     INSERT INTO node VALUES ('{}');
                     CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
                    node_name(node)
                ))
                .unwrap();
        }
        let mut builder = RwPool::<Conn>::builder()
            .primary(primary.to_str().unwrap())
            .policy(Policy::RoundRobin)
            .consistency(Consistency::UnitOfWork);
        for file in &replica_files {
            builder = builder.replica(file.to_str().unwrap());
        }
        Bed {
            pool: builder.build().unwrap(),
            dir,
            primary,
            replicas: replica_files,
        }
    }

    /// Rows named `name` in the primary's own database, read directly.
    fn rows_on_primary(&self, name: &str) -> i64 {
        rows(&self.primary, name)
    }

    /// Rows named `name` in replica `i`'s own database, read directly.
    fn rows_on_replica(&self, i: usize, name: &str) -> i64 {
        rows(&self.replicas[i], name)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn direct(file: &Path) -> Conn {
    Conn::establish(file.to_str().unwrap()).unwrap()
}

fn rows(file: &Path, name: &str) -> i64 {
    users::table
        .filter(users::name.eq(name))
        .count()
        .get_result(&mut direct(file))
        .unwrap()
}

/// What each node's `node` table says.
fn node_name(node: Node) -> String {
    match node {
        Node::Primary => "primary".into(),
        Node::Replica(0) => "replica".into(),
        Node::Replica(i) => format!("replica{i}"),
    }
}

/// Which node served a read on `conn`: by the database's own answer and by the routing.
#[derive(Debug, Clone)]
struct Served {
    name: String,
    route: Option<Route>,
}

#[derive(QueryableByName)]
struct NodeRow {
    #[diesel(sql_type = Text)]
    name: String,
}

fn served(conn: &mut RwConnection<Conn>) -> QueryResult<Served> {
    let name = diesel::sql_query("SELECT name FROM node")
        .get_result::<NodeRow>(conn)?
        .name;
    Ok(Served {
        name,
        route: conn.last_route(),
    })
}

#[track_caller]
fn assert_served(served: &Served, node: Node, reason: Reason) {
    assert_eq!(served.name, node_name(node), "the database that answered");
    assert_eq!(served.route, Some(Route { node, reason }), "the route");
}

// ---------------------------------------------------------------------------------------------
// The annotated functions. Generic over `Router`, they take a pool or another function's `conn`.

#[read_only]
fn read_node<R: Router<Connection = Conn>>(db: R) -> QueryResult<Served> {
    assert!(conn.is_read_only());
    served(conn)
}

#[read_only]
fn count_users<R: Router<Connection = Conn>>(db: R, name: &str) -> QueryResult<(i64, Served)> {
    let n = users::table
        .filter(users::name.eq(name))
        .count()
        .get_result(conn)?;
    Ok((n, served(conn)?))
}

#[master]
fn add_user<R: Router<Connection = Conn>>(db: R, name: &str) -> QueryResult<Served> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(conn)?;
    served(conn)
}

/// The error of [`add_users`]: its own type, so the rollback can carry what served the writes.
#[derive(Debug)]
enum TxError {
    RolledBack(Served),
    Db(diesel::result::Error),
    Route(Error),
}

impl std::fmt::Display for TxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxError::RolledBack(served) => write!(f, "rolled back on {}", served.name),
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
fn add_users(db: &Db, names: &[&str], commit: bool) -> Result<Served, TxError> {
    for name in names {
        diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .execute(conn)?;
    }
    assert_eq!(conn.transaction_node(), Some(Node::Primary));
    let served = served(conn)?;
    if commit {
        Ok(served)
    } else {
        Err(TxError::RolledBack(served))
    }
}

#[master(transaction)]
fn add_and_count(db: &Db, name: &str) -> QueryResult<(Served, i64, Served)> {
    let wrote = add_user(&mut *conn, name)?;
    let (count, read) = count_users(&mut *conn, name)?;
    // The nested calls restored the route: this connection still writes.
    assert!(!conn.is_read_only());
    Ok((wrote, count, read))
}

#[read_only(transaction)]
fn read_snapshot(db: &Db, reads: usize) -> QueryResult<(Option<Node>, Vec<Served>)> {
    let seen = (0..reads)
        .map(|_| served(conn))
        .collect::<QueryResult<Vec<_>>>()?;
    Ok((conn.transaction_node(), seen))
}

#[read_only(transaction)]
fn write_in_read_only_transaction(db: &Db, name: &str) -> QueryResult<usize> {
    // Built at run time, so the compile-time check cannot see it; the connection rejects it.
    let sql = format!("INSERT INTO users (name) VALUES ('{name}')");
    diesel::sql_query(sql).execute(conn)
}

#[read_only]
fn read_then_add(db: &Db, name: &str) -> QueryResult<Served> {
    let read = served(conn)?;
    add_user(&mut *conn, name)?;
    Ok(read)
}

fn is_write_on_read_route(e: diesel::result::Error) -> bool {
    Error::from_diesel(e).is_write_on_read_route()
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn read_only_fn_reads_replica() {
    let bed = Bed::new("read_only_fn_reads_replica", 1);

    let read = read_node(&bed.pool).unwrap();
    assert_served(&read, Node::Replica(0), Reason::Explicit);

    // With a routing connection: read-only for the call, as it was afterwards.
    let mut conn = bed.pool.get().unwrap();
    let read = read_node(&mut conn).unwrap();
    assert_served(&read, Node::Replica(0), Reason::Explicit);
    assert!(!conn.is_read_only());

    // A row that only the replica's file has is what the read sees.
    direct(&bed.replicas[0])
        .batch_execute("INSERT INTO users (name) VALUES ('only-on-replica')")
        .unwrap();
    let (n, read) = count_users(&bed.pool, "only-on-replica").unwrap();
    assert_eq!(n, 1);
    assert_served(&read, Node::Replica(0), Reason::Explicit);

    // A connection that has written reads its writes: its reads stick to the primary, and a
    // `#[read_only]` call keeps to that (read-only there, still).
    add_user(&mut conn, "ada").unwrap();
    let (n, read) = count_users(&mut conn, "ada").unwrap();
    assert_eq!(n, 1);
    assert_served(&read, Node::Primary, Reason::Sticky);
}

#[test]
fn master_fn_writes_primary() {
    let bed = Bed::new("master_fn_writes_primary", 1);

    let wrote = add_user(&bed.pool, "ada").unwrap();
    assert_served(&wrote, Node::Primary, Reason::Explicit);
    assert_eq!(bed.rows_on_primary("ada"), 1);
    assert_eq!(bed.rows_on_replica(0, "ada"), 0);

    // With a routing connection: pinned to the primary for the call only.
    let mut conn = bed.pool.get().unwrap();
    let wrote = add_user(&mut conn, "bob").unwrap();
    assert_served(&wrote, Node::Primary, Reason::Explicit);
    assert_eq!(bed.rows_on_primary("bob"), 1);
    assert_eq!(bed.rows_on_replica(0, "bob"), 0);
}

#[test]
fn master_transaction_commits_and_rolls_back() {
    let bed = Bed::new("master_transaction_commits_and_rolls_back", 1);

    let wrote = add_users(&bed.pool, &["ada", "bob"], true).unwrap();
    assert_served(&wrote, Node::Primary, Reason::Transaction);
    assert_eq!(bed.rows_on_primary("ada"), 1);
    assert_eq!(bed.rows_on_primary("bob"), 1);
    assert_eq!(bed.rows_on_replica(0, "ada"), 0);

    match add_users(&bed.pool, &["cy", "dee"], false) {
        Err(TxError::RolledBack(wrote)) => {
            assert_served(&wrote, Node::Primary, Reason::Transaction)
        }
        other => panic!(
            "expected the rollback, got {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    assert_eq!(bed.rows_on_primary("cy"), 0);
    assert_eq!(bed.rows_on_primary("dee"), 0);
    assert_eq!(bed.rows_on_replica(0, "cy"), 0);

    // The pool's connections are usable afterwards: nothing was left open.
    let wrote = add_users(&bed.pool, &["eve"], true).unwrap();
    assert_served(&wrote, Node::Primary, Reason::Transaction);
    assert_eq!(bed.rows_on_primary("eve"), 1);
}

#[test]
fn nested_read_only_in_master_transaction_sees_uncommitted_write() {
    let bed = Bed::new(
        "nested_read_only_in_master_transaction_sees_uncommitted_write",
        1,
    );

    let (wrote, count, read) = add_and_count(&bed.pool, "ada").unwrap();
    assert_served(&wrote, Node::Primary, Reason::Transaction);
    // The nested read ran in the transaction, on the primary, and saw the uncommitted row.
    assert_eq!(count, 1);
    assert_served(&read, Node::Primary, Reason::Transaction);

    assert_eq!(bed.rows_on_primary("ada"), 1);
    // The replica has not the row: a read routed there would have missed the write.
    assert_eq!(bed.rows_on_replica(0, "ada"), 0);
    let (count, read) = count_users(&bed.pool, "ada").unwrap();
    assert_eq!(count, 0);
    assert_served(&read, Node::Replica(0), Reason::Explicit);
}

#[test]
fn read_only_transaction_runs_on_one_replica() {
    let bed = Bed::new("read_only_transaction_runs_on_one_replica", 2);

    // Outside a transaction, reads take the replicas in turn...
    let first = read_node(&bed.pool).unwrap();
    let second = read_node(&bed.pool).unwrap();
    assert_ne!(first.name, second.name, "round robin over two replicas");

    // ...inside one, every read is on the replica that began it.
    let (node, seen) = read_snapshot(&bed.pool, 4).unwrap();
    let Some(node @ Node::Replica(_)) = node else {
        panic!("a read-only transaction on a replica, got {node:?}");
    };
    assert_eq!(seen.len(), 4);
    for read in &seen {
        assert_served(read, node, Reason::Transaction);
    }

    // It is read-only: a write is rejected before it is sent.
    let err = write_in_read_only_transaction(&bed.pool, "mallory").unwrap_err();
    assert!(is_write_on_read_route(err));
    assert_eq!(bed.rows_on_primary("mallory"), 0);
    assert_eq!(bed.rows_on_replica(0, "mallory"), 0);
    assert_eq!(bed.rows_on_replica(1, "mallory"), 0);
}

#[test]
fn master_called_with_read_only_conn_is_rejected() {
    let bed = Bed::new("master_called_with_read_only_conn_is_rejected", 1);

    // Nested: the `#[read_only]` function's `conn` is not escalated to the primary.
    let err = read_then_add(&bed.pool, "mallory").unwrap_err();
    assert!(is_write_on_read_route(err));
    assert_eq!(bed.rows_on_primary("mallory"), 0);
    assert_eq!(bed.rows_on_replica(0, "mallory"), 0);

    // Directly, with a read-only handle: rejected before anything is sent.
    let mut conn = bed.pool.replica().unwrap();
    let err = add_user(&mut conn, "mallory").unwrap_err();
    assert!(is_write_on_read_route(err));
    assert_eq!(conn.last_route(), None);
    assert_eq!(bed.rows_on_primary("mallory"), 0);
    // The handle is still read-only and still reads from the replica.
    assert!(conn.is_read_only());
    let read = read_node(&mut conn).unwrap();
    assert_served(&read, Node::Replica(0), Reason::Explicit);
}
