//! The PostgreSQL connection API on the routing and double-write connections: what
//! `PgConnection` users call besides statements, and where each runs.
//!
//! | API | [`RwConnection<PgConnection>`](crate::RwConnection) | [`DoubleWriteConnection`](crate::DoubleWriteConnection) over PostgreSQL |
//! |---|---|---|
//! | `build_transaction()` ([`PgTransactionBuilder`]) | `read_only()`: one replica, per the routing order (`SERIALIZABLE` too: the primary, a standby refuses it); otherwise the primary | `read_only()`: the read side only; otherwise both sides, same settings, first side first |
//! | `diesel::copy_from(..).execute(conn)` | the primary (a write) | the side of `SrcOnly`/`DstOnly`; under `SrcFirst`/`DstFirst` refused, nothing sent (diesel sends its data once): `copy_from_each(make)` double-writes it |
//! | `diesel::copy_to(..).load(..)` in [`with_copy_to`](CopyToConnection::with_copy_to) | where a read goes | the read side |
//! | `HasSqlType::metadata(conn)` ([`PgMetadataLookup`](diesel::pg::PgMetadataLookup)) | where a read goes | the read side |
//! | `LISTEN` / `notifications_iter()` | the primary | — |
//!
//! On a pooled double-write connection (`DoubleWrite::get`), pass `&mut *conn` to
//! `copy_from(..).execute(..)` and `HasSqlType::metadata(..)`: their traits are implemented for
//! the connection, not for r2d2's wrapper of it.
//!
//! The sections: [`transaction`] (isolation levels, read modes, `DEFERRABLE`), [`copy`]
//! (`COPY FROM` and `COPY TO`), [`metadata`] (custom types), [`notify`] (`LISTEN`/`NOTIFY`).

#[cfg(feature = "async")]
pub mod async_transaction;
pub mod copy;
pub mod metadata;
pub mod notify;
pub mod transaction;

#[cfg(feature = "async")]
pub use async_transaction::{AsyncBuildPgTransaction, AsyncPgTransactionBuilder};
pub use copy::CopyToConnection;
pub use transaction::{
    BuildPgTransaction, IsolationLevel, PgTransactionBuilder, PgTransactionSettings, ReadMode,
};
