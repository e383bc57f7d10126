//! The migration toolkit: what finishes a migration that the [double write](crate::double_write)
//! starts. The servers do the heavy work; rows cross the client only as one JSON document per
//! chunk.
//!
//! - [`TableSpec`] names a table (and optionally its key and a "changed at" column);
//!   [`TableSpec::describe`] reads the rest from the catalog into a [`Table`]: columns in order
//!   with their type name, nullability and [`ColumnKind`], and the key in key order.
//! - [`Key`], [`KeyRange`] and [`Table::next_chunk`]: keyset chunks, "the next chunk after key
//!   K, up to N rows", on each backend, single or composite keys.
//! - [`Backfill`]: copies the source's rows into the destination in keyset chunks while the
//!   double write runs under `SrcFirst`: insert-if-absent, a [`Checkpoint`] on the destination
//!   (resumable after a kill), throttled, with progress events and a callback.
//! - [`Verify`](verify::Verify) and [`Repair`](repair::Repair): prove the two sides equal,
//!   converge them; [`verify_runs`]: the record of verify runs ("the last clean run").
//! - [`journal`]: the durable journal's table.
//! - **From async code**: the toolkit is blocking (sync diesel connections; a backfill or a
//!   verification runs for minutes). Run it on tokio's blocking pool with connections of its
//!   own, as below; the async double write keeps serving meanwhile.
//!
//! ```
//! # #[cfg(all(feature = "sqlite", feature = "async"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # use diesel::connection::SimpleConnection;
//! # use diesel::prelude::*;
//! use diesel_rw::migrate::{verify::Verify, Backfill};
//!
//! # let dir = std::env::temp_dir().join(format!("diesel-rw-async-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let (src, dst) = (dir.join("src.db"), dir.join("dst.db"));
//! # for path in [&src, &dst] {
//! #     let _ = std::fs::remove_file(path);
//! #     SqliteConnection::establish(path.to_str().unwrap())?
//! #         .batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")?;
//! # }
//! # SqliteConnection::establish(src.to_str().unwrap())?
//! #     .batch_execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")?;
//! let (src, dst) = (src.to_str().unwrap().to_owned(), dst.to_str().unwrap().to_owned());
//! let runtime = tokio::runtime::Runtime::new()?;
//! let report = runtime.block_on(async move {
//!     // In an async service: the blocking work on the blocking pool.
//!     tokio::task::spawn_blocking(move || -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
//!         let mut s = SqliteConnection::establish(&src)?;
//!         let mut d = SqliteConnection::establish(&dst)?;
//!         Backfill::new("t").run(&mut s, &mut d)?;
//!         Ok(Verify::new("t").run(&mut s, &mut d)?)
//!     })
//!     .await
//! })??;
//! assert!(report.is_clean() && report.rows_compared == 2);
//! # Ok(()) }
//! # #[cfg(not(all(feature = "sqlite", feature = "async")))] fn main() {}
//! ```
//! - [`MigrateConnection`]: the connection trait, for diesel's `PgConnection`,
//!   `MysqlConnection` and `SqliteConnection` (features `postgres`, `mysql`, `sqlite`).
//!
//! ```
//! # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::connection::SimpleConnection;
//! use diesel::prelude::*;
//! use diesel_rw::migrate::{ColumnKind, TableSpec};
//!
//! let mut conn = SqliteConnection::establish(":memory:")?;
//! conn.batch_execute(
//!     "CREATE TABLE accounts (tenant INTEGER, id INTEGER, name TEXT NOT NULL,
//!                             balance NUMERIC(12,2), PRIMARY KEY (tenant, id));
//!      INSERT INTO accounts VALUES (1, 1, 'ada', 10.5), (1, 2, 'bob', NULL), (2, 1, 'cy', 0);",
//! )?;
//! let table = TableSpec::new("accounts").describe(&mut conn)?;
//! assert_eq!(table.key_names(), ["tenant", "id"]);
//! assert_eq!(table.column("balance").unwrap().kind, ColumnKind::Numeric { scale: Some(2) });
//!
//! // Keyset chunks of two rows.
//! let first = table.next_chunk(&mut conn, None, 2)?.unwrap();
//! assert_eq!((first.first.to_string(), first.last.to_string(), first.rows),
//!            ("(1, 1)".into(), "(1, 2)".into(), 2));
//! let second = table.next_chunk(&mut conn, Some(&first.last), 2)?.unwrap();
//! assert_eq!((second.last.to_string(), second.rows), ("(2, 1)".into(), 1));
//! assert!(table.next_chunk(&mut conn, Some(&second.last), 2)?.is_none());
//!
//! // No primary key: refused, naming the table.
//! conn.batch_execute("CREATE TABLE events (at TEXT)")?;
//! let err = TableSpec::new("events").describe(&mut conn).unwrap_err();
//! assert!(err.to_string().contains("`events` has no primary key"), "{err}");
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

pub mod backfill;
pub mod canonical;
pub mod checkpoint;
pub mod control;
pub mod dialect;
pub mod journal;
pub mod key;
pub mod repair;
pub mod table;
pub mod verify;
pub mod verify_runs;

pub use backfill::{Backfill, BackfillReport, Progress};
pub use checkpoint::{Checkpoint, CHECKPOINT_TABLE};
pub use dialect::{Binds, Dialect, MigrateConnection};
pub use key::{Chunk, Key, KeyRange};
pub use table::{Column, ColumnKind, Table, TableSpec};
