//! Shared by the double-write suites (`tests/double_write_*.rs`): a test bed per backend with the
//! same functions, so `double_write_suite!(backend)` runs the same named tests on SQLite,
//! PostgreSQL (55432 -> 55434) and MariaDB (database `diesel_rw` -> `diesel_rw_dst` on 33306).
//!
//! Every row a test writes goes to `dw_items` with the test's tag (`tag` or `tag:suffix`), and its
//! `node` column is an expression evaluated by the database that ran the INSERT, so each side's
//! rows say which side wrote them.
#![allow(dead_code, unused_macros, unused_imports)]

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use diesel_rw::double_write::Side;

diesel::table! {
    dw_items (id) {
        id -> Integer,
        tag -> Text,
        node -> Text,
    }
}

diesel::table! {
    dw_keys (id) {
        id -> Integer,
        tag -> Text,
    }
}

diesel::table! {
    /// Exists on the source only: a write to it fails on the destination.
    dw_src_only (a) {
        a -> Text,
        b -> Text,
    }
}

/// Taken shared by every test of a server suite, and exclusively by a test that stops the
/// destination server, so that no other test sees the outage: within this process (a lock) and
/// across processes (a file lock: the sync and async suites may run at once).
static DESTINATION: RwLock<()> = RwLock::new(());

pub enum Hold {
    Shared(RwLockReadGuard<'static, ()>, std::fs::File),
    Exclusive(RwLockWriteGuard<'static, ()>, std::fs::File),
    None,
}

fn destination_lock_file() -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("diesel-rw-double-write-destination.lock"))
        .expect("open the destination lock file")
}

pub fn hold(exclusive: bool) -> Hold {
    let file = destination_lock_file();
    if exclusive {
        let guard = DESTINATION.write().unwrap_or_else(PoisonError::into_inner);
        file.lock().expect("lock the destination lock file");
        Hold::Exclusive(guard, file)
    } else {
        let guard = DESTINATION.read().unwrap_or_else(PoisonError::into_inner);
        file.lock_shared().expect("lock the destination lock file");
        Hold::Shared(guard, file)
    }
}

/// One test's source and destination.
pub struct DwBed {
    pub source: String,
    pub destination: String,
    /// What the side-identity expression evaluates to on each side.
    pub source_id: String,
    pub destination_id: String,
    pub tag: String,
    pub dir: Option<std::path::PathBuf>,
    pub hold: Hold,
}

impl DwBed {
    pub fn id(&self, side: Side) -> &str {
        match side {
            Side::Source => &self.source_id,
            Side::Destination => &self.destination_id,
        }
    }

    pub fn url(&self, side: Side) -> &str {
        match side {
            Side::Source => &self.source,
            Side::Destination => &self.destination,
        }
    }
}

