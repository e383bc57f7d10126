//! Where a node's connections come from: a deadpool pool, or a URL connected on demand (for
//! [`AsyncRwConnection::establish`](diesel_async::AsyncConnection::establish)).

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::query_builder::{QueryFragment, SqlQuery};
use diesel::result::{ConnectionError, QueryResult};
use diesel::sql_types::{Nullable, Text};
use diesel::QueryableByName;
use diesel_async::methods::LoadQuery;
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncConnectionCore, SimpleAsyncConnection};

use super::collect::Collect;
use crate::backend::RwBackend;
use crate::config::Config;
use crate::error::Error;
use crate::health::Health;
use crate::route::{Node, Role};
use crate::url::NodeUrl;

/// A diesel-async connection type that [`AsyncRwPool`](crate::AsyncRwPool) can pool and
/// [`AsyncRwConnection`](crate::AsyncRwConnection) can route: every connection that diesel-async's
/// deadpool support can pool, of a backend diesel-rw knows (`AsyncPgConnection`,
/// `AsyncMysqlConnection`, `SyncConnectionWrapper<SqliteConnection>`, with the `postgres`,
/// `mysql` and `sqlite` features). Implemented for all of them; nothing to implement.
pub trait AsyncPoolable: Poolable {}

impl<C: Poolable> AsyncPoolable for C {}

/// What [`AsyncPoolable`] needs, behind one bound: diesel-async's pool manager is only a deadpool
/// `Manager` under higher-ranked bounds that would otherwise be repeated on every item. Its rows
/// are `Send` and `Unpin` (as all three backends' are): a load's first row is read before the load resolves
/// and travels with the stream (see [`RoutedStream`](crate::RoutedStream)).
pub trait Poolable:
    PoolableConnection<Backend: RwBackend + Collect>
    + for<'conn, 'query> AsyncConnectionCore<Row<'conn, 'query>: Send + Unpin>
    + SimpleAsyncConnection
    + Send
    + 'static
{
    /// A deadpool pool of this connection type.
    #[doc(hidden)]
    type Pool: Send + Sync + 'static;
    /// A connection checked out of [`Self::Pool`].
    #[doc(hidden)]
    type Object: DerefMut<Target = Self> + Send + 'static;

    /// Builds a node's pool (connects lazily).
    #[doc(hidden)]
    fn build_pool(
        url: &NodeUrl,
        role: Role,
        limits: PoolLimits,
        stale: Stale,
    ) -> Result<Self::Pool, Error>;

    /// Checks a connection out within `timeout` (both waiting for a free slot and connecting).
    #[doc(hidden)]
    fn checkout(
        pool: &Self::Pool,
        timeout: Duration,
    ) -> impl Future<Output = Result<Self::Object, CheckoutFailed>> + Send + '_;

    /// Makes a connection within `limit` and leaves it idle in the pool.
    #[doc(hidden)]
    fn warm(pool: &Self::Pool, limit: Duration) -> impl Future<Output = ()> + Send + 'static;

    /// The pool's size and idle connections.
    #[doc(hidden)]
    fn pool_status(pool: &Self::Pool) -> NodePoolStatus;

    /// Takes a checked-out connection out of its pool for good (it is closed, not reused).
    #[doc(hidden)]
    fn discard(conn: Self::Object);

    /// Runs `sql`, a query returning one nullable text value named `value`: the async twin of
    /// [`RwBackend::query_text`], for the replication-position queries.
    #[doc(hidden)]
    fn query_text<'a>(
        conn: &'a mut Self,
        sql: &str,
    ) -> impl Future<Output = QueryResult<Option<String>>> + Send + 'a;
}

/// Why a checkout failed.
#[doc(hidden)]
#[derive(Debug)]
pub struct CheckoutFailed {
    message: String,
    /// Making a new connection took longer than the timeout (it was abandoned).
    slow_connect: bool,
    /// Every connection of the pool stayed in use for the whole wait (and none could be
    /// made: the pool is at its size): busy, not down.
    busy: bool,
    /// How long the checkout waited.
    waited: Duration,
}

