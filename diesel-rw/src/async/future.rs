//! [`Routed`]: the future of a statement on an [`AsyncRwConnection`](crate::AsyncRwConnection).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use diesel::result::QueryResult;

use super::connection::AsyncRwConnection;
use super::node::AsyncPoolable;
use super::pool::Cluster;
use crate::classify::StatementKind;
use crate::replay::Parked;
use crate::route::Node;

/// A boxed, `Send` future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts a statement on the connection routing gave (the statement is collected already), on
/// the node given, for a statement from the origin given.
type Start<'conn, C, F> = Box<dyn FnOnce(&Origin<C>, Node, &'conn mut C) -> F + Send>;

/// The future of one statement: running on the node's connection, or first waiting for that
/// connection to be checked out.
///
/// `F` is the node connection's own future. Its type names both the connection's and the
/// statement's lifetimes, so it cannot be boxed behind one; this type carries both.
///
/// A statement that fails because its connection failed retires the node's connections and
/// ejects a replica, as on the sync connection; on the primary outside a transaction, the error
/// becomes `Error::PrimaryUnavailable`. A read outside a transaction holds its statement
/// collected, to run it once more on another node if its replica's connection fails under it.
#[must_use = "futures do nothing unless polled"]
pub struct Routed<'conn, C: AsyncPoolable, F: Future> {
    state: State<'conn, C, F>,
}

enum State<'conn, C: AsyncPoolable, F: Future> {
    /// Waiting for the routed node's connection, then starting the statement on it.
    Routing {
        origin: Origin<C>,
        route: BoxFuture<'conn, QueryResult<(Node, &'conn mut C)>>,
        start: Option<Start<'conn, C, F>>,
        again: Option<Again<'conn, C, F>>,
    },
    /// Running on the node's connection, until its deadline.
    Running {
        origin: Origin<C>,
        node: Node,
        future: Pin<Box<F>>,
        again: Option<Again<'conn, C, F>>,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        started: std::time::Instant,
    },
    /// Routing failed before anything was sent.
    Failed(Option<diesel::result::Error>),
    /// Routing and running, with a retry, in one future.
    Boxed(BoxFuture<'conn, F::Output>),
}

/// A read's second attempt, on another node, if its replica's connection fails under the
/// first.
struct Again<'conn, C: AsyncPoolable, F> {
    /// The routing connection, parked while its node connection is borrowed by the first
    /// attempt.
    conn: Parked<'conn, AsyncRwConnection<C>>,
    /// Starts the read again on the node the retry is routed to.
    start: Start<'conn, C, F>,
}

/// Where a statement comes from, for what its failure means.
pub(crate) struct Origin<C: AsyncPoolable> {
    /// The pool's shared state.
    pub(crate) cluster: Arc<Cluster<C>>,
    /// The statement's kind.
    pub(crate) kind: StatementKind,
    /// Whether it runs inside a transaction.
    pub(crate) in_transaction: bool,
}

impl<C: AsyncPoolable> Clone for Origin<C> {
    fn clone(&self) -> Self {
        Origin {
            cluster: self.cluster.clone(),
            ..*self
        }
    }
}

impl<C: AsyncPoolable> Origin<C> {
    /// The deadline of the statement, from now.
    pub(crate) fn deadline(&self) -> Option<Pin<Box<tokio::time::Sleep>>> {
        self.cluster
            .core
            .deadline(self.kind)
            .map(|d| Box::pin(tokio::time::sleep(d)))
    }

    /// What `error` on `node` means (see [`RoutingCore::statement_failed`](crate::route::RoutingCore::statement_failed)).
    pub(crate) fn failed(&self, node: Node, error: diesel::result::Error) -> diesel::result::Error {
        let core = &self.cluster.core;
        core.statement_failed(node, self.kind, self.in_transaction, error)
            .error
    }
}

impl<C: AsyncPoolable, F: Future> fmt::Debug for Routed<'_, C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Routing { .. } => f.write_str("Routed(routing)"),
            State::Running { node, .. } => write!(f, "Routed(running on {node})"),
            State::Failed(_) => f.write_str("Routed(failed)"),
            State::Boxed(_) => f.write_str("Routed(retryable read)"),
        }
    }
}

impl<'conn, C: AsyncPoolable, F: Future> Routed<'conn, C, F> {
    /// The statement runs on `node`'s held connection already.
    pub(crate) fn running(origin: Origin<C>, node: Node, future: F) -> Self {
        let deadline = origin.deadline();
        Routed {
            state: State::Running {
                origin,
                node,
                future: Box::pin(future),
                again: None,
                deadline,
                started: std::time::Instant::now(),
            },
        }
    }

