//! [`NullConnection`]: a diesel connection of the SQLite backend that sends nothing anywhere.
//!
//! Every statement "succeeds" at once without being rendered (a `load` returns no rows). Timing a statement through
//! `RwConnection<NullConnection>` against the same statement on a bare `NullConnection` leaves
//! the routing path alone: classification (a cache hit for queries with a static `QueryId`),
//! the decision (transaction, write, sticky, policy), the replica pick (a round-robin atomic),
//! the held-connection check, the counters and the tracing check.
#![cfg(feature = "sqlite")]

use diesel::connection::{
    AnsiTransactionManager, CacheSize, Connection, ConnectionSealed, Instrumentation,
    LoadConnection, SimpleConnection,
};
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::r2d2::R2D2Connection;
use diesel::result::{ConnectionResult, QueryResult};
use diesel::sqlite::{Sqlite, SqliteConnection};

/// A connection that does no I/O: see the module docs.
#[derive(Default)]
pub struct NullConnection {
    transaction: AnsiTransactionManager,
    instrumentation: Option<Box<dyn Instrumentation>>,
}

impl SimpleConnection for NullConnection {
    fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        std::hint::black_box(query);
        Ok(())
    }
}

impl ConnectionSealed for NullConnection {}

impl Connection for NullConnection {
    type Backend = Sqlite;
    type TransactionManager = AnsiTransactionManager;

    fn establish(_url: &str) -> ConnectionResult<Self> {
        Ok(NullConnection::default())
    }

    fn execute_returning_count<T>(&mut self, source: &T) -> QueryResult<usize>
    where
        T: QueryFragment<Self::Backend> + QueryId,
    {
        std::hint::black_box(source);
        Ok(1)
    }

    fn transaction_state(&mut self) -> &mut AnsiTransactionManager {
        &mut self.transaction
    }

    fn instrumentation(&mut self) -> &mut dyn Instrumentation {
        &mut self.instrumentation
    }

    fn set_instrumentation(&mut self, instrumentation: impl Instrumentation) {
        self.instrumentation = Some(Box::new(instrumentation));
    }

    fn set_prepared_statement_cache_size(&mut self, _size: CacheSize) {}
}

/// `load` returns no rows (the benches read through `execute`); it exists so that the null
/// connection fits wherever a loading connection is required.
impl LoadConnection for NullConnection {
    type Cursor<'conn, 'query> = std::iter::Empty<QueryResult<Self::Row<'conn, 'query>>>;
    type Row<'conn, 'query> = <SqliteConnection as LoadConnection>::Row<'conn, 'query>;

    fn load<'conn, 'query, T>(
        &'conn mut self,
        source: T,
    ) -> QueryResult<Self::Cursor<'conn, 'query>>
    where
        T: Query + QueryFragment<Self::Backend> + QueryId + 'query,
        Self::Backend: QueryMetadata<T::SqlType>,
    {
        std::hint::black_box(source);
        Ok(std::iter::empty())
    }
}

impl R2D2Connection for NullConnection {
    fn ping(&mut self) -> QueryResult<()> {
        Ok(())
    }
}
