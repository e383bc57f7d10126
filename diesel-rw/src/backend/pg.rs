//! PostgreSQL: replicas are streaming hot standbys.

use diesel::pg::Pg;

use super::RwBackend;
use crate::error::Error;
use crate::url::{check_network_url, NodeUrl};

impl RwBackend for Pg {
    const NAME: &'static str = "PostgreSQL";
    const READ_ONLY_SESSION: &'static str = "SET default_transaction_read_only = on";

    fn check_url(url: &NodeUrl) -> Result<(), Error> {
        let raw = url.expose().trim_start();
        // libpq also takes `key=value` connection strings.
        if !raw.contains("://") && raw.contains('=') {
            return Ok(());
        }
        check_network_url(url, &["postgres", "postgresql"])
    }
}
