//! [`RwConnection`]: a diesel connection that routes each statement.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{
    CacheSize, Connection, ConnectionSealed, Instrumentation, LoadConnection, SimpleConnection,
    TransactionManager, TransactionManagerStatus,
};
use diesel::expression::QueryMetadata;
use diesel::migration::MigrationConnection;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::query_dsl::UpdateAndFetchResults;
use diesel::r2d2::R2D2Connection;
use diesel::result::{ConnectionError, ConnectionResult, QueryResult};

use super::node::{Held, NodeSource};
use super::pool::Cluster;
use super::transaction::RwTransactionManager;
use crate::backend::RwBackend;
use crate::classify::StatementKind;
use crate::config::Config;
use crate::consistency::{Position, WriteToken};
use crate::error::Error;
use crate::health::InFlight;
use crate::instrument::{Forward, Leased, Own};
use crate::replay::Replay;
use crate::route::{
    Decision, Failure, Node, Reason, Role, Route, RouteState, RoutingCore, CAUSAL_POLL,
};

/// A diesel [`Connection`] over a primary and its replicas that routes each statement.
///
/// Existing code that takes `&mut impl Connection` (or `&mut RwConnection<PgConnection>`) runs on
/// it unchanged. Each statement goes, in this order:
///
/// 1. where the caller pinned it ([`RwPool::primary`](crate::RwPool::primary); a read-only
///    handle from [`RwPool::replica`](crate::RwPool::replica) rejects writes before sending them);
/// 2. inside a transaction, to the connection that began it;
/// 3. a write (classified by its SQL text, unknown = write) to the primary;
/// 4. a read after a write to the primary, per the pool's [`Consistency`](crate::Consistency);
/// 5. otherwise to a replica chosen by the [`Policy`](crate::Policy), or per the
///    [`Fallback`](crate::Fallback) when none is available.
///
/// It holds at most one primary connection (checked out at the first statement that needs it,
/// kept until the `RwConnection` is dropped) and, from a pool, one replica connection at a time.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel::prelude::*;
/// use diesel::connection::SimpleConnection;
/// use diesel_rw::{Node, RwConnection};
///
/// let dir = std::env::temp_dir().join(format!("diesel-rw-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let (p, r) = (dir.join("p.db"), dir.join("r.db"));
/// // Plain URL: primary only. `primary=URL replica=URL ...`: a primary and replicas.
/// let spec = format!("primary={} replica={}", p.display(), r.display());
/// for db in [&p, &r] {
///     diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap()
///         .batch_execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)").unwrap();
/// }
/// let mut conn = RwConnection::<diesel::SqliteConnection>::establish(&spec).unwrap();
/// conn.batch_execute("SELECT 1").unwrap();
/// assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
/// conn.batch_execute("INSERT INTO t VALUES (1)").unwrap();
/// assert_eq!(conn.last_route().unwrap().node, Node::Primary);
/// # }
/// ```
pub struct RwConnection<C: R2D2Connection + 'static> {
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
}

/// A held replica connection, counted as in flight while held.
struct ReplicaSlot<C: R2D2Connection + 'static> {
    conn: Leased<Held<C>>,
    /// The replica's connection generation when this was checked out.
    generation: u64,
    _in_flight: InFlight,
}

impl<C: R2D2Connection + 'static> fmt::Debug for RwConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwConnection")
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

