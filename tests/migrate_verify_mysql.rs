//! Verify and Repair on MariaDB: source database `mig2_verify_src`, destination
//! `mig2_verify_dst`, both on 33306 (created through the admin URL, `scripts/db up`).
#![cfg(feature = "mysql")]

mod common;
#[macro_use]
#[path = "common/migrate_verify.rs"]
mod mv;
#[macro_use]
#[path = "common/migrate_journal.rs"]
mod mj;

use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use mv::{eq, ne, Canon, Case, Values, VerifyBed, Writer};

struct Maria;

/// The URL of the primary with its database replaced by `db`.
fn url_of(db: &str) -> String {
    let primary = common::mysql::primary_url();
    let base = primary.rsplit_once('/').unwrap().0;
    format!("{base}/{db}")
}

/// Creates the two databases once (through the admin URL) and grants them to the test user.
fn databases() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let admin = common::env_or(
            "DIESEL_RW_MYSQL_ADMIN_URL",
            "mysql://root@127.0.0.1:33306/mysql",
        );
        let mut c = MysqlConnection::establish(&admin).map_err(|e| e.to_string())?;
        let user: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
            "CAST(SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AS CHAR)",
        ))
        .get_result(&mut MysqlConnection::establish(&common::mysql::primary_url()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
        for db in ["mig2_verify_src", "mig2_verify_dst"] {
            c.batch_execute(&format!(
                "CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
                 GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'127.0.0.1';"
            ))
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .clone()
}

impl VerifyBed for Maria {
    type Conn = MysqlConnection;
    const NAME: &'static str = "MariaDB";
    const BIGINT: &'static str = "BIGINT";
    const TEXT: &'static str = "VARCHAR(200)";
    const DECIMAL: &'static str = "DECIMAL(12,2)";
    const TIMESTAMPTZ: &'static str = "TIMESTAMP(6)";
    const NOW: &'static str = "NOW(6)";
    const UNCOMPARABLE: Option<(&'static str, &'static str, Canon)> =
        Some(("POINT", "POINT(1, 2)", Canon::Binary));

    fn urls(_test: &str) -> Option<(String, String)> {
        if let Err(e) = databases() {
            common::unavailable(common::mysql::NAME, &e);
            return None;
        }
        Some((url_of("mig2_verify_src"), url_of("mig2_verify_dst")))
    }

    fn connect(url: &str) -> MysqlConnection {
        MysqlConnection::establish(url).unwrap()
    }

    fn text(expr: &str) -> String {
        format!("CAST({expr} AS CHAR)")
    }

    fn double_writer(src: &str, dst: &str) -> Writer {
        double_writer!(MysqlConnection, src, dst, "")
    }

    fn cases(values: Values) -> Case {
        match values {
            Values::NullEmptyTrailing => Case::new(
                "VARCHAR(10)",
                vec![
                    ne("NULL", "''"),
                    // PAD SPACE collations compare these equal; their values differ.
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
                source_type: "DECIMAL(12,2)",
                destination_type: "DECIMAL(14,4)",
                pairs: vec![
                    eq("1.50", "1.5"),
                    eq("100", "100.000"),
                    eq("-0.00", "0"),
                    ne("1.5", "1.51"),
                    ne("10", "1"),
                ],
                source_session: "",
                destination_session: "",
            },
            Values::Float => Case::new(
                "DOUBLE",
                vec![
                    ne("0.1e0 + 0.2e0", "0.3e0"),
                    eq("-0e0", "0e0"),
                    ne("0.3333333333333333e0", "0.33333333333333337e0"),
                    eq("1e308", "1e308"),
                    eq("1e0 / 3e0", "0.3333333333333333e0"),
                ],
            ),
            Values::Timestamps => Case {
                source_type: "TIMESTAMP(6)",
                destination_type: "TIMESTAMP(3)",
                pairs: vec![
                    // Each literal in its session's time zone: source UTC, destination +02:00.
                    eq("'2020-01-01 00:00:00'", "'2020-01-01 02:00:00'"),
                    ne("'2020-01-01 00:00:00'", "'2020-01-01 00:00:00'"),
                    eq("'2020-01-01 00:00:00.5'", "'2020-01-01 02:00:00.500'"),
                    ne("'2020-01-01 00:00:00.5'", "'2020-01-01 02:00:00.501'"),
                ],
                source_session: "SET time_zone = '+00:00'",
                destination_session: "SET time_zone = '+02:00'",
            },
            Values::WallClock => Case {
                source_type: "DATETIME(6)",
                destination_type: "DATETIME(3)",
                pairs: vec![
                    eq("'2020-01-01 00:00:00'", "'2020-01-01 00:00:00.000'"),
                    ne("'2020-01-01 00:00:00'", "'2020-01-01 00:00:01'"),
                    eq("'2020-01-01 10:00:00.25'", "'2020-01-01 10:00:00.250'"),
                ],
                source_session: "SET time_zone = '+00:00'",
                destination_session: "SET time_zone = '+05:30'",
            },
            Values::Binary => Case::new(
                "VARBINARY(16)",
                vec![
                    eq("0x00ff", "0x00ff"),
                    ne("0x00", "0x0000"),
                    ne("''", "NULL"),
                    ne("0x41", "0x61"),
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
                "VARCHAR(20)",
                vec![
                    ne("_utf8mb4 x'C3A9'", "_utf8mb4 x'65CC81'"),
                    eq("'日本語'", "'日本語'"),
                    // Equal in utf8mb4_general_ci; different values.
                    ne("'ß'", "'ss'"),
                    eq("'😀'", "'😀'"),
                    ne("'a'", "'A'"),
                ],
            ),
        }
    }
}

migrate_verify_suite!(crate::Maria);

impl mj::JournalBed for Maria {
    const READ_ONLY: &'static str = "SET SESSION TRANSACTION READ ONLY";
    const SESSION: &'static str = "";
    const BEGIN: &'static str = "BEGIN";
}

migrate_journal_suite!(crate::Maria);
migrate_journal_network_suite!(crate::Maria);
