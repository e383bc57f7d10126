//! A statement turned into owned SQL text and bind values, for a statement that must wait for a
//! connection before it can run.
//!
//! diesel-async hands a statement to a connection as a value that need not be `Send`, and the
//! connection must turn it into something that is before its first `.await`: the async
//! connections of diesel-async render SQL and binds at once. When the connection a statement is
//! routed to is held already, [`AsyncRwConnection`](crate::AsyncRwConnection) passes the
//! statement straight to it; when that connection must first be checked out (an `.await`), the
//! statement is collected here first, as diesel's own `SyncConnectionWrapper` does.

use diesel::backend::{Backend, DieselReserveSpecialization};
use diesel::query_builder::{
    CollectedQuery, MoveableBindCollector, Query, QueryBuilder, QueryFragment, QueryId,
};
use diesel::result::QueryResult;

/// A backend whose statements can be collected into owned SQL text and binds.
pub trait Collect: Backend + DieselReserveSpecialization + Default + Sized {
    /// The collected statement: runs on any connection of the backend.
    #[doc(hidden)]
    type Owned: Query + QueryFragment<Self> + QueryId + Send + 'static;

    /// Renders `query`'s SQL and collects its binds.
    #[doc(hidden)]
    fn collect<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Owned>;
}

/// Collects `query` with `lookup` as the backend's type metadata lookup.
fn collect_with<DB, MD, T>(
    query: &T,
    lookup: &mut DB::MetadataLookup,
) -> QueryResult<CollectedQuery<MD>>
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
    Ok(CollectedQuery::new(
        query_builder.finish(),
        safe_to_cache,
        binds.moveable(),
    ))
}

#[cfg(feature = "sqlite")]
impl Collect for diesel::sqlite::Sqlite {
    type Owned = CollectedQuery<
        <<Self as Backend>::BindCollector<'static> as MoveableBindCollector<Self>>::BindData,
    >;

    fn collect<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Owned> {
        collect_with::<Self, _, T>(query, &mut ())
    }
}

#[cfg(feature = "mysql")]
impl Collect for diesel::mysql::Mysql {
    type Owned = CollectedQuery<diesel::query_builder::bind_collector::RawBytesBindCollector<Self>>;

    fn collect<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Owned> {
        collect_with::<Self, _, T>(query, &mut ())
    }
}

#[cfg(feature = "postgres")]
impl Collect for diesel::pg::Pg {
    type Owned = CollectedQuery<diesel::query_builder::bind_collector::RawBytesBindCollector<Self>>;

    fn collect<T: QueryFragment<Self> + ?Sized>(query: &T) -> QueryResult<Self::Owned> {
        let mut lookup = pg::NoLookup::default();
        let collected = collect_with::<Self, _, T>(query, &mut lookup)?;
        match lookup.missing {
            None => Ok(collected),
            Some(name) => Err(diesel::result::Error::QueryBuilderError(Box::new(
                crate::Error::InvalidState(format!(
                    "this statement binds a value of the PostgreSQL type `{name}`, whose OID \
                     is looked up on a connection, and it is the first statement of this \
                     AsyncRwConnection on its node: run it inside a transaction, or after \
                     another statement routed to the same node"
                )),
            ))),
        }
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