impl Drop for DwBed {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs `scripts/db ARGS`, panicking with its output if it fails.
pub fn scripts_db(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/db");
    let out = std::process::Command::new(script)
        .args(args)
        .output()
        .expect("run scripts/db");
    assert!(
        out.status.success(),
        "scripts/db {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(feature = "sqlite")]
pub mod sqlite {
    //! Two SQLite files per test. The destination "goes down" by being locked: another
    //! connection holds `BEGIN EXCLUSIVE`, so every write there fails with `database is locked`
    //! (SQLite has no server to stop, and an open file stays usable when it is renamed).

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    use diesel_rw::double_write::{DoubleWriteConnection, Side};

    use super::{DwBed, Hold};

    pub type Conn = SqliteConnection;
    pub const NAME: &str = "SQLite";
    /// Which side evaluated it.
    pub const SIDE_ID: &str = "(SELECT name FROM dw_node)";
    /// Which database served it (a replica file says `replica`).
    pub const SERVER_ID: &str = "(SELECT name FROM dw_node)";
    pub const RETURNING: bool = true;
    /// Whether a ping of a "down" destination fails (a locked SQLite file still answers).
    pub const OUTAGE_FAILS_PINGS: bool = false;
    /// Whether a BEGIN on a "down" destination fails (a deferred BEGIN takes no SQLite lock).
    pub const OUTAGE_FAILS_BEGIN: bool = false;
    /// Run on each side of each async writer: SQLite writers wait for each other's locks.
    pub const ASYNC_SESSION_SETUP: &str = "PRAGMA busy_timeout = 10000";

    /// A write through `load`: `INSERT ... RETURNING node`, the `node` its first side wrote.
    pub fn load_write_node(
        conn: &mut DoubleWriteConnection<Conn>,
        tag: &str,
    ) -> QueryResult<Vec<String>> {
        use super::dw_items;
        diesel::insert_into(dw_items::table)
            .values((
                dw_items::tag.eq(tag),
                dw_items::node.eq(diesel::dsl::sql::<diesel::sql_types::Text>(SIDE_ID)),
            ))
            .returning(dw_items::node)
            .load(conn)
    }

    /// Inserts a `dw_keys` row and returns its generated id (`INSERT ... RETURNING id`).
    pub fn insert_key(conn: &mut DoubleWriteConnection<Conn>, tag: &str) -> QueryResult<i64> {
        use super::dw_keys;
        diesel::insert_into(dw_keys::table)
            .values(dw_keys::tag.eq(tag))
            .returning(dw_keys::id)
            .get_result::<i32>(conn)
            .map(i64::from)
    }

    /// Inserts a `dw_keys` row and returns its tag (the same on both sides).
    pub fn insert_key_tag(
        conn: &mut DoubleWriteConnection<Conn>,
        tag: &str,
    ) -> QueryResult<String> {
        use super::dw_keys;
        diesel::insert_into(dw_keys::table)
            .values(dw_keys::tag.eq(tag))
            .returning(dw_keys::tag)
            .get_result(conn)
    }

    /// `INSERT INTO dw_src_only ... RETURNING b` through `load`.
    pub fn insert_src_only_returning(
        conn: &mut DoubleWriteConnection<Conn>,
        tag: &str,
        value: &str,
    ) -> Option<QueryResult<String>> {
        use super::dw_src_only;
        Some(
            diesel::insert_into(dw_src_only::table)
                .values((dw_src_only::a.eq(tag), dw_src_only::b.eq(value)))
                .returning(dw_src_only::b)
                .get_result(conn),
        )
    }

    pub fn direct(url: &str) -> Conn {
        SqliteConnection::establish(url).unwrap()
    }

    pub fn create(url: &str, name: &str) {
        direct(url)
            .batch_execute(&format!(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE IF NOT EXISTS dw_node (name TEXT NOT NULL);
                 DELETE FROM dw_node; INSERT INTO dw_node VALUES ('{name}');
                 CREATE TABLE IF NOT EXISTS dw_items (id INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL, node TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS dw_keys (id INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL);"
            ))
            .unwrap();
    }

    pub fn bed(test: &str) -> Option<DwBed> {
        let dir = crate::common::test_dir(test);
        let source = dir.join("source.db").to_str().unwrap().to_owned();
        let destination = dir.join("destination.db").to_str().unwrap().to_owned();
        create(&source, "source");
        create(&destination, "destination");
        direct(&source)
            .batch_execute("CREATE TABLE dw_src_only (a TEXT, b TEXT)")
            .unwrap();
        Some(DwBed {
            source,
            destination,
            source_id: "source".into(),
            destination_id: "destination".into(),
            tag: test.into(),
            dir: Some(dir),
            hold: Hold::None,
        })
    }

    pub fn exclusive_bed(test: &str) -> Option<DwBed> {
        bed(test)
    }

    /// A third file standing for a replica of the source.
    pub fn replica(bed: &DwBed) -> String {
        let url = bed
            .dir
            .as_ref()
            .unwrap()
            .join("replica.db")
            .to_str()
            .unwrap()
            .to_owned();
        create(&url, "replica");
        url
    }

    pub fn replica_id() -> String {
        "replica".into()
    }

    /// SQLite writes from several threads wait for each other's locks.
    pub fn on_connect(_: diesel_rw::double_write::Side, conn: &mut Conn) -> QueryResult<()> {
        conn.batch_execute("PRAGMA busy_timeout = 10000")
    }

    /// The async connection of the async suite: diesel-async's wrapper of the sync connection.
    #[cfg(feature = "async")]
    pub type AsyncConn =
        diesel_async::sync_connection_wrapper::SyncConnectionWrapper<SqliteConnection>;

    /// As [`load_write_node`], async: `INSERT ... RETURNING node` through `load`.
    #[cfg(feature = "async")]
    pub async fn async_load_write_node(
        conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        tag: &str,
    ) -> QueryResult<Vec<String>> {
        use super::dw_items;
        let insert = diesel::insert_into(dw_items::table)
            .values((
                dw_items::tag.eq(tag),
                dw_items::node.eq(diesel::dsl::sql::<diesel::sql_types::Text>(SIDE_ID)),
            ))
            .returning(dw_items::node);
        diesel_async::RunQueryDsl::load(insert, conn).await
    }

    /// As [`insert_key`], async: `INSERT ... RETURNING id`.
    #[cfg(feature = "async")]
    pub async fn async_insert_key(
        conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        tag: &str,
    ) -> QueryResult<i64> {
        use super::dw_keys;
        let insert = diesel::insert_into(dw_keys::table)
            .values(dw_keys::tag.eq(tag))
            .returning(dw_keys::id);
        diesel_async::RunQueryDsl::get_result::<i32>(insert, conn)
            .await
            .map(i64::from)
    }

    #[cfg(feature = "async")]
    pub async fn async_flaky_insert(
        _bed: &DwBed,
        _conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        _class: &str,
        _times: u32,
    ) -> Option<String> {
        None
    }

    #[cfg(feature = "async")]
    pub async fn async_flaky_calls(
        _bed: &DwBed,
        _conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        _side: Side,
    ) -> i64 {
        0
    }

    /// The destination, lockable.
    pub struct Outage {
        pub url: String,
        lock: Option<Conn>,
    }

    impl Outage {
        pub fn down(&mut self) {
            let mut conn = direct(&self.url);
            conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
            self.lock = Some(conn);
        }

        pub fn up(&mut self) {
            if let Some(mut conn) = self.lock.take() {
                conn.batch_execute("ROLLBACK").unwrap();
            }
        }
    }

    pub fn outage(bed: &DwBed) -> Outage {
        Outage {
            url: bed.destination.clone(),
            lock: None,
        }
    }

    /// Makes the destination a path that cannot be opened until `restore` runs: its directory
    /// is moved away.
    pub fn unreachable_destination(bed: &DwBed) -> String {
        bed.dir
            .as_ref()
            .unwrap()
            .join("not-yet/destination.db")
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// Creates the database at `url` (made by `unreachable_destination`) in one atomic step.
    pub fn make_reachable(url: &str) {
        let path = std::path::Path::new(url);
        let dir = path.parent().unwrap();
        let staging = dir.with_extension("staging");
        std::fs::create_dir_all(&staging).unwrap();
        create(
            staging.join("destination.db").to_str().unwrap(),
            "destination",
        );
        std::fs::rename(&staging, dir).unwrap();
    }

    /// Arranges for a statement to fail `times` times with a transient error on `side`, then
    /// succeed. SQLite has no transient statement errors: `None` (the retry test uses a
    /// destination that becomes reachable instead).
    pub fn flaky_insert(
        _bed: &DwBed,
        _conn: &mut DoubleWriteConnection<Conn>,
        _class: &str,
        _times: u32,
    ) -> Option<String> {
        None
    }

    pub fn flaky_calls(_bed: &DwBed, _conn: &mut DoubleWriteConnection<Conn>, _side: Side) -> i64 {
        0
    }

    pub fn unreachable_url(bed: &DwBed) -> String {
        bed.dir
            .as_ref()
            .unwrap()
            .join("no-such-dir/x.db")
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// Advances the destination's generator of `dw_keys` ids past the source's.
    pub fn advance_destination_keys(bed: &DwBed) {
        direct(&bed.destination)
            .batch_execute(&format!(
                "INSERT INTO dw_keys (tag) VALUES ('{0}'), ('{0}'), ('{0}')",
                bed.tag
            ))
            .unwrap();
    }
}

#[cfg(feature = "postgres")]
pub mod pg {
    //! PostgreSQL: the source is the primary on 55432, the destination the independent primary
    //! on 55434 (`scripts/db`), used only by these tests. The destination "goes down" for real:
    //! `scripts/db stop pg-dest` (an immediate shutdown), and comes back with
    //! `scripts/db start pg-dest`.

    use std::sync::Once;

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use diesel_rw::double_write::{DoubleWriteConnection, Side};

    use super::{hold, scripts_db, DwBed};
    use crate::common::env_or;

    pub type Conn = PgConnection;
    pub const NAME: &str = "PostgreSQL";
    pub const SIDE_ID: &str = "inet_server_port()::text";
    pub const SERVER_ID: &str = "inet_server_port()::text";
    pub const RETURNING: bool = true;
    pub const OUTAGE_FAILS_PINGS: bool = true;
    pub const OUTAGE_FAILS_BEGIN: bool = true;
    pub const ASYNC_SESSION_SETUP: &str = "SELECT 1";

    /// A write through `load`: `INSERT ... RETURNING node`, the `node` its first side wrote.
    pub fn load_write_node(
        conn: &mut DoubleWriteConnection<Conn>,
        tag: &str,
    ) -> QueryResult<Vec<String>> {
        use super::dw_items;
        diesel::insert_into(dw_items::table)
            .values((
                dw_items::tag.eq(tag),
                dw_items::node.eq(diesel::dsl::sql::<Text>(SIDE_ID)),
            ))
            .returning(dw_items::node)
            .load(conn)
    }

    /// Inserts a `dw_keys` row and returns its generated id (`INSERT ... RETURNING id`).
    pub fn insert_key(conn: &mut DoubleWriteConnection<Conn>, tag: &str) -> QueryResult<i64> {
        use super::dw_keys;
        diesel::insert_into(dw_keys::table)
            .values(dw_keys::tag.eq(tag))
            .returning(dw_keys::id)
            .get_result::<i32>(conn)
            .map(i64::from)
    }

    /// Inserts a `dw_keys` row and returns its tag (the same on both sides).
    pub fn insert_key_tag(
        conn: &mut DoubleWriteConnection<Conn>,
        tag: &str,
    ) -> QueryResult<String> {
        use super::dw_keys;
        diesel::insert_into(dw_keys::table)
            .values(dw_keys::tag.eq(tag))
            .returning(dw_keys::tag)
            .get_result(conn)
    }

    /// `INSERT INTO dw_src_only ... RETURNING b` through `load`.
    pub fn insert_src_only_returning(
        conn: &mut DoubleWriteConnection<Conn>,
        tag: &str,
        value: &str,
    ) -> Option<QueryResult<String>> {
        use super::dw_src_only;
        Some(
            diesel::insert_into(dw_src_only::table)
                .values((dw_src_only::a.eq(tag), dw_src_only::b.eq(value)))
                .returning(dw_src_only::b)
                .get_result(conn),
        )
    }

    pub fn source_url() -> String {
        env_or(
            "DIESEL_RW_PG_PRIMARY_URL",
            "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
        )
    }

    pub fn destination_url() -> String {
        env_or(
            "DIESEL_RW_PG_DEST_URL",
            "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55434/diesel_rw",
        )
    }

    pub fn replica_url() -> String {
        env_or(
            "DIESEL_RW_PG_REPLICA_URL",
            "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55433/diesel_rw",
        )
    }

    pub fn direct(url: &str) -> Conn {
        PgConnection::establish(url).unwrap()
    }

    fn identity(url: &str) -> String {
        diesel::select(diesel::dsl::sql::<Text>(SIDE_ID))
            .get_result(&mut direct(url))
            .unwrap()
    }

    const SCHEMA: &str = "
        CREATE TABLE IF NOT EXISTS dw_items (id SERIAL PRIMARY KEY, tag TEXT NOT NULL, node TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS dw_keys (id SERIAL PRIMARY KEY, tag TEXT NOT NULL);
        CREATE OR REPLACE FUNCTION dw_flaky(counter regclass, times int, class text) RETURNS text
        LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval(counter) <= times THEN
                IF class = 'serialization' THEN
                    RAISE EXCEPTION 'could not serialize access due to concurrent update'
                        USING ERRCODE = 'serialization_failure';
                ELSIF class = 'deadlock' THEN
                    RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected';
                ELSE
                    RAISE EXCEPTION 'duplicate key value violates unique constraint \"dw_fake\"'
                        USING ERRCODE = 'unique_violation';
                END IF;
            END IF;
            RETURN 'flaky';
        END $$;";

    /// The URLs of this test, or `None` (after `unavailable`) if a server is down.
    pub fn bed_with(test: &str, exclusive: bool) -> Option<DwBed> {
        let hold = hold(exclusive);
        let (source, destination) = (source_url(), destination_url());
        for (url, what) in [(&source, "source"), (&destination, "destination")] {
            if let Err(e) = PgConnection::establish(url) {
                crate::common::unavailable(NAME, &format!("{what}: {e}"));
                return None;
            }
        }
        static SETUP: Once = Once::new();
        SETUP.call_once(|| {
            direct(&source).batch_execute(SCHEMA).unwrap();
            direct(&source)
                .batch_execute("CREATE TABLE IF NOT EXISTS dw_src_only (a TEXT, b TEXT)")
                .unwrap();
            direct(&destination).batch_execute(SCHEMA).unwrap();
        });
        for url in [&source, &destination] {
            direct(url)
                .batch_execute(&format!(
                    "DELETE FROM dw_items WHERE tag = '{test}' OR tag LIKE '{test}:%';
                     DELETE FROM dw_keys WHERE tag = '{test}';
                     DROP SEQUENCE IF EXISTS dw_flaky_{test};"
                ))
                .unwrap();
        }
        direct(&source)
            .batch_execute(&format!("DELETE FROM dw_src_only WHERE a = '{test}'"))
            .unwrap();
        Some(DwBed {
            source_id: identity(&source),
            destination_id: identity(&destination),
            source,
            destination,
            tag: test.into(),
            dir: None,
            hold,
        })
    }

    pub fn bed(test: &str) -> Option<DwBed> {
        bed_with(test, false)
    }

    /// A bed for a test that stops the destination server: no other test of this binary runs
    /// meanwhile.
    pub fn exclusive_bed(test: &str) -> Option<DwBed> {
        bed_with(test, true)
    }

    pub fn replica(_bed: &DwBed) -> String {
        replica_url()
    }

    pub fn replica_id() -> String {
        identity(&replica_url())
    }

    pub fn on_connect(_: diesel_rw::double_write::Side, _: &mut Conn) -> QueryResult<()> {
        Ok(())
    }

    #[cfg(feature = "async")]
    pub type AsyncConn = diesel_async::AsyncPgConnection;

    /// As [`load_write_node`], async: `INSERT ... RETURNING node` through `load`.
    #[cfg(feature = "async")]
    pub async fn async_load_write_node(
        conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        tag: &str,
    ) -> QueryResult<Vec<String>> {
        use super::dw_items;
        let insert = diesel::insert_into(dw_items::table)
            .values((
                dw_items::tag.eq(tag),
                dw_items::node.eq(diesel::dsl::sql::<diesel::sql_types::Text>(SIDE_ID)),
            ))
            .returning(dw_items::node);
        diesel_async::RunQueryDsl::load(insert, conn).await
    }

    /// As [`insert_key`], async: `INSERT ... RETURNING id`.
    #[cfg(feature = "async")]
    pub async fn async_insert_key(
        conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        tag: &str,
    ) -> QueryResult<i64> {
        use super::dw_keys;
        let insert = diesel::insert_into(dw_keys::table)
            .values(dw_keys::tag.eq(tag))
            .returning(dw_keys::id);
        diesel_async::RunQueryDsl::get_result::<i32>(insert, conn)
            .await
            .map(i64::from)
    }

    #[cfg(feature = "async")]
    pub async fn async_flaky_insert(
        bed: &DwBed,
        _conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        class: &str,
        times: u32,
    ) -> Option<String> {
        let counter = format!("dw_flaky_{}", bed.tag);
        for url in [&bed.source, &bed.destination] {
            direct(url)
                .batch_execute(&format!(
                    "DROP SEQUENCE IF EXISTS {counter}; CREATE SEQUENCE {counter};"
                ))
                .unwrap();
        }
        Some(format!("dw_flaky('{counter}', {times}, '{class}')"))
    }

    #[cfg(feature = "async")]
    pub async fn async_flaky_calls(
        bed: &DwBed,
        _conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        side: Side,
    ) -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM dw_flaky_{})",
            bed.tag
        )))
        .get_result(&mut direct(bed.url(side)))
        .unwrap()
    }

    /// The real destination server, stopped by `down` and started by `up` (and on drop).
    pub struct Outage {
        pub url: String,
        down: bool,
    }

    impl Outage {
        pub fn down(&mut self) {
            self.down = true;
            scripts_db(&["stop", "pg-dest"]);
        }

        pub fn up(&mut self) {
            scripts_db(&["start", "pg-dest"]);
            self.down = false;
        }
    }

    impl Drop for Outage {
        fn drop(&mut self) {
            if self.down {
                scripts_db(&["start", "pg-dest"]);
            }
        }
    }

    pub fn outage(bed: &DwBed) -> Outage {
        assert!(
            matches!(bed.hold, super::Hold::Exclusive(..)),
            "stopping the destination needs exclusive_bed()"
        );
        Outage {
            url: bed.destination.clone(),
            down: false,
        }
    }

    /// An expression for an INSERT's `node` that fails `times` times on each side with a
    /// `class` error (`serialization`, `deadlock` or `unique`), then evaluates to `'flaky'`.
    pub fn flaky_insert(
        bed: &DwBed,
        _conn: &mut DoubleWriteConnection<Conn>,
        class: &str,
        times: u32,
    ) -> Option<String> {
        let counter = format!("dw_flaky_{}", bed.tag);
        for url in [&bed.source, &bed.destination] {
            direct(url)
                .batch_execute(&format!(
                    "DROP SEQUENCE IF EXISTS {counter}; CREATE SEQUENCE {counter};"
                ))
                .unwrap();
        }
        Some(format!("dw_flaky('{counter}', {times}, '{class}')"))
    }

    /// How many times the flaky expression ran on `side`.
    pub fn flaky_calls(bed: &DwBed, _conn: &mut DoubleWriteConnection<Conn>, side: Side) -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM dw_flaky_{})",
            bed.tag
        )))
        .get_result(&mut direct(bed.url(side)))
        .unwrap()
    }

    pub fn unreachable_url(_bed: &DwBed) -> String {
        "postgres://diesel_rw:s3cret-pw@127.0.0.1:1/diesel_rw".into()
    }

    pub fn advance_destination_keys(bed: &DwBed) {
        let mut source = direct(&bed.source);
        let next: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "nextval('dw_keys_id_seq')",
        ))
        .get_result(&mut source)
        .unwrap();
        direct(&bed.destination)
            .batch_execute(&format!(
                "SELECT setval('dw_keys_id_seq', GREATEST((SELECT last_value FROM dw_keys_id_seq), {next}) + 100)"
            ))
            .unwrap();
    }
}

#[cfg(feature = "mysql")]
pub mod mysql {
    //! MariaDB: the source is the database `diesel_rw` on 33306, the destination the database
    //! `diesel_rw_dst` on the same server. The destination "goes down" behind a TCP proxy
    //! (`Flaky::proxied`): its port refuses connections and open connections are cut, while the
    //! server, which the source and other suites share, keeps running.

    use std::sync::Once;

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use diesel_rw::double_write::{DoubleWriteConnection, Side};

    use super::DwBed;
    use crate::common::{env_or, Flaky};

    pub type Conn = MysqlConnection;
    pub const NAME: &str = "MariaDB";
    /// The database that ran it: `diesel_rw` or `diesel_rw_dst`.
    pub const SIDE_ID: &str = "DATABASE()";
    /// The server that ran it: its port.
    pub const SERVER_ID: &str = "CAST(@@port AS CHAR)";
    /// diesel has no RETURNING for MySQL.
    pub const RETURNING: bool = false;
    pub const OUTAGE_FAILS_PINGS: bool = true;
    pub const OUTAGE_FAILS_BEGIN: bool = true;
    pub const ASYNC_SESSION_SETUP: &str = "SELECT 1";

    #[derive(QueryableByName)]
    struct NodeRow {
        #[diesel(sql_type = Text)]
        node: String,
    }

    #[derive(QueryableByName)]
    struct IdRow {
        #[diesel(sql_type = diesel::sql_types::Unsigned<diesel::sql_types::BigInt>)]
        id: u64,
    }

    /// A write through `load`. diesel has no RETURNING for MySQL: a locking read (a write by
    /// its classification) of the `node` of the rows `tag` has, each written by its side.
    pub fn load_write_node(
        conn: &mut DoubleWriteConnection<Conn>,
        tag: &str,
    ) -> QueryResult<Vec<String>> {
        Ok(diesel::sql_query(format!(
            "SELECT node FROM dw_items WHERE tag = '{tag}' ORDER BY id FOR UPDATE"
        ))
        .load::<NodeRow>(conn)?
        .into_iter()
        .map(|r| r.node)
        .collect())
    }

    /// Inserts a `dw_keys` row, then reads its generated id with `SELECT LAST_INSERT_ID()`,
    /// which is a write by its classification (it reads the session of the connection that
    /// inserted): it runs on both sides and their answers are compared.
    pub fn insert_key(conn: &mut DoubleWriteConnection<Conn>, tag: &str) -> QueryResult<i64> {
        use super::dw_keys;
        diesel::insert_into(dw_keys::table)
            .values(dw_keys::tag.eq(tag))
            .execute(conn)?;
        let row: IdRow = diesel::sql_query("SELECT LAST_INSERT_ID() AS id").get_result(conn)?;
        Ok(row.id as i64)
    }

