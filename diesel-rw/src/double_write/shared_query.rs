//! [`SharedQuery`]: a statement rendered once into SQL text and bind values, which runs any
//! number of times on any connection of its backend.
//!
//! A diesel-async connection takes a statement by value, and the statement itself need not be
//! `Send`, so it cannot be kept across an `.await`. An
//! [`AsyncDoubleWriteConnection`](super::AsyncDoubleWriteConnection) runs a statement on two
//! connections, one after the other, and again when it retries: it renders the statement once,
//! before its first `.await`, into a `SharedQuery` whose copies share the bind values.
//!
//! A PostgreSQL statement that binds a user-defined type is rendered with stand-in OIDs, which
//! the connection that runs it replaces first ([`AsyncDoubleWriteBackend::resolve`], see
//! [`type_oids`](super::type_oids)).

use std::sync::Arc;

use diesel::backend::{Backend, DieselReserveSpecialization};
use diesel::query_builder::{
    AstPass, MoveableBindCollector, Query, QueryBuilder, QueryFragment, QueryId,
};
use diesel::result::QueryResult;
use diesel::sql_types::Untyped;

use super::backend::DoubleWriteBackend;
use super::type_oids::{Pending, TypeOids};

/// A boxed, `Send` future.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A rendered statement: SQL text and collected bind values, cheap to clone.
#[derive(Debug)]
pub struct SharedQuery<MD> {
    sql: Arc<str>,
    safe_to_cache: bool,
    binds: Arc<MD>,
    /// The user-defined types whose OIDs the binds hold stand-ins for (PostgreSQL), and the
    /// binds with the real ones once resolved; shared by the clones.
    pending: Option<Arc<Pending<MD>>>,
}

impl<MD> Clone for SharedQuery<MD> {
    fn clone(&self) -> Self {
        SharedQuery {
            sql: self.sql.clone(),
            safe_to_cache: self.safe_to_cache,
            binds: self.binds.clone(),
            pending: self.pending.clone(),
        }
    }
}

impl<MD> SharedQuery<MD> {
    /// A copy whose user-defined types are resolved apart from this one's (for a server whose
    /// OIDs may differ).
    pub(crate) fn fresh(&self) -> Self {
        SharedQuery {
            pending: self.pending.as_ref().map(|p| Arc::new(p.fresh())),
            ..self.clone()
        }
    }

    /// Its user-defined types, if it binds any.
    pub(crate) fn pending(&self) -> Option<&Pending<MD>> {
        self.pending.as_deref()
    }
}

impl<DB, MD> QueryFragment<DB> for SharedQuery<MD>
where
    DB: Backend + DieselReserveSpecialization,
    for<'a> DB::BindCollector<'a>: MoveableBindCollector<DB, BindData = MD>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.safe_to_cache {
            pass.unsafe_to_cache_prepared();
        }
        pass.push_sql(&self.sql);
        let binds = match &self.pending {
            None => &*self.binds,
            Some(pending) => pending.resolved.get().ok_or_else(|| {
                diesel::result::Error::QueryBuilderError(
                    "diesel-rw: a statement that binds a user-defined PostgreSQL type ran \
                     before its OIDs were looked up"
                        .into(),
                )
            })?,
        };
        pass.push_bind_collector_data::<MD>(binds)
    }
}

impl<MD> QueryId for SharedQuery<MD> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<MD> Query for SharedQuery<MD> {
    type SqlType = Untyped;
}

/// A backend whose statements can be rendered once, without a connection, and run on both sides
/// of an async double write (and, in the async routing connection, once a connection has been
/// checked out). Implemented for PostgreSQL, MySQL/MariaDB and SQLite.
pub trait AsyncDoubleWriteBackend: DoubleWriteBackend + DieselReserveSpecialization {
    /// The rendered statement.
    #[doc(hidden)]
    type Shared: Query + QueryFragment<Self> + QueryId + Clone + Send + Sync + 'static;

    /// Renders `query`'s SQL and collects its binds (a PostgreSQL user-defined type with a
    /// stand-in OID, resolved by [`resolve`](Self::resolve)).
    #[doc(hidden)]
    fn share<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Shared>;

    /// A copy of `query` to resolve apart from it, on a server whose type OIDs may differ.
    #[doc(hidden)]
    fn fresh(query: &Self::Shared) -> Self::Shared {
        query.clone()
    }

