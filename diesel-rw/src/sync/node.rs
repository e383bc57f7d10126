//! Where a node's connections come from: an r2d2 pool, or a URL connected on demand (for
//! [`RwConnection::establish`](crate::RwConnection)).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::r2d2::{ConnectionManager, PooledConnection, R2D2Connection};
use scheduled_thread_pool::ScheduledThreadPool;

use crate::backend::RwBackend;
use crate::config::Config;
use crate::error::Error;
use crate::health::Health;
use crate::route::{Node, Role};
use crate::url::NodeUrl;

/// A connection held by an [`RwConnection`](crate::RwConnection).
pub(crate) enum Held<C: R2D2Connection + 'static> {
    Pooled(PooledConnection<NodeManager<C>>),
    Owned(C),
}

impl<C: R2D2Connection + 'static> Deref for Held<C> {
    type Target = C;
    fn deref(&self) -> &C {
        match self {
            Held::Pooled(c) => &c.conn,
            Held::Owned(c) => c,
        }
    }
}

impl<C: R2D2Connection + 'static> DerefMut for Held<C> {
    fn deref_mut(&mut self) -> &mut C {
        match self {
            Held::Pooled(c) => &mut c.conn,
            Held::Owned(c) => c,
        }
    }
}

/// The node a pool serves, for generation tracking.
#[derive(Clone)]
pub(crate) struct NodeRef {
    health: Arc<Health>,
    node: Node,
}

impl NodeRef {
    pub(crate) fn new(health: &Arc<Health>, node: Node) -> Self {
        NodeRef {
            health: health.clone(),
            node,
        }
    }

    fn generation(&self) -> u64 {
        self.health.generation_of(self.node)
    }
}

/// A pooled connection with its node's connection generation when it connected. After a
/// connection error on a replica its generation moves on, and older connections (likely broken
/// the same way) are discarded instead of reused.
pub(crate) struct Tracked<C> {
    conn: C,
    generation: u64,
}

/// diesel's r2d2 manager, plus generation tracking for replicas.
pub(crate) struct NodeManager<C: R2D2Connection + 'static> {
    inner: ConnectionManager<C>,
    replica: Option<NodeRef>,
    /// When a connection attempt last failed, shared with the node's checkouts.
    last_failure: Arc<LastFailure>,
}

/// How a node's connection attempts went lately: a checkout fails at once while the last
/// attempt failed (the node refuses or resets connections: down), and waits out its timeout
/// only while attempts succeed or none is made (every connection in use: busy).
pub(crate) struct LastFailure {
    epoch: Instant,
    /// Nanoseconds since `epoch` of the last failed attempt; 0: none.
    failed: AtomicU64,
    /// Nanoseconds since `epoch` of the last successful attempt; 0: none.
    succeeded: AtomicU64,
}

impl LastFailure {
    fn new() -> Self {
        LastFailure {
            epoch: Instant::now(),
            failed: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    fn record(&self, ok: bool) {
        let at = if ok { &self.succeeded } else { &self.failed };
        at.store(self.now(), Ordering::Release);
    }

    /// Whether the last connection attempt failed.
    fn refusing(&self) -> bool {
        self.failed.load(Ordering::Acquire) > self.succeeded.load(Ordering::Acquire)
    }
}

fn is_stale<C>(replica: &Option<NodeRef>, conn: &Tracked<C>) -> bool {
    replica
        .as_ref()
        .is_some_and(|r| r.generation() != conn.generation)
}

impl<C: R2D2Connection + Send + 'static> r2d2::ManageConnection for NodeManager<C> {
    type Connection = Tracked<C>;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Tracked<C>, Self::Error> {
        let generation = self.replica.as_ref().map_or(0, NodeRef::generation);
        let conn = self.inner.connect();
        self.last_failure.record(conn.is_ok());
        let conn = conn?;
        Ok(Tracked { conn, generation })
    }

    fn is_valid(&self, conn: &mut Tracked<C>) -> Result<(), Self::Error> {
        self.inner.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut Tracked<C>) -> bool {
        self.inner.has_broken(&mut conn.conn) || is_stale(&self.replica, conn)
    }
}

/// One node's source of connections.
pub(crate) struct NodeSource<C: R2D2Connection + 'static> {
    url: NodeUrl,
    role: Role,
    timeout: Duration,
    replica: Option<NodeRef>,
    kind: SourceKind<C>,
    last_failure: Arc<LastFailure>,
}

/// How long a checkout waits at a time before it looks whether the node refused a connection
/// meanwhile (a refused node fails a checkout within about this long).
const CHECKOUT_SLICE: Duration = Duration::from_millis(20);

enum SourceKind<C: R2D2Connection + 'static> {
    Pool(r2d2::Pool<NodeManager<C>>),
    Direct,
}

