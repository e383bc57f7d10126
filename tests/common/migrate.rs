//! Shared by the migrate tests (tests/migrate_backfill_*.rs): a source and a destination of one
//! backend, tables of this test's own name (prefix `mig1_`), and the suite of generic tests.
#![allow(dead_code)]

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_rw::migrate::{Dialect, MigrateConnection};

/// One test's source and destination, and the name of its tables.
pub struct MigBed {
    pub src: String,
    pub dst: String,
    /// The test's table name (`mig1_<test>`), the same on both sides.
    pub table: String,
    pub dir: Option<std::path::PathBuf>,
}

impl Drop for MigBed {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl MigBed {
    pub fn src<C: MigrateConnection>(&self) -> C {
        C::establish(&self.src).unwrap()
    }

    pub fn dst<C: MigrateConnection>(&self) -> C {
        C::establish(&self.dst).unwrap()
    }

    /// Runs `sql` on both sides.
    pub fn both<C: MigrateConnection>(&self, sql: &str) {
        self.src::<C>().batch_execute(sql).unwrap();
        self.dst::<C>().batch_execute(sql).unwrap();
    }

    /// Drops the test's tables (`<table>`, `<table>_*`) on both sides, and its checkpoints.
    pub fn reset<C: MigrateConnection>(&self, suffixes: &[&str]) {
        for url in [&self.src, &self.dst] {
            let mut c = C::establish(url).unwrap();
            for s in std::iter::once(&"").chain(suffixes) {
                let t = format!("{}{s}", self.table);
                c.batch_execute(&format!("DROP TABLE IF EXISTS {t}"))
                    .unwrap();
            }
            let _ = c.batch_execute(&format!(
                "DELETE FROM diesel_rw_backfill_checkpoint WHERE name LIKE '%{}%'",
                self.table
            ));
        }
    }
}

#[cfg(feature = "postgres")]
pub fn pg_bed(test: &str) -> Option<MigBed> {
    let (src, dst) = (
        crate::common::pg::primary_url(),
        crate::common::pg::dest_url(),
    );
    for url in [&src, &dst] {
        if let Err(e) = PgConnection::establish(url) {
            crate::common::unavailable("PostgreSQL", &e.to_string());
            return None;
        }
    }
    Some(MigBed {
        src,
        dst,
        table: format!("mig1_{test}"),
        dir: None,
    })
}

#[cfg(feature = "mysql")]
pub fn mysql_bed(test: &str) -> Option<MigBed> {
    let src = crate::common::mysql::primary_url();
    let dst = crate::common::env_or(
        "DIESEL_RW_MYSQL_DEST_URL",
        "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw_dst",
    );
    for url in [&src, &dst] {
        if let Err(e) = MysqlConnection::establish(url) {
            crate::common::unavailable("MariaDB", &e.to_string());
            return None;
        }
    }
    Some(MigBed {
        src,
        dst,
        table: format!("mig1_{test}"),
        dir: None,
    })
}

#[cfg(feature = "sqlite")]
pub fn sqlite_bed(test: &str) -> Option<MigBed> {
    let dir = crate::common::test_dir(&format!("mig1-{test}"));
    let src = dir.join("src.db").to_str().unwrap().to_owned();
    let dst = dir.join("dst.db").to_str().unwrap().to_owned();
    for url in [&src, &dst] {
        SqliteConnection::establish(url)
            .unwrap()
            .batch_execute("PRAGMA journal_mode = WAL")
            .unwrap();
    }
    Some(MigBed {
        src,
        dst,
        table: format!("mig1_{test}"),
        dir: Some(dir),
    })
}

/// `CREATE TABLE` of the typed table: a bigint key and one column of each kind the copy must
/// carry faithfully, all nullable.
pub fn typed_table_sql(d: Dialect, t: &str) -> String {
    match d {
        Dialect::Postgres => format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(12,3), \
             at TIMESTAMPTZ, local_at TIMESTAMP, data BYTEA, doc JSONB, flag BOOLEAN, \
             ratio DOUBLE PRECISION, note VARCHAR(40), day DATE)"
        ),
        Dialect::Mysql => format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT, amount DECIMAL(12,3), \
             at TIMESTAMP(6) NULL, local_at DATETIME(6), data VARBINARY(64), doc JSON, \
             flag BOOLEAN, ratio DOUBLE, note VARCHAR(40), day DATE) CHARACTER SET utf8mb4"
        ),
        _ => format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(12,3), \
             at TIMESTAMPTZ, local_at TIMESTAMP, data BLOB, doc JSON, flag BOOLEAN, \
             ratio DOUBLE, note VARCHAR(40), day DATE)"
        ),
    }
}