/// The row of [`Poolable::query_text`].
#[doc(hidden)]
#[derive(QueryableByName)]
pub struct TextRow {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

impl<C> Poolable for C
where
    C: PoolableConnection<Backend: RwBackend + Collect> + SimpleAsyncConnection + Send + 'static,
    for<'conn, 'query> <C as AsyncConnectionCore>::Row<'conn, 'query>: Send + Unpin,
    for<'a> diesel::dsl::select<diesel::dsl::AsExprOf<i32, diesel::sql_types::Integer>>:
        LoadQuery<'a, C, i32>,
    SqlQuery: QueryFragment<C::Backend>,
    for<'a> SqlQuery: LoadQuery<'a, C, TextRow>,
{
    type Pool = Pool<C>;
    type Object = Object<C>;

    fn build_pool(
        url: &NodeUrl,
        role: Role,
        limits: PoolLimits,
        stale: Stale,
    ) -> Result<Pool<C>, Error> {
        let PoolLimits {
            max_size,
            timeout,
            max_lifetime,
            idle_timeout,
        } = limits;
        let mut manager_config = ManagerConfig::<C>::default();
        // A checkout costs a pool lock, not a round trip (`Verified` would run `SELECT 1` on
        // every checkout): a broken connection is found by its error, and diesel-async discards
        // a connection whose transaction state is broken or open.
        manager_config.recycling_method = RecyclingMethod::Fast;
        if <C::Backend as RwBackend>::session_statements(role)
            .next()
            .is_some()
        {
            manager_config.custom_setup =
                Box::new(move |url| Box::pin(establish_session::<C>(url, role)));
        }
        let manager = AsyncDieselConnectionManager::new_with_config(url.expose(), manager_config);
        Pool::builder(manager)
            .max_size(max_size as usize)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            // deadpool has no lifetime limits of its own: a connection past them, or made
            // before its node's connections were retired, is dropped when it would next be
            // handed out.
            .pre_recycle(Hook::sync_fn(move |_, metrics| {
                if stale.is_stale(metrics.created) {
                    return Err(HookError::message(
                        "made before a connection error on its node",
                    ));
                }
                if max_lifetime.is_some_and(|max| metrics.age() > max) {
                    return Err(HookError::message("past max_lifetime"));
                }
                if idle_timeout.is_some_and(|idle| metrics.last_used() > idle) {
                    return Err(HookError::message("past idle_timeout"));
                }
                Ok(())
            }))
            .build()
            .map_err(|e| Error::Config(format!("could not build the pool of {role} `{url}`: {e}")))
    }

    fn checkout(
        pool: &Pool<C>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Object<C>, CheckoutFailed>> + Send + '_ {
        let timeouts = deadpool::managed::Timeouts {
            wait: Some(timeout),
            create: Some(timeout),
            recycle: Some(timeout),
        };
        async move {
            let start = std::time::Instant::now();
            pool.timeout_get(&timeouts)
                .await
                .map_err(|e| CheckoutFailed {
                    slow_connect: matches!(
                        e,
                        deadpool::managed::PoolError::Timeout(
                            deadpool::managed::TimeoutType::Create
                        )
                    ),
                    busy: matches!(
                        e,
                        deadpool::managed::PoolError::Timeout(deadpool::managed::TimeoutType::Wait)
                    ),
                    waited: start.elapsed(),
                    message: e.to_string(),
                })
        }
    }

    fn warm(pool: &Pool<C>, limit: Duration) -> impl Future<Output = ()> + Send + 'static {
        let pool = pool.clone();
        let timeouts = deadpool::managed::Timeouts {
            wait: Some(limit),
            create: Some(limit),
            recycle: Some(limit),
        };
        // Dropping the connection gives it back to the pool, idle.
        async move { drop(pool.timeout_get(&timeouts).await) }
    }

    fn discard(conn: Object<C>) {
        drop(Object::take(conn));
    }

    fn query_text<'a>(
        conn: &'a mut C,
        sql: &str,
    ) -> impl Future<Output = QueryResult<Option<String>>> + Send + 'a {
        let row = diesel_async::RunQueryDsl::get_result::<TextRow>(diesel::sql_query(sql), conn);
        async move { row.await.map(|r| r.value) }
    }

    fn pool_status(pool: &Pool<C>) -> NodePoolStatus {
        let s = pool.status();
        NodePoolStatus {
            max_size: s.max_size,
            size: s.size,
            available: s.available,
            waiting: s.waiting,
        }
    }
}

