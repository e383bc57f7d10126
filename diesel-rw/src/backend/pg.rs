//! PostgreSQL: replicas are streaming hot standbys.

use diesel::pg::Pg;

use super::{CommitStatusQueries, PositionQueries, RwBackend};
use crate::consistency::Position;
use crate::error::Error;
use crate::url::{check_network_url, NodeUrl};

impl RwBackend for Pg {
    const NAME: &'static str = "PostgreSQL";
    const DIALECT: crate::SqlDialect = crate::SqlDialect::Postgres;
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

    const COMMIT_STATUS: Option<CommitStatusQueries> = Some(CommitStatusQueries {
        capture:
            "SELECT txid_current_if_assigned()::text || ':' || pg_backend_pid()::text AS value",
        status: |xid| format!("SELECT txid_status({xid})::text AS value"),
        // `backend_xid` is the 32-bit id: the low half of the epoch-extended one. Checking it
        // makes sure no other session that reused the process id is ended.
        terminate: |xid, pid| {
            format!(
                "SELECT pg_terminate_backend(pid)::text AS value FROM pg_stat_activity \
                 WHERE pid = {pid} AND backend_xid = '{}'::xid",
                xid & 0xFFFF_FFFF
            )
        },
    });

    // VOLATILE functions (and procedures, aggregates) of every schema but the system's; the
    // built-in functions that write are in WRITE_FUNCTIONS.
    const FUNCTION_CATALOG: Option<crate::functions::FunctionCatalog> =
        Some(crate::functions::FunctionCatalog {
            setup: "",
            query:
                "SELECT string_agg(DISTINCT n.nspname || chr(9) || p.proname, chr(10)) AS value \
                    FROM pg_catalog.pg_proc p \
                    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
                    WHERE p.provolatile = 'v' \
                    AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
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