impl<C> RwConnection<C>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    fn core(&self) -> &RoutingCore {
        &self.cluster.core
    }

    /// Where the last statement (or transaction begin) went and why.
    pub fn last_route(&self) -> Option<Route> {
        self.last_route
    }

    /// The routing counters of this connection's pool (for a connection made by
    /// [`establish`](Connection::establish), of this connection alone).
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

    /// Runs `f` on the primary's own connection (checked out if needed), bypassing routing: for
    /// what diesel-rw cannot see, such as a backend-specific API of `C`. Counts as a write.
    pub fn with_primary<T>(&mut self, f: impl FnOnce(&mut C) -> T) -> Result<T, Error> {
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
        self.ensure(Node::Primary)?;
        self.state.routed_write(self.cluster.core.consistency);
        self.record(Route {
            node: Node::Primary,
            reason: Reason::Explicit,
        });
        Ok(f(self.node_conn(Node::Primary)))
    }

    /// Runs `f` on replica `replica`'s own connection (checked out if needed; made read-only
    /// when it connected), bypassing routing: for backend-specific read APIs of `C`, and for
    /// checking what a replica session itself refuses.
    pub fn with_replica<T>(
        &mut self,
        replica: usize,
        f: impl FnOnce(&mut C) -> T,
    ) -> Result<T, Error> {
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
        self.ensure(node)?;
        self.record(Route {
            node,
            reason: Reason::Explicit,
        });
        Ok(f(self.node_conn(node)))
    }

    /// Runs `f` on the node connection a read is routed to now, through the whole routing
    /// order: the open transaction's node, the primary when this connection is pinned there or
    /// sticky after a write, else a replica chosen by the policy (the
    /// [`Fallback`](crate::Fallback) when none is available). For read APIs of `C` that
    /// diesel-rw cannot route itself, such as PostgreSQL's `diesel::copy_to(..).load(..)`
    /// (see [`pg`](crate::pg); use [`CopyToConnection::with_copy_to`](crate::pg::CopyToConnection)
    /// for it, which also ends the `COPY` on the node connection). Counted as a read; `f` must
    /// not write (a replica refuses it). An error that shows the node's connection broken
    /// retires it, as a statement's does.
    pub fn with_read_route<T>(
        &mut self,
        f: impl FnOnce(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let node = self.route(StatementKind::Read, || "<with_read_route>".into())?;
        f(self.node_conn(node))
            .map_err(|e| self.statement_failed(node, StatementKind::Read, e).error)
    }

    /// The primary connection, if this connection holds one.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn held_primary(&mut self) -> Option<&mut C> {
        self.primary.as_deref_mut()
    }

    /// Routes one statement of kind `kind` and makes sure its node's connection is held.
    pub(crate) fn route(
        &mut self,
        kind: StatementKind,
        sql: impl FnOnce() -> String,
    ) -> Result<Node, Error> {
        if kind.is_read() {
            self.capture_position();
        }
        let decision = self.state.decide(kind, self.core().consistency, sql)?;
        let route = self.resolve(decision)?;
        if kind.is_write() {
            self.state.routed_write(self.cluster.core.consistency);
        }
        self.record(route);
        Ok(route.node)
    }

    /// Routes the beginning of a transaction (see [`RouteState::transaction_decision`]).
    pub(crate) fn route_transaction(&mut self) -> Result<Node, Error> {
        let decision = self.state.transaction_decision(self.core().consistency);
        let route = self.resolve(decision)?;
        self.record(route);
        Ok(route.node)
    }

    fn record(&mut self, route: Route) {
        self.cluster.core.record(route);
        self.last_route = Some(route);
    }

    /// Turns a decision into a node whose connection is held: step 5 picks a replica, ejecting
    /// the ones that cannot be reached, and falls back per the pool's `Fallback`.
    fn resolve(&mut self, decision: Decision) -> Result<Route, Error> {
        match decision {
            Decision::Node(node, reason) => {
                self.ensure(node)?;
                Ok(Route { node, reason })
            }
            Decision::AnyReplica(reason) => {
                if let Some(target) = self.state.causal_target(self.core().consistency) {
                    return self.resolve_causal(&target, reason);
                }
                for _ in 0..self.cluster.replicas.len() {
                    let Some(i) = self.core().pick_replica() else {
                        break;
                    };
                    match self.ensure(Node::Replica(i)) {
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
                self.ensure(Node::Primary)?;
                Ok(Route {
                    node: Node::Primary,
                    reason: Reason::Fallback,
                })
            }
        }
    }

    /// Checks out the node's connection unless it is held already. From a pool, holding a
    /// replica gives back the other replica's connection.
    fn ensure(&mut self, node: Node) -> Result<(), Error> {
        match node {
            Node::Primary => {
                let generation = self.cluster.core.health.generation_of(Node::Primary);
                // Never swap the connection under an open transaction: it would run the rest
                // outside it. The transaction fails on its own if the connection is broken.
                if self.primary_generation != generation && self.state.transaction != Some(node) {
                    self.primary = None;
                }
                if self.primary.is_none() {
                    self.primary_generation = generation;
                    let mut conn = self.cluster.primary.checkout().inspect_err(|e| {
                        // Busy is not down.
                        if !matches!(e, Error::PoolExhausted { .. }) {
                            self.cluster.core.counters.failure(Node::Primary);
                        }
                    })?;
                    if let Some(size) = self.cache_size {
                        conn.set_prepared_statement_cache_size(size);
                    }
                    self.primary = Some(Leased::new(conn, self.instrumentation.shared(), install));
                }
            }
            Node::Replica(i) => {
                let generation = self.cluster.core.health.generation(i);
                if self.state.transaction != Some(node)
                    && self.replicas[i]
                        .as_ref()
                        .is_some_and(|s| s.generation != generation)
                {
                    self.replicas[i] = None;
                }
                if self.replicas[i].is_none() {
                    if self.cluster.replicas[i].is_pooled() {
                        for slot in &mut self.replicas {
                            *slot = None;
                        }
                    }
                    let mut conn = self.cluster.replicas[i].checkout()?;
                    if let Some(size) = self.cache_size {
                        conn.set_prepared_statement_cache_size(size);
                    }
                    self.replicas[i] = Some(ReplicaSlot {
                        conn: Leased::new(conn, self.instrumentation.shared(), install),
                        generation,
                        _in_flight: self.cluster.core.health.enter(i),
                    });
                }
            }
        }
        Ok(())
    }

    /// The held connection of a node. Panics if it is not held: call [`Self::ensure`] first.
    pub(crate) fn node_conn(&mut self, node: Node) -> &mut C {
        match node {
            Node::Primary => self.primary.as_deref_mut(),
            Node::Replica(i) => self.replicas[i].as_mut().map(|s| &mut *s.conn),
        }
        .expect("diesel-rw: the routed node's connection is held")
    }

    /// The status diesel sees when no transaction is open.
    pub(crate) fn idle_status(&mut self) -> &mut TransactionManagerStatus {
        self.idle_status = TransactionManagerStatus::default();
        &mut self.idle_status
    }

    /// Routes and runs a statement on the chosen node's connection. A read outside a
    /// transaction that fails on a replica with a connection error is run once more on
    /// another node (reads are safe to repeat); the replica is ejected.
    fn run<T>(
        &mut self,
        kind: StatementKind,
        sql: impl Fn() -> String,
        mut f: impl FnMut(&mut C) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let node = self.route(kind, &sql)?;
        let start = self.core().times_reads().then(Instant::now);
        let failure = match f(self.node_conn(node)) {
            Ok(value) => {
                if let Some(start) = start {
                    self.core().read_took(node, start.elapsed());
                }
                return Ok(value);
            }
            Err(e) => self.statement_failed(node, kind, e),
        };
        if !failure.retry {
            return Err(failure.error);
        }
        self.core().read_retried();
        let node = self.route(kind, &sql)?;
        let start = self.core().times_reads().then(Instant::now);
        let result = f(self.node_conn(node));
        if let (Ok(_), Some(start)) = (&result, start) {
            self.core().read_took(node, start.elapsed());
        }
        result.map_err(|e| self.statement_failed(node, kind, e).error)
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

    /// Reads the primary's position after writes committed (once per burst of writes, just
    /// before the next read), for `Consistency::Causal` and [`Self::write_token`].
    fn capture_position(&mut self) {
        let positions = <C::Backend as RwBackend>::POSITIONS;
        let Some(queries) = self.state.capture_due(self.core().consistency, positions) else {
            return;
        };
        let answer = self.primary.as_deref_mut().and_then(|conn| {
            <C::Backend as RwBackend>::query_text(conn, queries.after_write)
                .ok()
                .flatten()
        });
        self.state.position_captured(&queries, answer);
    }

    /// Step 5 under `Consistency::Causal`: a replica that has replayed `target` (known from the
    /// lag monitor; else checked on the replica, waiting up to `causal_wait` if set), else the
    /// primary. The order is [`RoutingCore::causal_candidates`].
    fn resolve_causal(&mut self, target: &Position, reason: Reason) -> Result<Route, Error> {
        let cluster = self.cluster.clone();
        let core = &cluster.core;
        for (i, ask) in core.causal_candidates(target, None) {
            match self.ensure(Node::Replica(i)) {
                Ok(()) if !ask || self.replica_has_reached(i, target, core.causal_wait) => {
                    core.replica_ok(i);
                    return Ok(Route {
                        node: Node::Replica(i),
                        reason,
                    });
                }
                Ok(()) => {}
                Err(Error::PoolExhausted { .. }) => core.replica_busy(i),
                Err(e) => core.replica_failed(i, &e),
            }
        }
        core.causal_primary_read();
        self.ensure(Node::Primary)?;
        Ok(Route {
            node: Node::Primary,
            reason: Reason::Sticky,
        })
    }

    /// Asks replica `i` (held) whether it has replayed `target`, waiting up to `wait`.
    fn replica_has_reached(&mut self, i: usize, target: &Position, wait: Option<Duration>) -> bool {
        let Some(queries) = <C::Backend as RwBackend>::POSITIONS else {
            return false;
        };
        let cluster = self.cluster.clone();
        let core = &cluster.core;
        let conn = self.node_conn(Node::Replica(i));
        let check = |conn: &mut C| {
            let answer = <C::Backend as RwBackend>::query_text(conn, queries.replayed)
                .ok()
                .flatten();
            core.replica_replayed(i, &queries, answer, target)
        };
        if check(conn) {
            return true;
        }
        let Some(wait) = wait else {
            return false;
        };
        core.causal_waiting();
        if let Some(wait_sql) = queries.wait {
            let answer = <C::Backend as RwBackend>::query_text(conn, &wait_sql(target, wait))
                .ok()
                .flatten();
            return RoutingCore::wait_succeeded(answer);
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            std::thread::sleep(CAUSAL_POLL);
            if check(conn) {
                return true;
            }
        }
        false
    }

    /// A token for this connection's writes so far: hand it to
    /// [`RwPool::get_after`](crate::RwPool::get_after) elsewhere to read them back. `None` if
    /// the connection has not written, or the backend has no replication positions, or the
    /// pool's consistency is not `Causal`.
    pub fn write_token(&mut self) -> Option<WriteToken> {
        self.capture_position();
        self.state.sticky.token().cloned()
    }

    /// Starts from another connection's write: reads go to replicas that have replayed it.
    pub(crate) fn adopt(&mut self, token: WriteToken) {
        self.state.sticky.adopt(token);
    }
}

/// Renders a statement's SQL for an error message.
fn render<DB: RwBackend, T: QueryFragment<DB> + ?Sized>(source: &T) -> String {
    let mut qb = DB::QueryBuilder::default();
    match source.to_sql(&mut qb, &DB::default()) {
        Ok(()) => diesel::query_builder::QueryBuilder::finish(qb),
        Err(e) => format!("<unrenderable statement: {e}>"),
    }
}

impl<C: R2D2Connection + 'static> ConnectionSealed for RwConnection<C> {}

impl<C> SimpleConnection for RwConnection<C>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        self.run(
            self.cluster.core.classify_sql::<C::Backend>(query),
            || query.to_owned(),
            |c| c.batch_execute(query),
        )
    }
}

