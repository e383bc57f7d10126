//! The rows of a load on an [`AsyncRwConnection`](crate::AsyncRwConnection): [`FirstRow`], the
//! load up to its first row, and [`RoutedStream`], the rows it gives.
//!
//! A diesel-async load resolves as soon as the server has accepted the statement (PostgreSQL:
//! its `BindComplete`); the rows come later, through the stream. A replica that dies or hangs
//! between the two would fail or stall the stream after the load returned, past the point where a
//! read is run again on another node, and past its deadline. So the load is not done until its
//! first row (or its end) has arrived: a read whose replica fails before it is run again like
//! any other, and a node that hangs before it times out like any other statement. The rows after
//! the first each have the read deadline again: a stream whose next row does not arrive within
//! it ends with [`Error::Timeout`](crate::Error::Timeout), and a failure in it counts against its
//! node like a failed statement. Rows already handed out cannot be taken back: a read that fails
//! after its first row is not run again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use diesel::result::QueryResult;
use futures_util::Stream;

use super::future::Origin;
use super::node::AsyncPoolable;
use crate::route::Node;

/// The future of a load on a node: the node connection's load and then its first row, so that
/// the statement's deadline and retry cover both (see [`RoutedStream`]).
#[must_use = "futures do nothing unless polled"]
pub struct FirstRow<'conn, 'query, C: AsyncPoolable> {
    state: Peek<'conn, 'query, C>,
    /// Where the rows come from, for the rows after the first.
    watch: Option<Watch<C>>,
}

enum Peek<'conn, 'query, C: AsyncPoolable> {
    /// The node connection's load.
    Loading(Pin<Box<C::LoadFuture<'conn, 'query>>>),
    /// Its stream, until the first row (or the end) arrives.
    Peeking(Pin<Box<C::Stream<'conn, 'query>>>),
    /// Resolved.
    Done,
}

impl<'conn, 'query, C: AsyncPoolable> FirstRow<'conn, 'query, C> {
    /// `load` (the node connection's future) runs on `node` for a statement from `origin`.
    pub(crate) fn new(origin: &Origin<C>, node: Node, load: C::LoadFuture<'conn, 'query>) -> Self {
        FirstRow {
            state: Peek::Loading(Box::pin(load)),
            watch: Some(Watch {
                origin: origin.clone(),
                node,
                deadline: None,
            }),
        }
    }
}

impl<C: AsyncPoolable> fmt::Debug for FirstRow<'_, '_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            Peek::Loading(_) => "FirstRow(loading)",
            Peek::Peeking(_) => "FirstRow(waiting for the first row)",
            Peek::Done => "FirstRow(done)",
        })
    }
}

impl<'conn, 'query, C: AsyncPoolable> Future for FirstRow<'conn, 'query, C> {
    type Output = QueryResult<RoutedStream<'conn, 'query, C>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is boxed or owned: `FirstRow` is `Unpin`.
        let this = self.get_mut();
        loop {
            match &mut this.state {
                Peek::Loading(load) => match load.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => {
                        this.state = Peek::Done;
                        return Poll::Ready(Err(e));
                    }
                    Poll::Ready(Ok(stream)) => this.state = Peek::Peeking(Box::pin(stream)),
                },
                Peek::Peeking(stream) => {
                    let first = match stream.as_mut().poll_next(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(first) => first,
                    };
                    let Peek::Peeking(stream) = std::mem::replace(&mut this.state, Peek::Done)
                    else {
                        unreachable!("in the Peeking state")
                    };
                    return Poll::Ready(match first {
                        // The statement failed: the caller's retry or failure accounting sees
                        // it as the load's error.
                        Some(Err(e)) => Err(e),
                        Some(Ok(row)) => Ok(RoutedStream {
                            first: Some(row),
                            rest: Some(stream),
                            watch: this.watch.take(),
                        }),
                        // No rows: nothing more to wait for.
                        None => Ok(RoutedStream {
                            first: None,
                            rest: None,
                            watch: None,
                        }),
                    });
                }
                Peek::Done => panic!("diesel-rw: FirstRow polled after completion"),
            }
        }
    }
}

