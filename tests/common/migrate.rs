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
            &format!("SELECT CAST(COUNT(*) AS CHAR(20)) AS value FROM {table}"),
            &[],
        )
        .unwrap();
    v[0].as_deref().unwrap().parse().unwrap()
}

/// The suite: `migrate_backfill_suite!(Conn, bed_fn)`.
macro_rules! migrate_backfill_suite {
    ($conn:ty, $bed:path) => {
        use diesel::connection::SimpleConnection;
        use diesel_rw::migrate::{ColumnKind, Dialect, Key, MigrateConnection, TableSpec};
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
