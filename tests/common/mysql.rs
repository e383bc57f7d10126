//! The MariaDB bed: the primary on 33306 and its GTID replica on 33307 (scripts/db up). The
//! migration destination is the database `diesel_rw_dst` on the same pair, so the replica
//! replicates it too.

use std::sync::Once;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::{env_or, Bed};

pub type Conn = MysqlConnection;
pub const NAME: &str = "MariaDB";
/// Evaluated by the server that runs the statement: its port.
pub const IDENTITY: &str = "CAST(@@port AS CHAR)";
pub const SUPPORTS_FOR_UPDATE: bool = true;

pub fn primary_url() -> String {
    env_or(
        "DIESEL_RW_MYSQL_PRIMARY_URL",
        "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw",
    )
}

pub fn replica_url() -> String {
    env_or(
        "DIESEL_RW_MYSQL_REPLICA_URL",
        "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33307/diesel_rw",
    )
}

/// The destination database `diesel_rw_dst` on the replica (33307).
pub fn dest_replica_url() -> String {
    env_or(
        "DIESEL_RW_MYSQL_DEST_REPLICA_URL",
        "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33307/diesel_rw_dst",
    )
}

/// [`dest_replica_url`] if the replica accepts connections to it; otherwise
/// [`super::unavailable`] (a panic under `CI=true`, else a SKIPPED line) and `None`.
pub fn dest_replica() -> Option<String> {
    let url = dest_replica_url();
    match MysqlConnection::establish(&url) {
        Ok(_) => Some(url),
        Err(e) => {
            super::unavailable(NAME, &format!("destination replica: {e}"));
            None
        }
    }
}

pub fn direct(url: &str) -> Conn {
    MysqlConnection::establish(url).unwrap()
}

fn identity(conn: &mut Conn) -> String {
    diesel::select(diesel::dsl::sql::<Text>(IDENTITY))
        .get_result(conn)
        .unwrap()
}

pub fn bed(test: &str) -> Option<Bed> {
    let (primary, replica) = (primary_url(), replica_url());
    let mut p = match MysqlConnection::establish(&primary) {
        Ok(c) => c,
        Err(e) => {
            super::unavailable(NAME, &e.to_string());
            return None;
        }
    };
    let mut r = match MysqlConnection::establish(&replica) {
        Ok(c) => c,
        Err(e) => {
            super::unavailable(NAME, &format!("replica: {e}"));
            return None;
        }
    };
    static SCHEMA: Once = Once::new();
    SCHEMA.call_once(|| {
        direct(&primary)
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS items (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(128) NOT NULL, node VARCHAR(32) NOT NULL)",
            )
            .unwrap();
    });
    p.batch_execute(&format!("DELETE FROM items WHERE tag = '{test}'"))
        .unwrap();
    let bed = Bed {
        primary_id: identity(&mut p),
        replica_id: identity(&mut r),
        primary,
        replica,
        tag: test.into(),
        dir: None,
    };
    replicate(&bed);
    Some(bed)
}

/// Waits until the replica has applied everything the primary has committed (GTID).
pub fn replicate(bed: &Bed) {
    let pos: String = diesel::select(diesel::dsl::sql::<Text>("CAST(@@gtid_binlog_pos AS CHAR)"))
        .get_result(&mut direct(&bed.primary))
        .unwrap();
    if pos.is_empty() {
        return;
    }
    let waited: i32 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(&format!(
        "MASTER_GTID_WAIT('{pos}', 30)"
    )))
    .get_result(&mut direct(&bed.replica))
    .unwrap();
    assert_eq!(waited, 0, "replica did not apply {pos} in 30 s");
}

pub fn flaky_replica(bed: &Bed) -> super::Flaky {
    super::Flaky::proxied(&bed.replica)
}

/// A replica URL whose port refuses connections.
pub fn unreachable_url(_bed: &Bed) -> String {
    "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:1/diesel_rw".into()
}

pub fn url_with_password(bed: &Bed, _password: &str) -> String {
    bed.primary.clone()
}

pub fn malformed_url() -> &'static str {
    "mysql://diesel_rw:s3cr3t-pw@127.0.0.1:notaport/diesel_rw"
}