/// The rows of a load on an [`AsyncRwConnection`](crate::AsyncRwConnection) (its
/// `AsyncConnectionCore::Stream`): the node connection's stream, its first row already read.
///
/// A diesel-async load resolves as soon as the server has accepted the statement (PostgreSQL:
/// its `BindComplete`); the rows come later. So that a replica that dies or hangs in between is
/// handled like one that fails before, the load ([`FirstRow`]) resolves only when the first row
/// (or the end) has arrived: until then the statement's deadline holds, and a read outside a
/// transaction whose replica fails runs once more on another node. Each row after the first has
/// the read deadline again: past it the stream gives [`Error::Timeout`](crate::Error::Timeout)
/// and ends; an error ends it too, and counts against its node like a failed statement. Rows
/// handed out cannot be taken back, so a read that fails after its first row is not run again.
pub struct RoutedStream<'conn, 'query, C: AsyncPoolable> {
    first: Option<C::Row<'conn, 'query>>,
    rest: Option<Pin<Box<C::Stream<'conn, 'query>>>>,
    watch: Option<Watch<C>>,
}

/// The node the rows come from, and the deadline of the next one.
struct Watch<C: AsyncPoolable> {
    origin: Origin<C>,
    node: Node,
    /// Armed while the next row is awaited.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<C: AsyncPoolable> fmt::Debug for RoutedStream<'_, '_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("RoutedStream");
        if let Some(watch) = &self.watch {
            s.field("node", &watch.node);
        }
        s.field("ended", &(self.first.is_none() && self.rest.is_none()))
            .finish_non_exhaustive()
    }
}

impl<'conn, 'query, C: AsyncPoolable> Stream for RoutedStream<'conn, 'query, C> {
    type Item = QueryResult<C::Row<'conn, 'query>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is boxed or owned: `RoutedStream` is `Unpin`.
        let this = self.get_mut();
        if let Some(row) = this.first.take() {
            return Poll::Ready(Some(Ok(row)));
        }
        let Some(rest) = &mut this.rest else {
            return Poll::Ready(None);
        };
        let error = match rest.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(row))) => {
                if let Some(watch) = &mut this.watch {
                    watch.deadline = None;
                }
                return Poll::Ready(Some(Ok(row)));
            }
            Poll::Ready(None) => {
                this.rest = None;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(error))) => error,
            Poll::Pending => {
                let Some(watch) = &mut this.watch else {
                    return Poll::Pending;
                };
                if watch.deadline.is_none() {
                    watch.deadline = watch.origin.deadline();
                }
                let expired = watch
                    .deadline
                    .as_mut()
                    .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                return Poll::Ready(this.timed_out());
            }
        };
        // The stream broke: its node is told, as for a failed statement; it ends here.
        this.rest = None;
        Poll::Ready(Some(Err(match this.watch.take() {
            Some(watch) => watch.origin.failed(watch.node, error),
            None => error,
        })))
    }
}

impl<'conn, 'query, C: AsyncPoolable> RoutedStream<'conn, 'query, C> {
    /// The next row did not come within the read deadline: the node may be hung. The stream
    /// (and with it the statement) is dropped and ends with
    /// [`Error::Timeout`](crate::Error::Timeout).
    fn timed_out(&mut self) -> Option<QueryResult<C::Row<'conn, 'query>>> {
        self.rest = None;
        let watch = self.watch.take()?;
        let core = &watch.origin.cluster.core;
        let kind = watch.origin.kind;
        let after = core.deadline(kind).unwrap_or_default();
        let error = core.timed_out(watch.node, kind, after);
        Some(Err(watch.origin.failed(watch.node, error)))
    }
}