    /// The statement waits for `route` to give its node and connection, then `start`s on it.
    pub(crate) fn routing(
        origin: Origin<C>,
        route: BoxFuture<'conn, QueryResult<(Node, &'conn mut C)>>,
        start: Start<'conn, C, F>,
    ) -> Self {
        Routed {
            state: State::Routing {
                origin,
                route,
                start: Some(start),
                again: None,
            },
        }
    }

    /// If the statement (a read outside a transaction) fails on a replica because the
    /// replica's connection failed, it is routed again on `conn` (whose borrow the routing
    /// future holds) and `start`ed on the node chosen.
    pub(crate) fn again(
        mut self,
        conn: Parked<'conn, AsyncRwConnection<C>>,
        start: Start<'conn, C, F>,
    ) -> Self {
        if let State::Routing { again, .. } = &mut self.state {
            *again = Some(Again { conn, start });
        }
        self
    }

    /// Routes and runs in `future`, which handles its errors itself.
    pub(crate) fn boxed(future: BoxFuture<'conn, F::Output>) -> Self {
        Routed {
            state: State::Boxed(future),
        }
    }

    /// Routing failed: the future gives `error`.
    pub(crate) fn failed(error: impl Into<diesel::result::Error>) -> Self {
        Routed {
            state: State::Failed(Some(error.into())),
        }
    }
}

impl<C: AsyncPoolable, F, T> Future for Routed<'_, C, F>
where
    F: Future<Output = QueryResult<T>>,
{
    type Output = QueryResult<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is boxed or owned: `Routed` is `Unpin`.
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Routing {
                    origin,
                    route,
                    start,
                    again,
                } => {
                    let (node, conn) = match route.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => {
                            this.state = State::Failed(None);
                            return Poll::Ready(Err(e));
                        }
                        Poll::Ready(Ok(routed)) => routed,
                    };
                    let start = start.take().expect("started once");
                    let again = again.take();
                    let origin = origin.clone();
                    let deadline = origin.deadline();
                    let future = Box::pin(start(&origin, node, conn));
                    this.state = State::Running {
                        origin,
                        node,
                        future,
                        again,
                        deadline,
                        started: std::time::Instant::now(),
                    };
                }
                State::Running {
                    future,
                    deadline,
                    origin,
                    node,
                    started,
                    ..
                } => {
                    let error = match future.as_mut().poll(cx) {
                        Poll::Ready(Ok(output)) => {
                            if origin.kind.is_read() {
                                origin.cluster.core.read_took(*node, started.elapsed());
                            }
                            return Poll::Ready(Ok(output));
                        }
                        Poll::Ready(Err(error)) => error,
                        Poll::Pending => {
                            let expired = deadline
                                .as_mut()
                                .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                            if !expired {
                                return Poll::Pending;
                            }
                            // No answer in time: the node may be hung.
                            let core = &origin.cluster.core;
                            let after = core.deadline(origin.kind).unwrap_or_default();
                            core.timed_out(*node, origin.kind, after)
                        }
                    };
                    let State::Running {
                        origin,
                        node,
                        future,
                        again,
                        ..
                    } = std::mem::replace(&mut this.state, State::Failed(None))
                    else {
                        unreachable!("in the Running state")
                    };
                    // The failed attempt's future borrowed the connection: dropped before the
                    // connection is taken back.
                    drop(future);
                    let Some(again) = again else {
                        return Poll::Ready(Err(origin.failed(node, error)));
                    };
                    // SAFETY: the reborrow `Parked::new` gave went into the routing future of
                    // the first attempt (dropped when this state began) and from it the node
                    // connection into the attempt's future (dropped above); `origin` and the
                    // error hold none.
                    #[allow(unsafe_code)]
                    let conn = unsafe { again.conn.take_back() };
                    let failure = conn.statement_failed(node, origin.kind, error);
                    if !failure.retry {
                        return Poll::Ready(Err(failure.error));
                    }
                    origin.cluster.core.read_retried();
                    let kind = origin.kind;
                    this.state = State::Routing {
                        origin,
                        route: Box::pin(async move {
                            let node = conn.route(kind, String::new).await?;
                            Ok((node, conn.node_conn(node)))
                        }),
                        start: Some(again.start),
                        again: None,
                    };
                }
                State::Failed(error) => {
                    return Poll::Ready(Err(error.take().expect("Routed polled after completion")))
                }
                State::Boxed(future) => return future.as_mut().poll(cx),
            }
        }
    }
}
