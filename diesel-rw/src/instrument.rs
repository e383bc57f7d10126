//! An instrumentation set on a routing connection, seeing the events of its node connections.
//!
//! Statements run on the node connections, each with its own diesel instrumentation. When an
//! instrumentation is set on an [`RwConnection`](crate::RwConnection) or
//! [`AsyncRwConnection`](crate::AsyncRwConnection), it is [`Shared`], and every node connection
//! the routing connection holds gets a [`Forward`]er to it, with a [`Lease`] kept beside the
//! node connection. When the routing connection lets a node connection go (back to its pool),
//! the lease is dropped and the forwarder falls back to diesel's default instrumentation: the
//! next holder of a pooled connection sees nothing of the previous holder's instrumentation.

use std::sync::{Arc, Mutex, Weak};

use diesel::connection::{Instrumentation, InstrumentationEvent};

/// The instrumentation set on a routing connection.
#[derive(Clone)]
pub(crate) struct Shared(Arc<Mutex<Box<dyn Instrumentation>>>);

impl Shared {
    pub(crate) fn new(instrumentation: impl Instrumentation) -> Self {
        Shared(Arc::new(Mutex::new(Box::new(instrumentation))))
    }

    /// A forwarder to install on a node connection, and the lease that keeps it forwarding.
    pub(crate) fn lease(&self) -> (Forward, Lease) {
        let lease = Arc::new(self.clone());
        let forward = Forward {
            lease: Arc::downgrade(&lease),
            otherwise: diesel::connection::get_default_instrumentation(),
        };
        (forward, Lease { _shared: lease })
    }
}

impl Instrumentation for Shared {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .on_connection_event(event);
    }
}

/// A routing connection's own instrumentation: diesel's default, looked up when first asked
/// for (not at every checkout), or the one set on it, shared with its node connections.
#[derive(Default)]
pub(crate) enum Own {
    /// Not asked for yet.
    #[default]
    Unasked,
    /// diesel's default instrumentation, as it was when first asked for.
    Default(Option<Box<dyn Instrumentation>>),
    /// Set on the routing connection.
    Set(Shared),
}

impl Own {
    /// The instrumentation, for diesel's `instrumentation()`.
    pub(crate) fn get(&mut self) -> &mut dyn Instrumentation {
        if let Own::Unasked = self {
            *self = Own::Default(diesel::connection::get_default_instrumentation());
        }
        match self {
            Own::Set(shared) => shared,
            Own::Default(default) => default,
            Own::Unasked => unreachable!("set above"),
        }
    }

    /// Sets it; returns what the node connections are to forward to.
    pub(crate) fn set(&mut self, instrumentation: impl Instrumentation) -> Shared {
        let shared = Shared::new(instrumentation);
        *self = Own::Set(shared.clone());
        shared
    }

    /// What the node connections forward to, if an instrumentation was set.
    pub(crate) fn shared(&self) -> Option<&Shared> {
        match self {
            Own::Set(shared) => Some(shared),
            _ => None,
        }
    }
}

/// Kept beside a node connection while a routing connection with an instrumentation holds it.
pub(crate) struct Lease {
    _shared: Arc<Shared>,
}

/// A node connection held by a routing connection, with its [`Lease`] if the routing
/// connection has an instrumentation. The lease is dropped before the connection is given
/// back.
pub(crate) struct Leased<T> {
    pub(crate) lease: Option<Lease>,
    pub(crate) conn: T,
}

impl<T> Leased<T> {
    /// `conn`, forwarding its events to `shared` if set (`install` sets a node connection's
    /// instrumentation: the sync and async connection traits each have their own method).
    pub(crate) fn new(
        mut conn: T,
        shared: Option<&Shared>,
        install: impl FnOnce(&mut T, Forward),
    ) -> Self {
        let lease = shared.map(|shared| {
            let (forward, lease) = shared.lease();
            install(&mut conn, forward);
            lease
        });
        Leased { lease, conn }
    }

    /// Forwards the connection's events to `shared` from now on.
    pub(crate) fn forward_to(&mut self, shared: &Shared, install: impl FnOnce(&mut T, Forward)) {
        let (forward, lease) = shared.lease();
        install(&mut self.conn, forward);
        self.lease = Some(lease);
    }
}

impl<T: std::ops::Deref> std::ops::Deref for Leased<T> {
    type Target = T::Target;
    fn deref(&self) -> &T::Target {
        &self.conn
    }
}

impl<T: std::ops::DerefMut> std::ops::DerefMut for Leased<T> {
    fn deref_mut(&mut self) -> &mut T::Target {
        &mut self.conn
    }
}

/// Installed on a node connection: forwards its events to the routing connection's
/// instrumentation while the [`Lease`] lives, else to diesel's default instrumentation.
pub(crate) struct Forward {
    lease: Weak<Shared>,
    otherwise: Option<Box<dyn Instrumentation>>,
}

impl Instrumentation for Forward {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match self.lease.upgrade() {
            Some(shared) => shared
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .on_connection_event(event),
            None => self.otherwise.on_connection_event(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_while_the_lease_lives() {
        let seen = Arc::new(Mutex::new(0));
        let count = seen.clone();
        let shared = Shared::new(move |_: InstrumentationEvent<'_>| {
            *count.lock().unwrap() += 1;
        });
        let (mut forward, lease) = shared.lease();
        forward.on_connection_event(InstrumentationEvent::start_establish_connection("url"));
        assert_eq!(*seen.lock().unwrap(), 1);
        drop(lease);
        forward.on_connection_event(InstrumentationEvent::start_establish_connection("url"));
        assert_eq!(*seen.lock().unwrap(), 1, "inert once the lease is gone");
    }
}