    /// Inserts a `dw_keys` row and reads its tag back with a locking read (the same on both
    /// sides).
    pub fn insert_key_tag(
        conn: &mut DoubleWriteConnection<Conn>,
        tag: &str,
    ) -> QueryResult<String> {
        use super::dw_keys;
        diesel::insert_into(dw_keys::table)
            .values(dw_keys::tag.eq(tag))
            .execute(conn)?;
        dw_keys::table
            .filter(dw_keys::tag.eq(tag))
            .select(dw_keys::tag)
            .for_update()
            .first(conn)
    }

    /// diesel has no RETURNING for MySQL.
    pub fn insert_src_only_returning(
        _conn: &mut DoubleWriteConnection<Conn>,
        _tag: &str,
        _value: &str,
    ) -> Option<QueryResult<String>> {
        None
    }

    pub fn source_url() -> String {
        env_or(
            "DIESEL_RW_MYSQL_PRIMARY_URL",
            "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw",
        )
    }

    pub fn destination_url() -> String {
        env_or(
            "DIESEL_RW_MYSQL_DEST_URL",
            "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw_dst",
        )
    }

    pub fn replica_url() -> String {
        env_or(
            "DIESEL_RW_MYSQL_REPLICA_URL",
            "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33307/diesel_rw",
        )
    }

    fn admin_url() -> String {
        env_or(
            "DIESEL_RW_MYSQL_ADMIN_URL",
            "mysql://root@127.0.0.1:33306/mysql",
        )
    }

    pub fn direct(url: &str) -> Conn {
        MysqlConnection::establish(url).unwrap()
    }

    fn identity(url: &str, expr: &str) -> String {
        diesel::select(diesel::dsl::sql::<Text>(expr))
            .get_result(&mut direct(url))
            .unwrap()
    }

    const SCHEMA: &str = "
        CREATE TABLE IF NOT EXISTS dw_items (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(128) NOT NULL, node VARCHAR(64) NOT NULL);
        CREATE TABLE IF NOT EXISTS dw_keys (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(128) NOT NULL);";

    /// Fails `times` times per session with error 1213 (deadlock, which diesel reports as a
    /// serialization failure) or 1062 (duplicate key), counting calls in a session variable.
    const FLAKY: &str = "
        CREATE OR REPLACE FUNCTION {db}.dw_flaky(times INT, class VARCHAR(16)) RETURNS VARCHAR(16)
        NOT DETERMINISTIC NO SQL
        BEGIN
            SET @dw_flaky_calls = COALESCE(@dw_flaky_calls, 0) + 1;
            IF @dw_flaky_calls <= times THEN
                IF class = 'unique' THEN
                    SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062, MESSAGE_TEXT = 'Duplicate entry for key dw_fake';
                ELSE
                    SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'Deadlock found when trying to get lock; try restarting transaction';
                END IF;
            END IF;
            RETURN 'flaky';
        END";

    pub fn bed_with(test: &str, exclusive: bool) -> Option<DwBed> {
        // The destination goes down behind a proxy of the test's own: nothing to serialize.
        let _ = exclusive;
        let hold = super::Hold::None;
        let (source, destination) = (source_url(), destination_url());
        for (url, what) in [(&source, "source"), (&destination, "destination")] {
            if let Err(e) = MysqlConnection::establish(url) {
                crate::common::unavailable(NAME, &format!("{what}: {e}"));
                return None;
            }
        }
        static SETUP: Once = Once::new();
        SETUP.call_once(|| {
            direct(&source).batch_execute(SCHEMA).unwrap();
            direct(&source)
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS dw_src_only (a VARCHAR(128), b VARCHAR(128))",
                )
                .unwrap();
            direct(&destination).batch_execute(SCHEMA).unwrap();
            let mut admin = direct(&admin_url());
            for db in ["diesel_rw", "diesel_rw_dst"] {
                admin.batch_execute(&FLAKY.replace("{db}", db)).unwrap();
            }
        });
        for url in [&source, &destination] {
            direct(url)
                .batch_execute(&format!(
                    "DELETE FROM dw_items WHERE tag = '{test}' OR tag LIKE '{test}:%';
                     DELETE FROM dw_keys WHERE tag = '{test}';"
                ))
                .unwrap();
        }
        direct(&source)
            .batch_execute(&format!("DELETE FROM dw_src_only WHERE a = '{test}'"))
            .unwrap();
        Some(DwBed {
            source_id: identity(&source, SIDE_ID),
            destination_id: identity(&destination, SIDE_ID),
            source,
            destination,
            tag: test.into(),
            dir: None,
            hold,
        })
    }

    pub fn bed(test: &str) -> Option<DwBed> {
        bed_with(test, false)
    }

    pub fn exclusive_bed(test: &str) -> Option<DwBed> {
        bed_with(test, false)
    }

    pub fn replica(_bed: &DwBed) -> String {
        replica_url()
    }

    pub fn replica_id() -> String {
        identity(&replica_url(), SERVER_ID)
    }

    pub fn on_connect(_: diesel_rw::double_write::Side, _: &mut Conn) -> QueryResult<()> {
        Ok(())
    }

    #[cfg(feature = "async")]
    pub type AsyncConn = diesel_async::AsyncMysqlConnection;

    /// As [`load_write_node`], async.
    #[cfg(feature = "async")]
    pub async fn async_load_write_node(
        conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        tag: &str,
    ) -> QueryResult<Vec<String>> {
        let query = diesel::sql_query(format!(
            "SELECT node FROM dw_items WHERE tag = '{tag}' ORDER BY id FOR UPDATE"
        ));
        Ok(diesel_async::RunQueryDsl::load::<NodeRow>(query, conn)
            .await?
            .into_iter()
            .map(|r| r.node)
            .collect())
    }

    /// As [`insert_key`], async.
    #[cfg(feature = "async")]
    pub async fn async_insert_key(
        conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        tag: &str,
    ) -> QueryResult<i64> {
        use super::dw_keys;
        let insert = diesel::insert_into(dw_keys::table).values(dw_keys::tag.eq(tag));
        diesel_async::RunQueryDsl::execute(insert, conn).await?;
        let row: IdRow = diesel_async::RunQueryDsl::get_result(
            diesel::sql_query("SELECT LAST_INSERT_ID() AS id"),
            conn,
        )
        .await?;
        Ok(row.id as i64)
    }

    #[cfg(feature = "async")]
    pub async fn async_flaky_insert(
        _bed: &DwBed,
        conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        class: &str,
        times: u32,
    ) -> Option<String> {
        use diesel_async::SimpleAsyncConnection;
        for side in [Side::Source, Side::Destination] {
            conn.with_side(side, async |c| {
                c.batch_execute("SET @dw_flaky_calls = 0").await
            })
            .await
            .unwrap()
            .unwrap();
        }
        Some(format!("dw_flaky({times}, '{class}')"))
    }

    #[cfg(feature = "async")]
    pub async fn async_flaky_calls(
        _bed: &DwBed,
        conn: &mut diesel_rw::double_write::AsyncDoubleWriteConnection<AsyncConn>,
        side: Side,
    ) -> i64 {
        conn.with_side(side, async |c| {
            diesel_async::RunQueryDsl::get_result(
                diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "CAST(COALESCE(@dw_flaky_calls, 0) AS SIGNED)",
                )),
                c,
            )
            .await
        })
        .await
        .unwrap()
        .unwrap()
    }

    /// The destination behind a proxy that `down` takes away and `up` brings back.
    pub struct Outage {
        pub url: String,
        proxy: Flaky,
    }

    impl Outage {
        pub fn down(&mut self) {
            self.proxy.down();
        }

        pub fn up(&mut self) {
            self.proxy.up();
        }
    }

    pub fn outage(bed: &DwBed) -> Outage {
        let proxy = Flaky::proxied(&bed.destination);
        Outage {
            url: proxy.url.clone(),
            proxy,
        }
    }

    /// An expression for an INSERT's `node` that fails `times` times per session (on each side)
    /// with a `class` error (`deadlock`: error 1213, or `unique`: 1062), then evaluates to
    /// `'flaky'`.
    pub fn flaky_insert(
        _bed: &DwBed,
        conn: &mut DoubleWriteConnection<Conn>,
        class: &str,
        times: u32,
    ) -> Option<String> {
        for side in [Side::Source, Side::Destination] {
            conn.with_side(side, |c| c.batch_execute("SET @dw_flaky_calls = 0"))
                .unwrap()
                .unwrap();
        }
        Some(format!("dw_flaky({times}, '{class}')"))
    }

    /// How many times the flaky expression ran in `side`'s session.
    pub fn flaky_calls(_bed: &DwBed, conn: &mut DoubleWriteConnection<Conn>, side: Side) -> i64 {
        conn.with_side(side, |c| {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CAST(COALESCE(@dw_flaky_calls, 0) AS SIGNED)",
            ))
            .get_result(c)
        })
        .unwrap()
        .unwrap()
    }

    pub fn unreachable_url(_bed: &DwBed) -> String {
        "mysql://diesel_rw:s3cret-pw@127.0.0.1:1/diesel_rw_dst".into()
    }

    pub fn advance_destination_keys(bed: &DwBed) {
        direct(&bed.destination)
            .batch_execute(&format!(
                "INSERT INTO dw_keys (tag) VALUES ('{0}'), ('{0}'), ('{0}')",
                bed.tag
            ))
            .unwrap();
    }
}

