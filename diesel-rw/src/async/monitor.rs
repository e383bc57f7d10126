//! The async lag monitor: a tokio task per [`AsyncRwPool`](crate::AsyncRwPool), the twin of the
//! sync pool's monitor thread. Every `health_interval` it samples the primary's position and
//! each replica's replayed position over its own connections, so that routing decisions read
//! cached positions and cost no round trip; it re-admits ejected replicas whose probe succeeds
//! after their cooldown, and ejects a replica after `eject_after` failed probes in a row. What
//! it decides is shared with the monitor thread ([`LagMonitor`]); this task runs the queries and
//! waits. It holds its pool weakly and stops when the pool is dropped (or its runtime shuts
//! down).
//!
//! The task needs a tokio runtime: it is spawned when the pool is built inside one, else when
//! the pool first hands out a connection (see [`Spawner`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use diesel::result::ConnectionError;

use super::node::{establish_session, AsyncPoolable, NodeSource};
use super::pool::Cluster;
use crate::backend::{PositionQueries, RwBackend};
use crate::consistency::Position;
use crate::error::Error;
use crate::health::LagMonitor;
use crate::route::{Role, RoutingCore};

/// Starts a pool's monitor task once a tokio runtime is at hand.
#[derive(Debug, Default)]
pub(crate) struct Spawner {
    /// The interval of a monitor still to be started.
    due: Mutex<Option<Duration>>,
    /// Whether `due` may hold something: the fast path of [`Self::spawn_if_due`] is one load.
    pending: AtomicBool,
}

impl Spawner {
    /// A monitor that runs every `interval`, started by [`Self::spawn_if_due`].
    pub(crate) fn new(interval: Option<Duration>) -> Self {
        Spawner {
            pending: AtomicBool::new(interval.is_some()),
            due: Mutex::new(interval),
        }
    }

    /// Spawns the monitor of `cluster` if it has not been spawned and a tokio runtime is
    /// current. Without a runtime, it stays due (the pool's next checkout retries).
    pub(crate) fn spawn_if_due<C: AsyncPoolable>(&self, cluster: &Arc<Cluster<C>>) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(interval) = due.take() {
            self.pending.store(false, Ordering::Release);
            runtime.spawn(run(Arc::downgrade(cluster), interval));
        }
    }

    /// Whether the monitor still waits for a runtime to start.
    pub(crate) fn is_due(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
}

/// The monitor loop: a round every `interval` while the pool lives.
async fn run<C: AsyncPoolable>(cluster: Weak<Cluster<C>>, interval: Duration) {
    let mut monitor = match cluster.upgrade() {
        Some(cluster) => Monitor::<C> {
            primary: None,
            replicas: cluster.replicas.iter().map(|_| None).collect(),
            lag: LagMonitor::default(),
        },
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        monitor.tick(&cluster).await;
    }
}

/// The monitor's own connections (not the pool's: sampling never waits for a checkout).
struct Monitor<C> {
    primary: Option<C>,
    replicas: Vec<Option<C>>,
    lag: LagMonitor,
}

impl<C: AsyncPoolable> Monitor<C> {
    async fn tick(&mut self, cluster: &Cluster<C>) {
        let core: &RoutingCore = &cluster.core;
        let queries = <C::Backend as RwBackend>::POSITIONS;
        let primary = match &queries {
            Some(q) => self.primary_position(&cluster.primary, q).await,
            None => None,
        };
        self.lag.primary_sampled(primary);
        for (i, node) in cluster.replicas.iter().enumerate() {
            if !LagMonitor::due(core, i) {
                continue;
            }
            let probe = self.probe(i, node, queries.as_ref()).await;
            if !self.lag.replica_probed(core, i, probe) {
                self.replicas[i] = None;
            }
        }
    }

