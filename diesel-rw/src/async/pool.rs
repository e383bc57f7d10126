//! [`AsyncRwPool`]: one deadpool pool for the primary and one per replica.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::connection::AsyncRwConnection;
use super::monitor::Spawner;
use super::node::{establish_session, AsyncPoolable, NodePoolStatus, NodeSource};
use crate::backend::RwBackend;
use crate::config::{Config, RwPoolBuilder};
use crate::consistency::WriteToken;
use crate::error::Error;
use crate::functions::WritingFunctions;
use crate::route::{Node, Role, RoutingCore};
use crate::stats::Stats;

/// A pool of diesel-async connections to a primary and its read replicas: the async twin of
/// [`RwPool`](crate::RwPool), with the same builder, settings and routing.
///
/// Cloning is cheap and shares the pools. [`get`](AsyncRwPool::get) gives an
/// [`AsyncRwConnection`] that routes each statement: reads to a replica, writes and transactions
/// to the primary, reads after a write to the primary per the pool's
/// [`Consistency`](crate::Consistency).
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::prelude::*;
/// use diesel_async::{AsyncPgConnection, RunQueryDsl};
/// use diesel_rw::{AsyncRwPool, Consistency, Policy};
///
/// let pool = AsyncRwPool::<AsyncPgConnection>::builder()
///     .primary("postgres://app:secret@127.0.0.1:55432/app")
///     .replica("postgres://app:secret@127.0.0.1:55433/app")
///     .policy(Policy::RoundRobin)
///     .consistency(Consistency::UnitOfWork)
///     .build()?;
/// let mut conn = pool.get().await?;
/// let one: i32 = diesel::select(1.into_sql::<diesel::sql_types::Integer>())
///     .get_result(&mut conn)
///     .await?;
/// # Ok(()) }
/// ```
pub struct AsyncRwPool<C: AsyncPoolable> {
    pub(crate) cluster: Arc<Cluster<C>>,
}

/// The nodes of a pool and their shared routing state.
pub(crate) struct Cluster<C: AsyncPoolable> {
    pub(crate) core: RoutingCore,
    pub(crate) primary: NodeSource<C>,
    pub(crate) replicas: Vec<NodeSource<C>>,
    /// Starts the lag monitor task (when the pool has one) once a tokio runtime is at hand.
    pub(crate) monitor: Spawner,
}

/// The connections of an [`AsyncRwPool`]: each node's pool status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// The primary's pool.
    pub primary: NodePoolStatus,
    /// Each replica's pool, in the builder's order.
    pub replicas: Vec<NodePoolStatus>,
}

impl PoolStatus {
    /// Whether every open connection of every node is idle and no checkout is waiting.
    pub fn all_idle(&self) -> bool {
        std::iter::once(&self.primary)
            .chain(&self.replicas)
            .all(|n| n.available == n.size && n.waiting == 0)
    }
}

impl<C: AsyncPoolable> Clone for AsyncRwPool<C> {
    fn clone(&self) -> Self {
        AsyncRwPool {
            cluster: self.cluster.clone(),
        }
    }
}

impl<C: AsyncPoolable> fmt::Debug for AsyncRwPool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncRwPool")
            .field("primary", &self.cluster.primary.name())
            .field(
                "replicas",
                &self
                    .cluster
                    .replicas
                    .iter()
                    .map(NodeSource::name)
                    .collect::<Vec<_>>(),
            )
            .field("consistency", &self.cluster.core.consistency)
            .field("fallback", &self.cluster.core.fallback)
            .finish()
    }
}

impl<C: AsyncPoolable> AsyncRwPool<C> {
    /// A builder for a pool.
    pub fn builder() -> RwPoolBuilder<Self> {
        RwPoolBuilder::default()
    }

    /// A pool from the environment: the primary from `DATABASE_URL`, replicas from
    /// `DATABASE_REPLICA_URLS` (comma-separated, optional), other settings at their defaults.
    pub fn from_env() -> Result<Self, Error> {
        RwPoolBuilder::<Self>::with_config(Config::from_env()?).build()
    }

    /// A connection that routes each statement (reads to replicas, writes to the primary).
    /// Connections to the nodes are checked out when the first statement needs them, so this
    /// never waits for a server.
    ///
    /// The first connections a pool hands out wait for it to learn its functions that write
    /// (see [`RwPoolBuilder::learn_writing_functions`]), at most the primary's
    /// `connection_timeout`.
    pub async fn get(&self) -> Result<AsyncRwConnection<C>, Error> {
        self.prepare().await;
        Ok(self.connection())
    }

    /// A connection pinned to the primary: every statement, read or write, goes there.
    pub async fn primary(&self) -> Result<AsyncRwConnection<C>, Error> {
        self.prepare().await;
        let mut conn = self.connection();
        conn.state.force_primary = true;
        Ok(conn)
    }

    /// A read-only connection: reads go to replicas (or the primary, per the
    /// [`Fallback`](crate::Fallback), when none is available) and writes are rejected with
    /// [`Error::WriteOnReadRoute`] before they are sent.
    pub async fn replica(&self) -> Result<AsyncRwConnection<C>, Error> {
        self.prepare().await;
        let mut conn = self.connection();
        conn.state.read_only = true;
        Ok(conn)
    }

    /// A connection that reads `token`'s write back (a token from
    /// [`AsyncRwConnection::write_token`], maybe of another request or job): under
    /// [`Consistency::Causal`](crate::Consistency::Causal) its reads go to a replica only once
    /// the replica has replayed the write (else to the primary); under the other modes it
    /// starts sticky, as if it had written.
    pub async fn get_after(&self, token: &WriteToken) -> Result<AsyncRwConnection<C>, Error> {
        self.prepare().await;
        let mut conn = self.connection();
        conn.adopt(token.clone());
        Ok(conn)
    }

