//! The async stack (feature `async`): [`AsyncRwPool`] over diesel-async's deadpool support and
//! [`AsyncRwConnection`], a diesel-async [`AsyncConnection`](diesel_async::AsyncConnection)
//! that routes each statement.
//!
//! It shares everything but the waiting with the sync stack: the builder
//! ([`RwPoolBuilder`](crate::RwPoolBuilder)), the routing order and its reasons
//! ([`route`](crate::route)), the SQL classifier, the replica policies, stickiness, read-your-
//! writes by replication position ([`Consistency::Causal`](crate::Consistency::Causal),
//! [`AsyncRwConnection::write_token`], [`AsyncRwPool::get_after`]), the lag monitor's decisions
//! (run by a tokio task here), replica ejection, read retry and the counters. Backends:
//! `AsyncPgConnection` (`postgres`), `AsyncMysqlConnection` (`mysql`) and
//! `SyncConnectionWrapper<SqliteConnection>` (`sqlite`; on tokio's multi-threaded runtime, as
//! diesel-async's wrapper needs).
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::connection::SimpleConnection;
//! use diesel::prelude::*;
//! use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
//! use diesel_async::{AsyncConnection, RunQueryDsl};
//! use diesel_rw::{AsyncRwPool, Node, Reason};
//!
//! type Sqlite = SyncConnectionWrapper<SqliteConnection>;
//!
//! // Two SQLite files stand in for a primary and its replica.
//! let dir = std::env::temp_dir().join(format!("diesel-rw-async-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let (primary, replica) = (dir.join("primary.db"), dir.join("replica.db"));
//! for db in [&primary, &replica] {
//!     let _ = std::fs::remove_file(db);
//!     SqliteConnection::establish(db.to_str().unwrap())?
//!         .batch_execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")?;
//! }
//!
//! let pool = AsyncRwPool::<Sqlite>::builder()
//!     .primary(primary.to_str().unwrap())
//!     .replica(replica.to_str().unwrap())
//!     .build()?;
//!
//! let mut conn = pool.get().await?;
//! diesel::sql_query("SELECT id FROM users").execute(&mut conn).await?;
//! assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
//!
//! diesel::sql_query("INSERT INTO users (name) VALUES ('ada')").execute(&mut conn).await?;
//! assert_eq!(conn.last_route().unwrap().node, Node::Primary);
//!
//! // Transactions stay on the connection that began them.
//! conn.transaction::<_, diesel::result::Error, _>(async |c| {
//!     diesel::sql_query("SELECT id FROM users").execute(c).await?;
//!     assert_eq!(c.last_route().unwrap().reason, Reason::Transaction);
//!     Ok(())
//! })
//! .await?;
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

mod collect;
mod connection;
mod future;
mod monitor;
mod node;
#[cfg(feature = "postgres")]
mod pg;
mod pool;
mod router;
mod stream;
mod transaction;

pub use connection::AsyncRwConnection;
pub use future::Routed;
pub use node::{AsyncPoolable, NodePoolStatus};
pub use pool::{AsyncRwPool, PoolStatus};
pub use router::{AsyncRerouted, AsyncRouter};
pub use stream::{FirstRow, RoutedStream};
pub use transaction::AsyncRwTransactionManager;