impl<C> Connection for RwConnection<C>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    type Backend = C::Backend;
    type TransactionManager = RwTransactionManager;

    /// Connects from a spec: a plain URL (the primary only, as `C::establish` takes it), or
    /// whitespace-separated `primary=URL` and `replica=URL` entries, e.g.
    /// `primary=postgres://db1/app replica=postgres://db2/app replica=postgres://db3/app`.
    /// Node connections open when a statement first needs them; replica connections are made
    /// read-only when they open. Settings are the defaults of [`RwPool`](crate::RwPool)'s
    /// builder.
    fn establish(spec: &str) -> ConnectionResult<Self> {
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
        };
        let mut conn = RwConnection::new(Arc::new(cluster));
        // Connect to the primary now, as `establish` promises a working connection.
        conn.ensure(Node::Primary)
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
        Ok(conn)
    }

    fn execute_returning_count<T>(&mut self, source: &T) -> QueryResult<usize>
    where
        T: QueryFragment<Self::Backend> + QueryId,
    {
        self.run(
            self.cluster.core.classify_query::<C::Backend, T>(source),
            || render::<C::Backend, T>(source),
            |c| c.execute_returning_count(source),
        )
    }

    fn transaction_state(&mut self) -> &mut TransactionManagerStatus {
        <RwTransactionManager as TransactionManager<Self>>::transaction_manager_status_mut(self)
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
        if let Some(p) = &mut self.primary {
            p.set_prepared_statement_cache_size(size);
        }
        for slot in self.replicas.iter_mut().flatten() {
            slot.conn.set_prepared_statement_cache_size(size);
        }
    }
}