#[derive(QueryableByName)]
struct NodeRow {
    #[diesel(sql_type = Text)]
    node: String,
}

/// diesel has no RETURNING for MySQL. MariaDB has it in SQL, and such a statement arrives
/// through `load`, but diesel's MySQL backend refuses to run it: the prepared statement has no
/// result metadata ("No metadata exists"), so it is never executed. What can be checked is that
/// diesel-rw routed it as a write to the primary; the row is then inserted with a plain INSERT
/// (also a write), whose `node` proves the server.
pub fn insert_returning(
    conn: &mut diesel_rw::RwConnection<Conn>,
    tag: &str,
) -> QueryResult<String> {
    let loaded = diesel::sql_query(format!(
        "INSERT INTO items (tag, node) VALUES ('{tag}', {IDENTITY}) RETURNING node"
    ))
    .load::<NodeRow>(conn);
    match loaded {
        Ok(mut rows) => Ok(rows.remove(0).node),
        Err(diesel::result::Error::DeserializationError(e))
            if e.to_string().contains("No metadata") =>
        {
            let route = conn.last_route().expect("routed");
            assert_eq!(route.node, diesel_rw::Node::Primary);
            assert_eq!(route.reason, diesel_rw::Reason::Write);
            diesel::sql_query(format!(
                "INSERT INTO items (tag, node) VALUES ('{tag}', {IDENTITY})"
            ))
            .execute(conn)?;
            Ok(diesel::sql_query(format!(
                "SELECT node FROM items WHERE tag = '{tag}' ORDER BY id DESC LIMIT 1"
            ))
            .get_result::<NodeRow>(conn)?
            .node)
        }
        Err(e) => Err(e),
    }
}

pub fn select_for_update(
    conn: &mut diesel_rw::RwConnection<Conn>,
    tag: &str,
) -> QueryResult<Vec<String>> {
    use super::items;
    items::table
        .filter(items::tag.eq(tag))
        .select(diesel::dsl::sql::<Text>(IDENTITY))
        .for_update()
        .load(conn)
}

/// Delays the replica by `ms` milliseconds, rounded up to whole seconds (MASTER_DELAY is in
/// seconds; 0 undoes it).
pub fn set_lag(ms: u64) {
    let admin = super::env_or(
        "DIESEL_RW_MYSQL_REPLICA_ADMIN_URL",
        "mysql://root@127.0.0.1:33307/mysql",
    );
    let mut c = direct(&admin);
    c.batch_execute("STOP SLAVE").unwrap();
    c.batch_execute(&format!(
        "CHANGE MASTER TO MASTER_DELAY = {}",
        ms.div_ceil(1000)
    ))
    .unwrap();
    c.batch_execute("START SLAVE").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
}

/// The node name of the replica in scripts/db.
pub const REPLICA_NODE: &str = "maria-replica";

/// The async twin of [`Conn`].
#[cfg(feature = "async")]
pub type AsyncConn = diesel_async::AsyncMysqlConnection;

/// The primary's pool size for the async concurrency test.
#[cfg(feature = "async")]
pub const ASYNC_PRIMARY_POOL: u32 = 4;

/// diesel has no RETURNING for MySQL; MariaDB has it in SQL. The statement arrives through
/// `load` and must be routed as a write to the primary; the row's `node` proves the server.
#[cfg(feature = "async")]
pub async fn async_insert_returning(
    conn: &mut diesel_rw::AsyncRwConnection<AsyncConn>,
    tag: &str,
) -> QueryResult<String> {
    let query = diesel::sql_query(format!(
        "INSERT INTO items (tag, node) VALUES ('{tag}', {IDENTITY}) RETURNING node"
    ));
    let mut rows: Vec<NodeRow> = diesel_async::RunQueryDsl::load(query, conn).await?;
    Ok(rows.remove(0).node)
}

#[cfg(feature = "async")]
pub async fn async_select_for_update(
    conn: &mut diesel_rw::AsyncRwConnection<AsyncConn>,
    tag: &str,
) -> QueryResult<Vec<String>> {
    use super::items;
    let query = items::table
        .filter(items::tag.eq(tag))
        .select(diesel::dsl::sql::<Text>(IDENTITY))
        .for_update();
    diesel_async::RunQueryDsl::load(query, conn).await
}
