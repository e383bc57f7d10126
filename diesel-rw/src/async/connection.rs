//! [`AsyncRwConnection`]: a diesel-async connection that routes each statement.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::associations::HasTable;
use diesel::connection::{CacheSize, Instrumentation, TransactionManagerStatus};
use diesel::query_builder::{AsQuery, QueryFragment, QueryId};
use diesel::result::{ConnectionError, ConnectionResult, QueryResult};
use diesel::Identifiable;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{
    AsyncConnection, AsyncConnectionCore, SimpleAsyncConnection, UpdateAndFetchResults,
};

use super::collect::Collect;
use super::future::{BoxFuture, Origin, Routed};
use super::monitor::Spawner;
use super::node::{AsyncPoolable, Held, NodeSource};
use super::pool::Cluster;
use super::stream::{FirstRow, RoutedStream};
use super::transaction::AsyncRwTransactionManager;
use crate::backend::RwBackend;
use crate::classify::StatementKind;
use crate::config::Config;
use crate::consistency::{Position, WriteToken};
use crate::double_write::type_oids::TypeOids;
use crate::error::Error;
use crate::health::InFlight;
use crate::instrument::{Forward, Leased, Own};
use crate::replay::Parked;
use crate::route::{
    Decision, Failure, Node, Reason, Role, Route, RouteState, RoutingCore, CAUSAL_POLL,
};

/// A diesel-async [`AsyncConnection`] over a primary and its replicas that routes each
/// statement, in the same order as the sync [`RwConnection`](crate::RwConnection):
///
/// 1. where the caller pinned it ([`AsyncRwPool::primary`](crate::AsyncRwPool::primary); a
///    read-only connection from [`AsyncRwPool::replica`](crate::AsyncRwPool::replica) rejects
///    writes before sending them);
/// 2. inside a transaction, to the connection that began it;
/// 3. a write (classified by its SQL text, unknown = write) to the primary;
/// 4. a read after a write to the primary, per the pool's [`Consistency`](crate::Consistency);
/// 5. otherwise to a replica chosen by the [`Policy`](crate::Policy), or per the
///    [`Fallback`](crate::Fallback) when none is available.
///
/// Existing diesel-async code runs on it unchanged (`diesel_async::RunQueryDsl`,
/// `AsyncConnection::transaction`). It holds at most one primary connection (checked out at the
/// first statement that needs it, kept until the `AsyncRwConnection` is dropped) and, from a
/// pool, one replica connection at a time. Dropping it mid-transaction (a cancelled task, a test
/// transaction) closes the connection of that transaction instead of giving it back to its pool:
/// no checkout ever gets a connection inside a transaction it did not begin.
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
/// use diesel_rw::{AsyncRwConnection, Node};
///
/// // Plain URL: primary only. `primary=URL replica=URL ...`: a primary and replicas.
/// let mut conn = AsyncRwConnection::<AsyncPgConnection>::establish(
///     "primary=postgres://127.0.0.1:55432/app replica=postgres://127.0.0.1:55433/app",
/// )
/// .await?;
/// diesel::sql_query("SELECT 1").execute(&mut conn).await?;
/// assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
/// # Ok(()) }
/// ```
pub struct AsyncRwConnection<C: AsyncPoolable> {
    pub(crate) cluster: Arc<Cluster<C>>,
    primary: Option<Leased<Held<C>>>,
    /// The primary's connection generation when `primary` was checked out.
    primary_generation: u64,
    replicas: Vec<Option<ReplicaSlot<C>>>,
    pub(crate) state: RouteState,
    idle_status: TransactionManagerStatus,
    last_route: Option<Route>,
    /// This connection's own instrumentation; the node connections forward to it if set.
    instrumentation: Own,
    cache_size: Option<CacheSize>,
    /// The OIDs of the PostgreSQL user-defined types that this connection's collected
    /// statements bind (the nodes of a cluster share them), looked up at their first use;
    /// made then.
    type_oids: Option<Arc<TypeOids>>,
}

/// A held replica connection, counted as in flight while held.
struct ReplicaSlot<C: AsyncPoolable> {
    conn: Leased<Held<C>>,
    /// The replica's connection generation when this was checked out.
    generation: u64,
    _in_flight: InFlight,
}

/// Routing a statement: done, or waiting for a connection to be checked out.
pub(crate) enum Routing {
    /// The node's connection is held; the route is recorded.
    Ready(Node),
    /// The decision needs a connection that is not held.
    Wait(Pending),
}

/// A decision waiting for its connection.
pub(crate) struct Pending {
    kind: StatementKind,
    /// `None`: a read that must first read the primary's position after this connection's
    /// writes (`Consistency::Causal`), and is decided after that.
    decision: Option<Decision>,
    /// The replica the policy picked already, tried first.
    picked: Option<usize>,
}

