//! [`RwPool`]: one r2d2 pool for the primary and one per replica.

use std::fmt;
use std::sync::Arc;

use diesel::connection::LoadConnection;
use diesel::r2d2::R2D2Connection;
use scheduled_thread_pool::ScheduledThreadPool;

use super::connection::RwConnection;
use super::node::{NodeRef, NodeSource};
use crate::backend::RwBackend;
use crate::config::{Config, RwPoolBuilder};
use crate::consistency::WriteToken;
use crate::error::Error;
use crate::functions::WritingFunctions;
use crate::route::{Node, Role, RoutingCore};
use crate::stats::Stats;
use crate::url::NodeUrl;

/// A pool of connections to a primary and its read replicas.
///
/// Cloning is cheap and shares the pools. [`get`](RwPool::get) gives an [`RwConnection`] that
/// routes each statement: reads to a replica, writes and transactions to the primary, reads after
/// a write to the primary per the pool's [`Consistency`](crate::Consistency).
///
/// ```no_run
/// use diesel::prelude::*;
/// use diesel_rw::{Consistency, Policy, RwPool};
/// # #[cfg(feature = "postgres")]
/// # fn main() -> Result<(), diesel_rw::Error> {
/// let pool = RwPool::<PgConnection>::builder()
///     .primary("postgres://app:secret@127.0.0.1:55432/app")
///     .replica("postgres://app:secret@127.0.0.1:55433/app")
///     .policy(Policy::RoundRobin)
///     .consistency(Consistency::UnitOfWork)
///     .build()?;
/// let mut conn = pool.get()?;
/// let one: i32 = diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(&mut conn)?;
/// # Ok(()) }
/// # #[cfg(not(feature = "postgres"))] fn main() {}
/// ```
pub struct RwPool<C: R2D2Connection + 'static> {
    pub(crate) cluster: Arc<Cluster<C>>,
}

/// The nodes of a pool and their shared routing state.
pub(crate) struct Cluster<C: R2D2Connection + 'static> {
    pub(crate) core: RoutingCore,
    pub(crate) primary: NodeSource<C>,
    pub(crate) replicas: Vec<NodeSource<C>>,
}

impl<C: R2D2Connection + 'static> Clone for RwPool<C> {
    fn clone(&self) -> Self {
        RwPool {
            cluster: self.cluster.clone(),
        }
    }
}

impl<C: R2D2Connection + 'static> fmt::Debug for RwPool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwPool")
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

impl<C> RwPool<C>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
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
    pub fn get(&self) -> Result<RwConnection<C>, Error> {
        self.prepare();
        Ok(RwConnection::new(self.cluster.clone()))
    }

    /// A connection pinned to the primary: every statement, read or write, goes there.
    pub fn primary(&self) -> Result<RwConnection<C>, Error> {
        self.prepare();
        let mut conn = RwConnection::new(self.cluster.clone());
        conn.state.force_primary = true;
        Ok(conn)
    }

    /// A read-only connection: reads go to replicas (or the primary, per the
    /// [`Fallback`](crate::Fallback), when none is available) and writes are rejected with
    /// [`Error::WriteOnReadRoute`] before they are sent.
    pub fn replica(&self) -> Result<RwConnection<C>, Error> {
        self.prepare();
        let mut conn = RwConnection::new(self.cluster.clone());
        conn.state.read_only = true;
        Ok(conn)
    }

    /// A connection that reads `token`'s write back: under [`Consistency::Causal`](crate::Consistency::Causal)
    /// its reads go to a replica only once the replica has replayed the write (else to the
    /// primary); under the other modes it starts sticky, as if it had written.
    pub fn get_after(&self, token: &WriteToken) -> Result<RwConnection<C>, Error> {
        self.prepare();
        let mut conn = RwConnection::new(self.cluster.clone());
        conn.adopt(token.clone());
        Ok(conn)
    }

    /// A snapshot of what was routed where since the pool was built.
    pub fn stats(&self) -> Stats {
        self.cluster.core.stats()
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
    pub fn refresh_writing_functions(&self) -> Result<usize, Error> {
        let functions = &self.cluster.core.functions;
        if !functions.learns() {
            return Ok(0);
        }
        // One learning at a time: wait for one under way, then learn afresh.
        while !functions.claim_now() {
            functions.wait_running(self.cluster.primary.timeout());
        }
        functions.learned(learn_catalog::<C>(self.cluster.primary.url()))
    }

    /// Starts learning the functions that write when that is due (in the background), and
    /// waits for the first learning.
    fn prepare(&self) {
        let functions = &self.cluster.core.functions;
        if functions.claim_due() {
            let url = self.cluster.primary.url().clone();
            let learner = functions.clone();
            let spawned = std::thread::Builder::new()
                .name("diesel-rw-functions".into())
                .spawn(move || {
                    let _ = learner.learned(learn_catalog::<C>(&url));
                });
            if let Err(e) = spawned {
                let _ = functions.learned(Err(Error::InvalidState(format!(
                    "could not start a thread to learn the functions that write: {e}"
                ))));
            }
        }
        functions.wait_first();
    }
}

