//! [`DoubleWrite`]: an r2d2 pool of [`DoubleWriteConnection`]s that share one context.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use diesel::r2d2::R2D2Connection;
use diesel::result::ConnectionError;

use super::backend::DoubleWriteBackend;
use super::builder::{DoubleWriteBuilder, PoolSettings};
use super::connection::DoubleWriteConnection;
use super::context::DoubleWriteContext;
use super::health::HealthReport;
use super::journal::MemoryJournal;
use super::metrics::MetricsSnapshot;
use super::switch::PatternSwitch;
use crate::error::Error;

/// An r2d2 pool of [`DoubleWriteConnection`]s sharing one [`DoubleWriteContext`]: the pattern
/// switch, the journal, the metrics and the settings. It derefs to the
/// [`r2d2::Pool`] (`state()`, `get_timeout()`, ...); cloning is cheap and shares the pool.
///
/// ```no_run
/// use diesel::prelude::*;
/// use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch};
/// # #[cfg(feature = "postgres")]
/// # fn main() -> Result<(), diesel_rw::Error> {
/// let switch = PatternSwitch::new(Pattern::SrcOnly);
/// let pool = DoubleWrite::<PgConnection>::builder()
///     .source("postgres://app:secret@127.0.0.1:55432/app")
///     .destination("postgres://app:secret@127.0.0.1:55434/app")
///     .pattern(switch.clone())
///     .strict(false)
///     .build()?;
/// let mut conn = pool.get()?;
/// diesel::sql_query("INSERT INTO users (id, name) VALUES (1, 'ada')").execute(&mut *conn)?;
/// switch.advance()?; // SrcOnly -> SrcFirst: the next statement of every connection writes both
/// # Ok(()) }
/// # #[cfg(not(feature = "postgres"))] fn main() {}
/// ```
pub struct DoubleWrite<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    pool: r2d2::Pool<DoubleWriteManager<C>>,
    context: DoubleWriteContext,
}

impl<C> Clone for DoubleWrite<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    fn clone(&self) -> Self {
        DoubleWrite {
            pool: self.pool.clone(),
            context: self.context.clone(),
        }
    }
}

impl<C> fmt::Debug for DoubleWrite<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoubleWrite")
            .field("context", &self.context)
            .field("state", &self.pool.state())
            .finish()
    }
}

impl<C> Deref for DoubleWrite<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    type Target = r2d2::Pool<DoubleWriteManager<C>>;

    fn deref(&self) -> &Self::Target {
        &self.pool
    }
}

impl<C> DoubleWrite<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    /// A builder for a pool.
    pub fn builder() -> DoubleWriteBuilder<Self> {
        DoubleWriteBuilder::default()
    }

    pub(crate) fn new(
        manager: DoubleWriteManager<C>,
        context: DoubleWriteContext,
        settings: &PoolSettings,
    ) -> Self {
        let pool = r2d2::Pool::builder()
            .max_size(settings.max_size)
            .min_idle(settings.min_idle.map(|m| m.min(settings.max_size)))
            // Broken connections are found by their errors; a lost side reconnects by itself.
            .test_on_check_out(false)
            .connection_timeout(settings.connection_timeout)
            .idle_timeout(settings.idle_timeout)
            .max_lifetime(settings.max_lifetime)
            .error_handler(Box::new(TracingErrors))
            .build_unchecked(manager);
        DoubleWrite { pool, context }
    }

    /// A connection, waiting up to the pool's connection timeout. Its first side (of the
    /// current pattern) must be reachable; its second side may be down.
    pub fn get(&self) -> Result<r2d2::PooledConnection<DoubleWriteManager<C>>, Error> {
        self.pool
            .get()
            .map_err(|source| Error::DoubleWriteUnavailable {
                timeout: self.pool.connection_timeout(),
                reason: source.to_string(),
            })
    }

    /// The underlying r2d2 pool.
    pub fn pool(&self) -> &r2d2::Pool<DoubleWriteManager<C>> {
        &self.pool
    }

    /// What every connection of the pool shares.
    pub fn context(&self) -> &DoubleWriteContext {
        &self.context
    }

    /// The pattern switch every connection follows.
    pub fn switch(&self) -> &PatternSwitch {
        self.context.switch()
    }

    /// A snapshot of both sides' counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.context.metrics().snapshot()
    }

    /// The default in-memory journal (`None` if another journal was configured).
    pub fn memory_journal(&self) -> Option<&MemoryJournal> {
        self.context.memory_journal()
    }

    /// Pings both sides on new connections (outside the pool, so that a side that is down is
    /// reported rather than failing the checkout) and says which failed.
    pub fn health_check(&self) -> HealthReport {
        DoubleWriteConnection::<C>::unconnected(self.context.clone()).health_check()
    }
}

/// The r2d2 manager of a [`DoubleWrite`] pool: opens [`DoubleWriteConnection`]s sharing its
/// context.
pub struct DoubleWriteManager<C> {
    context: DoubleWriteContext,
    _connection: PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for DoubleWriteManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoubleWriteManager")
            .field("context", &self.context)
            .finish()
    }
}

impl<C> DoubleWriteManager<C> {
    /// A manager opening connections that share `context`.
    pub fn new(context: DoubleWriteContext) -> Self {
        DoubleWriteManager {
            context,
            _connection: PhantomData,
        }
    }
}

impl<C> r2d2::ManageConnection for DoubleWriteManager<C>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    type Connection = DoubleWriteConnection<C>;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        DoubleWriteConnection::connect(self.context.clone()).map_err(|e| {
            diesel::r2d2::Error::ConnectionError(ConnectionError::BadConnection(e.to_string()))
        })
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    /// Called as a connection goes back to the pool: a double write over two clusters gives its
    /// side connections back to their pools here, so the next checkout starts afresh.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        let broken = conn.is_broken();
        if !broken {
            conn.release_cluster_sides();
        }
        broken
    }
}

/// Reports r2d2's background connection errors as tracing events.
#[derive(Debug)]
struct TracingErrors;

impl r2d2::HandleError<diesel::r2d2::Error> for TracingErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(target: "diesel_rw::double_write", error = %error, "connection error");
    }
}
