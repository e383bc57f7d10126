//! [`AsyncDoubleWrite`]: a deadpool pool of [`AsyncDoubleWriteConnection`]s that share one
//! context.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::ops::DerefMut;
use std::sync::Arc;

use diesel::result::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};

use super::async_connection::{AsyncDoubleWritable, AsyncDoubleWriteConnection};
use super::builder::{pools, DoubleWriteBuilder, PoolSettings};
use super::context::{AsyncConnector, DoubleWriteContext};
use super::health::HealthReport;
use super::journal::MemoryJournal;
use super::metrics::MetricsSnapshot;
use super::pattern::Side;
use super::switch::PatternSwitch;
use crate::error::Error;
use crate::{AsyncPoolable, AsyncRwConnection, AsyncRwPool};

/// A connection type whose [`AsyncDoubleWriteConnection`]s diesel-async's deadpool support can
/// pool: `AsyncPgConnection`, `AsyncMysqlConnection`, `SyncConnectionWrapper<SqliteConnection>`.
/// Implemented for all of them; nothing to implement.
pub trait AsyncDoubleWritePoolable: AsyncDoubleWritable {
    /// The deadpool pool.
    #[doc(hidden)]
    type Pool: Send + Sync + 'static;
    /// A connection checked out of [`Self::Pool`].
    #[doc(hidden)]
    type Object: DerefMut<Target = AsyncDoubleWriteConnection<Self>> + Send + 'static;

    /// Builds the pool (connects lazily).
    #[doc(hidden)]
    fn build_pool(
        context: &DoubleWriteContext,
        settings: &PoolSettings,
    ) -> Result<Self::Pool, Error>;

    /// Checks a connection out.
    #[doc(hidden)]
    fn checkout(
        pool: &Self::Pool,
    ) -> impl Future<Output = Result<Self::Object, String>> + Send + '_;
}

impl<C> AsyncDoubleWritePoolable for C
where
    C: AsyncDoubleWritable,
    AsyncDieselConnectionManager<AsyncDoubleWriteConnection<C>>:
        deadpool::managed::Manager<Type = AsyncDoubleWriteConnection<C>, Error = PoolError>,
{
    type Pool = Pool<AsyncDoubleWriteConnection<C>>;
    type Object = Object<AsyncDoubleWriteConnection<C>>;

    fn build_pool(
        context: &DoubleWriteContext,
        settings: &PoolSettings,
    ) -> Result<Self::Pool, Error> {
        let mut config = ManagerConfig::<AsyncDoubleWriteConnection<C>>::default();
        // A checkout costs a pool lock, not a round trip: broken connections are found by their
        // errors, and a lost side reconnects by itself.
        config.recycling_method = RecyclingMethod::Fast;
        let shared = context.clone();
        config.custom_setup = Box::new(move |_| {
            let context = shared.clone();
            Box::pin(async move {
                AsyncDoubleWriteConnection::connect(context)
                    .await
                    .map_err(|e| ConnectionError::BadConnection(e.to_string()))
            })
        });
        let name = context.node(Side::Source).unwrap_or_default().to_owned();
        let manager = AsyncDieselConnectionManager::new_with_config(name, config);
        let (timeout, max_lifetime, idle_timeout) = (
            settings.connection_timeout,
            settings.max_lifetime,
            settings.idle_timeout,
        );
        Pool::builder(manager)
            .max_size(settings.max_size as usize)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            // deadpool has no lifetime limits of its own: a connection past them is dropped when
            // it would next be handed out.
            .pre_recycle(Hook::sync_fn(move |_, metrics| {
                if max_lifetime.is_some_and(|max| metrics.age() > max) {
                    return Err(HookError::message("past max_lifetime"));
                }
                if idle_timeout.is_some_and(|idle| metrics.last_used() > idle) {
                    return Err(HookError::message("past idle_timeout"));
                }
                Ok(())
            }))
            .build()
            .map_err(|e| Error::Config(format!("could not build the double-write pool: {e}")))
    }

    async fn checkout(pool: &Self::Pool) -> Result<Self::Object, String> {
        pool.get().await.map_err(|e| e.to_string())
    }
}

/// A deadpool pool (diesel-async) of [`AsyncDoubleWriteConnection`]s sharing one
/// [`DoubleWriteContext`]: the async twin of [`DoubleWrite`](super::DoubleWrite).
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel_async::{AsyncPgConnection, RunQueryDsl};
/// use diesel_rw::double_write::{AsyncDoubleWrite, Pattern, PatternSwitch};
///
/// let switch = PatternSwitch::new(Pattern::SrcFirst);
/// let pool = AsyncDoubleWrite::<AsyncPgConnection>::builder()
///     .source("postgres://app:secret@127.0.0.1:55432/app")
///     .destination("postgres://app:secret@127.0.0.1:55434/app")
///     .pattern(switch.clone())
///     .build()?;
/// let mut conn = pool.get().await?;
/// diesel::sql_query("INSERT INTO users (id, name) VALUES (1, 'ada')")
///     .execute(&mut *conn)
///     .await?;
/// # Ok(()) }
/// ```
pub struct AsyncDoubleWrite<C: AsyncDoubleWritePoolable> {
    pool: C::Pool,
    context: DoubleWriteContext,
    timeout: std::time::Duration,
}

