//! Verify and Repair on SQLite: two database files per test.
#![cfg(feature = "sqlite")]

mod common;
#[macro_use]
#[path = "common/migrate_verify.rs"]
mod mv;
#[macro_use]
#[path = "common/migrate_journal.rs"]
mod mj;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use mv::{eq, ne, Canon, Case, Values, VerifyBed, Writer};

struct Lite;

impl VerifyBed for Lite {
    type Conn = SqliteConnection;
    const NAME: &'static str = "SQLite";
    const BIGINT: &'static str = "BIGINT";
    const TEXT: &'static str = "TEXT";
    const DECIMAL: &'static str = "NUMERIC(12,2)";
    const TIMESTAMPTZ: &'static str = "TIMESTAMP";
    const NOW: &'static str = "strftime('%Y-%m-%d %H:%M:%f', 'now')";
    const UNCOMPARABLE: Option<(&'static str, &'static str, Canon)> = None;

    fn urls(test: &str) -> Option<(String, String)> {
        let dir = common::test_dir(&format!("mig2-{test}"));
        let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
        for path in [&src, &dst] {
            Self::connect(path.to_str().unwrap())
                .batch_execute("PRAGMA journal_mode = WAL")
                .unwrap();
        }
        Some((
            src.to_str().unwrap().to_owned(),
            dst.to_str().unwrap().to_owned(),
        ))
    }

    fn connect(url: &str) -> SqliteConnection {
        let mut c = SqliteConnection::establish(url).unwrap();
        c.batch_execute("PRAGMA busy_timeout = 30000").unwrap();
        c
    }

    fn text(expr: &str) -> String {
        format!("CAST({expr} AS TEXT)")
    }

    fn double_writer(src: &str, dst: &str) -> Writer {
        double_writer!(SqliteConnection, src, dst, "PRAGMA busy_timeout = 30000")
    }

    fn cases(values: Values) -> Case {
        match values {
            Values::NullEmptyTrailing => Case::new(
                "VARCHAR(10)",
                vec![
                    ne("NULL", "''"),
                    ne("'a'", "'a '"),
                    ne("' a'", "'a'"),
                    eq("''", "''"),
                    eq("NULL", "NULL"),
                    eq("'x y'", "'x y'"),
                ],
            ),
            Values::FixedChar => Case::new(
                "CHAR(4)",
                vec![
                    eq("'a'", "'a   '"),
                    eq("'ab'", "'ab'"),
                    ne("'a'", "' a'"),
                    ne("NULL", "''"),
                ],
            ),
            Values::NumericScale => Case {
                source_type: "NUMERIC(12,2)",
                destination_type: "DECIMAL(14,4)",
                pairs: vec![
                    eq("1.50", "1.5"),
                    eq("100", "100.000"),
                    eq("-0.00", "0"),
                    eq("'2.50'", "2.5"),
                    ne("1.5", "1.51"),
                    ne("10", "1"),
                ],
                source_session: "",
                destination_session: "",
            },
            Values::Float => Case::new(
                "DOUBLE",
                vec![
                    ne("0.1 + 0.2", "0.3"),
                    eq("-0.0", "0.0"),
                    ne("0.3333333333333333", "0.33333333333333337"),
                    eq("1e308", "1e308"),
                    eq("1.0 / 3", "0.3333333333333333"),
                    eq("2.0", "2"),
                ],
            ),
            Values::Timestamps => Case::new(
                "TIMESTAMP",
                vec![
                    eq("'2020-01-01 02:00:00+02:00'", "'2020-01-01 00:00:00'"),
                    eq("'2020-01-01T00:00:00.500'", "'2020-01-01 00:00:00.5'"),
                    ne(
                        "'2020-01-01 00:00:00.123456'",
                        "'2020-01-01 00:00:00.123457'",
                    ),
                    ne("'2020-01-01 00:00:00'", "'2020-01-01 00:00:01'"),
                    eq("'2020-01-01 00:00:00.5Z'", "'2020-01-01 00:00:00.500000'"),
                ],
            ),
            Values::WallClock => Case::new(
                "DATETIME",
                vec![
                    eq("'2020-01-01 00:00:00'", "'2020-01-01 00:00:00.000'"),
                    ne("'2020-01-01 00:00:00'", "'2020-01-01 00:00:01'"),
                    eq("'2020-01-01 10:00:00.25'", "'2020-01-01 10:00:00.250'"),
                ],
            ),
            Values::Binary => Case::new(
                "BLOB",
                vec![
                    eq("x'00ff'", "x'00ff'"),
                    ne("x'00'", "x'0000'"),
                    ne("x''", "NULL"),
                    ne("x'41'", "x'61'"),
                    ne("x'41'", "'A'"),
                ],
            ),
            Values::Json => Case::new(
                "JSON",
                vec![
                    eq(r#"'{"b":1, "a":[1, 2]}'"#, r#"'{"a":[1,2],"b":1}'"#),
                    ne(r#"'{"a":[1,2]}'"#, r#"'{"a":[2,1]}'"#),
                    ne(r#"'{"a":"1"}'"#, r#"'{"a":1}'"#),
                    eq("'[]'", "' [ ] '"),
                    ne("'null'", "NULL"),
                ],
            ),
            Values::Unicode => Case::new(
                "TEXT",
                vec![
                    ne("char(233)", "'e' || char(769)"),
                    eq("'日本語'", "'日本語'"),
                    ne("'ß'", "'ss'"),
                    eq("'😀'", "'😀'"),
                    ne("'a'", "'A'"),
                ],
            ),
        }
    }
}

migrate_verify_suite!(crate::Lite);

impl mj::JournalBed for Lite {
    const READ_ONLY: &'static str = "PRAGMA query_only = ON";
    const SESSION: &'static str = "PRAGMA busy_timeout = 300000";
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
}

migrate_journal_suite!(crate::Lite);
migrate_journal_returning_suite!(crate::Lite);