impl<C: AsyncPoolable> fmt::Debug for AsyncRwConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncRwConnection")
            .field("primary", &self.cluster.primary.name())
            .field("holds_primary", &self.primary.is_some())
            .field(
                "holds_replica",
                &self.replicas.iter().position(Option::is_some),
            )
            .field("state", &self.state)
            .field("last_route", &self.last_route)
            .finish()
    }
}

impl<C: AsyncPoolable> AsyncRwConnection<C> {
    pub(crate) fn new(cluster: Arc<Cluster<C>>) -> Self {
        let replicas = (0..cluster.replicas.len()).map(|_| None).collect();
        AsyncRwConnection {
            cluster,
            primary: None,
            primary_generation: 0,
            replicas,
            state: RouteState::default(),
            idle_status: TransactionManagerStatus::default(),
            last_route: None,
            instrumentation: Own::Unasked,
            cache_size: None,
            type_oids: None,
        }
    }

    fn core(&self) -> &RoutingCore {
        &self.cluster.core
    }

    /// Where the last statement (or transaction begin) went and why.
    pub fn last_route(&self) -> Option<Route> {
        self.last_route
    }

    /// Which role served the last statement, if any ran.
    pub fn last_role(&self) -> Option<Role> {
        self.last_route.map(|r| r.role())
    }

    /// The routing counters of this connection's pool (for a connection made by
    /// [`establish`](AsyncConnection::establish), of this connection alone).
    pub fn stats(&self) -> crate::Stats {
        self.core().stats()
    }

    /// Whether this connection is read-only (writes are rejected before they are sent).
    pub fn is_read_only(&self) -> bool {
        self.state.read_only
    }

    /// Whether reads of this connection go to the primary now because of an earlier write.
    pub fn is_sticky(&self) -> bool {
        self.state.sticky.is_sticky(self.core().consistency)
    }

    /// The node of the open transaction, if one is open.
    pub fn transaction_node(&self) -> Option<Node> {
        self.state.transaction
    }

    /// Pins this connection to the primary for the rest of its life (every statement goes
    /// there). Fails on a read-only connection.
    pub fn pin_primary(&mut self) -> Result<(), Error> {
        if self.state.read_only {
            return Err(Error::WriteOnReadRoute {
                sql: "<pin to the primary>".into(),
            });
        }
        self.state.force_primary = true;
        Ok(())
    }

    /// The primary's own connection (checked out if needed), bypassing routing: for what
    /// diesel-rw cannot see, such as a backend-specific API of `C`. Counts as a write.
    pub async fn primary_connection(&mut self) -> Result<&mut C, Error> {
        if self.state.read_only {
            return Err(Error::WriteOnReadRoute {
                sql: "<direct use of the primary connection>".into(),
            });
        }
        if let Some(node @ Node::Replica(_)) = self.state.transaction {
            return Err(Error::InvalidState(format!(
                "a transaction is open on {node}; the primary cannot be used until it ends"
            )));
        }
        self.ensure(Node::Primary).await?;
        self.state.routed_write(self.cluster.core.consistency);
        self.record(Route {
            node: Node::Primary,
            reason: Reason::Explicit,
        });
        Ok(self.node_conn(Node::Primary))
    }

    /// Replica `replica`'s own connection (checked out if needed; made read-only when it
    /// connected), bypassing routing: for backend-specific read APIs of `C`, and for checking
    /// what a replica session itself refuses.
    pub async fn replica_connection(&mut self, replica: usize) -> Result<&mut C, Error> {
        if replica >= self.replicas.len() {
            return Err(Error::InvalidState(format!(
                "replica {replica} does not exist: the pool has {} replicas",
                self.replicas.len()
            )));
        }
        let node = Node::Replica(replica);
        if let Some(open) = self.state.transaction.filter(|&n| n != node) {
            return Err(Error::InvalidState(format!(
                "a transaction is open on {open}; {node} cannot be used until it ends"
            )));
        }
        self.ensure(node).await?;
        self.record(Route {
            node,
            reason: Reason::Explicit,
        });
        Ok(self.node_conn(node))
    }