    /// A new routing connection; starts the lag monitor first if it waited for a runtime.
    pub(crate) fn connection(&self) -> AsyncRwConnection<C> {
        self.cluster.monitor.spawn_if_due(&self.cluster);
        AsyncRwConnection::new(self.cluster.clone())
    }

    /// A snapshot of what was routed where since the pool was built.
    pub fn stats(&self) -> Stats {
        self.cluster.core.stats()
    }

    /// Each node's pool: connections open and idle.
    pub fn status(&self) -> PoolStatus {
        PoolStatus {
            primary: self.cluster.primary.status().unwrap_or_default(),
            replicas: self
                .cluster
                .replicas
                .iter()
                .map(|r| r.status().unwrap_or_default())
                .collect(),
        }
    }

    /// How many replicas the pool has.
    pub fn replica_count(&self) -> usize {
        self.cluster.replicas.len()
    }

    /// The application's functions whose call this pool classifies as a write: those its
    /// builder named and those it learned from the primary's catalog (see
    /// [`crate::functions`]).
    pub fn writing_functions(&self) -> &WritingFunctions {
        &self.cluster.core.functions
    }

    /// Learns the functions that write from the primary's catalog now, on a connection of its
    /// own, and returns how many the catalog names (a function just created is a write from
    /// the next statement on). `Ok(0)` for a backend without such a catalog (SQLite) or a pool
    /// built with `learn_writing_functions(false)`.
    pub async fn refresh_writing_functions(&self) -> Result<usize, Error> {
        let functions = &self.cluster.core.functions;
        if !functions.learns() {
            return Ok(0);
        }
        // One learning at a time: wait for one under way, then learn afresh.
        while !functions.claim_now() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let answer = learn_catalog::<C>(&self.cluster.primary).await;
        functions.learned(answer)
    }

    /// Starts learning the functions that write when that is due (in a task), and waits for
    /// the first learning.
    async fn prepare(&self) {
        let functions = &self.cluster.core.functions;
        if functions.claim_due() {
            let cluster = Arc::downgrade(&self.cluster);
            tokio::spawn(async move {
                if let Some(cluster) = cluster.upgrade() {
                    let answer = learn_catalog::<C>(&cluster.primary).await;
                    let _ = cluster.core.functions.learned(answer);
                }
            });
        }
        while !functions.first_wait_over() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Reads the catalog of the functions that write ([`RwBackend::FUNCTION_CATALOG`]) on a new
/// connection to the primary, within its background connect limit.
async fn learn_catalog<C: AsyncPoolable>(primary: &NodeSource<C>) -> Result<Option<String>, Error> {
    let Some(catalog) = <C::Backend as RwBackend>::FUNCTION_CATALOG else {
        return Ok(None);
    };
    let limit = primary.connect_limit();
    let learn = async {
        let mut conn = establish_session::<C>(primary.url().expose(), Role::Primary)
            .await
            .map_err(|source| Error::connect_failed(Role::Primary, primary.name(), source))?;
        if !catalog.setup.is_empty() {
            conn.batch_execute(catalog.setup).await?;
        }
        Ok(C::query_text(&mut conn, catalog.query).await?)
    };
    tokio::time::timeout(limit, learn)
        .await
        .unwrap_or_else(|_| {
            Err(Error::connect_failed(
                Role::Primary,
                primary.name(),
                diesel::ConnectionError::BadConnection(format!(
                    "the primary's catalog of functions gave no answer within {limit:?}"
                )),
            ))
        })
}

impl<C: AsyncPoolable> RwPoolBuilder<AsyncRwPool<C>> {
    /// Validates the settings and builds the pool. Does not connect: a node that is down now
    /// is found (and, for a replica, ejected) when a statement first needs it. Needs a tokio
    /// runtime only once connections are checked out.
    ///
    /// deadpool keeps no idle connections ahead of need, so `min_idle` is not used;
    /// `idle_timeout` counts from a connection's last checkout and `max_lifetime` from its
    /// creation, both checked when it would next be handed out.
    ///
    /// The lag monitor (`health_interval`; on by default with
    /// [`Consistency::Causal`](crate::Consistency::Causal) or `max_replica_lag`) is a tokio task
    /// with its own connections, stopped when the pool is dropped. It needs a tokio runtime:
    /// built inside one, the pool spawns it at once; built outside, it is spawned on that
    /// runtime when the pool first hands out a connection (a warning says so).
    pub fn build(self) -> Result<AsyncRwPool<C>, Error> {
        let mut config = self.config;
        config.learn_writing_functions &= <C::Backend as RwBackend>::FUNCTION_CATALOG.is_some();
        let primary = config
            .validate(<C::Backend as crate::RwBackend>::check_url)?
            .clone();
        let core = RoutingCore::new(&config, &primary);
        let health = core.health.clone();
        let monitor = config
            .monitor_interval()
            .filter(|_| !config.replicas.is_empty());
        let cluster = Arc::new(Cluster {
            core,
            primary: NodeSource::pooled(&primary, Node::Primary, &config, &health)?,
            replicas: config
                .replicas
                .iter()
                .enumerate()
                .map(|(i, (url, _))| NodeSource::pooled(url, Node::Replica(i), &config, &health))
                .collect::<Result<_, _>>()?,
            monitor: Spawner::new(monitor),
        });
        cluster.monitor.spawn_if_due(&cluster);
        if cluster.monitor.is_due() {
            tracing::warn!(
                target: "diesel_rw",
                "no tokio runtime while building the AsyncRwPool: its lag monitor starts when \
                 the pool first hands out a connection"
            );
        }
        Ok(AsyncRwPool { cluster })
    }
}