/// The double-write suite, run on each backend by `double_write_suite!(backend_module)`. Every
/// test asserts the rows each side holds (read on that side directly), not only that a call
/// returned `Ok`.
macro_rules! double_write_suite {
    ($backend:ident) => {
        use std::collections::BTreeMap;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        use std::time::Duration;

        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel::sql_types::Text;
        use diesel_rw::double_write::{
            DoubleWrite, DoubleWriteBuilder, DoubleWriteConnection, DoubleWriteContext,
            EntryKind, JournalEntry, Pattern, PatternSwitch, Retry, Side,
        };
        use diesel_rw::{Error, Node, RwPool};

        use dw::$backend as backend;
        use dw::{dw_items, dw_keys, dw_src_only, DwBed};

        type Conn = backend::Conn;

        macro_rules! bed {
            ($name:literal) => {
                match backend::bed($name) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        macro_rules! exclusive_bed {
            ($name:literal) => {
                match backend::exclusive_bed($name) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        fn builder(bed: &DwBed, pattern: impl Into<PatternSwitch>) -> DoubleWriteBuilder<DoubleWrite<Conn>> {
            DoubleWrite::<Conn>::builder()
                .source(&bed.source)
                .destination(&bed.destination)
                .pattern(pattern)
                .max_size(4)
        }

        fn pool(bed: &DwBed, pattern: impl Into<PatternSwitch>) -> DoubleWrite<Conn> {
            builder(bed, pattern).build().unwrap()
        }

        /// Inserts a row tagged `tag` whose `node` the database that runs the INSERT fills in.
        fn insert(conn: &mut DoubleWriteConnection<Conn>, tag: &str) -> QueryResult<usize> {
            insert_node(conn, tag, backend::SIDE_ID)
        }

        fn insert_node(
            conn: &mut DoubleWriteConnection<Conn>,
            tag: &str,
            node_sql: &str,
        ) -> QueryResult<usize> {
            diesel::insert_into(dw_items::table)
                .values((
                    dw_items::tag.eq(tag),
                    dw_items::node.eq(diesel::dsl::sql::<Text>(node_sql)),
                ))
                .execute(conn)
        }

        /// A write that fails on the destination (its table exists on the source only); its
        /// second bind is a value that must never appear in the journal.
        fn insert_src_only(conn: &mut DoubleWriteConnection<Conn>, tag: &str) -> QueryResult<usize> {
            diesel::insert_into(dw_src_only::table)
                .values((dw_src_only::a.eq(tag), dw_src_only::b.eq("secret-bind-value")))
                .execute(conn)
        }

        /// The `node` of `tag`'s rows on `side`, read there directly.
        fn nodes(bed: &DwBed, side: Side, tag: &str) -> Vec<String> {
            dw_items::table
                .filter(dw_items::tag.eq(tag))
                .select(dw_items::node)
                .order(dw_items::id)
                .load(&mut backend::direct(bed.url(side)))
                .unwrap()
        }

        /// The tags starting with `prefix` on `side`, sorted.
        fn tags(bed: &DwBed, side: Side, prefix: &str) -> Vec<String> {
            let mut tags: Vec<String> = dw_items::table
                .filter(dw_items::tag.like(format!("{prefix}%")))
                .select(dw_items::tag)
                .load(&mut backend::direct(bed.url(side)))
                .unwrap();
            tags.sort();
            tags
        }

        fn src_only_rows(bed: &DwBed) -> i64 {
            dw_src_only::table
                .filter(dw_src_only::a.eq(&bed.tag))
                .count()
                .get_result(&mut backend::direct(&bed.source))
                .unwrap()
        }

        /// Which side served a read through `conn`.
        fn served_by(conn: &mut DoubleWriteConnection<Conn>) -> String {
            diesel::select(diesel::dsl::sql::<Text>(backend::SIDE_ID))
                .get_result(conn)
                .unwrap()
        }

        fn journal(pool: &DoubleWrite<Conn>) -> Vec<JournalEntry> {
            pool.memory_journal().unwrap().entries()
        }

        /// What `side` holds after `writes` inserts of `tag` under `pattern`: each side the
        /// pattern writes to has the rows, each written by itself.
        fn expected(bed: &DwBed, pattern: Pattern, side: Side, writes: usize) -> Vec<String> {
            if pattern.writes_to(side) {
                vec![bed.id(side).to_owned(); writes]
            } else {
                Vec::new()
            }
        }

        fn writes_land_per_pattern(bed: DwBed, pattern: Pattern) {
            let pool = pool(&bed, pattern);
            let mut conn = pool.get().unwrap();
            assert_eq!(insert(&mut conn, &bed.tag).unwrap(), 1);
            assert_eq!(conn.last_pattern(), Some(pattern));
            let mut writes = 1;
            if backend::RETURNING {
                // INSERT ... RETURNING arrives through `load`: a write, on both sides; the row
                // returned is the first side's.
                let returned = backend::load_write_node(&mut conn, &bed.tag).unwrap();
                assert_eq!(returned, [bed.id(pattern.first())]);
                writes += 1;
            }
            for side in [Side::Source, Side::Destination] {
                assert_eq!(
                    nodes(&bed, side, &bed.tag),
                    expected(&bed, pattern, side, writes),
                    "{pattern}: rows on the {side}"
                );
            }
            // UPDATE and DELETE follow the same pattern.
            let updated = diesel::update(dw_items::table.filter(dw_items::tag.eq(&bed.tag)))
                .set(dw_items::node.eq("updated"))
                .execute(&mut *conn)
                .unwrap();
            assert_eq!(updated, writes);
            for side in [Side::Source, Side::Destination] {
                let want = if pattern.writes_to(side) { vec!["updated".to_owned(); writes] } else { vec![] };
                assert_eq!(nodes(&bed, side, &bed.tag), want, "{pattern}: updated rows on the {side}");
            }
            diesel::delete(dw_items::table.filter(dw_items::tag.eq(&bed.tag)))
                .execute(&mut *conn)
                .unwrap();
            for side in [Side::Source, Side::Destination] {
                assert!(nodes(&bed, side, &bed.tag).is_empty(), "{pattern}: deleted on the {side}");
            }
            // Only the RETURNING rows differed (each side wrote its own identity).
            let entries = journal(&pool);
            let divergences = if pattern.is_double() && backend::RETURNING { 1 } else { 0 };
            assert_eq!(entries.len(), divergences, "{entries:#?}");
            assert!(entries.iter().all(|e| e.kind == EntryKind::Divergence));
            let metrics = pool.metrics();
            for side in [Side::Source, Side::Destination] {
                let used = pattern.writes_to(side);
                assert_eq!(metrics.side(side).successes > 0, used, "{pattern}: {side} {metrics:?}");
                assert_eq!(metrics.side(side).failures, 0);
            }
        }

        #[test]
        fn reads_follow_the_pattern() {
            let bed = bed!("dw_reads_follow_the_pattern");
            let switch = PatternSwitch::new(Pattern::SrcOnly);
            let pool = pool(&bed, switch.clone());
            let mut conn = pool.get().unwrap();
            for pattern in [Pattern::SrcOnly, Pattern::SrcFirst, Pattern::DstFirst, Pattern::DstOnly] {
                switch.set(pattern).unwrap();
                assert_eq!(served_by(&mut conn), bed.id(pattern.reads_from()), "{pattern}");
                assert_eq!(conn.last_pattern(), Some(pattern));
            }
            // A read inside a transaction goes to the first side too, which has its writes.
            switch.set(Pattern::DstFirst).unwrap();
            conn.transaction(|c| {
                insert(c, &bed.tag)?;
                assert_eq!(served_by(c), bed.destination_id);
                let seen: i64 = dw_items::table
                    .filter(dw_items::tag.eq(&bed.tag))
                    .count()
                    .get_result(c)?;
                assert_eq!(seen, 1);
                QueryResult::Ok(())
            })
            .unwrap();
        }

        #[test]
        fn src_only_writes_the_source_only() {
            writes_land_per_pattern(bed!("dw_src_only_writes"), Pattern::SrcOnly);
        }

        #[test]
        fn src_first_writes_the_source_then_the_destination() {
            writes_land_per_pattern(bed!("dw_src_first_writes"), Pattern::SrcFirst);
        }

        #[test]
        fn dst_first_writes_the_destination_then_the_source() {
            writes_land_per_pattern(bed!("dw_dst_first_writes"), Pattern::DstFirst);
        }

        #[test]
        fn dst_only_writes_the_destination_only() {
            writes_land_per_pattern(bed!("dw_dst_only_writes"), Pattern::DstOnly);
        }

        #[test]
        fn loads_that_write_run_on_both_sides_and_return_the_first_sides_rows() {
            let bed = bed!("dw_loads_that_write");
            for pattern in [Pattern::SrcFirst, Pattern::DstFirst] {
                let tag = format!("{}:{pattern}", bed.tag);
                let pool = pool(&bed, pattern);
                let mut conn = pool.get().unwrap();
                insert(&mut conn, &tag).unwrap();
                let before = pool.metrics();
                let returned = backend::load_write_node(&mut conn, &tag).unwrap();
                assert_eq!(returned, [bed.id(pattern.first())], "{pattern}");
                let after = pool.metrics();
                // The second side ran it too (first, and drained).
                let second = pattern.second().unwrap();
                assert!(after.side(second).successes > before.side(second).successes);
                // Each side answered with its own `node`: the rows differ, which is journaled.
                let entries = journal(&pool);
                assert_eq!(entries.len(), 1, "{entries:#?}");
                assert_eq!(entries[0].kind, EntryKind::Divergence);
                assert_eq!(entries[0].side, second);
                assert_eq!(entries[0].pattern, pattern);
                assert!(entries[0].sql.contains("dw_items"), "{}", entries[0].sql);
                let rows = if backend::RETURNING { 2 } else { 1 };
                for side in [Side::Source, Side::Destination] {
                    assert_eq!(nodes(&bed, side, &tag), vec![bed.id(side).to_owned(); rows]);
                }
            }
        }

        #[test]
        fn transactions_commit_on_both_sides() {
            let bed = bed!("dw_transactions_commit");
            for pattern in [Pattern::SrcFirst, Pattern::DstFirst] {
                let tag = format!("{}:{pattern}", bed.tag);
                let pool = pool(&bed, pattern);
                let mut conn = pool.get().unwrap();
                conn.transaction(|c| {
                    assert_eq!(c.transaction_pattern(), Some(pattern));
                    insert(c, &tag)?;
                    insert(c, &tag)?;
                    QueryResult::Ok(())
                })
                .unwrap();
                for side in [Side::Source, Side::Destination] {
                    assert_eq!(nodes(&bed, side, &tag), expected(&bed, pattern, side, 2), "{pattern} {side}");
                }
                assert!(journal(&pool).is_empty());
                assert_eq!(conn.transaction_pattern(), None);
            }
        }

        #[test]
        fn transactions_roll_back_on_both_sides() {
            let bed = bed!("dw_transactions_roll_back");
            for pattern in [Pattern::SrcFirst, Pattern::DstFirst] {
                let pool = pool(&bed, pattern);
                let mut conn = pool.get().unwrap();
                let result = conn.transaction(|c| {
                    insert(c, &bed.tag)?;
                    Err::<(), _>(diesel::result::Error::RollbackTransaction)
                });
                assert!(result.is_err());
                for side in [Side::Source, Side::Destination] {
                    assert!(nodes(&bed, side, &bed.tag).is_empty(), "{pattern} {side}");
                }
                // The connection is usable, outside any transaction.
                insert(&mut conn, &bed.tag).unwrap();
                diesel::delete(dw_items::table.filter(dw_items::tag.eq(&bed.tag)))
                    .execute(&mut *conn)
                    .unwrap();
                assert!(journal(&pool).is_empty());
            }
        }

        #[test]
        fn savepoints_are_mirrored() {
            let bed = bed!("dw_savepoints_are_mirrored");
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().unwrap();
            let (kept, undone, nested) = (
                format!("{}:kept", bed.tag),
                format!("{}:undone", bed.tag),
                format!("{}:nested", bed.tag),
            );
            conn.transaction(|c| {
                insert(c, &kept)?;
                let inner = c.transaction(|c| {
                    insert(c, &undone)?;
                    Err::<(), _>(diesel::result::Error::RollbackTransaction)
                });
                assert!(inner.is_err());
                c.transaction(|c| {
                    insert(c, &nested)?;
                    c.transaction(|c| insert(c, &nested))?;
                    QueryResult::Ok(())
                })?;
                QueryResult::Ok(())
            })
            .unwrap();
            for side in [Side::Source, Side::Destination] {
                assert_eq!(nodes(&bed, side, &kept).len(), 1, "{side}");
                assert!(nodes(&bed, side, &undone).is_empty(), "{side}");
                assert_eq!(nodes(&bed, side, &nested).len(), 2, "{side}");
            }
            assert!(journal(&pool).is_empty());
        }

        #[test]
        fn a_failure_inside_a_rolled_back_savepoint_leaves_nothing_to_journal() {
            let bed = bed!("dw_failure_in_rolled_back_savepoint");
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().unwrap();
            conn.transaction(|c| {
                insert(c, &bed.tag)?;
                let inner = c.transaction(|c| {
                    // Applied on the source, fails on the destination (lenient: Ok).
                    insert_src_only(c, &bed.tag)?;
                    Err::<(), _>(diesel::result::Error::RollbackTransaction)
                });
                assert!(inner.is_err());
                // The savepoint was rolled back on both sides: the destination's transaction is
                // whole again and takes this write.
                insert(c, &bed.tag)?;
                QueryResult::Ok(())
            })
            .unwrap();
            for side in [Side::Source, Side::Destination] {
                assert_eq!(nodes(&bed, side, &bed.tag), vec![bed.id(side).to_owned(); 2], "{side}");
            }
            assert_eq!(src_only_rows(&bed), 0);
            assert!(journal(&pool).is_empty(), "{:#?}", journal(&pool));
            assert_eq!(pool.metrics().destination.failures, 1);
        }

        #[test]
        fn begin_test_transaction_runs_on_both_sides() {
            let bed = bed!("dw_begin_test_transaction");
            let spec = format!(
                "source={} destination={} pattern=src_first",
                bed.source, bed.destination
            );
            {
                let mut conn = DoubleWriteConnection::<Conn>::establish(&spec).unwrap();
                conn.begin_test_transaction().unwrap();
                insert(&mut conn, &bed.tag).unwrap();
                for side in [Side::Source, Side::Destination] {
                    // Inside the test transaction of that side's own connection.
                    let n: i64 = conn
                        .with_side(side, |c| {
                            dw_items::table.filter(dw_items::tag.eq(&bed.tag)).count().get_result(c)
                        })
                        .unwrap()
                        .unwrap();
                    assert_eq!(n, 1, "{side}");
                }
            }
            // Never committed, on either side.
            for side in [Side::Source, Side::Destination] {
                assert!(nodes(&bed, side, &bed.tag).is_empty(), "{side}");
            }
        }

        #[test]
        fn a_transaction_keeps_the_pattern_it_began_with() {
            let bed = bed!("dw_transaction_keeps_its_pattern");
            let switch = PatternSwitch::new(Pattern::SrcOnly);
            let pool = pool(&bed, switch.clone());
            let mut conn = pool.get().unwrap();
            let (inside, after) = (format!("{}:inside", bed.tag), format!("{}:after", bed.tag));
            conn.transaction(|c| {
                insert(c, &inside)?;
                switch.advance().unwrap();
                // Still SrcOnly: the transaction began with it.
                insert(c, &inside)?;
                assert_eq!(c.last_pattern(), Some(Pattern::SrcOnly));
                assert_eq!(c.pattern(), Pattern::SrcOnly);
                QueryResult::Ok(())
            })
            .unwrap();
            insert(&mut conn, &after).unwrap();
            assert_eq!(conn.last_pattern(), Some(Pattern::SrcFirst));
            assert_eq!(nodes(&bed, Side::Source, &inside).len(), 2);
            assert!(nodes(&bed, Side::Destination, &inside).is_empty());
            assert_eq!(nodes(&bed, Side::Source, &after).len(), 1);
            assert_eq!(nodes(&bed, Side::Destination, &after).len(), 1);
        }

        #[test]
        fn a_switch_is_seen_by_every_connection_at_its_next_statement() {
            let bed = bed!("dw_switch_seen_at_next_statement");
            let switch = PatternSwitch::new(Pattern::SrcOnly);
            let pool = pool(&bed, switch.clone());
            let mut a = pool.get().unwrap();
            let mut b = pool.get().unwrap();
            insert(&mut a, &bed.tag).unwrap();
            insert(&mut b, &bed.tag).unwrap();
            switch.advance().unwrap();
            insert(&mut a, &bed.tag).unwrap();
            insert(&mut b, &bed.tag).unwrap();
            assert_eq!(a.last_pattern(), Some(Pattern::SrcFirst));
            assert_eq!(b.last_pattern(), Some(Pattern::SrcFirst));
            assert_eq!(nodes(&bed, Side::Source, &bed.tag).len(), 4);
            assert_eq!(nodes(&bed, Side::Destination, &bed.tag).len(), 2);
        }

        #[test]
        fn unknown_pattern_name_is_a_clear_error() {
            let bed = bed!("dw_unknown_pattern_name");
            let err = "source_first".parse::<Pattern>().unwrap_err();
            assert!(matches!(&err, Error::UnknownPattern { name } if name == "source_first"));
            let message = err.to_string();
            assert!(message.contains("`source_first`"), "{message}");
            assert!(message.contains("src_only, src_first, dst_first, dst_only"), "{message}");
            // Through a connection string too; nothing is connected or written.
            let spec = format!(
                "source={} destination={} pattern=sideways",
                bed.source, bed.destination
            );
            let err = DoubleWriteConnection::<Conn>::establish(&spec).unwrap_err().to_string();
            assert!(err.contains("unknown double-write pattern `sideways`"), "{err}");
            assert!(!err.contains("diesel_rw_pw"), "no password in: {err}");
        }

        #[test]
        fn skipping_a_phase_is_rejected() {
            let bed = bed!("dw_skipping_a_phase");
            let switch = PatternSwitch::new(Pattern::SrcOnly);
            let pool = pool(&bed, switch.clone());
            let mut conn = pool.get().unwrap();
            let err = switch.set(Pattern::DstFirst).unwrap_err();
            assert!(matches!(
                err,
                Error::InvalidTransition { from: Pattern::SrcOnly, to: Pattern::DstFirst }
            ));
            let message = err.to_string();
            assert!(message.contains("one step at a time"), "{message}");
            assert!(message.contains("PatternSwitch::force"), "{message}");
            assert!(switch.set(Pattern::DstOnly).is_err());
            assert!(switch.retreat().is_err());
            // Nothing changed: writes still go to the source only.
            assert_eq!(switch.get(), Pattern::SrcOnly);
            insert(&mut conn, &bed.tag).unwrap();
            assert_eq!(nodes(&bed, Side::Source, &bed.tag).len(), 1);
            assert!(nodes(&bed, Side::Destination, &bed.tag).is_empty());
            // One step at a time is accepted.
            switch.advance().unwrap();
            switch.advance().unwrap();
            assert_eq!(switch.get(), Pattern::DstFirst);
        }

        #[test]
        fn diverging_generated_keys_are_journaled() {
            let bed = bed!("dw_diverging_generated_keys");
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().unwrap();
            // Identical rows on both sides: nothing to journal.
            assert_eq!(backend::insert_key_tag(&mut conn, &bed.tag).unwrap(), bed.tag);
            assert!(journal(&pool).is_empty(), "{:#?}", journal(&pool));
            // The destination's key generator is ahead: the same insert gets another id there.
            backend::advance_destination_keys(&bed);
            let id = backend::insert_key(&mut conn, &bed.tag).unwrap();
            let ids = |side: Side| -> Vec<i32> {
                dw_keys::table
                    .filter(dw_keys::tag.eq(&bed.tag))
                    .select(dw_keys::id)
                    .order(dw_keys::id)
                    .load(&mut backend::direct(bed.url(side)))
                    .unwrap()
            };
            let (source, destination) = (ids(Side::Source), ids(Side::Destination));
            assert_eq!(source.last().map(|&i| i64::from(i)), Some(id), "the source's id is returned");
            assert_ne!(source.last(), destination.last(), "{source:?} {destination:?}");
            let entries = journal(&pool);
            assert_eq!(entries.len(), 1, "{entries:#?}");
            let entry = &entries[0];
            assert_eq!(entry.kind, EntryKind::Divergence);
            assert_eq!(entry.side, Side::Destination);
            assert_eq!(entry.pattern, Pattern::SrcFirst);
            assert!(entry.error.contains("field(s) 0"), "{entry}");
            assert_eq!(pool.metrics().destination.journaled, 1);
        }

        #[test]
        fn differing_affected_row_counts_are_journaled() {
            let bed = bed!("dw_differing_row_counts");
            backend::direct(&bed.source)
                .batch_execute(&format!(
                    "INSERT INTO dw_items (tag, node) VALUES ('{0}', 'seed'), ('{0}', 'seed')",
                    bed.tag
                ))
                .unwrap();
            backend::direct(&bed.destination)
                .batch_execute(&format!("INSERT INTO dw_items (tag, node) VALUES ('{0}', 'seed')", bed.tag))
                .unwrap();
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().unwrap();
            let n = diesel::update(dw_items::table.filter(dw_items::tag.eq(&bed.tag)))
                .set(dw_items::node.eq("updated"))
                .execute(&mut *conn)
                .unwrap();
            assert_eq!(n, 2, "the first side's count is returned");
            let entries = journal(&pool);
            assert_eq!(entries.len(), 1, "{entries:#?}");
            assert_eq!(entries[0].kind, EntryKind::Divergence);
            assert!(entries[0].error.contains("2 on the source, 1 on the destination"), "{}", entries[0]);
        }

        #[test]
        fn lenient_journals_a_failed_second_write_and_returns_the_first_result() {
            let bed = bed!("dw_lenient_second_write_fails");
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().unwrap();
            assert_eq!(insert_src_only(&mut conn, &bed.tag).unwrap(), 1);
            assert_eq!(src_only_rows(&bed), 1);
            let entries = journal(&pool);
            assert_eq!(entries.len(), 1, "{entries:#?}");
            let entry = &entries[0];
            assert_eq!(entry.kind, EntryKind::WriteFailed);
            assert_eq!(entry.side, Side::Destination);
            assert_eq!(entry.pattern, Pattern::SrcFirst);
            assert!(!entry.in_transaction);
            assert!(entry.sql.contains("dw_src_only"), "{}", entry.sql);
            assert_eq!(entry.binds, 2, "{}", entry.sql);
            assert!(!entry.error.is_empty());
            assert!(!format!("{entry:?}").contains("secret-bind-value"), "{entry:?}");
            let metrics = pool.metrics();
            assert_eq!(metrics.destination.failures, 1);
            assert_eq!(metrics.destination.journaled, 1);
            assert_eq!(metrics.source.failures, 0);
            // DstFirst: the destination is first and refuses: nothing is applied anywhere, a
            // plain error, nothing journaled.
            pool.switch().advance().unwrap();
            let err = insert_src_only(&mut conn, &bed.tag).unwrap_err();
            assert!(matches!(Error::from_diesel(err), Error::Database(_)));
            assert_eq!(src_only_rows(&bed), 1);
            assert_eq!(journal(&pool).len(), 1);
        }

        #[test]
        fn strict_returns_secondary_write_failed_saying_the_write_is_applied() {
            let bed = bed!("dw_strict_second_write_fails");
            let pool = builder(&bed, Pattern::SrcFirst).strict(true).build().unwrap();
            let mut conn = pool.get().unwrap();
            let err = Error::from_diesel(insert_src_only(&mut conn, &bed.tag).unwrap_err());
            match &err {
                Error::SecondaryWriteFailed { applied, failed, in_transaction, .. } => {
                    assert_eq!((*applied, *failed, *in_transaction), (Side::Source, Side::Destination, false));
                }
                other => panic!("expected SecondaryWriteFailed, got {other:?}"),
            }
            let message = err.to_string();
            assert!(message.contains("applied on the source"), "{message}");
            assert!(message.contains("do not repeat it"), "{message}");
            assert!(!message.contains("secret-bind-value"), "{message}");
            // The write is on the source, and journaled.
            assert_eq!(src_only_rows(&bed), 1);
            assert_eq!(journal(&pool).len(), 1);
        }

        #[test]
        fn a_transaction_whose_second_side_fails_is_journaled_as_a_partial_commit() {
            let bed = bed!("dw_partial_commit");
            // Lenient: the transaction commits on the source; the destination's is rolled back.
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().unwrap();
            conn.transaction(|c| {
                insert(c, &bed.tag)?;
                insert_src_only(c, &bed.tag)?;
                insert(c, &bed.tag)?;
                QueryResult::Ok(())
            })
            .unwrap();
            assert_eq!(nodes(&bed, Side::Source, &bed.tag).len(), 2);
            assert!(nodes(&bed, Side::Destination, &bed.tag).is_empty());
            assert_eq!(src_only_rows(&bed), 1);
            let entries = journal(&pool);
            assert_eq!(entries.len(), 3, "one per write of the transaction: {entries:#?}");
            for entry in &entries {
                assert_eq!(entry.kind, EntryKind::PartialCommit);
                assert_eq!(entry.side, Side::Destination);
                assert!(entry.in_transaction);
                assert!(entry.error.contains("rolled back"), "{entry}");
            }
            assert!(entries[1].sql.contains("dw_src_only"));

            // Strict: the failing write says so; a caller that commits anyway gets PartialCommit.
            let tag = format!("{}:strict", bed.tag);
            let strict = builder(&bed, Pattern::SrcFirst).strict(true).build().unwrap();
            let mut conn = strict.get().unwrap();
            let err = conn
                .transaction(|c| {
                    insert(c, &tag)?;
                    let failed = Error::from_diesel(insert_src_only(c, &bed.tag).unwrap_err());
                    assert!(matches!(failed, Error::SecondaryWriteFailed { in_transaction: true, .. }), "{failed:?}");
                    QueryResult::Ok(())
                })
                .unwrap_err();
            match Error::from_diesel(err) {
                Error::PartialCommit { committed, failed, writes, .. } => {
                    assert_eq!((committed, failed, writes), (Side::Source, Side::Destination, 2));
                }
                other => panic!("expected PartialCommit, got {other:?}"),
            }
            assert_eq!(nodes(&bed, Side::Source, &tag).len(), 1);
            assert!(nodes(&bed, Side::Destination, &tag).is_empty());
            assert_eq!(journal(&strict).len(), 2);
        }

        /// `INSERT ... RETURNING` through `load` runs on the second side first. When one side
        /// refuses it, the write is on the other side alone: journaled, and in strict mode
        /// reported as applied. (MySQL: diesel has no RETURNING; covered on the other backends.)
        #[test]
        fn a_load_write_refused_by_one_side_is_journaled() {
            let bed = bed!("dw_load_write_refused");
            if !backend::RETURNING {
                return;
            }
            let returning = |c: &mut DoubleWriteConnection<Conn>, value: &str| {
                backend::insert_src_only_returning(c, &bed.tag, value).unwrap()
            };
            // SrcFirst: the source (first) applies it, then the destination (second) refuses:
            // journaled as lacking on the destination.
            for strict in [false, true] {
                let pool = builder(&bed, Pattern::SrcFirst).strict(strict).build().unwrap();
                let mut conn = pool.get().unwrap();
                let result = returning(&mut conn, "secret-bind-value");
                if strict {
                    let err = Error::from_diesel(result.unwrap_err());
                    assert!(matches!(err, Error::SecondaryWriteFailed { applied: Side::Source, failed: Side::Destination, .. }), "{err:?}");
                    assert!(err.to_string().contains("do not repeat it"), "{err}");
                } else {
                    assert_eq!(result.unwrap(), "secret-bind-value");
                }
                let entries = journal(&pool);
                assert_eq!(entries.len(), 1, "{entries:#?}");
                assert_eq!((entries[0].kind, entries[0].side), (EntryKind::WriteFailed, Side::Destination));
                assert!(!format!("{:?}", entries[0]).contains("secret-bind-value"));
            }
            assert_eq!(src_only_rows(&bed), 2, "both runs applied it on the source");
            // DstFirst: the destination (first) refuses it: it never reaches the source, the
            // caller gets the destination's error, nothing is journaled (nothing diverged).
            for strict in [false, true] {
                let pool = builder(&bed, Pattern::DstFirst).strict(strict).build().unwrap();
                let mut conn = pool.get().unwrap();
                let err = Error::from_diesel(returning(&mut conn, "x").unwrap_err());
                assert!(matches!(err, Error::Database(_)), "the first side's error: {err:?}");
                let entries = journal(&pool);
                assert!(entries.is_empty(), "{entries:#?}");
                assert_eq!(pool.metrics().source.successes, 0, "the source ran nothing");
            }
            assert_eq!(src_only_rows(&bed), 2, "the source is untouched under DstFirst");
        }

        /// The destination goes down mid-run (PostgreSQL: the real server is stopped; MariaDB:
        /// its proxy is taken down; SQLite: its file is locked). Lenient mode: every source
        /// write succeeds, every one-sided write is journaled, and the destination rejoins when
        /// it is back.
        #[test]
        fn lenient_mode_with_the_destination_down_mid_run() {
            let bed = exclusive_bed!("dw_lenient_destination_down");
            let mut outage = backend::outage(&bed);
            let pool = builder(&bed, Pattern::SrcFirst)
                .destination(outage.url.clone())
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            let tag = |i: u32| format!("{}:{i}", bed.tag);
            insert(&mut conn, &tag(1)).unwrap();

            outage.down();
            for i in 2..=4 {
                assert_eq!(insert(&mut conn, &tag(i)).unwrap(), 1, "write {i} returns the source's result");
            }
            // A transaction that cannot begin on both sides is refused before anything is
            // written (the source's BEGIN is rolled back); one that began on both and then
            // loses the destination commits on the source, journaled as a partial commit.
            let refused = conn.transaction(|c| insert(c, &tag(5))).is_err();
            assert_eq!(refused, backend::OUTAGE_FAILS_BEGIN);
            if backend::OUTAGE_FAILS_PINGS {
                let health = pool.health_check();
                assert_eq!(health.failed(), [Side::Destination], "{health}");
                assert!(!health.to_string().contains("diesel_rw_pw"), "{health}");
            }
            outage.up();
            insert(&mut conn, &tag(6)).unwrap();
            if backend::OUTAGE_FAILS_PINGS {
                assert!(pool.health_check().is_healthy());
            }

            let all: Vec<String> = (1..=6).filter(|&i| !(refused && i == 5)).map(tag).collect();
            assert_eq!(tags(&bed, Side::Source, &format!("{}:", bed.tag)), all, "no source write lost");
            assert_eq!(tags(&bed, Side::Destination, &format!("{}:", bed.tag)), [tag(1), tag(6)]);
            let entries = journal(&pool);
            let journaled: Vec<(EntryKind, Side)> = entries.iter().map(|e| (e.kind, e.side)).collect();
            let mut expected = vec![(EntryKind::WriteFailed, Side::Destination); 3];
            if !refused {
                expected.push((EntryKind::PartialCommit, Side::Destination));
            }
            assert_eq!(journaled, expected, "{entries:#?}");
            assert!(entries.iter().all(|e| e.sql.contains("dw_items") && e.binds == 1));
            assert!(pool.metrics().destination.failures >= 3);
        }

        /// As above in strict mode: the one-sided writes return `SecondaryWriteFailed` (they
        /// are applied on the source), a transaction commits nothing anywhere, and nothing
        /// written to the source is lost.
        #[test]
        fn strict_mode_with_the_destination_down_mid_run() {
            let bed = exclusive_bed!("dw_strict_destination_down");
            let mut outage = backend::outage(&bed);
            let pool = builder(&bed, Pattern::SrcFirst)
                .destination(outage.url.clone())
                .strict(true)
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            let tag = |i: u32| format!("{}:{i}", bed.tag);
            insert(&mut conn, &tag(1)).unwrap();

            outage.down();
            for i in 2..=3 {
                let err = Error::from_diesel(insert(&mut conn, &tag(i)).unwrap_err());
                assert!(
                    matches!(err, Error::SecondaryWriteFailed { applied: Side::Source, failed: Side::Destination, .. }),
                    "{err:?}"
                );
            }
            // The transaction is refused at BEGIN (the destination cannot begin), or its write
            // fails there and the caller rolls back: either way nothing commits.
            let result = conn.transaction(|c| insert(c, &tag(4)));
            assert!(result.is_err());
            outage.up();
            insert(&mut conn, &tag(5)).unwrap();

            assert_eq!(
                tags(&bed, Side::Source, &format!("{}:", bed.tag)),
                [tag(1), tag(2), tag(3), tag(5)]
            );
            assert_eq!(tags(&bed, Side::Destination, &format!("{}:", bed.tag)), [tag(1), tag(5)]);
            let entries = journal(&pool);
            assert_eq!(entries.len(), 2, "{entries:#?}");
            assert!(entries.iter().all(|e| e.kind == EntryKind::WriteFailed && e.side == Side::Destination));
        }

        #[test]
        fn retry_happens_only_for_transient_classes() {
            let bed = bed!("dw_retry_transient_classes");
            let retry = Retry::attempts(5)
                .initial_backoff(Duration::from_millis(1))
                .max_backoff(Duration::from_millis(5));
            let pool = builder(&bed, Pattern::SrcFirst).retry(retry).build().unwrap();
            let mut conn = pool.get().unwrap();

            // A constraint violation is never retried (here on the source: nothing applied).
            let key = |c: &mut DoubleWriteConnection<Conn>| {
                diesel::insert_into(dw_keys::table)
                    .values((dw_keys::id.eq(900_001), dw_keys::tag.eq(&bed.tag)))
                    .execute(c)
            };
            key(&mut conn).unwrap();
            let err = key(&mut conn).unwrap_err();
            assert!(matches!(
                err,
                diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
            ), "{err:?}");
            assert_eq!(pool.metrics().source.retries, 0);

            let Some(flaky) = backend::flaky_insert(&bed, &mut conn, "deadlock", 2) else {
                return;
            };
            // A deadlock / serialization failure rolled the statement back: retried, on each
            // side on its own, until it applies once.
            insert_node(&mut conn, &bed.tag, &flaky).unwrap();
            let metrics = pool.metrics();
            assert_eq!((metrics.source.retries, metrics.destination.retries), (2, 2), "{metrics:?}");
            for side in [Side::Source, Side::Destination] {
                assert_eq!(nodes(&bed, side, &bed.tag), ["flaky"], "{side}");
                assert_eq!(backend::flaky_calls(&bed, &mut conn, side), 3, "{side}");
            }

            if backend::NAME == "PostgreSQL" {
                // SQLSTATE 40001 (MySQL/MariaDB report deadlocks with the same class).
                let serialization = backend::flaky_insert(&bed, &mut conn, "serialization", 1).unwrap();
                insert_node(&mut conn, &bed.tag, &serialization).unwrap();
                let metrics = pool.metrics();
                assert_eq!((metrics.source.retries, metrics.destination.retries), (3, 3), "{metrics:?}");
            }

            // A unique violation raised the same way: not retried.
            let unique = backend::flaky_insert(&bed, &mut conn, "unique", 1).unwrap();
            let before = pool.metrics();
            let err = insert_node(&mut conn, &bed.tag, &unique).unwrap_err();
            assert!(matches!(
                err,
                diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
            ), "{err:?}");
            assert_eq!(pool.metrics().source.retries, before.source.retries);
            assert_eq!(backend::flaky_calls(&bed, &mut conn, Side::Source), 1);

            // Inside a transaction nothing is retried: the caller runs the transaction again.
            let flaky = backend::flaky_insert(&bed, &mut conn, "deadlock", 1).unwrap();
            let before = pool.metrics();
            let result = conn.transaction(|c| insert_node(c, &bed.tag, &flaky));
            assert!(result.is_err());
            assert_eq!(pool.metrics().source.retries, before.source.retries);
            assert_eq!(backend::flaky_calls(&bed, &mut conn, Side::Source), 1);
            assert!(journal(&pool).is_empty(), "{:#?}", journal(&pool));
        }

        #[test]
        fn pattern_switching_under_load() {
            let bed = bed!("dw_switching_under_load");
            let switch = PatternSwitch::new(Pattern::SrcOnly);
            let pool = builder(&bed, switch.clone())
                .on_connect(backend::on_connect)
                .max_size(8)
                .build()
                .unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let landed = Arc::new(Mutex::new(BTreeMap::<String, Pattern>::new()));
            let ready = Arc::new(std::sync::Barrier::new(9));
            let writers: Vec<_> = (0..8)
                .map(|t| {
                    let (pool, stop, landed, tag, ready) =
                        (pool.clone(), stop.clone(), landed.clone(), bed.tag.clone(), ready.clone());
                    std::thread::spawn(move || {
                        let mut conn = pool.get().unwrap();
                        // Both sides connected before the walk starts.
                        for side in [Side::Source, Side::Destination] {
                            conn.with_side(side, |_| ()).unwrap();
                        }
                        ready.wait();
                        let mut i = 0;
                        while !stop.load(Ordering::Relaxed) {
                            let label = format!("{tag}:{t}:{i:05}");
                            insert(&mut conn, &label).unwrap();
                            landed.lock().unwrap().insert(label, conn.last_pattern().unwrap());
                            i += 1;
                        }
                    })
                })
                .collect();
            let walk = [
                Pattern::SrcFirst,
                Pattern::DstFirst,
                Pattern::DstOnly,
                Pattern::DstFirst,
                Pattern::SrcFirst,
                Pattern::SrcOnly,
            ];
            ready.wait();
            // Each phase lasts until its writes are under way (at least 20 of them), so that the
            // test does not depend on the machine's speed.
            let writes_under = |pattern: Pattern| landed.lock().unwrap().values().filter(|&&p| p == pattern).count();
            let wait_for_writes = |pattern: Pattern| {
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while writes_under(pattern) < 20 && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            };
            wait_for_writes(Pattern::SrcOnly);
            for pattern in walk {
                let before = writes_under(pattern);
                switch.set(pattern).unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while writes_under(pattern) < before + 20 && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            let _ = wait_for_writes;
            stop.store(true, Ordering::Relaxed);
            for w in writers {
                w.join().unwrap();
            }
            let landed = landed.lock().unwrap();
            let prefix = format!("{}:", bed.tag);
            let (source, destination) = (tags(&bed, Side::Source, &prefix), tags(&bed, Side::Destination, &prefix));
            let mut per_pattern = BTreeMap::<Pattern, usize>::new();
            for (label, pattern) in landed.iter() {
                *per_pattern.entry(*pattern).or_default() += 1;
                let on_source = source.binary_search(label).is_ok();
                let on_destination = destination.binary_search(label).is_ok();
                assert_eq!(
                    (on_source, on_destination),
                    (pattern.writes_to(Side::Source), pattern.writes_to(Side::Destination)),
                    "{label} written under {pattern}"
                );
            }
            assert_eq!(source.len() + destination.len(), landed.values().map(|p| if p.is_double() { 2 } else { 1 }).sum::<usize>(), "no row that no write named");
            for pattern in Pattern::ALL {
                assert!(per_pattern.get(&pattern).copied().unwrap_or(0) > 0, "no write under {pattern}: {per_pattern:?}");
            }
            assert!(journal(&pool).is_empty(), "{:#?}", journal(&pool));
        }

        #[test]
        fn composes_with_rw_pool() {
            let bed = bed!("dw_composes_with_rw_pool");
            let name = format!("{}-{}-{}", bed.tag, backend::NAME, std::process::id());
            let context = builder(&bed, Pattern::SrcFirst).register(&name).unwrap();
            // With replicas, the pool would read the source's replicas in every pattern: refused,
            // naming the shape that reads the right side.
            let refused = RwPool::<DoubleWriteConnection<Conn>>::builder()
                .primary(format!("shared={name}"))
                .replica(backend::replica(&bed))
                .build()
                .unwrap_err()
                .to_string();
            assert!(refused.contains("cannot have replicas"), "{refused}");
            assert!(refused.contains("source_cluster"), "{refused}");
            let pool = RwPool::<DoubleWriteConnection<Conn>>::builder()
                .primary(format!("shared={name}"))
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            // A write goes to the primary, which double-writes.
            diesel::insert_into(dw_items::table)
                .values((
                    dw_items::tag.eq(&bed.tag),
                    dw_items::node.eq(diesel::dsl::sql::<Text>(backend::SIDE_ID)),
                ))
                .execute(&mut conn)
                .unwrap();
            assert_eq!(conn.last_route().unwrap().node, Node::Primary);
            conn.transaction(|c| {
                diesel::insert_into(dw_items::table)
                    .values((dw_items::tag.eq(&bed.tag), dw_items::node.eq(diesel::dsl::sql::<Text>(backend::SIDE_ID))))
                    .execute(c)
            })
            .unwrap();
            for side in [Side::Source, Side::Destination] {
                assert_eq!(nodes(&bed, side, &bed.tag), vec![bed.id(side).to_owned(); 2], "{side}");
            }
            assert_eq!(context.metrics().snapshot().destination.failures, 0);
            // The registered switch steers the primary's connections, reads included.
            context.switch().advance().unwrap();
            let served: String = diesel::select(diesel::dsl::sql::<Text>(backend::SIDE_ID))
                .get_result(&mut pool.get().unwrap())
                .unwrap();
            assert_eq!(served, bed.id(Side::Destination), "DstFirst reads the destination");
            diesel::insert_into(dw_items::table)
                .values((dw_items::tag.eq(&bed.tag), dw_items::node.eq("dst-first")))
                .execute(&mut conn)
                .unwrap();
            assert_eq!(conn.with_primary(|c| c.last_pattern()).unwrap(), Some(Pattern::DstFirst));
            DoubleWriteContext::unregister(&name).unwrap();
        }

        #[test]
        fn metrics_and_health_check_per_side() {
            let bed = bed!("dw_metrics_and_health");
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().unwrap();
            insert(&mut conn, &bed.tag).unwrap();
            served_by(&mut conn);
            let metrics = pool.metrics();
            assert!(metrics.source.successes >= 2, "{metrics:?}");
            assert!(metrics.destination.successes >= 1, "{metrics:?}");
            assert_eq!(metrics.source.latency.count(), metrics.source.successes);
            assert!(metrics.source.latency.quantile(0.5).is_some());
            let health = pool.health_check();
            assert!(health.is_healthy(), "{health}");

            let broken = builder(&bed, Pattern::SrcFirst)
                .destination(backend::unreachable_url(&bed))
                .build()
                .unwrap();
            let health = broken.health_check();
            assert_eq!(health.failed(), [Side::Destination], "{health}");
            let text = health.to_string();
            assert!(text.contains("destination") && text.contains("DOWN"), "{text}");
            assert!(!text.contains("s3cret-pw") && !text.contains("diesel_rw_pw"), "{text}");
            // Lenient: the pool still serves the source while the destination is unreachable.
            let mut conn = broken.get().unwrap();
            insert(&mut conn, &format!("{}:unreachable", bed.tag)).unwrap();
            assert_eq!(journal(&broken).len(), 1);
        }
    };
}

/// The async double-write suite (`AsyncDoubleWriteConnection` and its deadpool pool), run on each
/// backend by `double_write_async_suite!(backend_module)`: the behaviours of the sync suite, on
/// diesel-async, each test asserting the rows each side holds. The tests run on tokio's
/// multi-threaded runtime: diesel-async's SQLite wrapper needs it.
#[cfg(feature = "async")]
macro_rules! double_write_async_suite {
    ($backend:ident) => {
        use std::collections::BTreeMap;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        use std::time::Duration;

        use diesel::prelude::{ExpressionMethods, QueryDsl, QueryResult, TextExpressionMethods};
        use diesel::sql_types::Text;
        use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
        use diesel_rw::double_write::{
            AsyncDoubleWrite, AsyncDoubleWriteConnection, DoubleWriteBuilder, EntryKind,
            JournalEntry, Pattern, PatternSwitch, Retry, Side,
        };
        use diesel_rw::Error;

        use dw::$backend as backend;
        use dw::{dw_items, dw_keys, dw_src_only, DwBed};

        type Conn = backend::AsyncConn;
        type DwConn = AsyncDoubleWriteConnection<Conn>;

        macro_rules! bed {
            ($name:literal) => {
                match backend::bed($name) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        macro_rules! exclusive_bed {
            ($name:literal) => {
                match backend::exclusive_bed($name) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        fn builder(
            bed: &DwBed,
            pattern: impl Into<PatternSwitch>,
        ) -> DoubleWriteBuilder<AsyncDoubleWrite<Conn>> {
            AsyncDoubleWrite::<Conn>::builder()
                .source(&bed.source)
                .destination(&bed.destination)
                .pattern(pattern)
                .max_size(4)
        }

        fn pool(bed: &DwBed, pattern: impl Into<PatternSwitch>) -> AsyncDoubleWrite<Conn> {
            builder(bed, pattern).build().unwrap()
        }

        async fn insert_node(conn: &mut DwConn, tag: &str, node_sql: &str) -> QueryResult<usize> {
            diesel::insert_into(dw_items::table)
                .values((
                    dw_items::tag.eq(tag),
                    dw_items::node.eq(diesel::dsl::sql::<Text>(node_sql)),
                ))
                .execute(conn)
                .await
        }

        async fn insert(conn: &mut DwConn, tag: &str) -> QueryResult<usize> {
            insert_node(conn, tag, backend::SIDE_ID).await
        }

        async fn insert_src_only(conn: &mut DwConn, tag: &str) -> QueryResult<usize> {
            diesel::insert_into(dw_src_only::table)
                .values((
                    dw_src_only::a.eq(tag),
                    dw_src_only::b.eq("secret-bind-value"),
                ))
                .execute(conn)
                .await
        }

        async fn served_by(conn: &mut DwConn) -> String {
            diesel::select(diesel::dsl::sql::<Text>(backend::SIDE_ID))
                .get_result(conn)
                .await
                .unwrap()
        }

        /// The `node` of `tag`'s rows on `side`, read there directly (sync).
        fn nodes(bed: &DwBed, side: Side, tag: &str) -> Vec<String> {
            let query = dw_items::table
                .filter(dw_items::tag.eq(tag))
                .select(dw_items::node)
                .order(dw_items::id);
            diesel::RunQueryDsl::load(query, &mut backend::direct(bed.url(side))).unwrap()
        }

        fn tags(bed: &DwBed, side: Side, prefix: &str) -> Vec<String> {
            let query = dw_items::table
                .filter(dw_items::tag.like(format!("{prefix}%")))
                .select(dw_items::tag);
            let mut tags: Vec<String> =
                diesel::RunQueryDsl::load(query, &mut backend::direct(bed.url(side))).unwrap();
            tags.sort();
            tags
        }

        fn src_only_rows(bed: &DwBed) -> i64 {
            let query = dw_src_only::table
                .filter(dw_src_only::a.eq(&bed.tag))
                .count();
            diesel::RunQueryDsl::get_result(query, &mut backend::direct(&bed.source)).unwrap()
        }

        fn journal(pool: &AsyncDoubleWrite<Conn>) -> Vec<JournalEntry> {
            pool.memory_journal().unwrap().entries()
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_writes_and_reads_follow_the_pattern() {
            let bed = bed!("dw_async_patterns");
            let switch = PatternSwitch::new(Pattern::SrcOnly);
            let pool = pool(&bed, switch.clone());
            let mut conn = pool.get().await.unwrap();
            let mut divergences = 0;
            for pattern in Pattern::ALL {
                switch.set(pattern).unwrap();
                let tag = format!("{}:{pattern}", bed.tag);
                assert_eq!(
                    served_by(&mut conn).await,
                    bed.id(pattern.reads_from()),
                    "{pattern}"
                );
                assert_eq!(insert(&mut conn, &tag).await.unwrap(), 1);
                assert_eq!(conn.last_pattern(), Some(pattern));
                let returned = backend::async_load_write_node(&mut conn, &tag)
                    .await
                    .unwrap();
                assert_eq!(returned.len(), 1, "{pattern}");
                assert_eq!(
                    returned[0],
                    bed.id(pattern.first()),
                    "{pattern}: the first side's row"
                );
                if pattern.is_double() {
                    divergences += 1;
                }
                let rows = if backend::RETURNING { 2 } else { 1 };
                for side in [Side::Source, Side::Destination] {
                    let want = if pattern.writes_to(side) {
                        vec![bed.id(side).to_owned(); rows]
                    } else {
                        vec![]
                    };
                    assert_eq!(
                        nodes(&bed, side, &tag),
                        want,
                        "{pattern}: rows on the {side}"
                    );
                }
            }
            // Only the rows the statements returned through `load` differed (each side wrote
            // its own identity).
            let entries = journal(&pool);
            assert_eq!(entries.len(), divergences, "{entries:#?}");
            assert!(entries.iter().all(|e| e.kind == EntryKind::Divergence));
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_transactions_commit_roll_back_and_mirror_savepoints() {
            let bed = bed!("dw_async_transactions");
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().await.unwrap();
            let (kept, undone, rolled) = (
                format!("{}:kept", bed.tag),
                format!("{}:undone", bed.tag),
                format!("{}:rolled", bed.tag),
            );
            conn.transaction::<_, diesel::result::Error, _>(async |c| {
                assert_eq!(c.transaction_pattern(), Some(Pattern::SrcFirst));
                insert(c, &kept).await?;
                let inner = c
                    .transaction::<(), diesel::result::Error, _>(async |c| {
                        insert(c, &undone).await?;
                        Err(diesel::result::Error::RollbackTransaction)
                    })
                    .await;
                assert!(inner.is_err());
                c.transaction::<_, diesel::result::Error, _>(async |c| insert(c, &kept).await)
                    .await?;
                Ok(())
            })
            .await
            .unwrap();
            let rolled_back = conn
                .transaction::<(), diesel::result::Error, _>(async |c| {
                    insert(c, &rolled).await?;
                    Err(diesel::result::Error::RollbackTransaction)
                })
                .await;
            assert!(rolled_back.is_err());
            for side in [Side::Source, Side::Destination] {
                assert_eq!(nodes(&bed, side, &kept).len(), 2, "{side}");
                assert!(nodes(&bed, side, &undone).is_empty(), "{side}");
                assert!(nodes(&bed, side, &rolled).is_empty(), "{side}");
            }
            assert!(journal(&pool).is_empty(), "{:#?}", journal(&pool));
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_begin_test_transaction_runs_on_both_sides() {
            let bed = bed!("dw_async_test_transaction");
            let spec = format!(
                "source={} destination={} pattern=src_first",
                bed.source, bed.destination
            );
            {
                let mut conn = DwConn::establish(&spec).await.unwrap();
                conn.begin_test_transaction().await.unwrap();
                insert(&mut conn, &bed.tag).await.unwrap();
                for side in [Side::Source, Side::Destination] {
                    let n: i64 = conn
                        .with_side(side, async |c| {
                            dw_items::table
                                .filter(dw_items::tag.eq(&bed.tag))
                                .count()
                                .get_result(c)
                                .await
                        })
                        .await
                        .unwrap()
                        .unwrap();
                    assert_eq!(n, 1, "{side}");
                }
            }
            for side in [Side::Source, Side::Destination] {
                assert!(nodes(&bed, side, &bed.tag).is_empty(), "{side}");
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_lenient_and_strict_second_write_failures() {
            let bed = bed!("dw_async_second_write_fails");
            let lenient = pool(&bed, Pattern::SrcFirst);
            let mut conn = lenient.get().await.unwrap();
            assert_eq!(insert_src_only(&mut conn, &bed.tag).await.unwrap(), 1);
            let entries = journal(&lenient);
            assert_eq!(entries.len(), 1, "{entries:#?}");
            assert_eq!(
                (entries[0].kind, entries[0].side),
                (EntryKind::WriteFailed, Side::Destination)
            );
            assert_eq!(entries[0].binds, 2);
            assert!(!format!("{:?}", entries[0]).contains("secret-bind-value"));
            assert_eq!(lenient.metrics().destination.failures, 1);

            let strict = builder(&bed, Pattern::SrcFirst)
                .strict(true)
                .build()
                .unwrap();
            let mut conn = strict.get().await.unwrap();
            let err = Error::from_diesel(insert_src_only(&mut conn, &bed.tag).await.unwrap_err());
            assert!(
                matches!(
                    err,
                    Error::SecondaryWriteFailed {
                        applied: Side::Source,
                        failed: Side::Destination,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(src_only_rows(&bed), 2, "both applied on the source");

            // A transaction whose second side failed: committed on the source, journaled.
            let tag = format!("{}:tx", bed.tag);
            let mut conn = lenient.get().await.unwrap();
            conn.transaction::<_, diesel::result::Error, _>(async |c| {
                insert(c, &tag).await?;
                insert_src_only(c, &bed.tag).await?;
                Ok(())
            })
            .await
            .unwrap();
            assert_eq!(nodes(&bed, Side::Source, &tag).len(), 1);
            assert!(nodes(&bed, Side::Destination, &tag).is_empty());
            let partial: Vec<_> = journal(&lenient)
                .into_iter()
                .filter(|e| e.kind == EntryKind::PartialCommit)
                .collect();
            assert_eq!(partial.len(), 2, "{partial:#?}");
            // Strict: the caller that commits anyway gets PartialCommit.
            let tag = format!("{}:strict-tx", bed.tag);
            let mut conn = strict.get().await.unwrap();
            let err = conn
                .transaction::<_, diesel::result::Error, _>(async |c| {
                    insert(c, &tag).await?;
                    let _ = insert_src_only(c, &bed.tag).await;
                    Ok(())
                })
                .await
                .unwrap_err();
            assert!(matches!(
                Error::from_diesel(err),
                Error::PartialCommit { writes: 2, .. }
            ));
            assert_eq!(nodes(&bed, Side::Source, &tag).len(), 1);
            assert!(nodes(&bed, Side::Destination, &tag).is_empty());
        }

        /// The destination goes down mid-run (PostgreSQL: the real server is stopped; MariaDB:
        /// its proxy is taken down; SQLite: its file is locked). Lenient mode keeps every source
        /// write and journals each one-sided write; strict mode says each is applied; both
        /// rejoin when the destination is back.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_destination_down_mid_run() {
            let bed = exclusive_bed!("dw_async_destination_down");
            let mut outage = backend::outage(&bed);
            let lenient = builder(&bed, Pattern::SrcFirst)
                .destination(outage.url.clone())
                .build()
                .unwrap();
            let strict = builder(&bed, Pattern::SrcFirst)
                .destination(outage.url.clone())
                .strict(true)
                .build()
                .unwrap();
            let mut l = lenient.get().await.unwrap();
            let mut s = strict.get().await.unwrap();
            let tag = |i: u32| format!("{}:{i}", bed.tag);
            insert(&mut l, &tag(1)).await.unwrap();
            insert(&mut s, &tag(2)).await.unwrap();
            outage.down();
            insert(&mut l, &tag(3)).await.unwrap();
            insert(&mut l, &tag(4)).await.unwrap();
            let err = Error::from_diesel(insert(&mut s, &tag(5)).await.unwrap_err());
            assert!(
                matches!(
                    err,
                    Error::SecondaryWriteFailed {
                        applied: Side::Source,
                        ..
                    }
                ),
                "{err:?}"
            );
            // Refused before anything is written when the destination cannot BEGIN (see the
            // sync lenient test); otherwise committed on the source as a partial commit.
            let refused = l
                .transaction::<_, diesel::result::Error, _>(async |c| insert(c, &tag(6)).await)
                .await
                .is_err();
            assert_eq!(refused, backend::OUTAGE_FAILS_BEGIN);
            if backend::OUTAGE_FAILS_PINGS {
                let health = lenient.health_check().await;
                assert_eq!(health.failed(), [Side::Destination], "{health}");
            }
            outage.up();
            insert(&mut l, &tag(7)).await.unwrap();
            insert(&mut s, &tag(8)).await.unwrap();

            let prefix = format!("{}:", bed.tag);
            let all: Vec<String> = (1..=8).filter(|&i| !(refused && i == 6)).map(tag).collect();
            assert_eq!(
                tags(&bed, Side::Source, &prefix),
                all,
                "no source write lost"
            );
            assert_eq!(
                tags(&bed, Side::Destination, &prefix),
                [tag(1), tag(2), tag(7), tag(8)]
            );
            let kinds: Vec<_> = journal(&lenient).iter().map(|e| (e.kind, e.side)).collect();
            let mut expected = vec![(EntryKind::WriteFailed, Side::Destination); 2];
            if !refused {
                expected.push((EntryKind::PartialCommit, Side::Destination));
            }
            assert_eq!(kinds, expected);
            assert_eq!(journal(&strict).len(), 1);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_retry_happens_only_for_transient_classes() {
            let bed = bed!("dw_async_retry_classes");
            let retry = Retry::attempts(5)
                .initial_backoff(Duration::from_millis(1))
                .max_backoff(Duration::from_millis(5));
            let pool = builder(&bed, Pattern::SrcFirst)
                .retry(retry)
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            let key = async |c: &mut DwConn| {
                diesel::insert_into(dw_keys::table)
                    .values((dw_keys::id.eq(900_002), dw_keys::tag.eq(&bed.tag)))
                    .execute(c)
                    .await
            };
            key(&mut conn).await.unwrap();
            let err = key(&mut conn).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _
                    )
                ),
                "{err:?}"
            );
            assert_eq!(pool.metrics().source.retries, 0);
            let Some(flaky) = backend::async_flaky_insert(&bed, &mut conn, "deadlock", 2).await
            else {
                return;
            };
            insert_node(&mut conn, &bed.tag, &flaky).await.unwrap();
            let metrics = pool.metrics();
            assert_eq!(
                (metrics.source.retries, metrics.destination.retries),
                (2, 2),
                "{metrics:?}"
            );
            for side in [Side::Source, Side::Destination] {
                assert_eq!(nodes(&bed, side, &bed.tag), ["flaky"], "{side}");
                assert_eq!(
                    backend::async_flaky_calls(&bed, &mut conn, side).await,
                    3,
                    "{side}"
                );
            }
            let unique = backend::async_flaky_insert(&bed, &mut conn, "unique", 1)
                .await
                .unwrap();
            assert!(insert_node(&mut conn, &bed.tag, &unique).await.is_err());
            assert_eq!(
                backend::async_flaky_calls(&bed, &mut conn, Side::Source).await,
                1
            );
            let flaky = backend::async_flaky_insert(&bed, &mut conn, "deadlock", 1)
                .await
                .unwrap();
            let result = conn
                .transaction::<_, diesel::result::Error, _>(async |c| {
                    insert_node(c, &bed.tag, &flaky).await
                })
                .await;
            assert!(result.is_err());
            assert_eq!(
                backend::async_flaky_calls(&bed, &mut conn, Side::Source).await,
                1,
                "not retried in a transaction"
            );
            assert_eq!(pool.metrics().source.retries, 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_pattern_switching_under_load() {
            let bed = bed!("dw_async_switching_under_load");
            let switch = PatternSwitch::new(Pattern::SrcOnly);
            let pool = builder(&bed, switch.clone()).max_size(8).build().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let landed = Arc::new(Mutex::new(BTreeMap::<String, Pattern>::new()));
            let ready = Arc::new(tokio::sync::Barrier::new(9));
            let mut writers = Vec::new();
            for t in 0..8 {
                let (pool, stop, landed, tag, ready) = (
                    pool.clone(),
                    stop.clone(),
                    landed.clone(),
                    bed.tag.clone(),
                    ready.clone(),
                );
                writers.push(tokio::spawn(async move {
                    let mut conn = pool.get().await.unwrap();
                    // Both sides connected before the walk starts (SQLite writers also wait for
                    // each other's locks).
                    for side in [Side::Source, Side::Destination] {
                        conn.with_side(side, async |c| {
                            c.batch_execute(backend::ASYNC_SESSION_SETUP).await
                        })
                        .await
                        .unwrap()
                        .unwrap();
                    }
                    ready.wait().await;
                    let mut i = 0;
                    while !AtomicBool::load(&stop, Ordering::Relaxed) {
                        let label = format!("{tag}:{t}:{i:05}");
                        insert(&mut conn, &label).await.unwrap();
                        landed
                            .lock()
                            .unwrap()
                            .insert(label, conn.last_pattern().unwrap());
                        i += 1;
                    }
                }));
            }
            ready.wait().await;
            // Each phase lasts until at least 20 writes ran under it, whatever the machine's speed.
            let writes_under = |pattern: Pattern| {
                landed
                    .lock()
                    .unwrap()
                    .values()
                    .filter(|&&p| p == pattern)
                    .count()
            };
            let mut walk = vec![Pattern::SrcOnly];
            walk.extend([
                Pattern::SrcFirst,
                Pattern::DstFirst,
                Pattern::DstOnly,
                Pattern::DstFirst,
                Pattern::SrcFirst,
                Pattern::SrcOnly,
            ]);
            for pattern in walk {
                let before = writes_under(pattern);
                switch.set(pattern).unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while writes_under(pattern) < before + 20 && std::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            stop.store(true, Ordering::Relaxed);
            for w in writers {
                w.await.unwrap();
            }
            let landed = landed.lock().unwrap();
            let prefix = format!("{}:", bed.tag);
            let (source, destination) = (
                tags(&bed, Side::Source, &prefix),
                tags(&bed, Side::Destination, &prefix),
            );
            let mut per_pattern = BTreeMap::<Pattern, usize>::new();
            for (label, pattern) in landed.iter() {
                *per_pattern.entry(*pattern).or_default() += 1;
                assert_eq!(
                    (
                        source.binary_search(label).is_ok(),
                        destination.binary_search(label).is_ok()
                    ),
                    (
                        pattern.writes_to(Side::Source),
                        pattern.writes_to(Side::Destination)
                    ),
                    "{label} written under {pattern}"
                );
            }
            assert_eq!(
                source.len() + destination.len(),
                landed
                    .values()
                    .map(|p| if p.is_double() { 2 } else { 1 })
                    .sum::<usize>()
            );
            for pattern in Pattern::ALL {
                assert!(
                    per_pattern.get(&pattern).copied().unwrap_or(0) > 0,
                    "no write under {pattern}: {per_pattern:?}"
                );
            }
            assert!(journal(&pool).is_empty(), "{:#?}", journal(&pool));
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_diverging_generated_keys_are_journaled() {
            let bed = bed!("dw_async_diverging_keys");
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().await.unwrap();
            backend::advance_destination_keys(&bed);
            let id = backend::async_insert_key(&mut conn, &bed.tag)
                .await
                .unwrap();
            let entries = journal(&pool);
            assert_eq!(entries.len(), 1, "{entries:#?}");
            assert_eq!(
                (entries[0].kind, entries[0].side),
                (EntryKind::Divergence, Side::Destination)
            );
            assert!(entries[0].error.contains("field(s) 0"), "{}", entries[0]);
            let ids = |side: Side| -> Vec<i32> {
                let query = dw_keys::table
                    .filter(dw_keys::tag.eq(&bed.tag))
                    .select(dw_keys::id);
                diesel::RunQueryDsl::load(query, &mut backend::direct(bed.url(side))).unwrap()
            };
            assert_eq!(ids(Side::Source).last().map(|&i| i64::from(i)), Some(id));
            assert_ne!(ids(Side::Source).last(), ids(Side::Destination).last());
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_metrics_and_health_check_per_side() {
            let bed = bed!("dw_async_metrics_health");
            let pool = pool(&bed, Pattern::SrcFirst);
            let mut conn = pool.get().await.unwrap();
            insert(&mut conn, &bed.tag).await.unwrap();
            let metrics = pool.metrics();
            assert!(
                metrics.source.successes >= 1 && metrics.destination.successes >= 1,
                "{metrics:?}"
            );
            assert!(pool.health_check().await.is_healthy());
            let broken = builder(&bed, Pattern::SrcFirst)
                .destination(backend::unreachable_url(&bed))
                .build()
                .unwrap();
            let health = broken.health_check().await;
            assert_eq!(health.failed(), [Side::Destination], "{health}");
            assert!(!health.to_string().contains("s3cret-pw"), "{health}");
            let mut conn = broken.get().await.unwrap();
            insert(&mut conn, &format!("{}:x", bed.tag)).await.unwrap();
            assert_eq!(journal(&broken).len(), 1);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_composes_with_async_rw_pool() {
            use diesel_rw::{AsyncRwPool, Node};
            let bed = bed!("dw_async_composes_with_rw_pool");
            let name = format!("{}-{}-{}", bed.tag, backend::NAME, std::process::id());
            let context = builder(&bed, Pattern::SrcFirst).register(&name).unwrap();
            let refused = AsyncRwPool::<DwConn>::builder()
                .primary(format!("shared={name}"))
                .replica(backend::replica(&bed))
                .build()
                .unwrap_err()
                .to_string();
            assert!(refused.contains("cannot have replicas"), "{refused}");
            assert!(
                refused.contains("AsyncDoubleWrite::<AsyncRwConnection<C>>"),
                "{refused}"
            );
            let pool = AsyncRwPool::<DwConn>::builder()
                .primary(format!("shared={name}"))
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            diesel::insert_into(dw_items::table)
                .values((
                    dw_items::tag.eq(&bed.tag),
                    dw_items::node.eq(diesel::dsl::sql::<Text>(backend::SIDE_ID)),
                ))
                .execute(&mut conn)
                .await
                .unwrap();
            assert_eq!(conn.last_route().unwrap().node, Node::Primary);
            for side in [Side::Source, Side::Destination] {
                assert_eq!(nodes(&bed, side, &bed.tag), [bed.id(side)], "{side}");
            }
            assert_eq!(context.metrics().snapshot().destination.failures, 0);
            diesel_rw::double_write::DoubleWriteContext::unregister(&name).unwrap();
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_skipping_a_phase_is_rejected_and_unknown_names_are_clear() {
            let bed = bed!("dw_async_phases");
            let switch = PatternSwitch::new(Pattern::SrcOnly);
            let pool = pool(&bed, switch.clone());
            let mut conn = pool.get().await.unwrap();
            assert!(matches!(
                switch.set(Pattern::DstOnly),
                Err(Error::InvalidTransition { .. })
            ));
            insert(&mut conn, &bed.tag).await.unwrap();
            assert!(nodes(&bed, Side::Destination, &bed.tag).is_empty());
            let spec = format!(
                "source={} destination={} pattern=sideways",
                bed.source, bed.destination
            );
            let err = DwConn::establish(&spec).await.unwrap_err().to_string();
            assert!(
                err.contains("unknown double-write pattern `sideways`"),
                "{err}"
            );
        }
    };
}