    /// Steps 1-4 of the routing order, then step 5 if the chosen node's connection is held
    /// already: routing that needs no `.await`. Under `Consistency::Causal`, a read after writes
    /// first reads the primary's position (an `.await`), as the sync connection does.
    pub(crate) fn route_now(
        &mut self,
        kind: StatementKind,
        sql: impl FnOnce() -> String,
    ) -> Result<Routing, Error> {
        let consistency = self.core().consistency;
        if kind.is_read()
            && self
                .state
                .capture_due(consistency, <C::Backend as RwBackend>::POSITIONS)
                .is_some()
        {
            return Ok(Routing::Wait(Pending {
                kind,
                decision: None,
                picked: None,
            }));
        }
        let decision = self.state.decide(kind, consistency, sql)?;
        let (route, picked) = match decision {
            Decision::Node(node, reason) => {
                (self.holds(node).then_some(Route { node, reason }), None)
            }
            Decision::AnyReplica(reason) => {
                // Under `Causal` after a write: first a replica the lag monitor saw at the
                // write's position (the first of `RoutingCore::causal_candidates`).
                let target = self.state.causal_target(consistency);
                let first = match &target {
                    Some(target) => self.core().pick_caught_up(target),
                    None => self.core().pick_replica(),
                };
                match first {
                    Some(i) if self.holds(Node::Replica(i)) => {
                        self.core().replica_ok(i);
                        let node = Node::Replica(i);
                        (Some(Route { node, reason }), None)
                    }
                    // Causal, no replica known to have replayed the write and none to ask:
                    // the primary, at once if its connection is held.
                    None if target.is_some()
                        && !self.core().causal_asks_replicas()
                        && self.holds(Node::Primary) =>
                    {
                        self.core().causal_primary_read();
                        let node = Node::Primary;
                        let reason = Reason::Sticky;
                        (Some(Route { node, reason }), None)
                    }
                    picked => (None, picked),
                }
            }
        };
        Ok(match route {
            Some(route) => {
                self.routed(kind, route);
                Routing::Ready(route.node)
            }
            None => Routing::Wait(Pending {
                kind,
                decision: Some(decision),
                picked,
            }),
        })
    }

    /// Finishes routing a statement whose node's connection must be checked out (or whose
    /// decision waits for the primary's position).
    pub(crate) async fn route_wait(&mut self, pending: Pending) -> Result<Node, Error> {
        let Pending {
            kind,
            decision,
            picked,
        } = pending;
        let decision = match decision {
            Some(decision) => decision,
            None => {
                self.capture_position().await;
                // A read: `decide` renders no SQL (only a rejected write needs it).
                self.state
                    .decide(kind, self.core().consistency, String::new)?
            }
        };
        let route = self.resolve(decision, picked).await?;
        self.routed(kind, route);
        Ok(route.node)
    }

    /// Routes one statement of kind `kind` and makes sure its node's connection is held.
    pub(crate) async fn route(
        &mut self,
        kind: StatementKind,
        sql: impl FnOnce() -> String,
    ) -> Result<Node, Error> {
        match self.route_now(kind, sql)? {
            Routing::Ready(node) => Ok(node),
            Routing::Wait(pending) => self.route_wait(pending).await,
        }
    }

    /// Routes the beginning of a transaction (see `RouteState::transaction_decision`).
    pub(crate) async fn route_transaction(&mut self) -> Result<Node, Error> {
        let decision = self.state.transaction_decision(self.core().consistency);
        let route = self.resolve(decision, None).await?;
        self.record(route);
        Ok(route.node)
    }

    /// A statement of kind `kind` goes `route`: a write makes the connection sticky.
    fn routed(&mut self, kind: StatementKind, route: Route) {
        if kind.is_write() {
            self.state.routed_write(self.cluster.core.consistency);
        }
        self.record(route);
    }

    fn record(&mut self, route: Route) {
        self.cluster.core.record(route);
        self.last_route = Some(route);
    }

    /// Turns a decision into a node whose connection is held: step 5 picks a replica (`picked`
    /// first, if the policy chose one already), ejecting the ones that cannot be reached, and
    /// falls back per the pool's `Fallback`. The sync `RwConnection::resolve`, with `.await`.
    async fn resolve(&mut self, decision: Decision, picked: Option<usize>) -> Result<Route, Error> {
        match decision {
            Decision::Node(node, reason) => {
                self.ensure(node).await?;
                Ok(Route { node, reason })
            }
            Decision::AnyReplica(reason) => {
                if let Some(target) = self.state.causal_target(self.core().consistency) {
                    return self.resolve_causal(&target, reason, picked).await;
                }
                let mut next = picked;
                for _ in 0..self.cluster.replicas.len() {
                    let Some(i) = next.take().or_else(|| self.core().pick_replica()) else {
                        break;
                    };
                    match self.ensure(Node::Replica(i)).await {
                        Ok(()) => {
                            self.core().replica_ok(i);
                            return Ok(Route {
                                node: Node::Replica(i),
                                reason,
                            });
                        }
                        // Busy is not down: try another replica, eject nothing.
                        Err(Error::PoolExhausted { .. }) => self.cluster.core.replica_busy(i),
                        Err(e) => self.cluster.core.replica_failed(i, &e),
                    }
                }
                self.core().fallback()?;
                self.ensure(Node::Primary).await?;
                Ok(Route {
                    node: Node::Primary,
                    reason: Reason::Fallback,
                })
            }
        }
    }