/// The settings of one node's pool.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct PoolLimits {
    max_size: u32,
    timeout: Duration,
    max_lifetime: Option<Duration>,
    idle_timeout: Option<Duration>,
}

impl PoolLimits {
    fn new(role: Role, config: &Config) -> Self {
        let (max_size, timeout) = match role {
            Role::Primary => (config.max_size, config.connection_timeout),
            Role::Replica => (
                config.replica_max_size.unwrap_or(config.max_size),
                config.replica_timeout,
            ),
        };
        PoolLimits {
            max_size,
            timeout,
            max_lifetime: config.max_lifetime,
            idle_timeout: config.idle_timeout,
        }
    }
}

/// Tells the connections of a node made before its connections were retired (after a
/// connection error, see `Health::retire`): likely broken the same way, they are not reused.
#[doc(hidden)]
pub struct Stale {
    health: Arc<Health>,
    node: Node,
    /// The node's generation when last seen, and when it was first seen.
    seen: Mutex<(u64, Instant)>,
}

impl Stale {
    fn new(health: &Arc<Health>, node: Node) -> Self {
        Stale {
            health: health.clone(),
            node,
            seen: Mutex::new((health.generation_of(node), Instant::now())),
        }
    }

    /// Whether a connection made at `created` predates the node's current generation. The
    /// generation's start is when this first saw it, a little after the retirement: a
    /// connection made in between is retired too, which costs a reconnect, never a reuse.
    fn is_stale(&self, created: Instant) -> bool {
        let generation = self.health.generation_of(self.node);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.0 != generation {
            *seen = (generation, Instant::now());
        }
        created < seen.1
    }
}

/// Connects and makes the session read-only, so that a write that reached a replica by mistake
/// fails there. Runs once per physical replica connection.
pub(crate) async fn establish_session<C>(url: &str, role: Role) -> diesel::ConnectionResult<C>
where
    C: AsyncConnection + SimpleAsyncConnection,
    C::Backend: RwBackend,
{
    let mut conn = C::establish(url).await?;
    for sql in <C::Backend as RwBackend>::session_statements(role) {
        conn.batch_execute(sql)
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
    }
    Ok(conn)
}

/// One node's pool: how many connections it has and how many are idle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodePoolStatus {
    /// The most connections the pool opens.
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open connections that are idle (not checked out).
    pub available: usize,
    /// Checkouts waiting for a connection.
    pub waiting: usize,
}

/// A connection held by an [`AsyncRwConnection`](crate::AsyncRwConnection).
pub(crate) enum Held<C: AsyncPoolable> {
    Pooled(C::Object),
    Owned(C),
}

impl<C: AsyncPoolable> Deref for Held<C> {
    type Target = C;
    fn deref(&self) -> &C {
        match self {
            Held::Pooled(c) => c,
            Held::Owned(c) => c,
        }
    }
}

impl<C: AsyncPoolable> DerefMut for Held<C> {
    fn deref_mut(&mut self) -> &mut C {
        match self {
            Held::Pooled(c) => c,
            Held::Owned(c) => c,
        }
    }
}

impl<C: AsyncPoolable> Held<C> {
    /// Closes the connection instead of giving it back to its pool.
    pub(crate) fn discard(self) {
        if let Held::Pooled(conn) = self {
            C::discard(conn);
        }
    }
}

/// One node's source of connections.
pub(crate) struct NodeSource<C: AsyncPoolable> {
    url: NodeUrl,
    role: Role,
    timeout: Duration,
    pool: Option<C::Pool>,
    /// A connection is being made in the background (see [`Self::warm`]).
    warming: Arc<AtomicBool>,
}

/// How long a connection made in the background may take (at least the node's timeout): one
/// abandoned by a checkout's timeout, or the lag monitor's own.
const BACKGROUND_CONNECT_LIMIT: Duration = Duration::from_secs(5);