/// Reads the catalog of the functions that write ([`RwBackend::FUNCTION_CATALOG`]) on a new
/// connection to the primary.
fn learn_catalog<C>(url: &NodeUrl) -> Result<Option<String>, Error>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    let Some(catalog) = <C::Backend as RwBackend>::FUNCTION_CATALOG else {
        return Ok(None);
    };
    let mut conn = C::establish(url.expose())
        .map_err(|source| Error::connect_failed(Role::Primary, url.redacted(), source))?;
    for sql in <C::Backend as RwBackend>::session_statements(Role::Primary) {
        conn.batch_execute(sql)?;
    }
    if !catalog.setup.is_empty() {
        conn.batch_execute(catalog.setup)?;
    }
    Ok(<C::Backend as RwBackend>::query_text(
        &mut conn,
        catalog.query,
    )?)
}

impl<C> RwPoolBuilder<RwPool<C>>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    /// Validates the settings and builds the pool. Does not connect: a node that is down now
    /// is found (and, for a replica, ejected) when a statement first needs it.
    pub fn build(self) -> Result<RwPool<C>, Error> {
        let mut config = self.config;
        config.learn_writing_functions &= <C::Backend as RwBackend>::FUNCTION_CATALOG.is_some();
        let primary = config
            .validate(<C::Backend as RwBackend>::check_url)?
            .clone();
        // Background threads (connection attempts, reaping) per node: a hung node whose
        // connection attempts never return then holds its own threads, and never starves the
        // other nodes' pools (a shared set did: the primary's pool could make no connection
        // while a hung replica's attempts held every thread). Two per node (r2d2 starts three
        // per pool of its own).
        let threads = || {
            Arc::new(
                ScheduledThreadPool::builder()
                    .num_threads(2)
                    .thread_name_pattern("diesel-rw-r2d2-{}")
                    .build(),
            )
        };
        let core = RoutingCore::new(&config, &primary);
        let health = core.health.clone();
        let cluster = Arc::new(Cluster {
            core,
            primary: NodeSource::pooled(
                &primary,
                &config,
                &threads(),
                NodeRef::new(&health, Node::Primary),
            ),
            replicas: config
                .replicas
                .iter()
                .enumerate()
                .map(|(i, (url, _))| {
                    NodeSource::pooled(
                        url,
                        &config,
                        &threads(),
                        NodeRef::new(&health, Node::Replica(i)),
                    )
                })
                .collect(),
        });
        if let Some(interval) = config.monitor_interval() {
            if !config.replicas.is_empty() {
                super::monitor::spawn(&cluster, interval);
            }
        }
        Ok(RwPool { cluster })
    }
}
