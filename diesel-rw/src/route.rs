//! Roles, nodes and the routing decision.
//!
//! Every path (the macros, [`RwConnection`](crate::RwConnection), the explicit handles) decides
//! in the same order, implemented once here and shared by the sync and async stacks:
//!
//! 1. **Explicit** choice: [`RwPool::primary`](crate::RwPool::primary), `#[master]`; a read-only
//!    route (`pool.replica()`, `#[read_only]`) rejects writes before they are sent.
//! 2. **Transaction**: every statement goes to the connection that began the open transaction.
//! 3. **Write** statements go to the primary.
//! 4. **Sticky**: reads after a write go to the primary, per [`Consistency`].
//! 5. **Policy**: a replica chosen by the [`Policy`](crate::Policy), skipping ejected ones; none
//!    left, the [`Fallback`].
//!
//! Each decision carries its [`Reason`], which names the step that made it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{CommitStatusQueries, PositionQueries};
use crate::classify::StatementKind;
use crate::commit_outcome::{Outcome, Resolution, TxRef};
use crate::config::Config;
use crate::consistency::{Consistency, Position, Sticky};
use crate::error::Error;
use crate::functions::WritingFunctions;
use crate::health::{CaughtUp, Health, MaxLag};
use crate::metrics::Metrics;
use crate::policy::Selector;
use crate::stats::{Counters, Stats};
use crate::url::NodeUrl;

/// The role of a database node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The primary: takes writes, serves reads that must see them.
    Primary,
    /// A read replica: serves reads only.
    Replica,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        })
    }
}

/// One node of a cluster: the primary, or a replica by its index in the builder's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// The primary.
    Primary,
    /// The replica at this index (0-based, in the order they were added to the builder).
    Replica(usize),
}

impl Node {
    /// The node's role.
    pub fn role(self) -> Role {
        match self {
            Node::Primary => Role::Primary,
            Node::Replica(_) => Role::Replica,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Primary => f.write_str("primary"),
            Node::Replica(i) => write!(f, "replica[{i}]"),
        }
    }
}

/// Why a statement went where it went: the step of the routing order that decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Step 1: the caller chose the route (`pool.primary()`, `pool.replica()`, a macro).
    Explicit,
    /// Step 2: a transaction is open on that connection.
    Transaction,
    /// Step 3: the statement writes.
    Write,
    /// Step 4: a recent write makes reads stick to the primary.
    Sticky,
    /// Step 5: the replica policy chose this replica.
    Policy,
    /// Step 5: no replica was available and the primary served the read.
    Fallback,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Explicit => "explicit",
            Reason::Transaction => "transaction",
            Reason::Write => "write",
            Reason::Sticky => "sticky",
            Reason::Policy => "policy",
            Reason::Fallback => "fallback",
        })
    }
}

/// A routing decision: the node that served a statement and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// The node that served the statement.
    pub node: Node,
    /// The step of the routing order that chose it.
    pub reason: Reason,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.node, self.reason)
    }
}

impl Route {
    /// The role of the node that served the statement.
    pub fn role(&self) -> Role {
        self.node.role()
    }
}

/// What to do when a read should go to a replica and none is available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// The primary serves the read (counted in [`Stats::fallbacks`](crate::Stats::fallbacks)).
    #[default]
    Primary,
    /// The read fails with [`Error::NoReplicaAvailable`].
    Error,
}

/// The per-connection routing state the decision reads: the explicit mode, the open
/// transaction and the sticky state. Shared by the sync and async connections.
#[derive(Debug, Default)]
pub(crate) struct RouteState {
    /// The caller pinned this connection to the primary.
    pub(crate) force_primary: bool,
    /// The caller asked for a read-only route: writes are rejected before they are sent.
    pub(crate) read_only: bool,
    /// The node of the open transaction, if any.
    pub(crate) transaction: Option<Node>,
    /// Writes seen, for stickiness.
    pub(crate) sticky: Sticky,
    /// The open transaction has routed a write: its `COMMIT` notes the transaction's id first,
    /// so that a lost reply can be resolved (see [`crate::commit_outcome`]).
    pub(crate) transaction_wrote: bool,
}

/// The outcome of [`RouteState::decide`] before a replica is picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// This node, for this reason.
    Node(Node, Reason),
    /// Any replica, chosen by the policy (`Reason::Explicit` or `Reason::Policy`).
    AnyReplica(Reason),
}

