//! Shared by the key-counter suites (`tests/double_write_counters_*.rs`): a bed per backend with
//! the same functions, so `counters_suite!(backend)` and `counters_async_suite!(backend)` run the
//! same named tests on PostgreSQL (55432 -> 55434) and MariaDB (33306, two databases).
//!
//! The gate reads every counter of a database, so these suites cannot share a database with
//! the other suites (whose inserts move counters all the time, and whose keys a
//! `sync_sequences()` would move): each suite has its own pair of databases, created through the
//! admin URLs of `scripts/db env`, and emptied at the start of each test. Its tests take turns
//! (a file lock: `flock` locks of two opens of a file exclude each other within a process as
//! across processes) and each uses its own tables. They also hold
//! the double-write suites' destination lock shared, so that no test stops the PostgreSQL
//! destination server under them.
#![allow(dead_code, unused_macros, unused_imports)]

/// Held for the length of one test: this suite's databases are this test's alone.
pub struct Turn {
    _suite: std::fs::File,
    _destination: std::fs::File,
}

fn lock_file(name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join(name))
        .expect("open a lock file")
}

pub fn turn(suite: &str) -> Turn {
    let destination = lock_file("diesel-rw-double-write-destination.lock");
    destination
        .lock_shared()
        .expect("lock the destination lock file");
    let file = lock_file(&format!("diesel-rw-counters-{suite}.lock"));
    file.lock().expect("lock the suite's lock file");
    Turn {
        _suite: file,
        _destination: destination,
    }
}

/// `url` with its database (the path) replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let scheme_end = url.find("://").expect("a URL") + 3;
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let path = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |p| scheme_end + p);
    format!("{}/{database}{query}", &base[..path])
}

/// One test's two databases.
pub struct CounterBed {
    pub source: String,
    pub destination: String,
    _turn: Turn,
}

impl CounterBed {
    /// The connection string of a double write over this bed.
    pub fn spec(&self, pattern: &str) -> String {
        format!(
            "source={} destination={} pattern={pattern}",
            self.source, self.destination
        )
    }
}

#[cfg(feature = "postgres")]
pub mod pg {
    //! PostgreSQL: a database `diesel_rw_counters_SUITE` on the source server (55432) and on
    //! the destination server (55434), owned by the application user.

