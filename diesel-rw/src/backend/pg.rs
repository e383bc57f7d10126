//! PostgreSQL: replicas are streaming hot standbys.

use diesel::pg::Pg;

use super::{PositionQueries, RwBackend};
use crate::consistency::Position;
use crate::error::Error;
use crate::url::{check_network_url, NodeUrl};

impl RwBackend for Pg {
    const NAME: &'static str = "PostgreSQL";
    const READ_ONLY_SESSION: &'static str = "SET default_transaction_read_only = on";

    // The WAL *insert* position: `pg_current_wal_lsn()` (the write position) can be lower than
    // the commit record just written when `synchronous_commit` is off.
    const POSITIONS: Option<PositionQueries> = Some(PositionQueries {
        after_write: "SELECT pg_current_wal_insert_lsn()::text AS value",
        primary: "SELECT pg_current_wal_insert_lsn()::text AS value",
        replayed: "SELECT pg_last_wal_replay_lsn()::text AS value",
        parse: Position::parse_lsn,
        wait: None,
    });

    query_text_impl!();

    fn check_url(url: &NodeUrl) -> Result<(), Error> {
        // A double-write connection string (`source=URL destination=URL`, `shared=NAME`), for
        // `RwPool<DoubleWriteConnection<_>>`: checked by the double-write module.
        if let Some(checked) = crate::double_write::check_connection_string::<Self>(url) {
            return checked;
        }
        let raw = url.expose().trim_start();
        // libpq also takes `key=value` connection strings.
        if !raw.contains("://") && raw.contains('=') {
            return Ok(());
        }
        check_network_url(url, &["postgres", "postgresql"])
    }
}
