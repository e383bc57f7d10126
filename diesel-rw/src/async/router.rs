//! [`AsyncRouter`]: the async twin of [`Router`](crate::Router), what async functions annotated
//! `#[read_only]` and `#[master]` take a connection from.
//!
//! It is implemented by `&AsyncRwPool<C>` (a fresh connection from the pool) and by
//! `&mut AsyncRwConnection<C>` (the same connection, with the route applied until the returned
//! guard is dropped), so a connection can be passed on and keeps its route: inside a transaction
//! on the primary, a read-only call made with that connection reads in the same transaction.

use std::borrow::{Borrow, BorrowMut};
use std::future::Future;
use std::ops::{Deref, DerefMut};

use super::connection::AsyncRwConnection;
use super::node::AsyncPoolable;
use super::pool::AsyncRwPool;
use crate::error::Error;
use crate::route::Role;

/// A source of async connections on a chosen route.
///
/// Routing a [`Role::Replica`] gives a read-only connection (writes are rejected before they are
/// sent; reads go to a replica unless the connection is pinned to the primary by an open
/// transaction, an explicit choice or a recent write). Routing a [`Role::Primary`] gives a
/// connection pinned to the primary, or [`Error::WriteOnReadRoute`] if the source is read-only:
/// a read-only route is never silently escalated.
pub trait AsyncRouter: Send {
    /// The underlying diesel-async connection type.
    type Connection: AsyncPoolable;
    /// What routing gives: an owned [`AsyncRwConnection`], or a guard that borrows one.
    type Routed: BorrowMut<AsyncRwConnection<Self::Connection>> + Send;

    /// Gives a connection on `role`'s route.
    fn route(self, role: Role) -> impl Future<Output = Result<Self::Routed, Error>> + Send;
}

impl<C: AsyncPoolable> AsyncRouter for &AsyncRwPool<C> {
    type Connection = C;
    type Routed = AsyncRwConnection<C>;

    async fn route(self, role: Role) -> Result<AsyncRwConnection<C>, Error> {
        match role {
            Role::Primary => self.primary().await,
            Role::Replica => self.replica().await,
        }
    }
}

impl<'a, C: AsyncPoolable> AsyncRouter for &'a mut AsyncRwConnection<C> {
    type Connection = C;
    type Routed = AsyncRerouted<'a, C>;

    async fn route(self, role: Role) -> Result<AsyncRerouted<'a, C>, Error> {
        AsyncRerouted::new(self, role)
    }
}

/// A borrowed [`AsyncRwConnection`] with a route applied until this guard is dropped, which
/// restores the connection's previous route.
pub struct AsyncRerouted<'a, C: AsyncPoolable> {
    conn: &'a mut AsyncRwConnection<C>,
    saved_read_only: bool,
    saved_force_primary: bool,
}

impl<C: AsyncPoolable> std::fmt::Debug for AsyncRerouted<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRerouted")
            .field("read_only", &self.conn.state.read_only)
            .field("force_primary", &self.conn.state.force_primary)
            .finish()
    }
}

impl<'a, C: AsyncPoolable> AsyncRerouted<'a, C> {
    fn new(conn: &'a mut AsyncRwConnection<C>, role: Role) -> Result<Self, Error> {
        let saved_read_only = conn.state.read_only;
        let saved_force_primary = conn.state.force_primary;
        match role {
            Role::Replica => conn.state.read_only = true,
            Role::Primary => conn.pin_primary()?,
        }
        Ok(AsyncRerouted {
            conn,
            saved_read_only,
            saved_force_primary,
        })
    }
}

impl<C: AsyncPoolable> Deref for AsyncRerouted<'_, C> {
    type Target = AsyncRwConnection<C>;
    fn deref(&self) -> &AsyncRwConnection<C> {
        self.conn
    }
}

impl<C: AsyncPoolable> DerefMut for AsyncRerouted<'_, C> {
    fn deref_mut(&mut self) -> &mut AsyncRwConnection<C> {
        self.conn
    }
}

impl<C: AsyncPoolable> Borrow<AsyncRwConnection<C>> for AsyncRerouted<'_, C> {
    fn borrow(&self) -> &AsyncRwConnection<C> {
        self.conn
    }
}

impl<C: AsyncPoolable> BorrowMut<AsyncRwConnection<C>> for AsyncRerouted<'_, C> {
    fn borrow_mut(&mut self) -> &mut AsyncRwConnection<C> {
        self.conn
    }
}

impl<C: AsyncPoolable> Drop for AsyncRerouted<'_, C> {
    fn drop(&mut self) {
        self.conn.state.read_only = self.saved_read_only;
        self.conn.state.force_primary = self.saved_force_primary;
    }
}
