//! SQLite: a "replica" is another database file (a copy, or one kept in sync by a tool such as
//! Litestream); useful for development and tests.

use diesel::sqlite::Sqlite;

use super::RwBackend;
use crate::error::Error;
use crate::url::NodeUrl;

impl RwBackend for Sqlite {
    const NAME: &'static str = "SQLite";
    const DIALECT: crate::SqlDialect = crate::SqlDialect::Sqlite;
    const READ_ONLY_SESSION: &'static str = "PRAGMA query_only = ON";
    const CONNECTIONS_CAN_BREAK: bool = false;
    const SESSION_SETUP: &'static str = "PRAGMA busy_timeout = 5000";

    query_text_impl!();

    fn check_url(url: &NodeUrl) -> Result<(), Error> {
        // A double-write connection string (`source=URL destination=URL`, `shared=NAME`), for
        // `RwPool<DoubleWriteConnection<_>>`: checked by the double-write module.
        if let Some(checked) = crate::double_write::check_connection_string::<Self>(url) {
            return checked;
        }
        let raw = url.expose();
        if raw.trim().is_empty() {
            return Err(url.invalid("the SQLite path is empty"));
        }
        if let Some(scheme_end) = raw.find("://") {
            let scheme = &raw[..scheme_end];
            if !scheme.eq_ignore_ascii_case("file") {
                return Err(url.invalid(format!(
                    "unsupported scheme `{scheme}` for SQLite, expected a file path or `file:`"
                )));
            }
        }
        Ok(())
    }
}
