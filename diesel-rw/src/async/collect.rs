//! A statement turned into owned SQL text and bind values, for a statement that must wait for a
//! connection before it can run.
//!
//! diesel-async hands a statement to a connection as a value that need not be `Send`, and the
//! connection must turn it into something that is before its first `.await`: the async
//! connections of diesel-async render SQL and binds at once. When the connection a statement is
//! routed to is held already, [`AsyncRwConnection`](crate::AsyncRwConnection) passes the
//! statement straight to it; when that connection must first be checked out (an `.await`), the
//! statement is collected here first, as diesel's own `SyncConnectionWrapper` does.

use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

use crate::double_write::type_oids::TypeOids;
use crate::double_write::AsyncDoubleWriteBackend;

/// A boxed, `Send` future.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A backend whose statements can be collected into owned SQL text and binds: every
/// [`AsyncDoubleWriteBackend`], whose renderer this shares.
pub trait Collect: AsyncDoubleWriteBackend + Default + Sized {
    /// The collected statement: runs on any connection of the backend.
    #[doc(hidden)]
    type Owned: Query + QueryFragment<Self> + QueryId + Clone + Send + Sync + 'static;

    /// Renders `query`'s SQL and collects its binds.
    #[doc(hidden)]
    fn collect<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Owned>;

    /// Whether `query` binds PostgreSQL user-defined types not looked up yet.
    #[doc(hidden)]
    fn needs_lookup(query: &Self::Owned) -> bool;

    /// Looks up the OIDs of the PostgreSQL user-defined types `query` binds on `conn` (see
    /// [`AsyncDoubleWriteBackend::resolve`]); `None` when there is nothing to look up.
    #[doc(hidden)]
    fn resolve<'a, C>(
        query: &'a Self::Owned,
        conn: &'a mut C,
        cache: &'a TypeOids,
    ) -> Option<BoxFuture<'a, QueryResult<()>>>
    where
        C: diesel_async::AsyncConnection<Backend = Self> + Send;
}

impl<DB: AsyncDoubleWriteBackend + Default> Collect for DB {
    type Owned = DB::Shared;

    fn collect<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Owned> {
        DB::share(query)
    }

    fn needs_lookup(query: &Self::Owned) -> bool {
        <DB as AsyncDoubleWriteBackend>::needs_lookup(query)
    }

    fn resolve<'a, C>(
        query: &'a Self::Owned,
        conn: &'a mut C,
        cache: &'a TypeOids,
    ) -> Option<BoxFuture<'a, QueryResult<()>>>
    where
        C: diesel_async::AsyncConnection<Backend = Self> + Send,
    {
        <DB as AsyncDoubleWriteBackend>::resolve(query, conn, cache)
    }
}