impl<C: AsyncPoolable> NodeSource<C> {
    /// A node backed by a deadpool pool, which opens connections when they are first needed, so
    /// a node that is down when the pool is built does not stop the build.
    pub(crate) fn pooled(
        url: &NodeUrl,
        node: Node,
        config: &Config,
        health: &Arc<Health>,
    ) -> Result<Self, Error> {
        let role = node.role();
        let limits = PoolLimits::new(role, config);
        Ok(NodeSource {
            url: url.clone(),
            role,
            timeout: limits.timeout,
            pool: Some(C::build_pool(url, role, limits, Stale::new(health, node))?),
            warming: Arc::default(),
        })
    }

    /// A node connected on demand, one connection at a time.
    pub(crate) fn direct(url: &NodeUrl, role: Role, timeout: Duration) -> Self {
        NodeSource {
            url: url.clone(),
            role,
            timeout,
            pool: None,
            warming: Arc::default(),
        }
    }

    /// Whether connections come from a pool (and should be given back when not in use).
    pub(crate) fn is_pooled(&self) -> bool {
        self.pool.is_some()
    }

    /// The node's redacted URL.
    pub(crate) fn name(&self) -> &str {
        self.url.redacted()
    }

    /// The node's URL, for the lag monitor's own connections.
    pub(crate) fn url(&self) -> &NodeUrl {
        &self.url
    }

    /// How long a checkout from this node may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How long a connection to this node made in the background may take: the node's timeout,
    /// or [`BACKGROUND_CONNECT_LIMIT`] if longer.
    pub(crate) fn connect_limit(&self) -> Duration {
        BACKGROUND_CONNECT_LIMIT.max(self.timeout)
    }

    /// A checkout gave up on a connection that took longer than the node's timeout to make
    /// (deadpool abandons it): make one in the background, within [`Self::connect_limit`], and
    /// leave it idle in the pool for the next checkout, as r2d2 does on the sync stack.
    /// Otherwise a node that takes longer to connect than its timeout (a slow handshake on a
    /// loaded host, a server that just restarted) could never be used again. One at a time per
    /// node.
    fn warm(&self, pool: &C::Pool) {
        if self.warming.swap(true, Ordering::AcqRel) {
            return;
        }
        let warming = self.warming.clone();
        let make = C::warm(pool, self.connect_limit());
        tokio::spawn(async move {
            make.await;
            warming.store(false, Ordering::Release);
        });
    }

    /// The pool's status; `None` for a node connected on demand.
    pub(crate) fn status(&self) -> Option<NodePoolStatus> {
        self.pool.as_ref().map(C::pool_status)
    }

    /// Gets a connection: from the pool within the node's timeout, or a new one.
    pub(crate) async fn checkout(&self) -> Result<Held<C>, Error> {
        let failed = |reason: String| match self.role {
            Role::Primary => Error::PrimaryUnavailable {
                timeout: Some(self.timeout),
                maybe_applied: false,
                source: reason.into(),
            },
            Role::Replica => Error::Connect {
                role: self.role,
                node: self.url.redacted().to_owned(),
                source: ConnectionError::BadConnection(format!(
                    "no connection within {:?}: {reason}",
                    self.timeout
                )),
            },
        };
        match &self.pool {
            Some(pool) => match C::checkout(pool, self.timeout).await {
                Ok(conn) => Ok(Held::Pooled(conn)),
                Err(e) if e.busy => Err(Error::PoolExhausted {
                    role: self.role,
                    node: self.url.redacted().to_owned(),
                    waited: e.waited,
                }),
                Err(e) => {
                    if e.slow_connect {
                        self.warm(pool);
                    }
                    Err(failed(e.message))
                }
            },
            None => {
                let connect = establish_session::<C>(self.url.expose(), self.role);
                match tokio::time::timeout(self.timeout, connect).await {
                    Ok(Ok(conn)) => Ok(Held::Owned(conn)),
                    Ok(Err(source)) => Err(Error::connect_failed(
                        self.role,
                        self.url.redacted(),
                        source,
                    )),
                    Err(_) => Err(failed("connect timed out".into())),
                }
            }
        }
    }
}