impl<C: R2D2Connection + 'static> NodeSource<C> {
    /// A node backed by an r2d2 pool. The pool opens connections lazily (`build_unchecked`), so
    /// a node that is down when the pool is built does not stop the build.
    pub(crate) fn pooled(
        url: &NodeUrl,
        config: &Config,
        threads: &Arc<ScheduledThreadPool>,
        node: NodeRef,
    ) -> Self
    where
        C::Backend: RwBackend,
    {
        let role = node.node.role();
        let replica = Some(node);
        let (max_size, timeout) = match role {
            Role::Primary => (config.max_size, config.connection_timeout),
            Role::Replica => (
                config.replica_max_size.unwrap_or(config.max_size),
                config.replica_timeout,
            ),
        };
        let mut builder = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(config.min_idle.map(|m| m.min(max_size)))
            // A checkout costs a pool lock, not a round trip: broken connections are found on
            // their error (r2d2 discards them when diesel reports them broken).
            .test_on_check_out(false)
            .connection_timeout(timeout)
            .idle_timeout(config.idle_timeout)
            .max_lifetime(config.max_lifetime)
            .thread_pool(threads.clone())
            .error_handler(Box::new(TracingErrors { node: url.clone() }));
        let session: Vec<_> = <C::Backend as RwBackend>::session_statements(role).collect();
        if !session.is_empty() {
            builder = builder.connection_customizer(Box::new(SessionSetup(session)));
        }
        let last_failure = Arc::new(LastFailure::new());
        NodeSource {
            url: url.clone(),
            role,
            timeout,
            replica: replica.clone(),
            kind: SourceKind::Pool(builder.build_unchecked(NodeManager {
                inner: ConnectionManager::new(url.expose()),
                replica,
                last_failure: last_failure.clone(),
            })),
            last_failure,
        }
    }

    /// A node connected on demand, one connection at a time.
    pub(crate) fn direct(url: &NodeUrl, role: Role, timeout: Duration) -> Self {
        NodeSource {
            url: url.clone(),
            role,
            timeout,
            replica: None,
            kind: SourceKind::Direct,
            last_failure: Arc::new(LastFailure::new()),
        }
    }

    /// Whether connections come from a pool (and should be given back when not in use).
    pub(crate) fn is_pooled(&self) -> bool {
        matches!(self.kind, SourceKind::Pool(_))
    }

    /// The node's redacted URL.
    pub(crate) fn name(&self) -> &str {
        self.url.redacted()
    }

    /// The node's checkout timeout (also the lag monitor's probe deadline).
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The node's URL, for the lag monitor's own connections.
    pub(crate) fn url(&self) -> &NodeUrl {
        &self.url
    }

    fn checkout_error(&self, source: r2d2::Error) -> Error {
        match self.role {
            Role::Primary => Error::PrimaryUnavailable {
                timeout: Some(self.timeout),
                maybe_applied: false,
                source: Box::new(source),
            },
            Role::Replica => Error::Checkout {
                role: self.role,
                node: self.url.redacted().to_owned(),
                timeout: self.timeout,
                source,
            },
        }
    }

    /// A new connection to the node, set up for its role, outside any pool.
    fn connect_once(&self) -> Result<C, Error>
    where
        C::Backend: RwBackend,
    {
        let mut conn = C::establish(self.url.expose())
            .map_err(|source| Error::connect_failed(self.role, self.url.redacted(), source))?;
        for sql in <C::Backend as RwBackend>::session_statements(self.role) {
            conn.batch_execute(sql)?;
        }
        Ok(conn)
    }

    /// A connection of `pool` within the node's timeout, waiting a slice at a time: a
    /// connection attempt that fails meanwhile (the node refuses or resets connections) ends
    /// the wait at once with the node's failure; a wait without one (every connection in use)
    /// ends in [`Error::PoolExhausted`], which is no node failure.
    fn get(
        &self,
        pool: &r2d2::Pool<NodeManager<C>>,
    ) -> Result<PooledConnection<NodeManager<C>>, Error> {
        let start = Instant::now();
        loop {
            let left = self.timeout.saturating_sub(start.elapsed());
            match pool.get_timeout(left.min(CHECKOUT_SLICE).max(Duration::from_millis(1))) {
                Ok(conn) => return Ok(conn),
                Err(e) if self.last_failure.refusing() => return Err(self.checkout_error(e)),
                Err(_) if start.elapsed() < self.timeout => {}
                Err(_) => {
                    return Err(Error::PoolExhausted {
                        role: self.role,
                        node: self.url.redacted().to_owned(),
                        waited: start.elapsed(),
                    })
                }
            }
        }
    }

    /// Gets a connection: from the pool within the node's timeout, or a new one.
    pub(crate) fn checkout(&self) -> Result<Held<C>, Error>
    where
        C::Backend: RwBackend,
    {
        match &self.kind {
            SourceKind::Pool(_) if self.last_failure.refusing() => {
                // The node's last connection attempt failed: try once now, rather than wait
                // for the pool's next retry (up to half its timeout away). Still refused: fail
                // at once. Back: this one connection serves, unpooled, and the pool's own
                // retry refills it.
                let conn = self.connect_once();
                self.last_failure.record(conn.is_ok());
                conn.map(Held::Owned)
            }
            SourceKind::Pool(pool) => {
                // Idle connections made before the node's last connection error are skipped
                // (and discarded when dropped); at most a pool's worth of them.
                let mut conn = self.get(pool)?;
                for _ in 0..pool.max_size() {
                    if !is_stale(&self.replica, &conn) {
                        break;
                    }
                    drop(conn);
                    conn = self.get(pool)?;
                }
                Ok(Held::Pooled(conn))
            }
            SourceKind::Direct => self.connect_once().map(Held::Owned),
        }
    }
}

/// Sets up every new connection of a node (see [`RwBackend::session_statements`]): replica
/// connections are made read-only. Once per physical connection.
#[derive(Debug)]
struct SessionSetup(Vec<&'static str>);

impl<C: R2D2Connection + 'static> r2d2::CustomizeConnection<Tracked<C>, diesel::r2d2::Error>
    for SessionSetup
{
    fn on_acquire(&self, conn: &mut Tracked<C>) -> Result<(), diesel::r2d2::Error> {
        self.0.iter().try_for_each(|sql| {
            conn.conn
                .batch_execute(sql)
                .map_err(diesel::r2d2::Error::QueryError)
        })
    }
}

/// Reports r2d2's background connection errors as tracing events, naming the node by its
/// redacted URL.
#[derive(Debug)]
struct TracingErrors {
    node: NodeUrl,
}

impl r2d2::HandleError<diesel::r2d2::Error> for TracingErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(target: "diesel_rw", node = %self.node, error = %error, "connection error");
    }
}