impl<B, C> LoadConnection<B> for RwConnection<C>
where
    C: LoadConnection<B> + LoadConnection + R2D2Connection + 'static,
    C::Backend: RwBackend,
{
    type Cursor<'conn, 'query>
        = <C as LoadConnection<B>>::Cursor<'conn, 'query>
    where
        Self: 'conn;
    type Row<'conn, 'query>
        = <C as LoadConnection<B>>::Row<'conn, 'query>
    where
        Self: 'conn;

    fn load<'conn, 'query, T>(
        &'conn mut self,
        source: T,
    ) -> QueryResult<Self::Cursor<'conn, 'query>>
    where
        T: Query + QueryFragment<Self::Backend> + QueryId + 'query,
        Self::Backend: QueryMetadata<T::SqlType>,
    {
        // `INSERT ... RETURNING` arrives here: the classification makes it a write.
        let kind = self.cluster.core.classify_query::<C::Backend, T>(&source);
        let node = self.route(kind, || render::<C::Backend, T>(&source))?;
        let retryable = <C::Backend as RwBackend>::CONNECTIONS_CAN_BREAK
            && matches!(node, Node::Replica(_))
            && kind.is_read()
            && self.state.transaction.is_none();
        if !retryable {
            let in_transaction = self.state.transaction.is_some();
            let core = &self.cluster.core;
            let conn = match node {
                Node::Primary => self.primary.as_deref_mut(),
                Node::Replica(i) => self.replicas[i].as_mut().map(|s| &mut *s.conn),
            }
            .expect("diesel-rw: the routed node's connection is held");
            // A broken connection is retired (its generation): the next statement replaces it.
            return <C as LoadConnection<B>>::load(conn, source)
                .map_err(|e| core.statement_failed(node, kind, in_transaction, e).error);
        }
        // A read on a replica may run again on another node if the replica's connection fails
        // under it: `load` consumes its statement, so both attempts share it.
        let query = Replay(Arc::new(source));
        // Timed for slow-replica detection only when that is on (no clock read otherwise).
        let timing = self
            .core()
            .times_reads()
            .then(|| (self.cluster.clone(), Instant::now()));
        let first = crate::replay::attempt::<_, CursorOf<'query, C, B>, _>(self, |this| {
            let cursor = <C as LoadConnection<B>>::load(this.node_conn(node), query.clone());
            if let (Ok(_), Some((cluster, start))) = (&cursor, &timing) {
                cluster.core.read_took(node, start.elapsed());
            }
            cursor
        });
        let (error, this) = match first {
            Ok(cursor) => return Ok(cursor),
            Err(failed) => failed,
        };
        let failure = this.statement_failed(node, kind, error);
        if !failure.retry {
            return Err(failure.error);
        }
        this.core().read_retried();
        let node = this.route(kind, || render::<C::Backend, T>(&*query.0))?;
        let cluster = this.cluster.clone();
        <C as LoadConnection<B>>::load(this.node_conn(node), query)
            .map_err(|e| cluster.core.statement_failed(node, kind, false, e).error)
    }
}