impl RouteState {
    /// A write was routed (or the primary's connection used directly): the connection is
    /// sticky, and an open transaction has written.
    pub(crate) fn routed_write(&mut self, consistency: Consistency) {
        self.sticky.record_write(consistency);
        if self.transaction.is_some() {
            self.transaction_wrote = true;
        }
    }

    /// Steps 1-4 of the routing order for one statement. `sql` renders the statement for the
    /// error message; it is only called when a write is rejected.
    pub(crate) fn decide(
        &self,
        kind: StatementKind,
        consistency: Consistency,
        sql: impl FnOnce() -> String,
    ) -> Result<Decision, Error> {
        if kind.is_write() && self.read_only {
            return Err(Error::WriteOnReadRoute { sql: sql() });
        }
        if let Some(node) = self.transaction {
            return Ok(Decision::Node(node, Reason::Transaction));
        }
        if self.force_primary {
            return Ok(Decision::Node(Node::Primary, Reason::Explicit));
        }
        if kind.is_write() {
            return Ok(Decision::Node(Node::Primary, Reason::Write));
        }
        if self.sticky.is_sticky(consistency) {
            return Ok(Decision::Node(Node::Primary, Reason::Sticky));
        }
        Ok(Decision::AnyReplica(if self.read_only {
            Reason::Explicit
        } else {
            Reason::Policy
        }))
    }

    /// Under `Consistency::Causal`, the position a replica must have replayed to serve a read.
    pub(crate) fn causal_target(&self, consistency: Consistency) -> Option<Position> {
        if consistency != Consistency::Causal {
            return None;
        }
        self.sticky.token().map(|t| t.position().clone())
    }

    /// Before a read: whether the primary's position after this connection's writes must be
    /// read now (once per burst of writes, outside a transaction, under `Causal`), and with
    /// which of the backend's `queries`. The caller runs `after_write` on its primary connection
    /// and hands the answer to [`Self::position_captured`]. Without positions (SQLite), the
    /// position is recorded as unknown at once.
    pub(crate) fn capture_due(
        &mut self,
        consistency: Consistency,
        queries: Option<PositionQueries>,
    ) -> Option<PositionQueries> {
        if !self.sticky.pending() || self.transaction.is_some() {
            return None;
        }
        let Some(queries) = queries else {
            self.sticky.record_position(None);
            return None;
        };
        (consistency == Consistency::Causal).then_some(queries)
    }

    /// Records what the primary answered to `queries.after_write` (`None`: no answer, or no
    /// primary connection): an unknown position keeps reads on the primary.
    pub(crate) fn position_captured(&mut self, queries: &PositionQueries, answer: Option<String>) {
        let position = answer
            .and_then(|text| (queries.parse)(&text))
            .filter(|p| *p != Position::Gtid(Vec::new()));
        if position.is_none() {
            tracing::debug!(
                target: "diesel_rw",
                "position after write unknown: reads stay on the primary"
            );
        }
        self.sticky.record_position(position);
    }

    /// Where a new transaction begins: the primary, unless the route is read-only, in which
    /// case a replica (a read-only transaction) unless stickiness pins reads to the primary.
    pub(crate) fn transaction_decision(&self, consistency: Consistency) -> Decision {
        if self.force_primary {
            Decision::Node(Node::Primary, Reason::Explicit)
        } else if !self.read_only {
            Decision::Node(Node::Primary, Reason::Transaction)
        } else if self.sticky.is_sticky(consistency) {
            Decision::Node(Node::Primary, Reason::Sticky)
        } else {
            Decision::AnyReplica(Reason::Explicit)
        }
    }
}

/// Whether `error` is diesel-rw's own [`Error::Timeout`] (a statement past its deadline).
pub(crate) fn is_timeout(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::QueryBuilderError(e)
            if matches!(e.downcast_ref::<Error>(), Some(Error::Timeout { .. }))
    )
}

/// A failed `COMMIT`, as [`RoutingCore::commit_failed`] sees it.
#[derive(Debug)]
pub(crate) enum CommitFailed {
    /// The error to return.
    Final(diesel::result::Error),
    /// The reply was lost and the outcome can be asked for: drive the resolution, then pass
    /// its outcome and this error to [`RoutingCore::commit_resolved`].
    Resolve(Resolution, Error),
}

