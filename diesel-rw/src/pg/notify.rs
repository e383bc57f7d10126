//! PostgreSQL `LISTEN`/`NOTIFY` on the routing connection.
//!
//! `LISTEN channel` (like `NOTIFY` and `UNLISTEN`) is a write to the routing order, so it runs
//! on the primary (a hot standby refuses it), on the primary connection this
//! [`RwConnection`] holds for the rest of its life; its notifications
//! arrive there, and [`RwConnection::notifications_iter`] reads them.

use diesel::pg::{PgConnection, PgNotification};
use diesel::result::QueryResult;

use crate::sync::RwConnection;

impl RwConnection<PgConnection> {
    /// The notifications received so far on the primary connection (the one `LISTEN` ran on),
    /// as `PgConnection::notifications_iter` gives them: it does not wait; it ends when none is
    /// pending. Empty if this connection holds no primary connection (no `LISTEN` ran on it).
    ///
    /// The `LISTEN` stays on the primary connection, which goes back to its pool with this
    /// `RwConnection`: run `UNLISTEN *` before dropping it when the pool is shared.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel::connection::SimpleConnection;
    /// use diesel::prelude::*;
    /// use diesel_rw::{Node, RwConnection};
    ///
    /// let mut conn = RwConnection::<PgConnection>::establish(
    ///     "primary=postgres://127.0.0.1:55432/app replica=postgres://127.0.0.1:55433/app",
    /// )?;
    /// conn.batch_execute("LISTEN jobs")?;
    /// assert_eq!(conn.last_route().unwrap().node, Node::Primary);
    /// for notification in conn.notifications_iter() {
    ///     let notification = notification?;
    ///     println!("{}: {}", notification.channel, notification.payload);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn notifications_iter(&mut self) -> impl Iterator<Item = QueryResult<PgNotification>> + '_ {
        // No primary connection held: no `LISTEN` ran on this connection, nothing to read.
        self.held_primary()
            .into_iter()
            .flat_map(PgConnection::notifications_iter)
    }
}