/// An INSERT of typed row `i` (every 7th all NULL but the key).
pub fn typed_row_sql(d: Dialect, t: &str, i: i64) -> String {
    if i % 7 == 3 {
        return format!("INSERT INTO {t} (id) VALUES ({i})");
    }
    let bin = match d {
        Dialect::Postgres => format!("'\\x00ff{:04x}'::bytea", i % 65536),
        Dialect::Mysql => format!("X'00FF{:04X}'", i % 65536),
        _ => format!("X'00ff{:04x}'", i % 65536),
    };
    let (s, a) = (i % 100_000, i % 1_000_000);
    let (at, flag) = match d {
        Dialect::Postgres => (
            format!("'2024-03-01 10:00:00.123456+02'::timestamptz + interval '{s} second'"),
            if i % 2 == 0 { "true" } else { "false" },
        ),
        Dialect::Mysql => (
            format!("TIMESTAMPADD(SECOND, {s}, '2024-03-01 08:00:00.123456')"),
            if i % 2 == 0 { "TRUE" } else { "FALSE" },
        ),
        _ => (
            format!("'2024-03-01T08:00:00.123456Z+{s}'"),
            if i % 2 == 0 { "1" } else { "0" },
        ),
    };
    format!(
        "INSERT INTO {t} (id, name, amount, at, local_at, data, doc, flag, ratio, note, day) VALUES \
         ({i}, 'név ☃ {i} ''q''  ', {a}.5{m}, {at}, '2024-03-01 10:00:00.5', {bin}, \
          '{{\"k\": [1, 2.50, \"é\"], \"i\": {i}}}', {flag}, {i}.1e0 / 3.0e0, 'padded  ', '2024-02-29')",
        m = i % 10
    )
}

/// Every row of `table` on `conn`, each as one text rendered by the server, in key order.
pub fn dump<C: MigrateConnection>(conn: &mut C, table: &str) -> Vec<String> {
    let desc = diesel_rw::migrate::TableSpec::new(table)
        .describe(conn)
        .unwrap();
    let d = C::DIALECT;
    let order = desc.order_by();
    let sql = match d {
        Dialect::Postgres => {
            format!("SELECT row_to_json(dw_t.*)::text AS value FROM {table} dw_t ORDER BY {order}")
        }
        _ => {
            use diesel_rw::migrate::ColumnKind;
            let pairs: Vec<String> = desc
                .columns
                .iter()
                .map(|c| {
                    let q = d.quote(&c.name);
                    let v = match (d, c.kind) {
                        (Dialect::Mysql, ColumnKind::Binary) => format!("HEX({q})"),
                        (Dialect::Mysql, _) => format!("CAST({q} AS CHAR)"),
                        (_, ColumnKind::Binary) => format!("hex({q})"),
                        (_, _) => format!("typeof({q}) || ':' || printf('%!.17g', {q}) || '|' || CAST({q} AS TEXT)"),
                    };
                    format!("'{}', {v}", c.name)
                })
                .collect();
            let obj = if d == Dialect::Mysql {
                "JSON_OBJECT"
            } else {
                "json_object"
            };
            format!(
                "SELECT {obj}({}) AS value FROM {table} ORDER BY {order}",
                pairs.join(", ")
            )
        }
    };
    conn.query_texts(&sql, &[])
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect()
}

/// The number of rows of `table`.
pub fn count<C: MigrateConnection>(conn: &mut C, table: &str) -> i64 {
    let v = conn
        .query_texts(
            &format!(
                "SELECT {} AS value FROM {table}",
                C::DIALECT.to_text("COUNT(*)")
            ),
            &[],
        )
        .unwrap();
    v[0].as_deref().unwrap().parse().unwrap()
}

/// A connection for the backfill: on SQLite with a busy timeout, as the double write's.
pub fn conn<C: MigrateConnection>(url: &str) -> C {
    let mut c = C::establish(url).unwrap();
    if C::DIALECT == Dialect::Sqlite {
        c.batch_execute("PRAGMA busy_timeout = 30000").unwrap();
    }
    c
}

/// A table of `id BIGINT PRIMARY KEY, v TEXT, n BIGINT`.
pub fn plain_table_sql(t: &str) -> String {
    format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v VARCHAR(100) NOT NULL, n BIGINT NOT NULL)")
}

