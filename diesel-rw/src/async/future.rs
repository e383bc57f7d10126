//! [`Routed`]: the future of a statement on an [`AsyncRwConnection`](crate::AsyncRwConnection).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use diesel::result::QueryResult;

use super::connection::node_failed;
use super::node::AsyncPoolable;
use super::pool::Cluster;
use crate::route::Node;

/// A boxed, `Send` future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts a statement on the connection routing gave (the statement is collected already).
type Start<'conn, C, F> = Box<dyn FnOnce(&'conn mut C) -> F + Send>;

/// The future of one statement: running on the node's connection, or first waiting for that
/// connection to be checked out.
///
/// `F` is the node connection's own future. Its type names both the connection's and the
/// statement's lifetimes, so it cannot be boxed behind one; this type carries both.
///
/// A statement that fails because its connection failed retires the node's connections and
/// ejects a replica, as on the sync connection. A `load` is not run again (it was consumed); a
/// read through `execute` outside a transaction is, once, on another node (it runs as one boxed
/// future that holds the statement collected twice).
#[must_use = "futures do nothing unless polled"]
pub struct Routed<'conn, C: AsyncPoolable, F: Future> {
    state: State<'conn, C, F>,
}

enum State<'conn, C: AsyncPoolable, F: Future> {
    /// Waiting for the routed node's connection, then starting the statement on it.
    Routing {
        cluster: Arc<Cluster<C>>,
        route: BoxFuture<'conn, QueryResult<(Node, &'conn mut C)>>,
        start: Option<Start<'conn, C, F>>,
    },
    /// Running on the node's connection.
    Running {
        cluster: Arc<Cluster<C>>,
        node: Node,
        future: Pin<Box<F>>,
    },
    /// Routing failed before anything was sent.
    Failed(Option<diesel::result::Error>),
    /// Routing and running, with a retry, in one future.
    Boxed(BoxFuture<'conn, F::Output>),
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
    pub(crate) fn running(cluster: Arc<Cluster<C>>, node: Node, future: F) -> Self {
        Routed {
            state: State::Running {
                cluster,
                node,
                future: Box::pin(future),
            },
        }
    }

    /// The statement waits for `route` to give its node and connection, then `start`s on it.
    pub(crate) fn routing(
        cluster: Arc<Cluster<C>>,
        route: BoxFuture<'conn, QueryResult<(Node, &'conn mut C)>>,
        start: Start<'conn, C, F>,
    ) -> Self {
        Routed {
            state: State::Routing {
                cluster,
                route,
                start: Some(start),
            },
        }
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
                    cluster,
                    route,
                    start,
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
                    this.state = State::Running {
                        cluster: cluster.clone(),
                        node,
                        future: Box::pin(start(conn)),
                    };
                }
                State::Running {
                    cluster,
                    node,
                    future,
                } => {
                    let result = std::task::ready!(future.as_mut().poll(cx));
                    if let Err(e) = &result {
                        node_failed(cluster, *node, e);
                    }
                    return Poll::Ready(result);
                }
                State::Failed(error) => {
                    return Poll::Ready(Err(error.take().expect("Routed polled after completion")))
                }
                State::Boxed(future) => return future.as_mut().poll(cx),
            }
        }
    }
}
