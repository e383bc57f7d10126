//! [`SharedQuery`]: a statement rendered once into SQL text and bind values, which runs any
//! number of times on any connection of its backend.
//!
//! A diesel-async connection takes a statement by value, and the statement itself need not be
//! `Send`, so it cannot be kept across an `.await`. An
//! [`AsyncDoubleWriteConnection`](super::AsyncDoubleWriteConnection) runs a statement on two
//! connections, one after the other, and again when it retries: it renders the statement once,
//! before its first `.await`, into a `SharedQuery` whose copies share the bind values.

use std::sync::Arc;

use diesel::backend::{Backend, DieselReserveSpecialization};
use diesel::query_builder::{
    AstPass, MoveableBindCollector, Query, QueryBuilder, QueryFragment, QueryId,
};
use diesel::result::QueryResult;
use diesel::sql_types::Untyped;

use super::backend::DoubleWriteBackend;

/// A rendered statement: SQL text and collected bind values, cheap to clone.
#[derive(Debug)]
pub struct SharedQuery<MD> {
    sql: Arc<str>,
    safe_to_cache: bool,
    binds: Arc<MD>,
}

impl<MD> Clone for SharedQuery<MD> {
    fn clone(&self) -> Self {
        SharedQuery {
            sql: self.sql.clone(),
            safe_to_cache: self.safe_to_cache,
            binds: self.binds.clone(),
        }
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
        pass.push_bind_collector_data::<MD>(&self.binds)
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

    /// Renders `query`'s SQL and collects its binds; `Ok(Err(name))` when it binds a value of
    /// the user-defined (PostgreSQL) type `name`, whose OID only a connection can look up.
    #[doc(hidden)]
    fn render<T: QueryFragment<Self> + ?Sized>(
        query: &T,
    ) -> QueryResult<Result<Self::Shared, String>>;

    /// Renders `query` for both sides of a double write.
    #[doc(hidden)]
    fn share<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Shared> {
        Self::render(query)?.map_err(|name| {
            diesel::result::Error::QueryBuilderError(Box::new(crate::Error::InvalidState(format!(
                "this statement binds a value of the PostgreSQL type `{name}`, whose OID is \
                     looked up on a connection, and may differ between the source and the \
                     destination: an AsyncDoubleWriteConnection runs statements with built-in \
                     types only; bind the value as text and cast it in SQL"
            ))))
        })
    }
}

/// Renders `query` with `lookup` as the backend's type metadata lookup.
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
    })
}

#[cfg(feature = "sqlite")]
impl AsyncDoubleWriteBackend for diesel::sqlite::Sqlite {
    type Shared = SharedQuery<
        <<Self as Backend>::BindCollector<'static> as MoveableBindCollector<Self>>::BindData,
    >;

    fn render<T: QueryFragment<Self> + ?Sized>(
        query: &T,
    ) -> QueryResult<Result<Self::Shared, String>> {
        share_with::<Self, _, T>(query, &mut ()).map(Ok)
    }
}

#[cfg(feature = "mysql")]
impl AsyncDoubleWriteBackend for diesel::mysql::Mysql {
    type Shared = SharedQuery<diesel::query_builder::bind_collector::RawBytesBindCollector<Self>>;

    fn render<T: QueryFragment<Self> + ?Sized>(
        query: &T,
    ) -> QueryResult<Result<Self::Shared, String>> {
        share_with::<Self, _, T>(query, &mut ()).map(Ok)
    }
}

#[cfg(feature = "postgres")]
impl AsyncDoubleWriteBackend for diesel::pg::Pg {
    type Shared = SharedQuery<diesel::query_builder::bind_collector::RawBytesBindCollector<Self>>;

    fn render<T: QueryFragment<Self> + ?Sized>(
        query: &T,
    ) -> QueryResult<Result<Self::Shared, String>> {
        let mut lookup = pg::NoLookup::default();
        let shared = share_with::<Self, _, T>(query, &mut lookup)?;
        Ok(match lookup.missing {
            None => Ok(shared),
            Some(name) => Err(name),
        })
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use diesel::pg::{
        FailedToLookupTypeError, PgMetadataCacheKey, PgMetadataLookup, PgTypeMetadata,
    };

    /// A metadata lookup without a connection: built-in types never reach it; a user-defined
    /// type does, and is recorded as missing.
    #[derive(Default)]
    pub(super) struct NoLookup {
        pub(super) missing: Option<String>,
    }

    impl PgMetadataLookup for NoLookup {
        fn lookup_type(&mut self, type_name: &str, schema: Option<&str>) -> PgTypeMetadata {
            let name = match schema {
                Some(schema) => format!("{schema}.{type_name}"),
                None => type_name.to_owned(),
            };
            self.missing.get_or_insert(name);
            let key = PgMetadataCacheKey::new(
                schema.map(|s| s.to_owned().into()),
                type_name.to_owned().into(),
            );
            PgTypeMetadata::from_result(Err(FailedToLookupTypeError::new(key)))
        }
    }
}
