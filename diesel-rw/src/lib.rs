//! # diesel-rw
//!
//! Read/write splitting for [Diesel](https://diesel.rs): send reads to replicas and writes to the
//! primary, keep transactions and reads-after-writes correct, and double-write to a second
//! database during an online migration.
//!
//! - [`RwPool`] holds an r2d2 pool for the primary and one per replica.
//! - [`RwConnection`] is a diesel [`Connection`](diesel::Connection): existing Diesel code runs
//!   on it unchanged, and each statement is routed (see [`route`] for the order).
//! - `pool.primary()` and `pool.replica()` are explicit handles; the replica handle rejects
//!   writes before sending them ([`Error::WriteOnReadRoute`]).
//! - [`double_write`]: [`DoubleWriteConnection`] writes to a source and a destination database
//!   during an online migration, following a [`PatternSwitch`] switched at run time.
//!
//! ```
//! # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::prelude::*;
//! use diesel::connection::SimpleConnection;
//! use diesel_rw::{Node, RwPool};
//!
//! // Two SQLite files stand in for a primary and its replica.
//! let dir = std::env::temp_dir().join(format!("diesel-rw-crate-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let (primary, replica) = (dir.join("primary.db"), dir.join("replica.db"));
//! for db in [&primary, &replica] {
//!     SqliteConnection::establish(db.to_str().unwrap())?
//!         .batch_execute("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT)")?;
//! }
//!
//! let pool = RwPool::<SqliteConnection>::builder()
//!     .primary(primary.to_str().unwrap())
//!     .replica(replica.to_str().unwrap())
//!     .build()?;
//!
//! let mut conn = pool.get()?;
//! diesel::sql_query("SELECT id FROM users").execute(&mut conn)?;
//! assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
//!
//! diesel::sql_query("INSERT INTO users (name) VALUES ('ada')").execute(&mut conn)?;
//! assert_eq!(conn.last_route().unwrap().node, Node::Primary);
//!
//! // After a write, this connection's reads stick to the primary (Consistency::UnitOfWork).
//! diesel::sql_query("SELECT id FROM users").execute(&mut conn)?;
//! assert_eq!(conn.last_route().unwrap().node, Node::Primary);
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```
//!
//! ## Features
//!
//! - `postgres`, `mysql`, `sqlite`: the backends (SQLite is bundled: nothing to install).
//! - `async`: `AsyncRwPool` and `AsyncRwConnection` over diesel-async and deadpool, with the
//!   same routing, for `AsyncPgConnection`, `AsyncMysqlConnection` and
//!   `SyncConnectionWrapper<SqliteConnection>`.
//!
//! ## Logging
//!
//! Each routing decision is a `tracing` event at DEBUG level, target `diesel_rw`, with the
//! node's role, its URL (password redacted) and the reason. Ejections are WARN events.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]

#[cfg(feature = "async")]
#[path = "async/mod.rs"]
mod asynchronous;
pub mod backend;
mod classify;
mod commit_outcome;
mod config;
mod consistency;
pub mod double_write;
mod error;
pub mod functions;
mod health;
mod instrument;
mod metrics;
pub mod migrate;
#[cfg(feature = "postgres")]
pub mod pg;
mod policy;
mod replay;
pub mod route;
mod router;
mod stats;
mod sync;
mod url;

#[doc(hidden)]
pub mod __private;

#[cfg(feature = "async")]
pub use asynchronous::{
    AsyncPoolable, AsyncRerouted, AsyncRouter, AsyncRwConnection, AsyncRwPool,
    AsyncRwTransactionManager, FirstRow, NodePoolStatus, PoolStatus, Routed, RoutedStream,
};
pub use backend::PositionQueries;
pub use backend::RwBackend;
pub use classify::{
    classify_sql, classify_sql_in, classify_sql_with, SqlDialect, StatementKind, WRITE_FUNCTIONS,
};
pub use config::{RwPoolBuilder, DATABASE_REPLICA_URLS, DATABASE_URL};
pub use consistency::{Consistency, GtidPosition, Position, WriteToken};
/// `#[read_only]` runs a function on a read-only connection (a replica); `#[master]` runs it on
/// the primary. The body gets `conn`, routed from the first argument (or `self`, or
/// `pool = <expr>`), which implements [`Router`]: a `&RwPool`, or the `conn` of another annotated
/// function, which keeps its route. See each attribute for its options and expansion.
///
/// ```
/// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::connection::SimpleConnection;
/// use diesel::prelude::*;
/// use diesel_rw::{master, read_only, Node, Router, RwPool};
///
/// diesel::table! { users (id) { id -> Integer, name -> Text } }
///
/// /// A read: on a replica, or on the primary when called with a `conn` pinned there.
/// #[read_only]
/// fn count<R: Router<Connection = SqliteConnection>>(db: R) -> QueryResult<(i64, Option<Node>)> {
///     let n = users::table.count().get_result(conn)?;
///     Ok((n, conn.last_route().map(|r| r.node)))
/// }
///
/// /// A write in a transaction; the nested read runs in it and sees the new row.
/// #[master(transaction)]
/// fn add(db: &RwPool<SqliteConnection>, name: &str) -> QueryResult<(i64, Option<Node>)> {
///     diesel::insert_into(users::table).values(users::name.eq(name)).execute(conn)?;
///     count(&mut *conn)
/// }
///
/// // Two SQLite files stand in for a primary and its replica.
/// let dir = std::env::temp_dir().join(format!("diesel-rw-macros-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let (primary, replica) = (dir.join("primary.db"), dir.join("replica.db"));
/// for db in [&primary, &replica] {
///     let _ = std::fs::remove_file(db);
///     SqliteConnection::establish(db.to_str().unwrap())?
///         .batch_execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")?;
/// }
/// let pool = RwPool::<SqliteConnection>::builder()
///     .primary(primary.to_str().unwrap())
///     .replica(replica.to_str().unwrap())
///     .build()?;
///
/// assert_eq!(add(&pool, "ada")?, (1, Some(Node::Primary)));     // inside the transaction
/// assert_eq!(count(&pool)?, (0, Some(Node::Replica(0))));        // the replica has not the row
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
pub use diesel_rw_macros::{master, read_only};
#[cfg(feature = "async")]
pub use double_write::{AsyncDoubleWrite, AsyncDoubleWriteConnection};
pub use double_write::{DoubleWrite, DoubleWriteConnection, Pattern, PatternSwitch};
pub use error::{Error, Result};
pub use functions::WritingFunctions;
pub use health::MaxLag;
pub use policy::Policy;
pub use route::{Fallback, Node, Reason, Role, Route};
pub use router::{Rerouted, Router};
pub use stats::{NodeStats, Stats};
pub use sync::{RwConnection, RwPool, RwTransactionManager};
pub use url::{redact, NodeUrl};