/// The cursor of `C`'s `load` for statements living for `'query`, borrowing `C` for any `'a`.
struct CursorOf<'query, C, B>(PhantomData<&'query ()>, PhantomData<fn() -> (C, B)>);

impl<'query, B, C: LoadConnection<B> + 'static> crate::replay::Borrowing
    for CursorOf<'query, C, B>
{
    type Of<'a> = <C as LoadConnection<B>>::Cursor<'a, 'query>;
}

impl<C> R2D2Connection for RwConnection<C>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    /// Pings the primary.
    fn ping(&mut self) -> QueryResult<()> {
        self.ensure(Node::Primary)?;
        self.node_conn(Node::Primary).ping()
    }

    fn is_broken(&mut self) -> bool {
        self.primary.as_deref_mut().is_some_and(C::is_broken)
            || self
                .replicas
                .iter_mut()
                .flatten()
                .any(|s| s.conn.is_broken())
    }
}

impl<C> MigrationConnection for RwConnection<C>
where
    C: MigrationConnection + R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    /// Pins this connection to the primary (migrations read and write the primary only), then
    /// sets up the migrations table there.
    fn setup(&mut self) -> QueryResult<usize> {
        self.pin_primary()?;
        self.run(
            StatementKind::Write,
            || "<migrations setup>".into(),
            C::setup,
        )
    }
}