    /// Reads the primary's position after writes committed (once per burst of writes, just
    /// before the next read), for `Consistency::Causal` and [`Self::write_token`]. The async
    /// twin of the sync connection's; the decisions are `RouteState`'s.
    async fn capture_position(&mut self) {
        let positions = <C::Backend as RwBackend>::POSITIONS;
        let Some(queries) = self.state.capture_due(self.core().consistency, positions) else {
            return;
        };
        let answer = match self.primary.as_deref_mut() {
            Some(conn) => C::query_text(conn, queries.after_write)
                .await
                .ok()
                .flatten(),
            None => None,
        };
        self.state.position_captured(&queries, answer);
    }

    /// Step 5 under `Consistency::Causal`: a replica that has replayed `target` (known from the
    /// lag monitor; else checked on the replica, waiting up to `causal_wait` if set), else the
    /// primary; in the order of `RoutingCore::causal_candidates`, `picked` first.
    async fn resolve_causal(
        &mut self,
        target: &Position,
        reason: Reason,
        picked: Option<usize>,
    ) -> Result<Route, Error> {
        let cluster = self.cluster.clone();
        let core = &cluster.core;
        for (i, ask) in core.causal_candidates(target, picked) {
            match self.ensure(Node::Replica(i)).await {
                Ok(()) => {
                    if !ask || self.replica_has_reached(i, target, core.causal_wait).await {
                        core.replica_ok(i);
                        return Ok(Route {
                            node: Node::Replica(i),
                            reason,
                        });
                    }
                }
                Err(Error::PoolExhausted { .. }) => core.replica_busy(i),
                Err(e) => core.replica_failed(i, &e),
            }
        }
        core.causal_primary_read();
        self.ensure(Node::Primary).await?;
        Ok(Route {
            node: Node::Primary,
            reason: Reason::Sticky,
        })
    }

    /// Asks replica `i` (held) whether it has replayed `target`, waiting up to `wait`: on
    /// MariaDB with `MASTER_GTID_WAIT`, on PostgreSQL by polling (a tokio sleep between polls).
    async fn replica_has_reached(
        &mut self,
        i: usize,
        target: &Position,
        wait: Option<Duration>,
    ) -> bool {
        let Some(queries) = <C::Backend as RwBackend>::POSITIONS else {
            return false;
        };
        let cluster = self.cluster.clone();
        let core = &cluster.core;
        let conn = self.node_conn(Node::Replica(i));
        let answer = C::query_text(conn, queries.replayed).await.ok().flatten();
        if core.replica_replayed(i, &queries, answer, target) {
            return true;
        }
        let Some(wait) = wait else {
            return false;
        };
        core.causal_waiting();
        if let Some(wait_sql) = queries.wait {
            let answer = C::query_text(conn, &wait_sql(target, wait))
                .await
                .ok()
                .flatten();
            return RoutingCore::wait_succeeded(answer);
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            tokio::time::sleep(CAUSAL_POLL).await;
            let answer = C::query_text(conn, queries.replayed).await.ok().flatten();
            if core.replica_replayed(i, &queries, answer, target) {
                return true;
            }
        }
        false
    }

    /// A token for this connection's writes so far: hand it to
    /// [`AsyncRwPool::get_after`](crate::AsyncRwPool::get_after) elsewhere (another request, a
    /// job; with the `serde` feature it serializes) to read them back. `None` if the connection
    /// has not written, or the backend has no replication positions, or the pool's consistency
    /// is not [`Causal`](crate::Consistency::Causal). Reads the primary's position if a write
    /// since the last read has not been followed by one.
    pub async fn write_token(&mut self) -> Option<WriteToken> {
        self.capture_position().await;
        self.state.sticky.token().cloned()
    }

    /// Starts from another connection's write: reads go to replicas that have replayed it.
    pub(crate) fn adopt(&mut self, token: WriteToken) {
        self.state.sticky.adopt(token);
    }

    /// Looks up, on `node`'s connection (held), the OIDs of the PostgreSQL user-defined types
    /// a collected statement binds, unless known (see
    /// [`type_oids`](crate::double_write::type_oids)), within the read deadline. Called only
    /// for a statement that [needs it](Collect::needs_lookup).
    async fn resolve_types(
        &mut self,
        node: Node,
        query: &<C::Backend as Collect>::Owned,
    ) -> QueryResult<()> {
        let oids = self.type_oids.get_or_insert_with(Arc::default).clone();
        let cluster = self.cluster.clone();
        let result = {
            let conn = self.node_conn(node);
            let lookup = <C::Backend as Collect>::resolve(query, conn, &oids);
            match lookup {
                None => return Ok(()),
                Some(lookup) => within(&cluster.core, node, StatementKind::Read, lookup).await,
            }
        };
        result.map_err(|e| self.statement_failed(node, StatementKind::Read, e).error)
    }

