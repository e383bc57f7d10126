//! Double writes for online migrations: [`DoubleWriteConnection`] writes to a **source** and a
//! **destination** database and follows a run-time-switchable [`Pattern`].
//!
//! A migration walks four phases, one step at a time, switched at run time through a shared
//! [`PatternSwitch`] while the application keeps running:
//!
//! 1. `SrcOnly`: everything on the source (the destination is being prepared and backfilled);
//! 2. `SrcFirst`: reads from the source, writes to the source then the destination;
//! 3. `DstFirst`: reads from the destination, writes to the destination then the source;
//! 4. `DstOnly`: everything on the destination (the source can be retired).
//!
//! Writes that reach one side and not the other are never hidden: they are counted in the
//! [`Metrics`], recorded in the [`Journal`] for repair, and in strict mode returned as
//! [`Error::SecondaryWriteFailed`](crate::Error::SecondaryWriteFailed) or
//! [`Error::PartialCommit`](crate::Error::PartialCommit), which say what holds and what to do.
//! See [`DoubleWriteConnection`] for the exact semantics of reads, writes,
//! transactions, failures and [`Retry`]. Generated keys diverge between the sides unless they are
//! written explicitly, or the destination's counters (PostgreSQL sequences, MySQL/MariaDB
//! `AUTO_INCREMENT`, SQLite `sqlite_sequence`) are moved up to the source's with
//! `DoubleWriteConnection::sync_sequences` before `DstFirst`:
//! `DoubleWriteConnection::advance_pattern` refuses the step to `DstFirst` while one is behind
//! ([`Error::KeyCountersBehind`](crate::Error::KeyCountersBehind)). The journal records each
//! divergence it sees in `RETURNING` rows.
//!
//! With the `async` feature, `AsyncDoubleWriteConnection` and its
//! pool `AsyncDoubleWrite` do the same for diesel-async; on SQLite,
//! `SyncConnectionWrapper<DoubleWriteConnection<SqliteConnection>>` works as well.
//!
//! Each side may be a cluster: [`DoubleWrite<RwConnection<C>>`](DoubleWrite) built with
//! [`source_cluster`](DoubleWriteBuilder::source_cluster) and
//! [`destination_cluster`](DoubleWriteBuilder::destination_cluster) writes to each side's
//! primary and reads from the replicas of the side the pattern names, through that cluster's
//! routing (stickiness, causal read-your-writes). An [`RwPool`](crate::RwPool) whose primary
//! is a double write (`source=URL destination=URL`, or `shared=NAME`) refuses replicas: they
//! would be the source's, read in every pattern.
//!
//! ```
//! # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::prelude::*;
//! use diesel::connection::SimpleConnection;
//! use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch, Side};
//!
//! let dir = std::env::temp_dir().join(format!("diesel-rw-dw-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
//! for db in [&src, &dst] {
//!     let _ = std::fs::remove_file(db);
//!     SqliteConnection::establish(db.to_str().unwrap())?
//!         .batch_execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")?;
//! }
//!
//! let switch = PatternSwitch::new(Pattern::SrcOnly);
//! let pool = DoubleWrite::<SqliteConnection>::builder()
//!     .source(src.to_str().unwrap())
//!     .destination(dst.to_str().unwrap())
//!     .pattern(switch.clone())
//!     .build()?;
//! let mut conn = pool.get()?;
//!
//! conn.batch_execute("INSERT INTO users (id, name) VALUES (1, 'ada')")?; // source only
//! switch.advance()?;                                                     // SrcOnly -> SrcFirst
//! conn.batch_execute("INSERT INTO users (id, name) VALUES (2, 'bob')")?; // source, then destination
//! assert!(switch.set(Pattern::DstOnly).is_err());                        // no skipping a phase
//!
//! let count = |conn: &mut SqliteConnection| -> QueryResult<i64> {
//!     diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("(SELECT COUNT(*) FROM users)"))
//!         .get_result(conn)
//! };
//! assert_eq!(conn.with_side(Side::Source, count)??, 2);
//! assert_eq!(conn.with_side(Side::Destination, count)??, 1);
//! assert_eq!(pool.metrics().destination.successes, 1);
//! assert!(pool.memory_journal().unwrap().is_empty());
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

#[cfg(feature = "async")]
mod async_connection;
#[cfg(feature = "async")]
mod async_pool;
#[cfg(feature = "async")]
mod async_transaction;
mod backend;
mod builder;
mod commit_status;
mod connection;
mod context;
mod core;
pub(crate) mod counters;
mod cursor;
mod health;
mod journal;
mod metrics;
mod pattern;
#[cfg(feature = "postgres")]
mod pg;
mod pool;
mod retry;
mod revealed;
#[cfg(feature = "async")]
mod shared_query;
mod spec;
pub mod statement_keys;
mod switch;
mod table_journal;
mod transaction;
#[cfg(feature = "async")]
pub(crate) mod type_oids;

#[cfg(feature = "async")]
pub use async_connection::{AsyncDoubleWritable, AsyncDoubleWriteConnection, DoubleWriteStream};
#[cfg(feature = "async")]
pub use async_pool::{AsyncDoubleWrite, AsyncDoubleWritePoolable};
#[cfg(feature = "async")]
pub use async_transaction::AsyncDoubleWriteTransactionManager;
pub use backend::DoubleWriteBackend;
pub use builder::DoubleWriteBuilder;
pub use connection::DoubleWriteConnection;
pub use context::DoubleWriteContext;
#[cfg(feature = "async")]
pub use counters::AsyncKeyCounters;
pub use counters::{CounterLag, KeyCounter, KeyCounterBackend, SequenceSync};
pub use cursor::DoubleWriteCursor;
pub use health::{HealthReport, SideHealth};
pub use journal::{EntryKind, Journal, JournalEntry, MemoryJournal, NopJournal};
pub use metrics::{LatencyHistogram, Metrics, MetricsSnapshot, SideMetrics, LATENCY_BUCKETS_US};
pub use pattern::{Pattern, Side};
pub use pool::{DoubleWrite, DoubleWriteManager};
pub use retry::{transient, Retry, Transient};
pub use revealed::Revealed;
#[cfg(feature = "async")]
pub use shared_query::{AsyncDoubleWriteBackend, SharedQuery};
pub use switch::PatternSwitch;
pub use table_journal::{TableJournal, TableJournalBuilder, TableJournalStats};
pub use transaction::DoubleWriteTransactionManager;

pub(crate) use counters::behind_message as counters_behind_message;
pub(crate) use pattern::transition_message;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub(crate) use spec::check_connection_string;
pub(crate) use spec::{is_connection_string, replicas_of_a_double_write};
