//! The PostgreSQL connection API on [`DoubleWriteConnection`] (over `PgConnection`, or over two
//! clusters of [`RwConnection<PgConnection>`](crate::RwConnection)): see [`crate::pg`].

use std::any::Any;
use std::sync::Arc;

use diesel::pg::{CopyFromQuery, Pg, PgMetadataLookup, PgTypeMetadata};
use diesel::r2d2::R2D2Connection;
use diesel::result::{Error as DieselError, QueryResult};
use diesel::ExecuteCopyFromDsl;

use super::connection::DoubleWriteConnection;
use super::core::differ_counts;
use super::transaction::{begin_with, ready, wrong_hook, BeginHook};
use crate::classify::StatementKind;
use crate::pg::copy::{CopyToConnection, COPY_FROM};
use crate::pg::{BuildPgTransaction, PgTransactionBuilder, PgTransactionSettings};

/// What to do instead of a `COPY FROM` the pattern would double-write.
const USE_COPY_FROM_EACH: &str = "Build it in a closure and run it with `DoubleWriteConnection::copy_from_each`, which builds it once per side, or use `insert_into(..).values(..)`";

impl<C> BuildPgTransaction for DoubleWriteConnection<C>
where
    C: BuildPgTransaction + R2D2Connection + 'static,
{
    /// A `READ ONLY` transaction begins on the side the pattern reads from alone (it cannot
    /// write, so there is nothing to mirror, and the other side is never read); over a cluster
    /// that side's routing runs it on one of its replicas. Any other begins on the first side,
    /// then the second, with the same settings, as [`Connection::transaction`] does
    /// (see [`DoubleWriteConnection`] for the failure semantics).
    ///
    /// [`Connection::transaction`]: diesel::Connection::transaction
    fn begin_pg_transaction(&mut self, settings: &PgTransactionSettings) -> QueryResult<()> {
        let settings = *settings;
        let hook = BeginHook::Sync(Arc::new(move |conn: &mut dyn Any| {
            match conn.downcast_mut::<C>() {
                Some(conn) => conn.begin_pg_transaction(&settings),
                None => Err(wrong_hook()),
            }
        }));
        ready(begin_with(self, hook, settings.is_read_only()))
    }
}

impl<C> DoubleWriteConnection<C>
where
    C: BuildPgTransaction + R2D2Connection + 'static,
{
    /// Builds a transaction with an isolation level, a read mode and `DEFERRABLE`, as
    /// `PgConnection::build_transaction` does. A `read_only()` transaction runs on the side the
    /// pattern reads from alone (over a cluster, on one of its replicas); any other runs on
    /// both sides with the same settings, first side first, committed and rolled back as
    /// [`Connection::transaction`](diesel::Connection::transaction)'s are.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::prelude::*;
    /// use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch};
    ///
    /// let pool = DoubleWrite::<PgConnection>::builder()
    ///     .source("postgres://127.0.0.1:55432/app")
    ///     .destination("postgres://127.0.0.1:55434/app")
    ///     .pattern(PatternSwitch::new(Pattern::SrcFirst))
    ///     .build()?;
    /// let mut conn = pool.get()?;
    /// conn.build_transaction().serializable().run(|conn| {
    ///     diesel::sql_query("UPDATE accounts SET balance = balance - 1 WHERE id = 1").execute(conn)
    /// })?; // on the source, then the destination, both SERIALIZABLE
    /// # Ok(()) }
    /// ```
    pub fn build_transaction(&mut self) -> PgTransactionBuilder<'_, Self> {
        PgTransactionBuilder::new(self)
    }
}

impl<C> DoubleWriteConnection<C>
where
    C: R2D2Connection<Backend = Pg> + 'static,
{
    /// A double-written `COPY ... FROM STDIN`: `make` builds the `diesel::copy_from(..)` query,
    /// once per side that runs it (diesel's query sends its data once), and each runs as any
    /// write: the first side, then the second only if the first applied it; the affected row
    /// counts are compared; a second-side failure is journaled (lenient) or returned as
    /// [`Error::SecondaryWriteFailed`](crate::Error::SecondaryWriteFailed) (strict).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::prelude::*;
    /// use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch};
    ///
    /// diesel::table! { users (id) { id -> Integer, name -> Text } }
    ///
    /// #[derive(Insertable)]
    /// #[diesel(table_name = users, treat_none_as_default_value = false)]
    /// struct NewUser { id: i32, name: String }
    ///
    /// let pool = DoubleWrite::<PgConnection>::builder()
    ///     .source("postgres://127.0.0.1:55432/app")
    ///     .destination("postgres://127.0.0.1:55434/app")
    ///     .pattern(PatternSwitch::new(Pattern::SrcFirst))
    ///     .build()?;
    /// let mut conn = pool.get()?;
    /// let rows = vec![NewUser { id: 1, name: "ada".into() }];
    /// let copied = conn.copy_from_each(|| diesel::copy_from(users::table).from_insertable(&rows))?;
    /// assert_eq!(copied, 1);
    /// # Ok(()) }
    /// ```
    pub fn copy_from_each<Q>(&mut self, mut make: impl FnMut() -> Q) -> QueryResult<usize>
    where
        Q: ExecuteCopyFromDsl<C, Error = DieselError>,
    {
        self.run(
            StatementKind::Write,
            || COPY_FROM.to_owned(),
            |c| make().execute(c),
            differ_counts,
        )
    }
}