    /// Runs a read through `execute` (outside a transaction): routed, and if it fails on a
    /// replica with a connection error, run once more on another node, as on the sync
    /// connection.
    async fn execute_read(
        &mut self,
        kind: StatementKind,
        query: <C::Backend as Collect>::Owned,
    ) -> QueryResult<usize> {
        let node = self.route(kind, String::new).await?;
        if <C::Backend as Collect>::needs_lookup(&query) {
            self.resolve_types(node, &query).await?;
        }
        let core = self.cluster.clone();
        let result = within(
            &core.core,
            node,
            kind,
            AsyncConnectionCore::execute_returning_count(self.node_conn(node), query.clone()),
        )
        .await;
        let failure = match result {
            Ok(count) => return Ok(count),
            Err(e) => self.statement_failed(node, kind, e),
        };
        if !failure.retry {
            return Err(failure.error);
        }
        self.core().read_retried();
        let node = self.route(kind, String::new).await?;
        let result = within(
            &core.core,
            node,
            kind,
            AsyncConnectionCore::execute_returning_count(self.node_conn(node), query),
        )
        .await;
        result.map_err(|e| self.statement_failed(node, kind, e).error)
    }

    /// Routes a read through `load` (outside a transaction) and starts it; if it fails on a
    /// replica with a connection error, [`Routed`] runs it once more on another node, as on
    /// the sync connection.
    fn load_read<'conn, 'query>(
        &'conn mut self,
        kind: StatementKind,
        query: <C::Backend as Collect>::Owned,
    ) -> Routed<'conn, C, FirstRow<'conn, 'query, C>> {
        let origin = Origin {
            cluster: self.cluster.clone(),
            kind,
            in_transaction: false,
        };
        let (this, parked) = Parked::new(self);
        let again = query.clone();
        let to_resolve = <C::Backend as Collect>::needs_lookup(&query).then(|| query.clone());
        let route: BoxFuture<'conn, QueryResult<(Node, &'conn mut C)>> = Box::pin(async move {
            let node = this.route(kind, String::new).await?;
            // The OIDs are the cluster's: a run on another node uses them as they are.
            if let Some(query) = &to_resolve {
                this.resolve_types(node, query).await?;
            }
            Ok((node, this.node_conn(node)))
        });
        Routed::routing(
            origin,
            route,
            Box::new(move |origin, node, conn| {
                FirstRow::new(origin, node, AsyncConnectionCore::load(conn, query))
            }),
        )
        .again(
            parked,
            Box::new(move |origin, node, conn| {
                FirstRow::new(origin, node, AsyncConnectionCore::load(conn, again))
            }),
        )
    }

    /// Whether the node's connection is held and not retired (see [`Self::ensure`]); the
    /// connection of the open transaction counts as held whatever its generation.
    fn holds(&self, node: Node) -> bool {
        let held = match node {
            Node::Primary => self.primary.as_ref().map(|_| self.primary_generation),
            Node::Replica(i) => self.replicas[i].as_ref().map(|s| s.generation),
        };
        held.is_some_and(|generation| {
            self.state.transaction == Some(node)
                || generation == self.cluster.core.health.generation_of(node)
        })
    }

    /// Checks out the node's connection unless it is held already. From a pool, holding a
    /// replica gives back the other replica's connection. A held connection made before a
    /// connection error on its node (its generation moved on) is given back and replaced,
    /// except the one an open transaction runs on: that transaction must fail, not move.
    async fn ensure(&mut self, node: Node) -> Result<(), Error> {
        if !self.holds(node) {
            match node {
                Node::Primary => self.primary = None,
                Node::Replica(i) => self.replicas[i] = None,
            }
        }
        let generation = self.cluster.core.health.generation_of(node);
        match node {
            Node::Primary => {
                if self.primary.is_none() {
                    self.primary_generation = generation;
                    let cluster = self.cluster.clone();
                    let mut conn = cluster.primary.checkout().await.inspect_err(|e| {
                        // Busy is not down.
                        if !matches!(e, Error::PoolExhausted { .. }) {
                            cluster.core.counters.failure(Node::Primary);
                        }
                    })?;
                    if let Some(size) = self.cache_size {
                        conn.set_prepared_statement_cache_size(size);
                    }
                    self.primary = Some(Leased::new(conn, self.instrumentation.shared(), install));
                }
            }
            Node::Replica(i) => {
                if self.replicas[i].is_none() {
                    let cluster = self.cluster.clone();
                    if cluster.replicas[i].is_pooled() {
                        for slot in &mut self.replicas {
                            *slot = None;
                        }
                    }
                    let mut conn = cluster.replicas[i].checkout().await?;
                    if let Some(size) = self.cache_size {
                        conn.set_prepared_statement_cache_size(size);
                    }
                    self.replicas[i] = Some(ReplicaSlot {
                        conn: Leased::new(conn, self.instrumentation.shared(), install),
                        generation,
                        _in_flight: cluster.core.health.enter(i),
                    });
                }
            }
        }
        Ok(())
    }

    /// After an error on `node` (see [`RoutingCore::statement_failed`]): a broken connection
    /// is given back, unless a transaction runs on it (it must fail, not move).
    pub(crate) fn statement_failed(
        &mut self,
        node: Node,
        kind: StatementKind,
        error: diesel::result::Error,
    ) -> Failure {
        let in_transaction = self.state.transaction.is_some();
        let failure = self
            .cluster
            .core
            .statement_failed(node, kind, in_transaction, error);
        if failure.broken && !in_transaction {
            match node {
                Node::Primary => self.primary = None,
                Node::Replica(i) => self.replicas[i] = None,
            }
        }
        failure
    }

    /// After a failed outermost `COMMIT` (or `ROLLBACK`) on `node`: if its connection still reports a
    /// transaction (or an error state: the rollback diesel tried after the failed `COMMIT`
    /// failed too), the connection is broken; it is given back (its pool discards it) and this
    /// connection is no longer pinned, so it can be used again.
    pub(crate) fn abandon_transaction(&mut self, node: Node) {
        if self.state.transaction != Some(node) {
            return;
        }
        self.state.transaction = None;
        self.state.transaction_wrote = false;
        match node {
            Node::Primary => self.primary = None,
            Node::Replica(i) => self.replicas[i] = None,
        }
    }

    /// The primary connection, if this connection holds one.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn held_primary(&mut self) -> Option<&mut C> {
        self.primary.as_deref_mut()
    }

    /// The held connection of a node. Panics if it is not held: route or `ensure` first.
    pub(crate) fn node_conn(&mut self, node: Node) -> &mut C {
        match node {
            Node::Primary => self.primary.as_deref_mut(),
            Node::Replica(i) => self.replicas[i].as_mut().map(|s| &mut *s.conn),
        }
        .expect("diesel-rw: the routed node's connection is held")
    }

    /// Every held node connection.
    pub(crate) fn held_mut(&mut self) -> impl Iterator<Item = &mut C> {
        self.primary
            .as_deref_mut()
            .into_iter()
            .chain(self.replicas.iter_mut().flatten().map(|s| &mut *s.conn))
    }

    /// The status diesel-async sees when no transaction is open.
    pub(crate) fn idle_status(&mut self) -> &mut TransactionManagerStatus {
        self.idle_status = TransactionManagerStatus::default();
        &mut self.idle_status
    }

    /// Routes a statement and starts it with `start` on its node's connection: at once when
    /// that connection is held, else after checking it out, with the statement `collect`ed
    /// first (the statement itself need not be `Send`, so it cannot wait across an `.await`).
    fn dispatch<'conn, Q, F>(
        &'conn mut self,
        query: Q,
        start: impl FnOnce(&Origin<C>, Node, &'conn mut C, Q) -> F,
        start_owned: impl FnOnce(&Origin<C>, Node, &'conn mut C, <C::Backend as Collect>::Owned) -> F
            + Send
            + 'static,
    ) -> Routed<'conn, C, F>
    where
        Q: QueryFragment<C::Backend> + QueryId,
        F: std::future::Future,
    {
        let kind = self.cluster.core.classify_query::<C::Backend, Q>(&query);
        let origin = Origin {
            cluster: self.cluster.clone(),
            kind,
            in_transaction: self.state.transaction.is_some(),
        };
        match self.route_now(kind, || render::<C::Backend, Q>(&query)) {
            Err(e) => Routed::failed(e),
            Ok(Routing::Ready(node)) => {
                let future = start(&origin, node, self.node_conn(node), query);
                Routed::running(origin, node, future)
            }
            Ok(Routing::Wait(pending)) => match <C::Backend as Collect>::collect(&query) {
                Err(e) => Routed::failed(e),
                Ok(owned) => {
                    let to_resolve =
                        <C::Backend as Collect>::needs_lookup(&owned).then(|| owned.clone());
                    let route: BoxFuture<'conn, QueryResult<(Node, &'conn mut C)>> =
                        Box::pin(async move {
                            let node = self.route_wait(pending).await?;
                            if let Some(query) = &to_resolve {
                                self.resolve_types(node, query).await?;
                            }
                            Ok((node, self.node_conn(node)))
                        });
                    Routed::routing(
                        origin,
                        route,
                        Box::new(move |origin, node, conn| start_owned(origin, node, conn, owned)),
                    )
                }
            },
        }
    }
}