/// What [`RoutingCore::statement_failed`] made of a failed statement.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The error for the caller.
    pub(crate) error: diesel::result::Error,
    /// The connection itself failed: give it back (outside a transaction) for a new one.
    pub(crate) broken: bool,
    /// A read outside a transaction whose replica connection failed: it may run again on
    /// another node (reads are safe to repeat).
    pub(crate) retry: bool,
}

/// The routing state shared by every connection of a pool: settings, the replica policy, replica
/// health and the counters. The sync and async pools both hold one.
#[derive(Debug)]
pub(crate) struct RoutingCore {
    pub(crate) consistency: Consistency,
    pub(crate) fallback: Fallback,
    pub(crate) selector: Selector,
    pub(crate) health: Arc<Health>,
    pub(crate) counters: Counters,
    pub(crate) primary_name: NodeUrl,
    pub(crate) replica_names: Vec<NodeUrl>,
    pub(crate) causal_wait: Option<Duration>,
    pub(crate) max_replica_lag: Option<MaxLag>,
    pub(crate) eject_after: u32,
    /// Whether a lag monitor keeps the replicas' positions fresh.
    pub(crate) monitored: bool,
    /// When a replica is too slow to keep in rotation (absolute, and relative to its peers).
    pub(crate) max_replica_latency: Option<Duration>,
    pub(crate) slow_replica_factor: Option<u32>,
    /// The deadlines of a read and of a write statement.
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) metrics: Metrics,
    /// The application's functions that write: a call of one is a write.
    pub(crate) functions: WritingFunctions,
}

impl RoutingCore {
    pub(crate) fn new(config: &Config, primary: &NodeUrl) -> Self {
        RoutingCore {
            consistency: config.consistency,
            fallback: config.fallback,
            selector: Selector::new(config.policy),
            health: Arc::new(Health::new(
                config.replicas.iter().map(|(_, w)| *w),
                config.eject_cooldown,
            )),
            counters: Counters::new(config.replicas.len()),
            primary_name: primary.clone(),
            replica_names: config.replicas.iter().map(|(u, _)| u.clone()).collect(),
            causal_wait: config.causal_wait,
            max_replica_lag: config.max_replica_lag,
            eject_after: config.eject_after,
            monitored: config.monitor_interval().is_some() && !config.replicas.is_empty(),
            read_timeout: config.read_timeout,
            write_timeout: config.write_timeout,
            max_replica_latency: config.max_replica_latency,
            slow_replica_factor: config.slow_replica_factor,
            functions: WritingFunctions::for_pool(
                &config.writing_functions,
                config.learn_writing_functions,
                config.writing_functions_refresh,
                config.connection_timeout,
            ),
            metrics: Metrics::new(
                primary,
                &config
                    .replicas
                    .iter()
                    .map(|(u, _)| u.clone())
                    .collect::<Vec<_>>(),
            ),
        }
    }

    /// Classifies a query as this pool does: with its functions that write.
    #[inline]
    pub(crate) fn classify_query<DB, T>(&self, source: &T) -> StatementKind
    where
        DB: crate::RwBackend,
        T: diesel::query_builder::QueryFragment<DB> + diesel::query_builder::QueryId + ?Sized,
    {
        crate::classify::classify_query_with::<DB, T>(source, &self.functions)
    }

    /// Classifies SQL text of backend `DB` as this pool does: with its functions that write.
    pub(crate) fn classify_sql<DB: crate::RwBackend>(&self, sql: &str) -> StatementKind {
        crate::classify::classify_sql_with(sql, DB::DIALECT, &self.functions)
    }

    /// How many replicas the pool has.
    pub(crate) fn replica_count(&self) -> usize {
        self.replica_names.len()
    }

    /// The redacted name of a node.
    /// The deadline of a statement of `kind`.
    pub(crate) fn deadline(&self, kind: StatementKind) -> Option<Duration> {
        if kind.is_read() {
            self.read_timeout
        } else {
            self.write_timeout
        }
    }

    /// The error of a statement of `kind` on `node` that had no answer within `after`.
    pub(crate) fn timed_out(
        &self,
        node: Node,
        kind: StatementKind,
        after: Duration,
    ) -> diesel::result::Error {
        Error::Timeout {
            node: self.node_name(node).to_owned(),
            after,
            maybe_applied: kind.is_write(),
        }
        .into()
    }