/// `COPY ... FROM STDIN` as a write on the side the pattern writes to, under `SrcOnly` and
/// `DstOnly`. Under `SrcFirst` and `DstFirst` it is refused before anything is sent (diesel's
/// query sends its data once, and a write never reaches one side only unseen): use
/// [`DoubleWriteConnection::copy_from_each`].
impl<T, A, C> ExecuteCopyFromDsl<DoubleWriteConnection<C>> for CopyFromQuery<T, A>
where
    C: R2D2Connection<Backend = Pg> + 'static,
    CopyFromQuery<T, A>: ExecuteCopyFromDsl<C, Error = DieselError>,
{
    type Error = DieselError;

    fn execute(self, conn: &mut DoubleWriteConnection<C>) -> QueryResult<usize> {
        conn.write_once(COPY_FROM, USE_COPY_FROM_EACH, move |c| self.execute(c))
    }
}

/// `COPY TO` on the side the pattern reads from (over a cluster, where that side routes a read).
impl<C> CopyToConnection for DoubleWriteConnection<C>
where
    C: CopyToConnection + R2D2Connection<Backend = Pg> + 'static,
{
    fn with_copy_to<T>(
        &mut self,
        f: impl FnOnce(&mut diesel::PgConnection) -> QueryResult<T>,
    ) -> QueryResult<T> {
        self.with_read_side(|c| c.with_copy_to(f))
    }
}

/// The type lookup runs on the side the pattern reads from.
impl<C> PgMetadataLookup for DoubleWriteConnection<C>
where
    C: PgMetadataLookup + R2D2Connection<Backend = Pg> + 'static,
{
    fn lookup_type(&mut self, type_name: &str, schema: Option<&str>) -> PgTypeMetadata {
        self.with_read_side(|c| Ok(c.lookup_type(type_name, schema)))
            .unwrap_or_else(|_| crate::pg::metadata::failed(type_name, schema))
    }

    fn as_any<'a>(&mut self) -> &mut (dyn Any + 'a)
    where
        Self: 'a,
    {
        self
    }
}

#[cfg(feature = "async")]
mod asynchronous {
    use std::any::Any;
    use std::sync::Arc;

    use diesel::result::QueryResult;

    use super::super::async_connection::{AsyncDoubleWritable, AsyncDoubleWriteConnection};
    use super::super::transaction::{begin_with, wrong_hook, BeginHook};
    use crate::pg::{AsyncBuildPgTransaction, AsyncPgTransactionBuilder, PgTransactionSettings};

    impl<C> AsyncBuildPgTransaction for AsyncDoubleWriteConnection<C>
    where
        C: AsyncBuildPgTransaction + AsyncDoubleWritable,
    {
        /// As the sync [`DoubleWriteConnection`](crate::DoubleWriteConnection)'s: `READ ONLY`
        /// on the read side alone, any other on both sides with the same settings.
        fn begin_pg_transaction(
            &mut self,
            settings: PgTransactionSettings,
        ) -> impl std::future::Future<Output = QueryResult<()>> + Send {
            let hook = BeginHook::Async(Arc::new(move |conn: &mut (dyn Any + Send)| {
                match conn.downcast_mut::<C>() {
                    Some(conn) => Box::pin(conn.begin_pg_transaction(settings)),
                    None => Box::pin(std::future::ready(Err(wrong_hook()))),
                }
            }));
            begin_with(self, hook, settings.is_read_only())
        }
    }

    impl<C> AsyncDoubleWriteConnection<C>
    where
        C: AsyncBuildPgTransaction + AsyncDoubleWritable,
    {
        /// Builds a transaction with an isolation level, a read mode and `DEFERRABLE`, as
        /// `AsyncPgConnection::build_transaction` does, run as the sync
        /// [`DoubleWriteConnection::build_transaction`](crate::DoubleWriteConnection::build_transaction)
        /// runs it: `read_only()` on the side the pattern reads from alone, any other on both
        /// sides with the same settings, first side first.
        pub fn build_transaction(&mut self) -> AsyncPgTransactionBuilder<'_, Self> {
            AsyncPgTransactionBuilder::new(self)
        }
    }
}