    use std::sync::Once;

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Integer, Nullable, Text};

    use super::{turn, with_database, CounterBed};
    use crate::common::env_or;

    pub type Conn = PgConnection;
    #[cfg(feature = "async")]
    pub type AsyncConn = diesel_async::AsyncPgConnection;
    pub const NAME: &str = "PostgreSQL";

    fn app_urls() -> (String, String) {
        (
            env_or(
                "DIESEL_RW_PG_PRIMARY_URL",
                "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
            ),
            env_or(
                "DIESEL_RW_PG_DEST_URL",
                "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55434/diesel_rw",
            ),
        )
    }

    fn admin_urls() -> (String, String) {
        (
            env_or(
                "DIESEL_RW_PG_ADMIN_URL",
                "postgres://postgres@127.0.0.1:55432/postgres",
            ),
            env_or(
                "DIESEL_RW_PG_DEST_ADMIN_URL",
                "postgres://postgres@127.0.0.1:55434/postgres",
            ),
        )
    }

    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    /// Creates `database` on the server of `admin` (once), owned by `owner`.
    fn create(admin: &str, database: &str, owner: &str) -> Result<(), String> {
        let mut admin = PgConnection::establish(admin).map_err(|e| e.to_string())?;
        let found: Found = diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM pg_database WHERE datname = '{database}'"
        ))
        .get_result(&mut admin)
        .map_err(|e| e.to_string())?;
        if found.n == 0 {
            admin
                .batch_execute(&format!("CREATE DATABASE {database} OWNER {owner}"))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn current_user(url: &str) -> Result<String, String> {
        let mut conn = PgConnection::establish(url).map_err(|e| e.to_string())?;
        diesel::select(diesel::dsl::sql::<Text>("current_user::text"))
            .get_result(&mut conn)
            .map_err(|e| e.to_string())
    }

    /// This test's databases, emptied; `None` (after `unavailable`) if a server is down.
    pub fn bed(suite: &str) -> Option<CounterBed> {
        let turn = turn(&format!("pg-{suite}"));
        let database = format!("diesel_rw_counters_{suite}");
        let (source, destination) = app_urls();
        let (source_admin, destination_admin) = admin_urls();
        for (app, admin, what) in [
            (&source, &source_admin, "source"),
            (&destination, &destination_admin, "destination"),
        ] {
            let made = current_user(app).and_then(|owner| create(admin, &database, &owner));
            if let Err(e) = made {
                crate::common::unavailable(NAME, &format!("{what}: {e}"));
                return None;
            }
        }
        let bed = CounterBed {
            source: with_database(&source, &database),
            destination: with_database(&destination, &database),
            _turn: turn,
        };
        for url in [&bed.source, &bed.destination] {
            direct(url)
                .batch_execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
                .unwrap();
        }
        Some(bed)
    }

    pub fn direct(url: &str) -> Conn {
        PgConnection::establish(url).unwrap()
    }

    /// Creates `table` with a generated key `id` (a `SERIAL`) on the server of `url`.
    pub fn create_keyed(url: &str, table: &str) {
        direct(url)
            .batch_execute(&format!(
                "CREATE TABLE {table} (id SERIAL PRIMARY KEY, x TEXT)"
            ))
            .unwrap();
    }

    /// Sets `table`'s key counter on the server of `url` so that the value the backend reports
    /// is `value`: the sequence's last value.
    pub fn set_counter(url: &str, table: &str, value: i64) {
        direct(url)
            .batch_execute(&format!("SELECT setval('{table}_id_seq', {value})"))
            .unwrap();
    }

    #[derive(QueryableByName)]
    struct LastValue {
        #[diesel(sql_type = Nullable<BigInt>)]
        v: Option<i64>,
    }

    /// `table`'s key counter, as the server says, read from the sequence itself.
    pub fn server_counter(url: &str, table: &str) -> Option<i64> {
        diesel::sql_query(format!(
            "SELECT CASE WHEN is_called THEN last_value END AS v FROM {table}_id_seq"
        ))
        .get_result::<LastValue>(&mut direct(url))
        .unwrap()
        .v
    }

    /// How the library shows `table`'s counter.
    pub fn shown(table: &str) -> String {
        format!("public.{table}.id (sequence public.{table}_id_seq)")
    }

    /// How `sync_sequences()` names `table`'s counter.
    pub fn sync_name(table: &str) -> String {
        format!("public.{table}_id_seq")
    }

    /// The table's name as the library reports it in `KeyCounter::table`.
    pub fn table_name(table: &str) -> String {
        format!("public.{table}")
    }

    /// The sequence, as the library reports it in `KeyCounter::sequence`.
    pub fn sequence_name(table: &str) -> Option<String> {
        Some(sync_name(table))
    }

    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = Integer)]
        id: i32,
    }

    /// The ids of `table`'s rows with `x`, on the server of `url`.
    pub fn ids(url: &str, table: &str, x: &str) -> Vec<i32> {
        diesel::sql_query(format!(
            "SELECT id FROM {table} WHERE x = '{x}' ORDER BY id"
        ))
        .load::<Id>(&mut direct(url))
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
    }

    /// An extra counter no column owns, behind on the destination: a free-standing sequence,
    /// shown by its name.
    pub fn free_counter(bed: &CounterBed, name: &str, source: i64, destination: i64) -> String {
        for (url, value) in [(&bed.source, source), (&bed.destination, destination)] {
            direct(url)
                .batch_execute(&format!(
                    "CREATE SEQUENCE {name}; SELECT setval('{name}', {value});"
                ))
                .unwrap();
        }
        format!("sequence public.{name}")
    }
}