impl<C: AsyncDoubleWritePoolable> Clone for AsyncDoubleWrite<C>
where
    C::Pool: Clone,
{
    fn clone(&self) -> Self {
        AsyncDoubleWrite {
            pool: self.pool.clone(),
            context: self.context.clone(),
            timeout: self.timeout,
        }
    }
}

impl<C: AsyncDoubleWritePoolable> fmt::Debug for AsyncDoubleWrite<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncDoubleWrite")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl<C: AsyncDoubleWritePoolable> AsyncDoubleWrite<C> {
    /// A builder for a pool.
    pub fn builder() -> DoubleWriteBuilder<Self> {
        DoubleWriteBuilder::default()
    }

    /// A connection, waiting up to the pool's connection timeout. Its first side (of the
    /// current pattern) must be reachable; its second side may be down.
    pub async fn get(&self) -> Result<C::Object, Error> {
        C::checkout(&self.pool)
            .await
            .map_err(|reason| Error::DoubleWriteUnavailable {
                timeout: self.timeout,
                reason,
            })
    }

    /// The underlying deadpool pool.
    pub fn pool(&self) -> &C::Pool {
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
    pub async fn health_check(&self) -> HealthReport {
        AsyncDoubleWriteConnection::<C>::unconnected(self.context.clone())
            .health_check()
            .await
    }
}

/// A double write over two clusters, as [`DoubleWrite<RwConnection<C>>`](super::DoubleWrite)
/// for diesel-async: each side is an [`AsyncRwPool`] and each side's connection that pool's
/// [`AsyncRwConnection`]. Writes go to each side's primary; reads follow the pattern to one
/// cluster and are routed there by that cluster's replicas, health and consistency.
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn run() -> Result<(), diesel_rw::Error> {
/// use diesel_async::AsyncPgConnection;
/// use diesel_rw::double_write::{AsyncDoubleWrite, Pattern, PatternSwitch};
/// use diesel_rw::{AsyncRwConnection, AsyncRwPool};
///
/// let cluster = |primary: &str, replica: &str| {
///     AsyncRwPool::<AsyncPgConnection>::builder().primary(primary).replica(replica).build()
/// };
/// let pool = AsyncDoubleWrite::<AsyncRwConnection<AsyncPgConnection>>::builder()
///     .source_cluster(cluster("postgres://127.0.0.1:55432/app", "postgres://127.0.0.1:55433/app")?)
///     .destination_cluster(cluster("postgres://127.0.0.1:55434/app", "postgres://127.0.0.1:55435/app")?)
///     .pattern(PatternSwitch::new(Pattern::SrcFirst))
///     .build()?;
/// let mut conn = pool.get().await?;
/// # Ok(()) }
/// ```
impl<C> DoubleWriteBuilder<AsyncDoubleWrite<AsyncRwConnection<C>>>
where
    C: AsyncPoolable,
    AsyncRwConnection<C>: AsyncDoubleWritePoolable,
{
    /// The source cluster: its primary takes the writes, its replicas serve the reads of
    /// `SrcOnly` and `SrcFirst`.
    pub fn source_cluster(self, pool: AsyncRwPool<C>) -> Self {
        let url = pool.cluster.primary.url().clone();
        self.cluster(Side::Source, pool, url, async_connector::<C>)
    }

    /// The destination cluster: its primary takes the writes, its replicas serve the reads of
    /// `DstFirst` and `DstOnly`.
    pub fn destination_cluster(self, pool: AsyncRwPool<C>) -> Self {
        let url = pool.cluster.primary.url().clone();
        self.cluster(Side::Destination, pool, url, async_connector::<C>)
    }
}

/// The connector of a double write over two [`AsyncRwPool`]s.
fn async_connector<C: AsyncPoolable>(
    clusters: [Arc<dyn Any + Send + Sync>; 2],
) -> Arc<dyn Any + Send + Sync> {
    let pools = pools::<AsyncRwPool<C>>(&clusters);
    let connector: AsyncConnector<AsyncRwConnection<C>> = Arc::new(move |side| {
        let conn = pools[side.index()].connection();
        Box::pin(std::future::ready(Ok(conn)))
    });
    Arc::new(connector)
}

impl<C: AsyncDoubleWritePoolable> DoubleWriteBuilder<AsyncDoubleWrite<C>> {
    /// Validates the settings and builds the pool. Does not connect: the first checkout does.
    pub fn build(self) -> Result<AsyncDoubleWrite<C>, Error> {
        let (context, settings) = self.into_parts::<C::Backend>()?;
        Ok(AsyncDoubleWrite {
            pool: C::build_pool(&context, &settings)?,
            timeout: settings.connection_timeout,
            context,
        })
    }

    /// Validates the settings and returns the shared part alone, for
    /// [`AsyncDoubleWriteConnection::connect`] (the pool settings are ignored).
    pub fn context(self) -> Result<DoubleWriteContext, Error> {
        self.into_parts::<C::Backend>().map(|(context, _)| context)
    }

    /// Validates the settings and registers the shared part under `name`, for connections
    /// opened with the connection string `shared=NAME` (an
    /// [`AsyncRwPool<AsyncDoubleWriteConnection<C>>`](crate::AsyncRwPool)'s primary). The pool
    /// settings are ignored.
    pub fn register(self, name: &str) -> Result<DoubleWriteContext, Error> {
        let context = self.context()?;
        DoubleWriteContext::register(name, &context)?;
        Ok(context)
    }
}