    pub(crate) fn node_name(&self, node: Node) -> &str {
        match node {
            Node::Primary => self.primary_name.redacted(),
            Node::Replica(i) => self.replica_names[i].redacted(),
        }
    }

    /// Step 5: the replica the policy picks among the available ones.
    pub(crate) fn pick_replica(&self) -> Option<usize> {
        self.selector.pick(&*self.health)
    }

    /// Step 5 under `Consistency::Causal`: a replica that, at the lag monitor's last sample,
    /// had replayed `target`.
    pub(crate) fn pick_caught_up(&self, target: &Position) -> Option<usize> {
        self.selector.pick(&CaughtUp {
            health: &self.health,
            target,
        })
    }

    /// Step 5 under `Consistency::Causal`: the replicas to try for a read that must see
    /// `target`, in order, each with whether it must first be asked if it has replayed it.
    /// First one the lag monitor saw at `target` (`first`, if the caller picked it already);
    /// then, if no monitor runs or `causal_wait` is set, any available replica, to ask. After
    /// them, the primary (see [`Self::causal_primary_read`]). Lazy: each is picked when the
    /// previous one failed, so an ejection in between counts.
    pub(crate) fn causal_candidates<'a>(
        &'a self,
        target: &'a Position,
        first: Option<usize>,
    ) -> CausalCandidates<'a> {
        CausalCandidates {
            core: self,
            target,
            first,
            step: 0,
        }
    }

    /// Under `Causal`, whether a read with no replica known to have replayed its target asks a
    /// replica (no lag monitor keeps positions fresh, or `causal_wait` lets it wait), rather
    /// than going to the primary at once.
    pub(crate) fn causal_asks_replicas(&self) -> bool {
        !self.monitored || self.causal_wait.is_some()
    }

    /// Replica `i` answered `queries.replayed` with `answer`: notes the position and tells
    /// whether it has reached `target`.
    pub(crate) fn replica_replayed(
        &self,
        i: usize,
        queries: &PositionQueries,
        answer: Option<String>,
        target: &Position,
    ) -> bool {
        answer
            .and_then(|text| (queries.parse)(&text))
            .inspect(|p| self.health.note_replayed(i, p.clone()))
            .is_some_and(|p| p.has_reached(target))
    }

    /// A read waits (up to `causal_wait`) for a replica to replay its target: count it.
    pub(crate) fn causal_waiting(&self) {
        self.counters.causal_wait();
        self.metrics.causal_wait();
    }

    /// Whether a replica's answer to the backend's server-side wait
    /// ([`PositionQueries::wait`]) says it reached the position in time.
    pub(crate) fn wait_succeeded(answer: Option<String>) -> bool {
        answer.is_some_and(|r| r.trim() == "0")
    }

    /// No replica could serve a causal read: the primary does (counted).
    pub(crate) fn causal_primary_read(&self) {
        self.counters.causal_primary_read();
    }

    /// A `COMMIT` on `node` failed with `error` (`outermost`: it ended the transaction). A
    /// connection that broke under it (or a commit past the write deadline) means the reply
    /// was lost: the node's connections are retired, as after any broken statement, and the
    /// outcome is [`CommitFailed::Resolve`] when the transaction's id was noted before the
    /// `COMMIT` (`captured`) and the backend can tell, else [`Error::CommitOutcomeUnknown`].
    pub(crate) fn commit_failed(
        &self,
        node: Node,
        outermost: bool,
        error: diesel::result::Error,
        queries: Option<CommitStatusQueries>,
        captured: Option<TxRef>,
        budget: Duration,
    ) -> CommitFailed {
        let timed_out = is_timeout(&error);
        if !outermost || !(timed_out || crate::error::is_connection_error(&error)) {
            return CommitFailed::Final(error);
        }
        self.health.retire(node);
        let source = Error::from_diesel(error);
        match (queries, captured) {
            (Some(queries), Some(tx)) => {
                CommitFailed::Resolve(Resolution::new(queries, tx, budget), source)
            }
            _ => CommitFailed::Final(
                Error::CommitOutcomeUnknown {
                    node: self.node_name(node).to_owned(),
                    detail: String::new(),
                    source: Box::new(source),
                }
                .into(),
            ),
        }
    }

    /// Noting the transaction's id before its `COMMIT` failed with `error`. A broken connection
    /// (or the write deadline) means the `COMMIT` will not be sent: the transaction cannot have
    /// committed, which is `Ok(`[`Error::NotCommitted`]`)` (the node's connections are
    /// retired). Anything else is `Err(error)`: the server refused the query, which aborts a
    /// PostgreSQL transaction; the caller rolls back and returns it.
    pub(crate) fn capture_failed(
        &self,
        node: Node,
        error: diesel::result::Error,
    ) -> Result<diesel::result::Error, diesel::result::Error> {
        let timed_out = is_timeout(&error);
        if !(timed_out || crate::error::is_connection_error(&error)) {
            return Err(error);
        }
        self.health.retire(node);
        Ok(Error::NotCommitted {
            node: self.node_name(node).to_owned(),
            source: Box::new(Error::from_diesel(error)),
        }
        .into())
    }

    /// What a lost `COMMIT` on `node` turned out to be (see [`Self::commit_failed`]): committed
    /// is success; rolled back is [`Error::NotCommitted`]; not found out is
    /// [`Error::CommitOutcomeUnknown`] with how to check by hand.
    pub(crate) fn commit_resolved(
        &self,
        node: Node,
        resolution: &Resolution,
        outcome: Outcome,
        source: Error,
    ) -> diesel::result::QueryResult<()> {
        let name = self.node_name(node).to_owned();
        match outcome {
            Outcome::Committed => {
                tracing::warn!(
                    target: "diesel_rw",
                    node = %name,
                    error = %source,
                    "the reply to COMMIT was lost; the server reports the transaction committed"
                );
                Ok(())
            }
            Outcome::Aborted => Err(Error::NotCommitted {
                node: name,
                source: Box::new(source),
            }
            .into()),
            Outcome::Unknown(reason) => Err(Error::CommitOutcomeUnknown {
                node: name,
                detail: format!(" ({reason}; {})", resolution.how_to_check()),
                source: Box::new(source),
            }
            .into()),
        }
    }

    /// Whether reads are timed (for slow-replica detection); when not, no clock is read.
    #[inline]
    pub(crate) fn times_reads(&self) -> bool {
        self.max_replica_latency.is_some() || self.slow_replica_factor.is_some()
    }

    /// A read on `node` succeeded in `took`: for a replica, its smoothed latency is updated,
    /// and a replica that is slow (see `max_replica_latency`, `slow_replica_factor`) is taken
    /// out of rotation for the cooldown.
    pub(crate) fn read_took(&self, node: Node, took: Duration) {
        let Node::Replica(i) = node else {
            return;
        };
        if !self.times_reads() {
            return;
        }
        let latency = self.health.record_latency(i, took);
        let over_limit = self.max_replica_latency.is_some_and(|max| latency > max);
        let over_peers = self.slow_replica_factor.is_some_and(|factor| {
            let fastest_peer = (0..self.replica_count())
                .filter(|&j| j != i && !self.health.is_ejected(j))
                .filter_map(|j| self.health.latency(j))
                .min();
            fastest_peer
                .is_some_and(|peer| latency > Duration::from_millis(50) && latency > peer * factor)
        });
        if over_limit || over_peers {
            self.health.reset_latency(i);
            if self.health.eject(i) {
                self.counters.ejection();
                self.metrics.ejection();
                tracing::warn!(
                    target: "diesel_rw",
                    replica = %self.replica_names[i],
                    latency = ?latency,
                    "replica slow; out of rotation for its cooldown"
                );
            }
        }
    }

    /// Every connection of replica `i`'s pool stayed in use: it is busy, not down, so it is not
    /// ejected (the read goes to another replica, or per the fallback).
    pub(crate) fn replica_busy(&self, i: usize) {
        tracing::debug!(target: "diesel_rw", replica = %self.replica_names[i], "replica pool exhausted; trying another node");
    }

    /// A replica could not be reached: eject it and count it.
    pub(crate) fn replica_failed(&self, i: usize, error: &Error) {
        self.counters.failure(Node::Replica(i));
        if self.health.eject(i) {
            self.counters.ejection();
            self.metrics.ejection();
            tracing::warn!(
                target: "diesel_rw",
                replica = %self.replica_names[i],
                error = %error,
                "replica ejected"
            );
        }
    }

    /// A statement on `node` failed with `error`. If its connection failed (the server went
    /// away, the socket broke): the node's connections made so far are retired (they likely
    /// broke the same way), a replica is ejected, and on the primary outside a transaction the
    /// error becomes [`Error::PrimaryUnavailable`] (`maybe_applied` for a write). A read outside
    /// a transaction whose replica connection failed may run again elsewhere.
    pub(crate) fn statement_failed(
        &self,
        node: Node,
        kind: StatementKind,
        in_transaction: bool,
        error: diesel::result::Error,
    ) -> Failure {
        let timed_out = is_timeout(&error);
        if !timed_out && !crate::error::is_connection_error(&error) {
            return Failure {
                error,
                broken: false,
                retry: false,
            };
        }
        self.health.retire(node);
        let error = match node {
            Node::Replica(i) => {
                let copy = diesel::result::Error::QueryBuilderError(error.to_string().into());
                self.replica_failed(i, &Error::Database(copy));
                error
            }
            Node::Primary => {
                self.counters.failure(Node::Primary);
                if in_transaction || timed_out {
                    error
                } else {
                    Error::PrimaryUnavailable {
                        timeout: None,
                        maybe_applied: kind.is_write(),
                        source: Box::new(error),
                    }
                    .into()
                }
            }
        };
        Failure {
            error,
            broken: true,
            retry: matches!(node, Node::Replica(_)) && kind.is_read() && !in_transaction,
        }
    }

    /// A read runs again on another node after its replica's connection failed: count it.
    pub(crate) fn read_retried(&self) {
        self.counters.read_retry();
        self.metrics.read_retry();
    }

    /// A replica was reached: it is up.
    pub(crate) fn replica_ok(&self, i: usize) {
        self.health.mark_up(i);
    }

    /// Step 5 with no replica available: the primary, or an error, per [`Fallback`].
    pub(crate) fn fallback(&self) -> Result<(), Error> {
        match self.fallback {
            Fallback::Primary => {
                self.counters.fallback();
                self.metrics.fallback();
                Ok(())
            }
            Fallback::Error => Err(Error::NoReplicaAvailable {
                replicas: self.replica_count(),
            }),
        }
    }

    /// Counts and traces a decision.
    #[inline]
    pub(crate) fn record(&self, route: Route) {
        self.counters.query(route.node);
        self.metrics.query(route.node);
        if tracing::enabled!(target: "diesel_rw", tracing::Level::DEBUG) {
            trace_route(route, self.node_name(route.node));
        }
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> Stats {
        let replicas: Vec<&str> = self.replica_names.iter().map(NodeUrl::redacted).collect();
        self.counters
            .snapshot(self.primary_name.redacted(), &replicas, &self.health)
    }
}

