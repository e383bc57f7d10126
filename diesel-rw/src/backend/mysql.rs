//! MySQL and MariaDB: replicas follow the binlog (GTID).

use diesel::mysql::Mysql;

use super::{PositionQueries, RwBackend};
use crate::consistency::Position;
use crate::error::Error;
use crate::url::{check_network_url, NodeUrl};

impl RwBackend for Mysql {
    const NAME: &'static str = "MySQL";
    const DIALECT: crate::SqlDialect = crate::SqlDialect::Mysql;
    // Blocks writes even for users with SUPER / READ_ONLY ADMIN (error 1792).
    const READ_ONLY_SESSION: &'static str = "SET SESSION TRANSACTION READ ONLY";

    // MariaDB GTIDs. `@@gtid_slave_pos`, not `@@gtid_current_pos` (which counts local writes).
    const POSITIONS: Option<PositionQueries> = Some(PositionQueries {
        after_write: "SELECT CAST(@@last_gtid AS CHAR) AS value",
        primary: "SELECT CAST(@@gtid_binlog_pos AS CHAR) AS value",
        replayed: "SELECT CAST(@@gtid_slave_pos AS CHAR) AS value",
        parse: Position::parse_gtid,
        wait: Some(|position, timeout| {
            format!(
                "SELECT CAST(MASTER_GTID_WAIT('{position}', {:.3}) AS CHAR) AS value",
                timeout.as_secs_f64()
            )
        }),
    });

    // Stored functions that say they modify data, or say nothing (CONTAINS SQL, the default):
    // the server does not enforce the characteristics. Procedures run by CALL, a write anyway.
    const FUNCTION_CATALOG: Option<crate::functions::FunctionCatalog> =
        Some(crate::functions::FunctionCatalog {
            setup: "SET SESSION group_concat_max_len = 16777216",
            query: "SELECT GROUP_CONCAT(DISTINCT CONCAT(ROUTINE_SCHEMA, CHAR(9), ROUTINE_NAME) \
                    SEPARATOR '\n') AS value \
                    FROM information_schema.ROUTINES \
                    WHERE ROUTINE_TYPE = 'FUNCTION' \
                    AND SQL_DATA_ACCESS IN ('MODIFIES SQL DATA', 'CONTAINS SQL') \
                    AND ROUTINE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', \
                    'performance_schema')",
        });

    query_text_impl!();

    fn check_url(url: &NodeUrl) -> Result<(), Error> {
        // A double-write connection string (`source=URL destination=URL`, `shared=NAME`), for
        // `RwPool<DoubleWriteConnection<_>>`: checked by the double-write module.
        if let Some(checked) = crate::double_write::check_connection_string::<Self>(url) {
            return checked;
        }
        check_network_url(url, &["mysql", "mariadb"])
    }
}