/// Rows `from..to` of the plain table, in one INSERT per 500.
pub fn fill_plain<C: MigrateConnection>(conn: &mut C, t: &str, from: i64, to: i64) {
    let ids: Vec<i64> = (from..to).collect();
    for part in ids.chunks(500) {
        let values: Vec<String> = part.iter().map(|i| format!("({i}, 'v{i}', {i})")).collect();
        conn.batch_execute(&format!(
            "INSERT INTO {t} (id, v, n) VALUES {}",
            values.join(", ")
        ))
        .unwrap();
    }
}

/// On the destination: a table `<t>_ins (id, n)` counting the inserts of each key of `t`,
/// kept by a trigger (on MariaDB created with the admin URL: binary logging makes a trigger
/// need SUPER).
pub fn count_inserts<C: MigrateConnection>(bed: &MigBed) {
    let t = &bed.table;
    let mut conn: C = bed.dst();
    conn.batch_execute(&format!(
        "CREATE TABLE {t}_ins (id BIGINT PRIMARY KEY, n INT NOT NULL)"
    ))
    .unwrap();
    match C::DIALECT {
        Dialect::Postgres => conn
            .batch_execute(&format!(
                "DROP FUNCTION IF EXISTS {t}_count() CASCADE;
                 CREATE FUNCTION {t}_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   INSERT INTO {t}_ins VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = {t}_ins.n + 1;
                   RETURN NEW; END $$;
                 CREATE TRIGGER {t}_count AFTER INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_count();"
            ))
            .unwrap(),
        Dialect::Mysql => {
            let db = bed.dst.rsplit('/').next().unwrap().split('?').next().unwrap();
            let admin = crate::common::env_or(
                "DIESEL_RW_MYSQL_ADMIN_URL",
                "mysql://root@127.0.0.1:33306/mysql",
            );
            C::establish(&admin)
                .unwrap()
                .batch_execute(&format!(
                    "CREATE TRIGGER {db}.{t}_count AFTER INSERT ON {db}.{t} FOR EACH ROW
                       INSERT INTO {db}.{t}_ins VALUES (NEW.id, 1) ON DUPLICATE KEY UPDATE n = n + 1"
                ))
                .unwrap();
        }
        _ => conn
            .batch_execute(&format!(
                "CREATE TRIGGER {t}_count AFTER INSERT ON {t} FOR EACH ROW BEGIN
                   INSERT INTO {t}_ins VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1; END;"
            ))
            .unwrap(),
    }
}

/// Asserts that the two sides' rows (from [`dump`]) are the same, naming the first difference.
pub fn assert_same_rows(src: &[String], dst: &[String]) {
    let only_src: Vec<_> = src.iter().filter(|r| !dst.contains(r)).take(3).collect();
    let only_dst: Vec<_> = dst.iter().filter(|r| !src.contains(r)).take(3).collect();
    assert!(
        only_src.is_empty() && only_dst.is_empty() && src.len() == dst.len(),
        "{} rows on the source, {} on the destination; source only: {only_src:?}; destination only: {only_dst:?}",
        src.len(),
        dst.len()
    );
}

/// `(keys counted, the most inserts of one key)` from [`count_inserts`]'s table.
pub fn inserts<C: MigrateConnection>(conn: &mut C, t: &str) -> (i64, i64) {
    let v = conn
        .query_texts(
            &format!(
                "SELECT {} AS value FROM {t}_ins UNION ALL SELECT {} FROM {t}_ins",
                C::DIALECT.to_text("COUNT(*)"),
                C::DIALECT.to_text("COALESCE(MAX(n), 0)")
            ),
            &[],
        )
        .unwrap();
    let n = |i: usize| v[i].as_deref().unwrap().parse().unwrap();
    (n(0), n(1))
}

/// The checkpoint's `rows_copied` for `name` on `conn` (0 when there is none yet).
pub fn checkpoint_rows<C: MigrateConnection>(conn: &mut C, name: &str) -> u64 {
    diesel_rw::migrate::Checkpoint::load(conn, name)
        .unwrap()
        .map_or(0, |c| c.rows_copied)
}

