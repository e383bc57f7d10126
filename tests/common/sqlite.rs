//! The SQLite bed: two files per test; each has a `node` table naming itself.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::Bed;

pub type Conn = SqliteConnection;
pub const NAME: &str = "SQLite";
/// Evaluated by the database that runs the statement: which file it is.
pub const IDENTITY: &str = "(SELECT name FROM node)";
pub const SUPPORTS_FOR_UPDATE: bool = false;

pub fn direct(url: &str) -> Conn {
    SqliteConnection::establish(url).unwrap()
}

pub fn bed(test: &str) -> Option<Bed> {
    let dir = super::test_dir(test);
    let primary = dir.join("primary.db").to_str().unwrap().to_owned();
    let replica = dir.join("replica.db").to_str().unwrap().to_owned();
    for (url, name) in [(&primary, "primary"), (&replica, "replica")] {
        direct(url)
            .batch_execute(&format!(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE node (name TEXT NOT NULL);
                 INSERT INTO node VALUES ('{name}');
                 CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL, node TEXT NOT NULL);"
            ))
            .unwrap();
    }
    Some(Bed {
        primary,
        replica,
        primary_id: "primary".into(),
        replica_id: "replica".into(),
        tag: test.into(),
        dir: Some(dir),
    })
}

/// SQLite has no replication: copy the primary's rows to the replica file.
pub fn replicate(bed: &Bed) {
    direct(&bed.replica)
        .batch_execute(&format!(
            "ATTACH DATABASE '{}' AS p;
             DELETE FROM items; INSERT INTO items SELECT * FROM p.items;
             DETACH DATABASE p;",
            bed.primary
        ))
        .unwrap();
}

pub fn flaky_replica(bed: &Bed) -> super::Flaky {
    super::Flaky::sqlite_copy(&bed.replica, bed.dir.as_ref().unwrap())
}

/// A replica URL that can never be opened.
pub fn unreachable_url(bed: &Bed) -> String {
    bed.dir
        .as_ref()
        .unwrap()
        .join("no-such-dir/replica.db")
        .to_str()
        .unwrap()
        .to_owned()
}

/// A URL with a password for redaction tests (SQLite takes file URIs; the password is inert).
pub fn url_with_password(bed: &Bed, password: &str) -> String {
    format!("file:{}?password={password}", bed.primary)
}

pub fn malformed_url() -> &'static str {
    "http://user:s3cr3t-pw@127.0.0.1/db"
}

pub fn insert_returning(
    conn: &mut diesel_rw::RwConnection<Conn>,
    tag: &str,
) -> QueryResult<String> {
    use super::items;
    diesel::insert_into(items::table)
        .values((
            items::tag.eq(tag),
            items::node.eq(diesel::dsl::sql::<diesel::sql_types::Text>(IDENTITY)),
        ))
        .returning(items::node)
        .get_result(conn)
}

pub fn select_for_update(
    conn: &mut diesel_rw::RwConnection<Conn>,
    tag: &str,
) -> QueryResult<Vec<String>> {
    // SQLite has no FOR UPDATE: the statement is routed like on the other backends, then
    // rejected by SQLite's parser.
    diesel::sql_query(format!(
        "SELECT node FROM items WHERE tag = '{tag}' FOR UPDATE"
    ))
    .execute(conn)
    .map(|_| Vec::new())
}

/// The async twin of [`Conn`]: diesel-async's wrapper of the sync connection.
#[cfg(feature = "async")]
pub type AsyncConn = diesel_async::sync_connection_wrapper::SyncConnectionWrapper<SqliteConnection>;

/// The primary's pool size for the async concurrency test: SQLite takes one writer at a time,
/// and diesel sets no busy timeout, so concurrent writers would fail with SQLITE_BUSY.
#[cfg(feature = "async")]
pub const ASYNC_PRIMARY_POOL: u32 = 1;

#[cfg(feature = "async")]
pub async fn async_insert_returning(
    conn: &mut diesel_rw::AsyncRwConnection<AsyncConn>,
    tag: &str,
) -> QueryResult<String> {
    use super::items;
    let insert = diesel::insert_into(items::table)
        .values((
            items::tag.eq(tag),
            items::node.eq(diesel::dsl::sql::<diesel::sql_types::Text>(IDENTITY)),
        ))
        .returning(items::node);
    diesel_async::RunQueryDsl::get_result(insert, conn).await
}

#[cfg(feature = "async")]
pub async fn async_select_for_update(
    conn: &mut diesel_rw::AsyncRwConnection<AsyncConn>,
    tag: &str,
) -> QueryResult<Vec<String>> {
    // As `select_for_update`: routed like on the other backends, then rejected by SQLite.
    let query = diesel::sql_query(format!(
        "SELECT node FROM items WHERE tag = '{tag}' FOR UPDATE"
    ));
    diesel_async::RunQueryDsl::execute(query, conn)
        .await
        .map(|_| Vec::new())
}
