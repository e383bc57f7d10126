//! SQLite: a "replica" is another database file (a copy, or one kept in sync by a tool such as
//! Litestream); useful for development and tests.

use diesel::sqlite::Sqlite;

use diesel::connection::LoadConnection;
use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel::sql_types::{Nullable, Text};

use super::RwBackend;
use crate::error::Error;
use crate::url::NodeUrl;

impl RwBackend for Sqlite {
    const NAME: &'static str = "SQLite";
    const READ_ONLY_SESSION: &'static str = "PRAGMA query_only = ON";

    fn query_text<C: LoadConnection<Backend = Self>>(
        conn: &mut C,
        sql: &str,
    ) -> QueryResult<Option<String>> {
        diesel::sql_query(sql)
            .get_result::<TextRow>(conn)
            .map(|r| r.value)
    }

    fn check_url(url: &NodeUrl) -> Result<(), Error> {
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

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}