#[cfg(feature = "mysql")]
pub mod mysql {
    //! MariaDB: the databases `diesel_rw_counters_SUITE` (source) and
    //! `diesel_rw_counters_SUITE_dst` (destination) on 33306, the application user granted all
    //! on them.

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Integer, Nullable, Text, Unsigned};

    use super::{turn, with_database, CounterBed};
    use crate::common::env_or;

    pub type Conn = MysqlConnection;
    #[cfg(feature = "async")]
    pub type AsyncConn = diesel_async::AsyncMysqlConnection;
    pub const NAME: &str = "MariaDB";

    fn app_urls() -> (String, String) {
        (
            env_or(
                "DIESEL_RW_MYSQL_PRIMARY_URL",
                "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw",
            ),
            env_or(
                "DIESEL_RW_MYSQL_DEST_URL",
                "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw_dst",
            ),
        )
    }

    fn admin_url() -> String {
        env_or(
            "DIESEL_RW_MYSQL_ADMIN_URL",
            "mysql://root@127.0.0.1:33306/mysql",
        )
    }

    /// The application user as a grantee: `'user'@'host'`.
    fn grantee(url: &str) -> Result<String, String> {
        let mut conn = MysqlConnection::establish(url).map_err(|e| e.to_string())?;
        let user: String = diesel::select(diesel::dsl::sql::<Text>("CURRENT_USER()"))
            .get_result(&mut conn)
            .map_err(|e| e.to_string())?;
        let (name, host) = user.rsplit_once('@').unwrap_or((&user, "%"));
        Ok(format!("'{name}'@'{host}'"))
    }

    /// This test's databases, emptied (dropped and created again); `None` (after
    /// `unavailable`) if the server is down.
    pub fn bed(suite: &str) -> Option<CounterBed> {
        let turn = turn(&format!("mysql-{suite}"));
        let (source, destination) = app_urls();
        let databases = [
            format!("diesel_rw_counters_{suite}"),
            format!("diesel_rw_counters_{suite}_dst"),
        ];
        let setup = grantee(&source).and_then(|grantee| {
            let mut admin =
                MysqlConnection::establish(&admin_url()).map_err(|e| format!("admin: {e}"))?;
            for db in &databases {
                admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; \
                         GRANT ALL ON {db}.* TO {grantee};"
                    ))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        if let Err(e) = setup {
            crate::common::unavailable(NAME, &e);
            return None;
        }
        Some(CounterBed {
            source: with_database(&source, &databases[0]),
            destination: with_database(&destination, &databases[1]),
            _turn: turn,
        })
    }

    pub fn direct(url: &str) -> Conn {
        MysqlConnection::establish(url).unwrap()
    }

    /// Creates `table` with a generated key `id` (`AUTO_INCREMENT`) in the database of `url`.
    pub fn create_keyed(url: &str, table: &str) {
        direct(url)
            .batch_execute(&format!(
                "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, x VARCHAR(64))"
            ))
            .unwrap();
    }

    /// Sets `table`'s key counter in the database of `url` so that the value the backend
    /// reports is `value`: the next value `AUTO_INCREMENT` issues.
    pub fn set_counter(url: &str, table: &str, value: i64) {
        direct(url)
            .batch_execute(&format!("ALTER TABLE {table} AUTO_INCREMENT = {value}"))
            .unwrap();
    }

    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = Nullable<Unsigned<BigInt>>)]
        #[diesel(column_name = "Auto_increment")]
        auto_increment: Option<u64>,
    }

    /// `table`'s key counter, as the server says through `SHOW TABLE STATUS`.
    pub fn server_counter(url: &str, table: &str) -> Option<i64> {
        diesel::sql_query(format!("SHOW TABLE STATUS LIKE '{table}'"))
            .get_result::<Status>(&mut direct(url))
            .unwrap()
            .auto_increment
            .map(|v| v as i64)
    }

    pub fn shown(table: &str) -> String {
        format!("{table}.id")
    }

    pub fn sync_name(table: &str) -> String {
        table.to_owned()
    }

    pub fn table_name(table: &str) -> String {
        table.to_owned()
    }

    pub fn sequence_name(_table: &str) -> Option<String> {
        None
    }

    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = Integer)]
        id: i32,
    }

    pub fn ids(url: &str, table: &str, x: &str) -> Vec<i32> {
        diesel::sql_query(format!(
            "SELECT id FROM {table} WHERE x = '{x}' ORDER BY id"
        ))
        .load::<Id>(&mut direct(url))
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
    }

    /// An extra counter behind on the destination: another table.
    pub fn free_counter(bed: &CounterBed, name: &str, source: i64, destination: i64) -> String {
        for (url, value) in [(&bed.source, source), (&bed.destination, destination)] {
            create_keyed(url, name);
            set_counter(url, name, value);
        }
        shown(name)
    }
}