impl<Changes, Output, C> UpdateAndFetchResults<Changes, Output> for RwConnection<C>
where
    C: UpdateAndFetchResults<Changes, Output> + R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    /// `save_changes` runs on the primary (it writes, and reads back what it wrote).
    fn update_and_fetch(&mut self, changeset: Changes) -> QueryResult<Output> {
        let mut changeset = Some(changeset);
        self.run(
            StatementKind::Write,
            || "<save_changes>".into(),
            // Writes are never retried, so the closure runs once.
            |c| c.update_and_fetch(changeset.take().expect("a write runs once")),
        )
    }
}

impl<C: R2D2Connection + 'static> RwConnection<C> {
    pub(crate) fn new(cluster: Arc<Cluster<C>>) -> Self {
        let replicas = (0..cluster.replicas.len()).map(|_| None).collect();
        RwConnection {
            cluster,
            primary: None,
            primary_generation: 0,
            replicas,
            state: RouteState::default(),
            idle_status: TransactionManagerStatus::default(),
            last_route: None,
            instrumentation: Own::Unasked,
            cache_size: None,
        }
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

    /// Which role served the last statement, if any ran.
    pub fn last_role(&self) -> Option<Role> {
        self.last_route.map(|r| r.role())
    }
}

/// Makes a node connection forward its events to the routing connection's instrumentation.
fn install<C: R2D2Connection + 'static>(conn: &mut Held<C>, forward: Forward) {
    conn.set_instrumentation(forward);
}