    /// Whether `query` binds user-defined types whose OIDs are not looked up yet (a check
    /// without a clone, for the paths that resolve only when needed).
    #[doc(hidden)]
    fn needs_lookup(query: &Self::Shared) -> bool {
        let _ = query;
        false
    }

    /// Looks up on `conn` (or in `cache`) the OIDs of the user-defined types `query` binds,
    /// if it binds any not resolved yet; `None` when there is nothing to do.
    #[doc(hidden)]
    fn resolve<'a, C>(
        query: &'a Self::Shared,
        conn: &'a mut C,
        cache: &'a TypeOids,
    ) -> Option<BoxFuture<'a, QueryResult<()>>>
    where
        C: diesel_async::AsyncConnection<Backend = Self> + Send,
    {
        let _ = (query, conn, cache);
        None
    }

    /// Forgets the looked-up OIDs of `query`'s types after it failed.
    #[doc(hidden)]
    fn forget(query: &Self::Shared, cache: &TypeOids) {
        let _ = (query, cache);
    }
}

/// Renders `query` with `lookup` as the backend's type metadata lookup.
#[cfg(any(feature = "sqlite", feature = "mysql"))]
fn share_with<DB, MD, T>(query: &T, lookup: &mut DB::MetadataLookup) -> QueryResult<SharedQuery<MD>>
where
    DB: Backend + Default,
    DB::QueryBuilder: Default,
    for<'b> DB::BindCollector<'b>: MoveableBindCollector<DB, BindData = MD> + Default,
    T: QueryFragment<DB> + ?Sized,
{
    let backend = DB::default();
    let mut query_builder = DB::QueryBuilder::default();
    query.to_sql(&mut query_builder, &backend)?;
    let safe_to_cache = query.is_safe_to_cache_prepared(&backend)?;
    let mut binds = <DB::BindCollector<'_> as Default>::default();
    query.collect_binds(&mut binds, lookup, &backend)?;
    Ok(SharedQuery {
        sql: query_builder.finish().into(),
        safe_to_cache,
        binds: Arc::new(binds.moveable()),
        pending: None,
    })
}

#[cfg(feature = "sqlite")]
impl AsyncDoubleWriteBackend for diesel::sqlite::Sqlite {
    type Shared = SharedQuery<
        <<Self as Backend>::BindCollector<'static> as MoveableBindCollector<Self>>::BindData,
    >;

    fn share<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Shared> {
        share_with::<Self, _, T>(query, &mut ())
    }
}

#[cfg(feature = "mysql")]
impl AsyncDoubleWriteBackend for diesel::mysql::Mysql {
    type Shared = SharedQuery<diesel::query_builder::bind_collector::RawBytesBindCollector<Self>>;

    fn share<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Shared> {
        share_with::<Self, _, T>(query, &mut ())
    }
}

#[cfg(feature = "postgres")]
impl AsyncDoubleWriteBackend for diesel::pg::Pg {
    type Shared = SharedQuery<diesel::query_builder::bind_collector::RawBytesBindCollector<Self>>;

    fn share<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Shared> {
        let backend = diesel::pg::Pg;
        let mut query_builder = <Self as Backend>::QueryBuilder::default();
        query.to_sql(&mut query_builder, &backend)?;
        let safe_to_cache = query.is_safe_to_cache_prepared(&backend)?;
        let (binds, pending) = super::type_oids::render(query)?;
        Ok(SharedQuery {
            sql: query_builder.finish().into(),
            safe_to_cache,
            binds: Arc::new(binds),
            pending: pending.map(Arc::new),
        })
    }

    fn fresh(query: &Self::Shared) -> Self::Shared {
        query.fresh()
    }

    fn needs_lookup(query: &Self::Shared) -> bool {
        query.pending().is_some_and(|p| p.resolved.get().is_none())
    }

    fn resolve<'a, C>(
        query: &'a Self::Shared,
        conn: &'a mut C,
        cache: &'a TypeOids,
    ) -> Option<BoxFuture<'a, QueryResult<()>>>
    where
        C: diesel_async::AsyncConnection<Backend = Self> + Send,
    {
        let pending = query.pending()?;
        if pending.resolved.get().is_some() {
            return None;
        }
        Some(Box::pin(super::type_oids::resolve(
            &query.binds,
            pending,
            conn,
            cache,
        )))
    }

    fn forget(query: &Self::Shared, cache: &TypeOids) {
        cache.forget(query.pending());
    }
}
