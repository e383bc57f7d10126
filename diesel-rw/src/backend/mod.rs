//! What diesel-rw needs to know of each database backend.
//!
//! [`RwBackend`] is implemented for diesel's [`Pg`](diesel::pg::Pg),
//! [`Mysql`](diesel::mysql::Mysql) and [`Sqlite`](diesel::sqlite::Sqlite) backends (behind the
//! `postgres`, `mysql` and `sqlite` features), so every connection type of those backends works:
//! `PgConnection`, `PooledConnection`s, diesel-async's connections, and diesel-rw's own wrappers.

use diesel::backend::Backend;

use crate::error::Error;
use crate::url::NodeUrl;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

/// A diesel backend that diesel-rw can route for.
pub trait RwBackend: Backend<QueryBuilder: Default> + Default {
    /// The backend's name, for messages.
    const NAME: &'static str;

    /// SQL that makes every later transaction of the session read-only. Run once on every new
    /// replica connection, so that a write that reached a replica by mistake would fail there.
    const READ_ONLY_SESSION: &'static str;

    /// Checks a connection URL before it is used, with a message that says what is wrong.
    fn check_url(url: &NodeUrl) -> Result<(), Error>;
}