/// Runs a statement of `kind` on `node` until its deadline (see [`RoutingCore::deadline`]):
/// past it, the future (and with it the statement) is dropped and the result is
/// [`Error::Timeout`].
pub(crate) async fn within<T>(
    core: &RoutingCore,
    node: Node,
    kind: StatementKind,
    statement: impl std::future::Future<Output = QueryResult<T>>,
) -> QueryResult<T> {
    let start = std::time::Instant::now();
    let result = match core.deadline(kind) {
        None => statement.await,
        Some(after) => tokio::time::timeout(after, statement)
            .await
            .unwrap_or_else(|_| Err(core.timed_out(node, kind, after))),
    };
    if result.is_ok() && kind.is_read() {
        core.read_took(node, start.elapsed());
    }
    result
}

/// Renders a statement's SQL for an error message.
fn render<DB: RwBackend, T: QueryFragment<DB> + ?Sized>(source: &T) -> String {
    let mut qb = DB::QueryBuilder::default();
    match source.to_sql(&mut qb, &DB::default()) {
        Ok(()) => diesel::query_builder::QueryBuilder::finish(qb),
        Err(e) => format!("<unrenderable statement: {e}>"),
    }
}

impl<C: AsyncPoolable> SimpleAsyncConnection for AsyncRwConnection<C> {
    /// Routed like any statement. A read outside a transaction that fails on a replica with a
    /// connection error runs once more on another node (reads are safe to repeat); the replica
    /// is ejected.
    async fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        let kind = self.cluster.core.classify_sql::<C::Backend>(query);
        let cluster = self.cluster.clone();
        let node = self.route(kind, || query.to_owned()).await?;
        let first = within(
            &cluster.core,
            node,
            kind,
            self.node_conn(node).batch_execute(query),
        );
        let failure = match first.await {
            Ok(()) => return Ok(()),
            Err(e) => self.statement_failed(node, kind, e),
        };
        if !failure.retry {
            return Err(failure.error);
        }
        self.core().read_retried();
        let node = self.route(kind, || query.to_owned()).await?;
        let result = within(
            &cluster.core,
            node,
            kind,
            self.node_conn(node).batch_execute(query),
        )
        .await;
        result.map_err(|e| self.statement_failed(node, kind, e).error)
    }
}