/// Waits up to `secs` for `f` to hold.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The suite: `migrate_backfill_suite!(Conn, bed_fn)`.
macro_rules! migrate_backfill_suite {
    ($conn:ty, $bed:path) => {
        use diesel::connection::SimpleConnection;
        use diesel_rw::migrate::{Backfill, ColumnKind, Dialect, Key, MigrateConnection, TableSpec};
        use diesel_rw::Error;
        use mig::*;

        type Conn = $conn;
        const D: Dialect = <$conn as MigrateConnection>::DIALECT;

        macro_rules! bed {
            ($name:literal) => {
                match $bed($name) {
                    Some(bed) => bed,
                    None => return,
                }
            };
        }

        #[test]
        fn describe_reads_columns_kinds_and_key_from_the_catalog() {
            let bed = bed!("describe");
            bed.reset::<Conn>(&["_pair", "_nopk"]);
            let t = &bed.table;
            let mut src: Conn = bed.src();
            src.batch_execute(&typed_table_sql(D, t)).unwrap();
            let table = TableSpec::new(t.as_str()).describe(&mut src).unwrap();
            assert!(table.name.ends_with(t.as_str()), "{}", table.name);
            assert_eq!(table.key_names(), ["id"]);
            let kinds: Vec<(String, ColumnKind, bool)> = table
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.kind, c.nullable))
                .collect();
            let tz = ColumnKind::TimestampTz;
            assert_eq!(
                kinds,
                [
                    ("id".into(), ColumnKind::Integer, false),
                    ("name".into(), ColumnKind::Text, true),
                    ("amount".into(), ColumnKind::Numeric { scale: Some(3) }, true),
                    ("at".into(), tz, true),
                    ("local_at".into(), ColumnKind::Timestamp, true),
                    ("data".into(), ColumnKind::Binary, true),
                    ("doc".into(), ColumnKind::Json, true),
                    ("flag".into(), ColumnKind::Bool, true),
                    ("ratio".into(), ColumnKind::Float, true),
                    ("note".into(), ColumnKind::Text, true),
                    ("day".into(), ColumnKind::Date, true),
                ]
            );
            assert!(table.column("amount").unwrap().type_name.to_lowercase().contains("12,3"));

            // A composite key in key order (not column order), and a named "changed at".
            src.batch_execute(&format!(
                "CREATE TABLE {t}_pair (b INTEGER NOT NULL, a VARCHAR(20) NOT NULL, at DATE, PRIMARY KEY (a, b))"
            ))
            .unwrap();
            let pair = TableSpec::new(format!("{t}_pair")).changed_at("at").describe(&mut src).unwrap();
            assert_eq!(pair.key_names(), ["a", "b"]);
            assert_eq!(pair.changed_at_column().unwrap().name, "at");

            // Refusals, each naming what is wrong.
            src.batch_execute(&format!("CREATE TABLE {t}_nopk (x INTEGER)")).unwrap();
            let e = TableSpec::new(format!("{t}_nopk")).describe(&mut src).unwrap_err();
            assert!(matches!(e, Error::NoPrimaryKey { .. }), "{e}");
            assert!(e.to_string().contains(&format!("{t}_nopk` has no primary key")), "{e}");
            let named = TableSpec::new(format!("{t}_nopk")).key(["x"]).describe(&mut src).unwrap();
            assert_eq!(named.key_names(), ["x"]);
            let e = TableSpec::new(format!("{t}_missing")).describe(&mut src).unwrap_err();
            assert!(matches!(e, Error::UnknownTable { .. }), "{e}");
            assert!(e.to_string().contains(&format!("{t}_missing")), "{e}");
            let e = TableSpec::new(t.as_str()).changed_at("nope").describe(&mut src).unwrap_err();
            assert!(matches!(&e, Error::UnknownColumn { column, .. } if column == "nope"), "{e}");
            let e = TableSpec::new(t.as_str()).key(["id", "zz"]).describe(&mut src).unwrap_err();
            assert!(e.to_string().contains("no column `zz`"), "{e}");
            bed.reset::<Conn>(&["_pair", "_nopk"]);
        }

        #[test]
        fn backfill_copies_every_row_with_every_type_equal() {
            let bed = bed!("copy");
            bed.reset::<Conn>(&[]);
            let t = &bed.table;
            bed.both::<Conn>(&typed_table_sql(D, t));
            let mut src: Conn = conn(&bed.src);
            let mut dst: Conn = conn(&bed.dst);
            for i in 1..=300 {
                src.batch_execute(&typed_row_sql(D, t, i)).unwrap();
            }
            src.batch_execute(&typed_row_sql(D, t, 9_007_199_254_740_993)).unwrap();
            let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let log = seen.clone();
            let report = Backfill::new(t.as_str())
                .chunk_size(64)
                .target_chunk_time(None)
                .on_progress(move |p| log.lock().unwrap().push((p.rows_copied, p.rows_per_sec, p.eta)))
                .run(&mut src, &mut dst)
                .unwrap();
            assert!(report.done);
            assert_eq!(report.progress.rows_copied, 301);
            assert_eq!(report.progress.rows_inserted, 301);
            assert_eq!(report.progress.total_rows, Some(301));
            let seen = seen.lock().unwrap();
            assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [64, 128, 192, 256, 301, 301]);
            assert!(seen.iter().all(|s| s.1 > 0.0 && s.2.is_some()), "{seen:?}");
            let (a, b) = (dump(&mut src, t), dump(&mut dst, t));
            assert_eq!(a.len(), 301);
            assert_same_rows(&a, &b);
            // The values arrived as written, read back on the destination.
            let row: &str = &b[0];
            assert!(row.contains("név ☃ 1 'q'  "), "{row}");
            assert!(row.contains("1.51"), "{row}");
            // A second run: already done, copies nothing.
            let again = Backfill::new(t.as_str()).run(&mut src, &mut dst).unwrap();
            assert!(again.done);
            assert_eq!(again.progress.rows_this_run, 0);
            bed.reset::<Conn>(&[]);
        }

        #[test]
        fn backfill_copies_into_a_destination_with_more_columns() {
            let bed = bed!("morecols");
            bed.reset::<Conn>(&[]);
            let t = &bed.table;
            bed.both::<Conn>(&typed_table_sql(D, t));
            let mut src: Conn = conn(&bed.src);
            let mut dst: Conn = conn(&bed.dst);
            dst.batch_execute(&format!("ALTER TABLE {t} ADD COLUMN extra VARCHAR(10) DEFAULT 'dflt'"))
                .unwrap();
            for i in 1..=120 {
                src.batch_execute(&typed_row_sql(D, t, i)).unwrap();
            }
            let report = Backfill::new(t.as_str()).chunk_size(50).target_chunk_time(None).run(&mut src, &mut dst).unwrap();
            assert_eq!((report.progress.rows_copied, report.progress.rows_inserted), (120, 120));
            assert_eq!(count(&mut dst, &format!("{t} WHERE extra = 'dflt'")), 120);
            dst.batch_execute(&format!("ALTER TABLE {t} DROP COLUMN extra")).unwrap();
            assert_same_rows(&dump(&mut src, t), &dump(&mut dst, t));
            bed.reset::<Conn>(&[]);
        }

        #[test]
        fn backfill_keeps_the_rows_that_concurrent_double_writes_wrote() {
            let bed = bed!("concurrent");
            concurrent_double_writes(bed, false);
        }

        #[test]
        fn overlapped_backfill_keeps_the_rows_that_concurrent_double_writes_wrote() {
            let bed = bed!("concurrent_ov");
            concurrent_double_writes(bed, true);
        }

        fn concurrent_double_writes(bed: MigBed, overlapped: bool) {
            use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch};
            use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
            use std::sync::Arc;
            bed.reset::<Conn>(&[]);
            let t = bed.table.clone();
            bed.both::<Conn>(&plain_table_sql(&t));
            let mut src: Conn = conn(&bed.src);
            let mut dst: Conn = conn(&bed.dst);
            const ROWS: i64 = 3000;
            fill_plain(&mut src, &t, 1, ROWS + 1);
            let pool = DoubleWrite::<Conn>::builder()
                .source(&bed.src)
                .destination(&bed.dst)
                .pattern(PatternSwitch::new(Pattern::SrcFirst))
                .max_size(8)
                .on_connect(|_, c| {
                    if D == Dialect::Sqlite {
                        c.batch_execute("PRAGMA busy_timeout = 30000")
                    } else {
                        Ok(())
                    }
                })
                .build()
                .unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let writes = Arc::new(AtomicU64::new(0));
            let writers: Vec<_> = (0..8i64)
                .map(|w| {
                    let (pool, stop, writes, t) = (pool.clone(), stop.clone(), writes.clone(), t.clone());
                    std::thread::spawn(move || {
                        let mut c = pool.get().unwrap();
                        let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1);
                        let mut rand = move |n: u64| {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            seed % n
                        };
                        let mut next_new = 1_000_000 * (w + 1);
                        let mut i = 0u64;
                        while !stop.load(Ordering::Relaxed) || i < 40 {
                            i += 1;
                            // Each writer its own keys: two writers racing on one row could apply in
                            // different orders on the two sides, whatever the backfill does.
                            let k = 1 + w + 8 * rand(ROWS as u64 / 8) as i64;
                            // Autocommit writes are idempotent (absolute values); the
                            // relative update runs in a transaction (see the backfill docs).
                            let (sql, in_tx) = match rand(10) {
                                0..=3 => (format!("UPDATE {t} SET v = 'w{w}-{i}', n = {i} WHERE id = {k}"), false),
                                4 | 5 => (format!("UPDATE {t} SET v = 'tx{w}-{i}', n = n + 1 WHERE id = {k}"), true),
                                6 | 7 => {
                                    next_new += 1;
                                    (format!("INSERT INTO {t} (id, v, n) VALUES ({next_new}, 'new{w}-{i}', 0)"), false)
                                }
                                8 => (format!("DELETE FROM {t} WHERE id = {k}"), false),
                                _ => (format!("UPDATE {t} SET v = 'again{w}-{i}' WHERE id = {}", next_new.max(1_000_001)), false),
                            };
                            if in_tx {
                                diesel::Connection::transaction::<_, diesel::result::Error, _>(&mut *c, |c| c.batch_execute(&sql)).unwrap();
                            } else {
                                c.batch_execute(&sql).unwrap();
                            }
                            writes.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                    })
                })
                .collect();
            wait_for(120, "the writers start", || writes.load(Ordering::Relaxed) > 50);
            let before = writes.load(Ordering::Relaxed);
            let mut backfill = Backfill::new(t.as_str())
                .chunk_size(50)
                .target_chunk_time(None)
                .pause(std::time::Duration::from_millis(2));
            let report = if overlapped {
                let mut second: Conn = conn(&bed.src);
                backfill.run_overlapped(&mut src, &mut second, &mut dst).unwrap()
            } else {
                backfill.run(&mut src, &mut dst).unwrap()
            };
            let during = writes.load(Ordering::Relaxed) - before;
            stop.store(true, Ordering::Relaxed);
            for w in writers {
                w.join().unwrap();
            }
            assert!(report.done);
            assert!(during > 100, "only {during} double writes ran during the backfill");
            assert!(report.progress.rows_copied >= ROWS as u64 / 2, "{report:?}");
            let (a, b) = (dump(&mut src, &t), dump(&mut dst, &t));
            assert_same_rows(&a, &b);
            eprintln!("{} double writes during the backfill; {} rows on each side", during, a.len());
            bed.reset::<Conn>(&[]);
        }

        #[test]
        fn backfill_resumes_from_its_checkpoint_and_copies_each_row_once() {
            let bed = bed!("resume");
            bed.reset::<Conn>(&["_ins"]);
            let t = &bed.table;
            bed.both::<Conn>(&plain_table_sql(t));
            let mut src: Conn = conn(&bed.src);
            let mut dst: Conn = conn(&bed.dst);
            count_inserts::<Conn>(&bed);
            fill_plain(&mut src, t, 1, 1001);
            let first = Backfill::new(t.as_str())
                .chunk_size(70)
                .target_chunk_time(None)
                .stop_after_chunks(4)
                .run(&mut src, &mut dst)
                .unwrap();
            assert!(!first.done);
            assert_eq!(first.progress.rows_copied, 280);
            assert_eq!(count(&mut dst, t), 280);
            let second = Backfill::new(t.as_str())
                .chunk_size(70)
                .target_chunk_time(None)
                .run(&mut src, &mut dst)
                .unwrap();
            assert!(second.done);
            assert_eq!(second.resumed_after, Some(Key::new(vec!["280".into()])));
            assert_eq!(second.progress.rows_this_run, 720);
            assert_eq!(second.progress.rows_copied, 1000);
            assert_eq!(inserts(&mut dst, t), (1000, 1), "each row inserted once");
            assert_same_rows(&dump(&mut src, t), &dump(&mut dst, t));
            bed.reset::<Conn>(&["_ins"]);
        }

        #[test]
        fn overlapped_backfill_resumes_and_copies_each_row_once() {
            let bed = bed!("resume_ov");
            bed.reset::<Conn>(&["_ins"]);
            let t = &bed.table;
            bed.both::<Conn>(&plain_table_sql(t));
            let (mut src, mut second, mut dst): (Conn, Conn, Conn) = (conn(&bed.src), conn(&bed.src), conn(&bed.dst));
            count_inserts::<Conn>(&bed);
            fill_plain(&mut src, t, 1, 1001);
            let first = Backfill::new(t.as_str())
                .chunk_size(70)
                .target_chunk_time(None)
                .stop_after_chunks(5)
                .run_overlapped(&mut src, &mut second, &mut dst)
                .unwrap();
            assert!(!first.done);
            assert_eq!(first.progress.rows_copied, 350);
            assert_eq!(count(&mut dst, t), 350, "the chunk read ahead was not written");
            let second_run = Backfill::new(t.as_str())
                .chunk_size(70)
                .target_chunk_time(None)
                .run_overlapped(&mut src, &mut second, &mut dst)
                .unwrap();
            assert!(second_run.done);
            assert_eq!(second_run.resumed_after, Some(Key::new(vec!["350".into()])));
            assert_eq!(second_run.progress.rows_copied, 1000);
            assert_eq!(inserts(&mut dst, t), (1000, 1), "each row inserted once");
            assert_same_rows(&dump(&mut src, t), &dump(&mut dst, t));
            bed.reset::<Conn>(&["_ins"]);
        }

        /// Run by `backfill_killed_with_sigkill_resumes_and_copies_each_row_once` as a child
        /// process (this test binary), which it kills.
        #[test]
        #[ignore = "the child process of backfill_killed_with_sigkill_resumes_and_copies_each_row_once, which runs it with --ignored and kills it"]
        fn backfill_child_process() {
            let (Ok(src), Ok(dst), Ok(t)) = (
                std::env::var("MIG1_CHILD_SRC"),
                std::env::var("MIG1_CHILD_DST"),
                std::env::var("MIG1_CHILD_TABLE"),
            ) else {
                return;
            };
            let (mut s, mut d): (Conn, Conn) = (conn(&src), conn(&dst));
            Backfill::new(t.as_str())
                .chunk_size(25)
                .target_chunk_time(None)
                .pause(std::time::Duration::from_millis(30))
                .run(&mut s, &mut d)
                .unwrap();
        }

        #[test]
        fn backfill_killed_with_sigkill_resumes_and_copies_each_row_once() {
            let bed = bed!("killed");
            bed.reset::<Conn>(&["_ins"]);
            let t = &bed.table;
            bed.both::<Conn>(&plain_table_sql(t));
            let mut src: Conn = conn(&bed.src);
            let mut dst: Conn = conn(&bed.dst);
            count_inserts::<Conn>(&bed);
            fill_plain(&mut src, t, 1, 2001);
            let name = TableSpec::new(t.as_str()).describe(&mut src).unwrap().name;
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "backfill_child_process", "--ignored", "--nocapture"])
                .env("MIG1_CHILD_SRC", &bed.src)
                .env("MIG1_CHILD_DST", &bed.dst)
                .env("MIG1_CHILD_TABLE", t)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            wait_for(120, "the child copies 200 rows", || checkpoint_rows(&mut dst, &name) >= 200);
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let at_kill = checkpoint_rows(&mut dst, &name);
            assert!(at_kill < 2000, "the child finished before the kill ({at_kill} rows)");
            let resumed = Backfill::new(t.as_str()).run(&mut src, &mut dst).unwrap();
            assert!(resumed.done);
            assert!(resumed.resumed_after.is_some());
            assert_eq!(resumed.progress.rows_copied, 2000);
            assert_eq!(inserts(&mut dst, t), (2000, 1), "each row inserted once");
            assert_same_rows(&dump(&mut src, t), &dump(&mut dst, t));
            bed.reset::<Conn>(&["_ins"]);
        }

        #[test]
        fn backfill_refuses_bad_input_and_writes_nothing() {
            let bed = bed!("badinput");
            bed.reset::<Conn>(&["_other", "_nopk"]);
            let t = &bed.table;
            let mut src: Conn = conn(&bed.src);
            let mut dst: Conn = conn(&bed.dst);
            src.batch_execute(&plain_table_sql(t)).unwrap();
            fill_plain(&mut src, t, 1, 101);
            // The destination lacks column `n`.
            dst.batch_execute(&format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v VARCHAR(100) NOT NULL)")).unwrap();
            let e = Backfill::new(t.as_str()).run(&mut src, &mut dst).unwrap_err();
            assert!(matches!(&e, Error::DestinationMissingColumns { missing, .. } if missing == &["n".to_string()]), "{e}");
            assert!(e.to_string().contains("no column(s) `n`"), "{e}");
            assert_eq!(count(&mut dst, t), 0);
            // Unknown tables, on either side.
            let e = Backfill::new(format!("{t}_nosuch").as_str()).run(&mut src, &mut dst).unwrap_err();
            assert!(matches!(e, Error::UnknownTable { .. }) && e.to_string().contains("_nosuch"), "{e}");
            src.batch_execute(&plain_table_sql(&format!("{t}_other"))).unwrap();
            fill_plain(&mut src, &format!("{t}_other"), 1, 11);
            let e = Backfill::new(format!("{t}_other").as_str()).run(&mut src, &mut dst).unwrap_err();
            assert!(matches!(e, Error::UnknownTable { .. }), "{e}");
            // No primary key.
            src.batch_execute(&format!("CREATE TABLE {t}_nopk (x INTEGER)")).unwrap();
            dst.batch_execute(&format!("CREATE TABLE {t}_nopk (x INTEGER)")).unwrap();
            let e = Backfill::new(format!("{t}_nopk").as_str()).run(&mut src, &mut dst).unwrap_err();
            assert!(matches!(e, Error::NoPrimaryKey { .. }), "{e}");
            // A checkpoint of another table.
            dst.batch_execute(&format!("DROP TABLE {t}")).unwrap();
            dst.batch_execute(&plain_table_sql(t)).unwrap();
            dst.batch_execute(&plain_table_sql(&format!("{t}_other"))).unwrap();
            let cp = format!("{t}-shared");
            let first = Backfill::new(format!("{t}_other").as_str())
                .checkpoint_name(cp.as_str())
                .chunk_size(5)
                .target_chunk_time(None)
                .stop_after_chunks(1)
                .run(&mut src, &mut dst)
                .unwrap();
            assert_eq!(first.progress.rows_copied, 5);
            let e = Backfill::new(t.as_str()).checkpoint_name(cp.as_str()).run(&mut src, &mut dst).unwrap_err();
            assert!(matches!(e, Error::CheckpointMismatch { .. }), "{e}");
            assert!(e.to_string().contains(&format!("checkpoint `{cp}` is of table")), "{e}");
            assert_eq!(count(&mut dst, t), 0, "nothing written");
            bed.reset::<Conn>(&["_other", "_nopk"]);
        }

        #[test]
        fn next_chunk_walks_single_and_composite_keys_in_key_order() {
            let bed = bed!("chunks");
            bed.reset::<Conn>(&["_pair"]);
            let t = &bed.table;
            let mut src: Conn = bed.src();
            src.batch_execute(&typed_table_sql(D, t)).unwrap();
            for i in [5i64, 1, 9_007_199_254_740_993, 3, 2, -4] {
                src.batch_execute(&typed_row_sql(D, t, i)).unwrap();
            }
            let table = TableSpec::new(t.as_str()).describe(&mut src).unwrap();
            let mut after: Option<Key> = None;
            let mut seen = Vec::new();
            while let Some(chunk) = table.next_chunk(&mut src, after.as_ref(), 4).unwrap() {
                seen.push((chunk.first.to_string(), chunk.last.to_string(), chunk.rows));
                after = Some(chunk.last);
            }
            assert_eq!(
                seen,
                [
                    ("-4".into(), "3".into(), 4),
                    ("5".into(), "9007199254740993".into(), 2)
                ]
            );

            src.batch_execute(&format!(
                "CREATE TABLE {t}_pair (b INTEGER NOT NULL, a VARCHAR(20) NOT NULL, PRIMARY KEY (a, b))"
            ))
            .unwrap();
            src.batch_execute(&format!(
                "INSERT INTO {t}_pair (a, b) VALUES ('x', 2), ('x', 10), ('y', 1), ('w', 7), ('x', 1), ('v', 3)"
            ))
            .unwrap();
            let pair = TableSpec::new(format!("{t}_pair")).describe(&mut src).unwrap();
            let mut after: Option<Key> = None;
            let mut seen = Vec::new();
            while let Some(chunk) = pair.next_chunk(&mut src, after.as_ref(), 2).unwrap() {
                seen.push(format!("{}..{}:{}", chunk.first, chunk.last, chunk.rows));
                let json = chunk.last.to_json();
                assert_eq!(Key::from_json(&json).unwrap(), chunk.last);
                after = Some(chunk.last);
            }
            // Text order is the column's collation; the integer column orders numerically.
            assert_eq!(seen, ["(v, 3)..(w, 7):2", "(x, 1)..(x, 2):2", "(x, 10)..(y, 1):2"]);
            bed.reset::<Conn>(&["_pair"]);
        }
    };
}
