//! MySQL and MariaDB: replicas follow the binlog (GTID).

use diesel::mysql::Mysql;

use super::RwBackend;
use crate::error::Error;
use crate::url::{check_network_url, NodeUrl};

impl RwBackend for Mysql {
    const NAME: &'static str = "MySQL";
    // Blocks writes even for users with SUPER / READ_ONLY ADMIN (error 1792).
    const READ_ONLY_SESSION: &'static str = "SET SESSION TRANSACTION READ ONLY";

    fn check_url(url: &NodeUrl) -> Result<(), Error> {
        check_network_url(url, &["mysql", "mariadb"])
    }
}
