//! The PostgreSQL bed: the primary on 55432 and its streaming standby on 55433 (scripts/db up);
//! the migration destination 55434 has its own streaming standby on 55435.

use std::sync::Once;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::{env_or, Bed};

pub type Conn = PgConnection;
pub const NAME: &str = "PostgreSQL";
/// Evaluated by the server that runs the statement: its port.
pub const IDENTITY: &str = "inet_server_port()::text";
pub const SUPPORTS_FOR_UPDATE: bool = true;

pub fn primary_url() -> String {
    env_or(
        "DIESEL_RW_PG_PRIMARY_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
    )
}

pub fn replica_url() -> String {
    env_or(
        "DIESEL_RW_PG_REPLICA_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55433/diesel_rw",
    )
}

/// The migration destination, an independent primary (`pg-dest`).
pub fn dest_url() -> String {
    env_or(
        "DIESEL_RW_PG_DEST_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55434/diesel_rw",
    )
}

/// The destination's streaming hot standby (`pg-dest-replica`).
pub fn dest_replica_url() -> String {
    env_or(
        "DIESEL_RW_PG_DEST_REPLICA_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55435/diesel_rw",
    )
}

/// [`dest_replica_url`] if the destination standby accepts connections; otherwise
/// [`super::unavailable`] (a panic under `CI=true`, else a SKIPPED line) and `None`.
pub fn dest_replica() -> Option<String> {
    let url = dest_replica_url();
    match PgConnection::establish(&url) {
        Ok(_) => Some(url),
        Err(e) => {
            super::unavailable(NAME, &format!("destination replica: {e}"));
            None
        }
    }
}

pub fn direct(url: &str) -> Conn {
    PgConnection::establish(url).unwrap()
}

fn identity(conn: &mut Conn) -> String {
    diesel::select(diesel::dsl::sql::<Text>(IDENTITY))
        .get_result(conn)
        .unwrap()
}

pub fn bed(test: &str) -> Option<Bed> {
    let (primary, replica) = (primary_url(), replica_url());
    let mut p = match PgConnection::establish(&primary) {
        Ok(c) => c,
        Err(e) => {
            super::unavailable(NAME, &e.to_string());
            return None;
        }
    };
    let mut r = match PgConnection::establish(&replica) {
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
                "CREATE TABLE IF NOT EXISTS items (id SERIAL PRIMARY KEY, tag TEXT NOT NULL, node TEXT NOT NULL)",
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

/// Waits until the standby has replayed everything the primary has committed.
pub fn replicate(bed: &Bed) {
    wait_replayed(&bed.primary, &bed.replica);
}

/// Waits until the destination standby has replayed everything the destination has committed.
pub fn replicate_dest() {
    wait_replayed(&dest_url(), &dest_replica_url());
}

/// Waits until the standby at `standby` has replayed everything committed on `primary` so far.
pub fn wait_replayed(primary: &str, standby: &str) {
    let lsn: String = diesel::select(diesel::dsl::sql::<Text>("pg_current_wal_lsn()::text"))
        .get_result(&mut direct(primary))
        .unwrap();
    let mut r = direct(standby);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let caught_up: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
            &format!("pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"),
        ))
        .get_result(&mut r)
        .unwrap();
        if caught_up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "standby did not replay {lsn} in 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn flaky_replica(bed: &Bed) -> super::Flaky {
    super::Flaky::proxied(&bed.replica)
}

/// A replica URL whose port refuses connections.
pub fn unreachable_url(_bed: &Bed) -> String {
    "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:1/diesel_rw".into()
}

pub fn url_with_password(bed: &Bed, _password: &str) -> String {
    bed.primary.clone()
}

pub fn malformed_url() -> &'static str {
    "postgres://diesel_rw:s3cr3t-pw@127.0.0.1:notaport/diesel_rw"
}

pub fn insert_returning(
    conn: &mut diesel_rw::RwConnection<Conn>,
    tag: &str,
) -> QueryResult<String> {
    use super::items;
    diesel::insert_into(items::table)
        .values((
            items::tag.eq(tag),
            items::node.eq(diesel::dsl::sql::<Text>(IDENTITY)),
        ))
        .returning(items::node)
        .get_result(conn)
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

/// Delays the standby's replay by `ms` milliseconds (0 undoes it).
pub fn set_lag(ms: u64) {
    set_node_lag(REPLICA_NODE, ms);
}

/// Delays the destination standby's replay by `ms` milliseconds (0 undoes it).
pub fn set_dest_lag(ms: u64) {
    set_node_lag(DEST_REPLICA_NODE, ms);
}

/// The superuser URL of a standby of scripts/db ([`REPLICA_NODE`] or [`DEST_REPLICA_NODE`]).
pub fn standby_admin_url(node: &str) -> String {
    match node {
        REPLICA_NODE => env_or(
            "DIESEL_RW_PG_REPLICA_ADMIN_URL",
            "postgres://postgres@127.0.0.1:55433/postgres",
        ),
        DEST_REPLICA_NODE => env_or(
            "DIESEL_RW_PG_DEST_REPLICA_ADMIN_URL",
            "postgres://postgres@127.0.0.1:55435/postgres",
        ),
        other => panic!("{other} is not a PostgreSQL standby of the test bed"),
    }
}

/// Delays the replay of the standby `node` ([`REPLICA_NODE`] or [`DEST_REPLICA_NODE`]) by
/// `ms` milliseconds (0 undoes it; `scripts/db up` also undoes it).
pub fn set_node_lag(node: &str, ms: u64) {
    let mut c = direct(&standby_admin_url(node));
    c.batch_execute(&format!(
        "ALTER SYSTEM SET recovery_min_apply_delay = '{ms}ms'"
    ))
    .unwrap();
    c.batch_execute("SELECT pg_reload_conf()").unwrap();
    std::thread::sleep(Duration::from_millis(200));
}

/// The node name of the replica in scripts/db.
pub const REPLICA_NODE: &str = "pg-replica";

/// The node name of the destination's standby in scripts/db.
pub const DEST_REPLICA_NODE: &str = "pg-dest-replica";

/// The async twin of [`Conn`].
#[cfg(feature = "async")]
pub type AsyncConn = diesel_async::AsyncPgConnection;

/// The primary's pool size for the async concurrency test.
#[cfg(feature = "async")]
pub const ASYNC_PRIMARY_POOL: u32 = 4;

#[cfg(feature = "async")]
pub async fn async_insert_returning(
    conn: &mut diesel_rw::AsyncRwConnection<AsyncConn>,
    tag: &str,
) -> QueryResult<String> {
    use super::items;
    let insert = diesel::insert_into(items::table)
        .values((
            items::tag.eq(tag),
            items::node.eq(diesel::dsl::sql::<Text>(IDENTITY)),
        ))
        .returning(items::node);
    diesel_async::RunQueryDsl::get_result(insert, conn).await
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