/// How often a causal read polls a replica's replayed position while it waits (backends
/// without a server-side wait: PostgreSQL).
pub(crate) const CAUSAL_POLL: Duration = Duration::from_millis(1);

/// See [`RoutingCore::causal_candidates`].
pub(crate) struct CausalCandidates<'a> {
    core: &'a RoutingCore,
    target: &'a Position,
    first: Option<usize>,
    step: u8,
}

impl Iterator for CausalCandidates<'_> {
    /// A replica, and whether it must be asked if it has replayed the target.
    type Item = (usize, bool);

    fn next(&mut self) -> Option<(usize, bool)> {
        loop {
            self.step += 1;
            let next = match self.step {
                1 => self
                    .first
                    .take()
                    .or_else(|| self.core.pick_caught_up(self.target))
                    .map(|i| (i, false)),
                2 if self.core.causal_asks_replicas() => {
                    self.core.pick_replica().map(|i| (i, true))
                }
                2 => None,
                _ => return None,
            };
            if next.is_some() {
                return next;
            }
        }
    }
}

/// Emits the tracing event of one routing decision.
#[inline]
pub(crate) fn trace_route(route: Route, node_name: &str) {
    tracing::debug!(
        target: "diesel_rw",
        role = %route.role(),
        node = %node_name,
        reason = %route.reason,
        "route"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn read() -> StatementKind {
        StatementKind::Read
    }
    fn write() -> StatementKind {
        StatementKind::Write
    }
    fn never() -> String {
        unreachable!("sql rendered only for a rejected write")
    }

    #[test]
    fn plain_read_goes_to_the_policy() {
        let s = RouteState::default();
        assert_eq!(
            s.decide(read(), Consistency::UnitOfWork, never).unwrap(),
            Decision::AnyReplica(Reason::Policy)
        );
    }

    #[test]
    fn write_goes_to_primary() {
        let s = RouteState::default();
        assert_eq!(
            s.decide(write(), Consistency::UnitOfWork, never).unwrap(),
            Decision::Node(Node::Primary, Reason::Write)
        );
    }

    #[test]
    fn transaction_wins_over_kind() {
        let s = RouteState {
            transaction: Some(Node::Replica(1)),
            ..Default::default()
        };
        assert_eq!(
            s.decide(read(), Consistency::Off, never).unwrap(),
            Decision::Node(Node::Replica(1), Reason::Transaction)
        );
    }

    #[test]
    fn read_only_rejects_write_even_in_transaction() {
        let s = RouteState {
            read_only: true,
            transaction: Some(Node::Primary),
            ..Default::default()
        };
        let err = s
            .decide(write(), Consistency::Off, || "DELETE FROM t".into())
            .unwrap_err();
        assert!(err.is_write_on_read_route());
    }

    #[test]
    fn sticky_after_write_then_off_does_not_stick() {
        let mut s = RouteState::default();
        // A pool has one consistency; a write recorded under `Window` (with its time) serves
        // all three here.
        s.sticky
            .record_write(Consistency::Window(Duration::from_secs(60)));
        assert_eq!(
            s.decide(read(), Consistency::UnitOfWork, never).unwrap(),
            Decision::Node(Node::Primary, Reason::Sticky)
        );
        assert_eq!(
            s.decide(read(), Consistency::Off, never).unwrap(),
            Decision::AnyReplica(Reason::Policy)
        );
        assert_eq!(
            s.decide(read(), Consistency::Window(Duration::from_secs(60)), never)
                .unwrap(),
            Decision::Node(Node::Primary, Reason::Sticky)
        );
    }

    #[test]
    fn causal_capture_then_candidates() {
        let queries = PositionQueries {
            after_write: "",
            primary: "",
            replayed: "",
            parse: Position::parse_lsn,
            wait: None,
        };
        let mut s = RouteState::default();
        assert!(
            s.capture_due(Consistency::Causal, Some(queries)).is_none(),
            "no write"
        );
        s.sticky.record_write(Consistency::UnitOfWork);
        assert!(s.capture_due(Consistency::Causal, Some(queries)).is_some());
        s.position_captured(&queries, Some("0/10".into()));
        assert!(
            s.capture_due(Consistency::Causal, Some(queries)).is_none(),
            "captured"
        );
        assert_eq!(
            s.causal_target(Consistency::Causal),
            Some(Position::Lsn(16))
        );
        assert_eq!(s.causal_target(Consistency::UnitOfWork), None);

        let mut config = Config {
            replicas: vec![(NodeUrl::new("r"), 1)],
            consistency: Consistency::Causal,
            ..Default::default()
        };
        let core = RoutingCore::new(&config, &NodeUrl::new("p"));
        let target = Position::Lsn(16);
        assert!(core.monitored);
        assert_eq!(
            core.causal_candidates(&target, None).count(),
            0,
            "not seen there yet"
        );
        assert!(!core.replica_replayed(0, &queries, Some("0/8".into()), &target));
        assert!(core.replica_replayed(0, &queries, Some("0/10".into()), &target));
        assert_eq!(
            core.causal_candidates(&target, None).collect::<Vec<_>>(),
            [(0, false)]
        );
        config.causal_wait = Some(Duration::from_millis(5));
        let core = RoutingCore::new(&config, &NodeUrl::new("p"));
        assert_eq!(
            core.causal_candidates(&target, None).collect::<Vec<_>>(),
            [(0, true)]
        );
        assert!(RoutingCore::wait_succeeded(Some(" 0".into())));
        assert!(!RoutingCore::wait_succeeded(Some("-1".into())));
    }

    #[test]
    fn read_only_transaction_goes_to_a_replica_unless_sticky() {
        let mut s = RouteState {
            read_only: true,
            ..Default::default()
        };
        assert_eq!(
            s.transaction_decision(Consistency::UnitOfWork),
            Decision::AnyReplica(Reason::Explicit)
        );
        s.sticky.record_write(Consistency::UnitOfWork);
        assert_eq!(
            s.transaction_decision(Consistency::UnitOfWork),
            Decision::Node(Node::Primary, Reason::Sticky)
        );
    }
}