impl<C: AsyncPoolable> AsyncConnectionCore for AsyncRwConnection<C> {
    type ExecuteFuture<'conn, 'query> = Routed<'conn, C, C::ExecuteFuture<'conn, 'query>>;
    type LoadFuture<'conn, 'query> = Routed<'conn, C, FirstRow<'conn, 'query, C>>;
    type Stream<'conn, 'query> = RoutedStream<'conn, 'query, C>;
    type Row<'conn, 'query> = C::Row<'conn, 'query>;
    type Backend = C::Backend;

    fn load<'conn, 'query, T>(&'conn mut self, source: T) -> Self::LoadFuture<'conn, 'query>
    where
        T: AsQuery + 'query,
        T::Query: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        // `INSERT ... RETURNING` arrives here: the classification makes it a write.
        let query = source.as_query();
        // A read outside a transaction may be run again if its replica's connection fails
        // (as on the sync connection): collected up front, shared by both attempts (the OIDs
        // of the PostgreSQL user-defined types it binds looked up on the first node).
        let kind = self
            .cluster
            .core
            .classify_query::<C::Backend, T::Query>(&query);
        if <C::Backend as RwBackend>::CONNECTIONS_CAN_BREAK
            && kind.is_read()
            && self.state.transaction.is_none()
        {
            if let Ok(owned) = <C::Backend as Collect>::collect(&query) {
                return self.load_read(kind, owned);
            }
        }
        self.dispatch(
            query,
            |origin, node, conn, query| {
                FirstRow::new(origin, node, AsyncConnectionCore::load(conn, query))
            },
            |origin, node, conn, owned| {
                FirstRow::new(origin, node, AsyncConnectionCore::load(conn, owned))
            },
        )
    }

    fn execute_returning_count<'conn, 'query, T>(
        &'conn mut self,
        source: T,
    ) -> Self::ExecuteFuture<'conn, 'query>
    where
        T: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        // A read outside a transaction may be run again if its replica's connection fails
        // (as on the sync connection): collected up front, shared by both attempts (the OIDs
        // of the PostgreSQL user-defined types it binds looked up on the first node).
        let kind = self.cluster.core.classify_query::<C::Backend, T>(&source);
        if <C::Backend as RwBackend>::CONNECTIONS_CAN_BREAK
            && kind.is_read()
            && self.state.transaction.is_none()
        {
            if let Ok(owned) = <C::Backend as Collect>::collect(&source) {
                return Routed::boxed(Box::pin(self.execute_read(kind, owned)));
            }
        }
        self.dispatch(
            source,
            |_, _, conn, query| AsyncConnectionCore::execute_returning_count(conn, query),
            |_, _, conn, owned| AsyncConnectionCore::execute_returning_count(conn, owned),
        )
    }
}

