//! [`Router`]: what `#[read_only]` and `#[master]` take a connection from.
//!
//! An annotated function gets its connection from its route source (`pool = expr`, else `self`,
//! else the first argument), which must implement [`Router`]. It is implemented by
//! `&RwPool<C>` (a fresh connection from the pool) and by `&mut RwConnection<C>` (the same
//! connection, with the route applied for the duration of the call). The macros bind `conn` to a
//! `&mut RwConnection<C>`, so `conn` can be passed to another annotated function and keeps its
//! route: inside a `#[master(transaction)]`, a `#[read_only]` function called with `conn` reads in
//! the same transaction on the primary and sees its uncommitted writes.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use diesel::prelude::*;
//! use diesel::connection::SimpleConnection;
//! use diesel_rw::{Role, Router, RwConnection, RwPool};
//! use std::borrow::BorrowMut;
//!
//! fn count_on<R: Router<Connection = SqliteConnection>>(db: R) -> QueryResult<i64> {
//!     let mut routed = db.route(Role::Replica)?;
//!     let conn: &mut RwConnection<SqliteConnection> = routed.borrow_mut();
//!     diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("1")).get_result(conn)
//! }
//! # let dir = std::env::temp_dir().join(format!("diesel-rw-router-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let p = dir.join("p.db");
//! let pool = RwPool::<SqliteConnection>::builder().primary(p.to_str().unwrap()).build().unwrap();
//! assert_eq!(count_on(&pool).unwrap(), 1);          // a fresh read-only connection
//! let mut conn = pool.get().unwrap();
//! assert_eq!(count_on(&mut conn).unwrap(), 1);      // the same connection, read-only for the call
//! assert!(!conn.is_read_only());                    // and back as it was afterwards
//! # }
//! ```

use std::borrow::{Borrow, BorrowMut};
use std::ops::{Deref, DerefMut};

use diesel::r2d2::R2D2Connection;

use crate::backend::RwBackend;
use crate::error::Error;
use crate::route::Role;
use crate::sync::{RwConnection, RwPool};

/// A source of connections on a chosen route: the trait behind `#[read_only]` and `#[master]`.
///
/// Routing a [`Role::Replica`] gives a read-only connection (writes are rejected before they are
/// sent; reads go to a replica unless the connection is pinned to the primary by an open
/// transaction, an explicit choice or a recent write). Routing a [`Role::Primary`] gives a
/// connection pinned to the primary, or [`Error::WriteOnReadRoute`] if the source is read-only:
/// a read-only route is never silently escalated.
pub trait Router {
    /// The underlying diesel connection type.
    type Connection: R2D2Connection + 'static;
    /// What routing gives: an owned [`RwConnection`], or a guard that borrows one.
    type Routed: BorrowMut<RwConnection<Self::Connection>>;

    /// Gives a connection on `role`'s route.
    fn route(self, role: Role) -> Result<Self::Routed, Error>;
}

impl<C> Router for &RwPool<C>
where
    C: R2D2Connection + diesel::connection::LoadConnection + 'static,
    C::Backend: RwBackend,
{
    type Connection = C;
    type Routed = RwConnection<C>;

    fn route(self, role: Role) -> Result<RwConnection<C>, Error> {
        match role {
            Role::Primary => self.primary(),
            Role::Replica => self.replica(),
        }
    }
}

impl<'a, C> Router for &'a mut RwConnection<C>
where
    C: R2D2Connection + 'static,
    C::Backend: RwBackend,
{
    type Connection = C;
    type Routed = Rerouted<'a, C>;

    fn route(self, role: Role) -> Result<Rerouted<'a, C>, Error> {
        Rerouted::new(self, role)
    }
}

/// A borrowed [`RwConnection`] with a route applied until this guard is dropped, which restores
/// the connection's previous route.
pub struct Rerouted<'a, C: R2D2Connection + 'static> {
    conn: &'a mut RwConnection<C>,
    saved_read_only: bool,
    saved_force_primary: bool,
}

impl<C: R2D2Connection + 'static> std::fmt::Debug for Rerouted<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rerouted")
            .field("read_only", &self.conn.state.read_only)
            .field("force_primary", &self.conn.state.force_primary)
            .finish()
    }
}

impl<'a, C> Rerouted<'a, C>
where
    C: R2D2Connection + 'static,
    C::Backend: RwBackend,
{
    fn new(conn: &'a mut RwConnection<C>, role: Role) -> Result<Self, Error> {
        let saved_read_only = conn.state.read_only;
        let saved_force_primary = conn.state.force_primary;
        match role {
            Role::Replica => conn.state.read_only = true,
            Role::Primary => conn.pin_primary()?,
        }
        Ok(Rerouted {
            conn,
            saved_read_only,
            saved_force_primary,
        })
    }
}

impl<C: R2D2Connection + 'static> Deref for Rerouted<'_, C> {
    type Target = RwConnection<C>;
    fn deref(&self) -> &RwConnection<C> {
        self.conn
    }
}

impl<C: R2D2Connection + 'static> DerefMut for Rerouted<'_, C> {
    fn deref_mut(&mut self) -> &mut RwConnection<C> {
        self.conn
    }
}

impl<C: R2D2Connection + 'static> Borrow<RwConnection<C>> for Rerouted<'_, C> {
    fn borrow(&self) -> &RwConnection<C> {
        self.conn
    }
}

impl<C: R2D2Connection + 'static> BorrowMut<RwConnection<C>> for Rerouted<'_, C> {
    fn borrow_mut(&mut self) -> &mut RwConnection<C> {
        self.conn
    }
}

impl<C: R2D2Connection + 'static> Drop for Rerouted<'_, C> {
    fn drop(&mut self) {
        self.conn.state.read_only = self.saved_read_only;
        self.conn.state.force_primary = self.saved_force_primary;
    }
}