/// The sync suite: `counters_suite!(pg)` or `counters_suite!(mysql)`.
macro_rules! counters_suite {
    ($backend:ident) => {
        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel_rw::double_write::{DoubleWriteConnection, Pattern, Side};
        use diesel_rw::Error;

        use counters::$backend as backend;
        use counters::$backend::Conn;

        const SUITE: &str = "sync";

        macro_rules! bed {
            () => {
                match backend::bed(SUITE) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        fn connect(bed: &counters::CounterBed, pattern: &str) -> DoubleWriteConnection<Conn> {
            DoubleWriteConnection::<Conn>::establish(&bed.spec(pattern)).unwrap()
        }

        /// `table` on both sides, its counter at `source` on the source and `destination` on
        /// the destination.
        fn keyed(bed: &counters::CounterBed, table: &str, source: i64, destination: i64) {
            for (url, value) in [(&bed.source, source), (&bed.destination, destination)] {
                backend::create_keyed(url, table);
                backend::set_counter(url, table, value);
            }
        }

        #[test]
        fn the_counters_are_reported_as_the_servers_read_them() {
            let bed = bed!();
            let table = "ctr_read";
            keyed(&bed, table, 500, 10);
            let mut conn = connect(&bed, "src_first");
            for (side, url, value) in [
                (Side::Source, &bed.source, 500),
                (Side::Destination, &bed.destination, 10),
            ] {
                assert_eq!(backend::server_counter(url, table), Some(value));
                let counters = conn.key_counters(side).unwrap();
                assert_eq!(counters.len(), 1, "{counters:?}");
                let counter = &counters[0];
                assert_eq!(counter.table, Some(backend::table_name(table)));
                assert_eq!(counter.column.as_deref(), Some("id"));
                assert_eq!(counter.sequence, backend::sequence_name(table));
                assert_eq!(counter.value, Some(value), "{side}");
                assert_eq!(counter.to_string(), backend::shown(table));
            }
            // Rows inserted on the source alone move its counter; the next read sees it.
            conn.with_side(Side::Source, |c| {
                c.batch_execute(&format!("INSERT INTO {table} (x) VALUES ('a'), ('b')"))
            })
            .unwrap()
            .unwrap();
            let now = backend::server_counter(&bed.source, table);
            assert!(now > Some(500), "{now:?}");
            assert_eq!(conn.key_counters(Side::Source).unwrap()[0].value, now);
        }

        #[test]
        fn the_step_to_dst_first_is_refused_while_a_destination_counter_is_behind() {
            let bed = bed!();
            let table = "ctr_refused";
            keyed(&bed, table, 500, 10);
            let free = backend::free_counter(&bed, "ctr_refused_free", 70, 7);
            let mut conn = connect(&bed, "src_first");

            let behind = conn.counters_behind().unwrap();
            assert_eq!(behind.len(), 2, "{behind:?}");
            let lag = behind
                .iter()
                .find(|l| l.destination.to_string() == backend::shown(table))
                .expect("the table is listed");
            assert_eq!((lag.source.value, lag.destination.value), (Some(500), Some(10)));

            let err = conn.advance_pattern().unwrap_err();
            let message = err.to_string();
            eprintln!("{message}");
            assert!(
                matches!(&err, Error::KeyCountersBehind { behind: listed } if *listed == behind),
                "{err:?}"
            );
            assert!(
                message.contains(&format!(
                    "{}: source 500, destination 10",
                    backend::shown(table)
                )),
                "{message}"
            );
            assert!(
                message.contains(&format!("{free}: source 70, destination 7")),
                "{message}"
            );
            assert!(message.contains("nothing was switched"), "{message}");
            assert!(message.contains("sync_sequences()"), "{message}");
            assert!(message.contains("advance_pattern_forced(reason)"), "{message}");
            // Nothing switched; the counters are as they were.
            assert_eq!(conn.switch().get(), Pattern::SrcFirst);
            assert_eq!(backend::server_counter(&bed.destination, table), Some(10));
            // Refused again, the same way, as long as the counter is behind.
            assert!(matches!(
                conn.advance_pattern(),
                Err(Error::KeyCountersBehind { .. })
            ));
            assert_eq!(conn.switch().get(), Pattern::SrcFirst);
        }

        #[test]
        fn after_sync_sequences_the_step_goes_through_and_both_sides_issue_the_same_keys() {
            let bed = bed!();
            let (table, ahead) = ("ctr_synced", "ctr_synced_ahead");
            keyed(&bed, table, 500, 10);
            keyed(&bed, ahead, 20, 5000);
            let mut conn = connect(&bed, "src_first");
            assert!(conn.advance_pattern().is_err());

            let report = conn.sync_sequences().unwrap();
            assert_eq!(report.synced, [(backend::sync_name(table), 500)], "{report:?}");
            assert_eq!(
                report.ahead,
                [(backend::sync_name(ahead), 20, 5000)],
                "{report:?}"
            );
            assert!(report.missing.is_empty(), "{report:?}");
            // Set on the server; the one further on the destination was not moved back.
            assert_eq!(backend::server_counter(&bed.destination, table), Some(500));
            assert_eq!(backend::server_counter(&bed.destination, ahead), Some(5000));
            assert!(conn.counters_behind().unwrap().is_empty());
            // Syncing again changes nothing.
            let again = conn.sync_sequences().unwrap();
            assert!(again.synced.is_empty(), "{again:?}");

            assert_eq!(conn.advance_pattern().unwrap(), Pattern::DstFirst);
            assert_eq!(conn.switch().get(), Pattern::DstFirst);
            // The destination generates the key first, the source then generates the same.
            conn.batch_execute(&format!("INSERT INTO {table} (x) VALUES ('dst_first')"))
                .unwrap();
            let on_source = backend::ids(&bed.source, table, "dst_first");
            assert_eq!(on_source.len(), 1);
            assert_eq!(backend::ids(&bed.destination, table, "dst_first"), on_source);
            assert!(on_source[0] >= 500, "{on_source:?}");
        }

        #[test]
        fn forced_the_step_goes_through_while_behind_and_the_reason_is_logged() {
            let bed = bed!();
            let table = "ctr_forced";
            keyed(&bed, table, 500, 10);
            let mut conn = connect(&bed, "src_first");
            assert!(conn.advance_pattern().is_err());
            let err = conn.advance_pattern_forced("  ").unwrap_err();
            assert!(matches!(err, Error::InvalidState(_)), "{err:?}");
            assert_eq!(conn.switch().get(), Pattern::SrcFirst);

            let reason = "keys written explicitly; counters-suite-forced";
            let mut advanced = None;
            let logs = crate::common::capture_logs(|| {
                advanced = Some(conn.advance_pattern_forced(reason));
            });
            assert_eq!(advanced.unwrap().unwrap(), Pattern::DstFirst);
            assert_eq!(conn.switch().get(), Pattern::DstFirst);
            let line = logs
                .lines()
                .find(|l| l.contains(reason))
                .unwrap_or_else(|| panic!("no log line with the reason in:\n{logs}"));
            assert!(line.contains("WARN"), "{line}");
            assert!(line.contains("diesel_rw::double_write"), "{line}");
            assert!(line.contains("dst_first"), "{line}");
            // Still behind: forcing moved no counter.
            assert_eq!(backend::server_counter(&bed.destination, table), Some(10));
            assert_eq!(conn.counters_behind().unwrap().len(), 1);
        }

        #[test]
        fn only_the_step_to_dst_first_is_gated() {
            let bed = bed!();
            let table = "ctr_other_steps";
            keyed(&bed, table, 500, 10);
            let mut conn = connect(&bed, "src_only");
            assert_eq!(conn.advance_pattern().unwrap(), Pattern::SrcFirst);
            assert!(conn.advance_pattern().is_err());
            conn.switch().force(Pattern::DstFirst);
            assert_eq!(conn.advance_pattern().unwrap(), Pattern::DstOnly);
            assert!(matches!(
                conn.advance_pattern(),
                Err(Error::InvalidTransition {
                    from: Pattern::DstOnly,
                    ..
                })
            ));
            assert!(conn.advance_pattern_forced("past the end").is_err());
            assert_eq!(conn.switch().get(), Pattern::DstOnly);
        }

        #[test]
        fn sync_sequences_inside_a_transaction_is_refused() {
            let bed = bed!();
            let table = "ctr_in_tx";
            keyed(&bed, table, 500, 10);
            let mut conn = connect(&bed, "src_first");
            let err = conn
                .transaction::<(), Error, _>(|c| c.sync_sequences().map(drop))
                .unwrap_err();
            assert!(
                matches!(&err, Error::InvalidState(m) if m.contains("inside a transaction")),
                "{err:?}"
            );
            assert_eq!(backend::server_counter(&bed.destination, table), Some(10));
        }
    };
}

/// The async suite: `counters_async_suite!(pg)` or `counters_async_suite!(mysql)`.
macro_rules! counters_async_suite {
    ($backend:ident) => {
        use diesel_async::{AsyncConnection, SimpleAsyncConnection};
        use diesel_rw::double_write::{AsyncDoubleWriteConnection, Pattern, Side};
        use diesel_rw::Error;

        use counters::$backend as backend;
        use counters::$backend::AsyncConn;

        type DwConn = AsyncDoubleWriteConnection<AsyncConn>;
        const SUITE: &str = "async";

        macro_rules! bed {
            () => {
                match tokio::task::spawn_blocking(|| backend::bed(SUITE))
                    .await
                    .unwrap()
                {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        async fn connect(bed: &counters::CounterBed, pattern: &str) -> DwConn {
            DwConn::establish(&bed.spec(pattern)).await.unwrap()
        }

        /// The sync helpers touch the servers directly: off the runtime's threads.
        async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
            tokio::task::spawn_blocking(f).await.unwrap()
        }

        async fn keyed(bed: &counters::CounterBed, table: &'static str, source: i64, destination: i64) {
            let (s, d) = (bed.source.clone(), bed.destination.clone());
            blocking(move || {
                for (url, value) in [(&s, source), (&d, destination)] {
                    backend::create_keyed(url, table);
                    backend::set_counter(url, table, value);
                }
            })
            .await;
        }

        async fn server_counter(url: &str, table: &'static str) -> Option<i64> {
            let url = url.to_owned();
            blocking(move || backend::server_counter(&url, table)).await
        }

        /// The futures of the gate can be spawned (an admin endpoint runs them in a handler).
        #[test]
        fn the_futures_are_send() {
            fn send<T: Send>(_: &T) {}
            fn check(conn: &mut DwConn) {
                send(&conn.key_counters(Side::Source));
                send(&conn.counters_behind());
                send(&conn.sync_sequences());
                send(&conn.advance_pattern());
                send(&conn.advance_pattern_forced("reason"));
            }
            let _ = check;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_counters_are_reported_as_the_servers_read_them() {
            let bed = bed!();
            let table = "actr_read";
            keyed(&bed, table, 500, 10).await;
            let mut conn = connect(&bed, "src_first").await;
            for (side, url, value) in [
                (Side::Source, &bed.source, 500),
                (Side::Destination, &bed.destination, 10),
            ] {
                assert_eq!(server_counter(url, table).await, Some(value));
                let counters = conn.key_counters(side).await.unwrap();
                assert_eq!(counters.len(), 1, "{counters:?}");
                assert_eq!(counters[0].value, Some(value), "{side}");
                assert_eq!(counters[0].to_string(), backend::shown(table));
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_step_to_dst_first_is_refused_while_behind_then_goes_through_after_sync() {
            let bed = bed!();
            let table = "actr_refused";
            keyed(&bed, table, 500, 10).await;
            let mut conn = connect(&bed, "src_first").await;

            let err = conn.advance_pattern().await.unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(&err, Error::KeyCountersBehind { behind } if behind.len() == 1),
                "{err:?}"
            );
            assert!(
                message.contains(&format!(
                    "{}: source 500, destination 10",
                    backend::shown(table)
                )),
                "{message}"
            );
            assert_eq!(conn.switch().get(), Pattern::SrcFirst);
            assert_eq!(server_counter(&bed.destination, table).await, Some(10));

            let report = conn.sync_sequences().await.unwrap();
            assert_eq!(report.synced, [(backend::sync_name(table), 500)], "{report:?}");
            assert_eq!(server_counter(&bed.destination, table).await, Some(500));
            assert!(conn.counters_behind().await.unwrap().is_empty());
            assert_eq!(conn.advance_pattern().await.unwrap(), Pattern::DstFirst);

            conn.batch_execute(&format!("INSERT INTO {table} (x) VALUES ('dst_first')"))
                .await
                .unwrap();
            let (s, d) = (bed.source.clone(), bed.destination.clone());
            let (on_source, on_destination) = blocking(move || {
                (
                    backend::ids(&s, table, "dst_first"),
                    backend::ids(&d, table, "dst_first"),
                )
            })
            .await;
            assert_eq!(on_source.len(), 1);
            assert_eq!(on_source, on_destination);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn forced_the_step_goes_through_while_behind() {
            let bed = bed!();
            let table = "actr_forced";
            keyed(&bed, table, 500, 10).await;
            let mut conn = connect(&bed, "src_first").await;
            assert!(conn.advance_pattern().await.is_err());
            assert!(conn.advance_pattern_forced("").await.is_err());
            assert_eq!(conn.switch().get(), Pattern::SrcFirst);
            assert_eq!(
                conn.advance_pattern_forced("ids are written explicitly")
                    .await
                    .unwrap(),
                Pattern::DstFirst
            );
            assert_eq!(conn.switch().get(), Pattern::DstFirst);
            assert_eq!(server_counter(&bed.destination, table).await, Some(10));
            assert_eq!(conn.counters_behind().await.unwrap().len(), 1);
        }
    };
}