impl<C: AsyncPoolable> AsyncConnection for AsyncRwConnection<C> {
    type TransactionManager = AsyncRwTransactionManager;

    /// Connects from a spec: a plain URL (the primary only, as `C::establish` takes it), or
    /// whitespace-separated `primary=URL` and `replica=URL` entries, e.g.
    /// `primary=postgres://db1/app replica=postgres://db2/app replica=postgres://db3/app`.
    /// Node connections open when a statement first needs them; replica connections are made
    /// read-only when they open. Settings are the defaults of
    /// [`AsyncRwPool`](crate::AsyncRwPool)'s builder.
    async fn establish(spec: &str) -> ConnectionResult<Self> {
        let config = Config::from_spec(spec)
            .map_err(|e| ConnectionError::InvalidConnectionUrl(e.to_string()))?;
        let primary = config
            .validate(<C::Backend as RwBackend>::check_url)
            .map_err(|e| ConnectionError::InvalidConnectionUrl(e.to_string()))?
            .clone();
        let cluster = Cluster {
            core: RoutingCore::new(&config, &primary),
            primary: NodeSource::direct(&primary, Role::Primary, config.connection_timeout),
            replicas: config
                .replicas
                .iter()
                .map(|(url, _)| NodeSource::direct(url, Role::Replica, config.replica_timeout))
                .collect(),
            // A connection made from a spec has no lag monitor (as on the sync connection).
            monitor: Spawner::new(None),
        };
        let mut conn = AsyncRwConnection::new(Arc::new(cluster));
        // Connect to the primary now, as `establish` promises a working connection.
        conn.ensure(Node::Primary)
            .await
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
        Ok(conn)
    }

    fn transaction_state(&mut self) -> &mut TransactionManagerStatus {
        <AsyncRwTransactionManager as diesel_async::TransactionManager<Self>>::transaction_manager_status_mut(self)
    }

    fn instrumentation(&mut self) -> &mut dyn Instrumentation {
        self.instrumentation.get()
    }

    /// Sets this connection's instrumentation. Statements run on the node connections: each
    /// node connection this connection holds forwards its events (queries, transactions) to
    /// it, and stops when it goes back to its pool, where it reports to diesel's default
    /// instrumentation again.
    fn set_instrumentation(&mut self, instrumentation: impl Instrumentation) {
        let shared = self.instrumentation.set(instrumentation);
        if let Some(primary) = &mut self.primary {
            primary.forward_to(&shared, install);
        }
        for slot in self.replicas.iter_mut().flatten() {
            slot.conn.forward_to(&shared, install);
        }
    }

    fn set_prepared_statement_cache_size(&mut self, size: CacheSize) {
        self.cache_size = Some(size);
        for conn in self.held_mut() {
            conn.set_prepared_statement_cache_size(size);
        }
    }
}

/// A transaction still open when the connection is dropped (a cancelled task, a test
/// transaction) is never committed: its node connection is closed rather than given back to
/// its pool, where the next checkout could find it inside that transaction.
impl<C: AsyncPoolable> Drop for AsyncRwConnection<C> {
    fn drop(&mut self) {
        match self.state.transaction.take() {
            Some(Node::Primary) => self.primary.take().map(|p| p.conn.discard()),
            Some(Node::Replica(i)) => self.replicas[i].take().map(|s| s.conn.conn.discard()),
            None => None,
        };
    }
}

/// `save_changes` runs on the primary (it writes, and reads back what it wrote).
impl<Changes, Output, C> UpdateAndFetchResults<Changes, Output> for AsyncRwConnection<C>
where
    C: AsyncPoolable + UpdateAndFetchResults<Changes, Output>,
    Changes: Identifiable + HasTable + Send,
{
    fn update_and_fetch<'conn, 'changes>(
        &'conn mut self,
        changeset: Changes,
    ) -> BoxFuture<'changes, QueryResult<Output>>
    where
        Changes: 'changes,
        'conn: 'changes,
        Self: 'changes,
    {
        Box::pin(async move {
            let node = self
                .route(StatementKind::Write, || "<save_changes>".into())
                .await?;
            self.node_conn(node).update_and_fetch(changeset).await
        })
    }
}

/// Lets an `AsyncRwConnection` itself live in a diesel-async pool (as one made by
/// [`establish`](AsyncConnection::establish) from a spec); it is broken when a node connection
/// it holds is.
impl<C: AsyncPoolable> PoolableConnection for AsyncRwConnection<C> {
    fn is_broken(&mut self) -> bool {
        <AsyncRwTransactionManager as diesel_async::TransactionManager<Self>>::is_broken_transaction_manager(self)
    }
}

/// Makes a node connection forward its events to the routing connection's instrumentation.
fn install<C: AsyncPoolable>(conn: &mut Held<C>, forward: Forward) {
    conn.set_instrumentation(forward);
}