    /// The primary's position, over the monitor's connection (made if needed); `None` if it
    /// cannot be read this round.
    async fn primary_position(
        &mut self,
        node: &NodeSource<C>,
        queries: &PositionQueries,
    ) -> Option<Position> {
        if self.primary.is_none() {
            let connect = C::establish(node.url().expose());
            self.primary = tokio::time::timeout(node.connect_limit(), connect)
                .await
                .ok()?
                .ok();
        }
        let conn = self.primary.as_mut()?;
        match tokio::time::timeout(node.timeout(), C::query_text(conn, queries.primary)).await {
            Ok(Ok(text)) => text.and_then(|t| (queries.parse)(&t)),
            // Failed or timed out: connect anew next round.
            _ => {
                self.primary = None;
                None
            }
        }
    }

    /// Connects if needed and reads replica `i`'s replayed position (or just pings it, for a
    /// backend without positions). Connecting may take up to the nodes' background connect
    /// limit (a connection abandoned at a short timeout could never be made on a slow host); the
    /// query, the replica timeout.
    async fn probe(
        &mut self,
        i: usize,
        node: &NodeSource<C>,
        queries: Option<&PositionQueries>,
    ) -> Result<Option<Position>, Error> {
        let failed = |source| Error::Connect {
            role: Role::Replica,
            node: node.name().to_owned(),
            source,
        };
        let timed_out = |what: &str, limit: Duration| {
            failed(ConnectionError::BadConnection(format!(
                "the lag monitor got no {what} within {limit:?}"
            )))
        };
        let slot = &mut self.replicas[i];
        if slot.is_none() {
            let connect = establish_session::<C>(node.url().expose(), crate::Role::Replica);
            match tokio::time::timeout(node.connect_limit(), connect).await {
                Ok(conn) => *slot = Some(conn.map_err(failed)?),
                Err(_) => return Err(timed_out("connection", node.connect_limit())),
            }
        }
        let conn = slot.as_mut().expect("connected above");
        let query = async {
            Ok(match queries {
                Some(q) => C::query_text(conn, q.replayed)
                    .await?
                    .and_then(|t| (q.parse)(&t)),
                None => conn.batch_execute("SELECT 1").await.map(|()| None)?,
            })
        };
        match tokio::time::timeout(node.timeout(), query).await {
            Ok(result) => result,
            Err(_) => Err(timed_out("answer", node.timeout())),
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::time::Duration;

    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

    use crate::AsyncRwPool;

    type Sqlite = SyncConnectionWrapper<diesel::SqliteConnection>;

    #[test]
    fn built_outside_a_runtime_the_monitor_starts_at_the_first_checkout() {
        let dir = std::env::temp_dir().join(format!("diesel-rw-monitor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (p, r) = (dir.join("p.db"), dir.join("r.db"));
        let pool = AsyncRwPool::<Sqlite>::builder()
            .primary(p.to_str().unwrap())
            .replica(r.to_str().unwrap())
            .health_interval(Some(Duration::from_millis(10)))
            .build()
            .expect("no runtime needed to build");
        assert!(pool.cluster.monitor.is_due());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            drop(pool.get().await.unwrap());
            assert!(
                !pool.cluster.monitor.is_due(),
                "spawned at the first checkout"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            let weak = std::sync::Arc::downgrade(&pool.cluster);
            drop(pool);
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(
                weak.upgrade().is_none(),
                "the monitor holds its pool weakly"
            );
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn built_inside_a_runtime_the_monitor_starts_at_once() {
        let dir = std::env::temp_dir().join(format!("diesel-rw-monitor-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pool = AsyncRwPool::<Sqlite>::builder()
            .primary(dir.join("p.db").to_str().unwrap())
            .replica(dir.join("r.db").to_str().unwrap())
            .health_interval(Some(Duration::from_millis(10)))
            .build()
            .unwrap();
        assert!(!pool.cluster.monitor.is_due());
        let unmonitored = AsyncRwPool::<Sqlite>::builder()
            .primary(dir.join("p.db").to_str().unwrap())
            .replica(dir.join("r.db").to_str().unwrap())
            .build()
            .unwrap();
        assert!(!unmonitored.cluster.monitor.is_due(), "nothing to start");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
