//! Where a node's connections come from: an r2d2 pool, or a URL connected on demand (for
//! [`RwConnection::establish`](crate::RwConnection)).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use diesel::r2d2::{ConnectionManager, PooledConnection, R2D2Connection};
use scheduled_thread_pool::ScheduledThreadPool;

use crate::backend::RwBackend;
use crate::config::Config;
use crate::error::Error;
use crate::route::Role;
use crate::url::NodeUrl;

/// A connection held by an [`RwConnection`](crate::RwConnection).
pub(crate) enum Held<C: R2D2Connection + 'static> {
    Pooled(PooledConnection<ConnectionManager<C>>),
    Owned(C),
}

impl<C: R2D2Connection + 'static> Deref for Held<C> {
    type Target = C;
    fn deref(&self) -> &C {
        match self {
            Held::Pooled(c) => c,
            Held::Owned(c) => c,
        }
    }
}

impl<C: R2D2Connection + 'static> DerefMut for Held<C> {
    fn deref_mut(&mut self) -> &mut C {
        match self {
            Held::Pooled(c) => c,
            Held::Owned(c) => c,
        }
    }
}

/// One node's source of connections.
pub(crate) struct NodeSource<C: R2D2Connection + 'static> {
    url: NodeUrl,
    role: Role,
    timeout: Duration,
    kind: SourceKind<C>,
}

enum SourceKind<C: R2D2Connection + 'static> {
    Pool(r2d2::Pool<ConnectionManager<C>>),
    Direct,
}

impl<C: R2D2Connection + 'static> NodeSource<C> {
    /// A node backed by an r2d2 pool. The pool opens connections lazily (`build_unchecked`), so
    /// a node that is down when the pool is built does not stop the build.
    pub(crate) fn pooled(
        url: &NodeUrl,
        role: Role,
        config: &Config,
        threads: &Arc<ScheduledThreadPool>,
    ) -> Self
    where
        C::Backend: RwBackend,
    {
        let (max_size, timeout) = match role {
            Role::Primary => (config.max_size, config.connection_timeout),
            Role::Replica => (
                config.replica_max_size.unwrap_or(config.max_size),
                config.replica_timeout,
            ),
        };
        let mut builder = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(config.min_idle.map(|m| m.min(max_size)))
            // A checkout costs a pool lock, not a round trip: broken connections are found on
            // their error (r2d2 discards them when diesel reports them broken).
            .test_on_check_out(false)
            .connection_timeout(timeout)
            .idle_timeout(config.idle_timeout)
            .max_lifetime(config.max_lifetime)
            .thread_pool(threads.clone())
            .error_handler(Box::new(TracingErrors { node: url.clone() }));
        if role == Role::Replica {
            builder = builder.connection_customizer(Box::new(ReadOnlySession(
                <C::Backend as RwBackend>::READ_ONLY_SESSION,
            )));
        }
        NodeSource {
            url: url.clone(),
            role,
            timeout,
            kind: SourceKind::Pool(builder.build_unchecked(ConnectionManager::new(url.expose()))),
        }
    }

    /// A node connected on demand, one connection at a time.
    pub(crate) fn direct(url: &NodeUrl, role: Role, timeout: Duration) -> Self {
        NodeSource {
            url: url.clone(),
            role,
            timeout,
            kind: SourceKind::Direct,
        }
    }

    /// Whether connections come from a pool (and should be given back when not in use).
    pub(crate) fn is_pooled(&self) -> bool {
        matches!(self.kind, SourceKind::Pool(_))
    }

    /// The node's redacted URL.
    pub(crate) fn name(&self) -> &str {
        self.url.redacted()
    }

    /// Gets a connection: from the pool within the node's timeout, or a new one.
    pub(crate) fn checkout(&self) -> Result<Held<C>, Error>
    where
        C::Backend: RwBackend,
    {
        match &self.kind {
            SourceKind::Pool(pool) => {
                pool.get_timeout(self.timeout)
                    .map(Held::Pooled)
                    .map_err(|source| match self.role {
                        Role::Primary => Error::PrimaryUnavailable {
                            timeout: self.timeout,
                            source,
                        },
                        Role::Replica => Error::Checkout {
                            role: self.role,
                            node: self.url.redacted().to_owned(),
                            timeout: self.timeout,
                            source,
                        },
                    })
            }
            SourceKind::Direct => {
                let mut conn =
                    C::establish(self.url.expose()).map_err(|source| Error::Connect {
                        role: self.role,
                        node: self.url.redacted().to_owned(),
                        source,
                    })?;
                if self.role == Role::Replica {
                    conn.batch_execute(<C::Backend as RwBackend>::READ_ONLY_SESSION)?;
                }
                Ok(Held::Owned(conn))
            }
        }
    }
}

/// Makes every new replica connection read-only, once per physical connection.
#[derive(Debug)]
struct ReadOnlySession(&'static str);

impl<C: R2D2Connection> r2d2::CustomizeConnection<C, diesel::r2d2::Error> for ReadOnlySession {
    fn on_acquire(&self, conn: &mut C) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(self.0)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Reports r2d2's background connection errors as tracing events, naming the node by its
/// redacted URL.
#[derive(Debug)]
struct TracingErrors {
    node: NodeUrl,
}

impl r2d2::HandleError<diesel::r2d2::Error> for TracingErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(target: "diesel_rw", node = %self.node, error = %error, "connection error");
    }
}
