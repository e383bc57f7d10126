//! [`DoubleWriteBuilder`]: builds a [`DoubleWrite`] pool (or, with the `async` feature, an
//! `AsyncDoubleWrite` pool), or a [`DoubleWriteContext`] to share.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::LoadConnection;
use diesel::r2d2::R2D2Connection;

use super::backend::DoubleWriteBackend;
use super::context::{Connector, ContextInner, DoubleWriteContext, OnConnect};
use super::journal::{Journal, MemoryJournal};
use super::metrics::Metrics;
use super::pattern::Side;
use super::pool::{DoubleWrite, DoubleWriteManager};
use super::retry::Retry;
use super::spec::same_database;
use super::switch::PatternSwitch;
use crate::backend::RwBackend;
use crate::error::Error;
use crate::functions::WritingFunctions;
use crate::url::NodeUrl;
use crate::{RwConnection, RwPool};

/// Builds a pool of type `P` ([`DoubleWrite`], or with the `async` feature `AsyncDoubleWrite`)
/// from a source URL, a destination URL and settings; `build()` validates everything and says
/// what is wrong.
///
/// Defaults: the pattern `SrcOnly` (a new switch), lenient mode, no retry, an in-memory journal
/// of 10 000 entries, 10 connections, none kept open ahead of need, a 5 s checkout timeout.
#[must_use = "a builder does nothing until .build()"]
pub struct DoubleWriteBuilder<P> {
    source: Option<NodeUrl>,
    destination: Option<NodeUrl>,
    switch: PatternSwitch,
    strict: bool,
    retry: Retry,
    journal: Option<Arc<dyn Journal>>,
    /// An `OnConnect<C>` (sync pools only).
    on_connect: Option<Arc<dyn std::any::Any + Send + Sync>>,
    /// The pools of a double write over two clusters (`RwPool<C>` or `AsyncRwPool<C>`), by side.
    clusters: [Option<Arc<dyn Any + Send + Sync>>; 2],
    /// Makes the context's connector from the two pools (set with them, typed by them).
    make_connector: Option<MakeConnector>,
    max_size: u32,
    min_idle: Option<u32>,
    connection_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    /// Functions whose call is a write (`name` or `schema.name`).
    writing_functions: Vec<String>,
    _pool: PhantomData<fn() -> P>,
}

impl<P> Default for DoubleWriteBuilder<P> {
    fn default() -> Self {
        DoubleWriteBuilder {
            source: None,
            destination: None,
            switch: PatternSwitch::default(),
            strict: false,
            retry: Retry::off(),
            journal: None,
            on_connect: None,
            clusters: [None, None],
            make_connector: None,
            max_size: 10,
            min_idle: Some(0),
            connection_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            writing_functions: Vec::new(),
            _pool: PhantomData,
        }
    }
}

impl<P> std::fmt::Debug for DoubleWriteBuilder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoubleWriteBuilder")
            .field("source", &self.source)
            .field("destination", &self.destination)
            .field("switch", &self.switch)
            .field("strict", &self.strict)
            .field("retry", &self.retry)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

/// Makes a context's connector (`Connector<C>` or `AsyncConnector<C>`) from a source and a
/// destination pool.
pub(super) type MakeConnector = fn([Arc<dyn Any + Send + Sync>; 2]) -> Arc<dyn Any + Send + Sync>;

/// The settings of a pool (r2d2 or deadpool).
#[doc(hidden)]
#[derive(Debug)]
pub struct PoolSettings {
    pub(crate) max_size: u32,
    pub(crate) min_idle: Option<u32>,
    pub(crate) connection_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
}

impl<P> DoubleWriteBuilder<P> {
    /// The source's URL: the database being moved away from (required).
    pub fn source(mut self, url: impl Into<String>) -> Self {
        self.source = Some(NodeUrl::new(url));
        self
    }

    /// The destination's URL: the database being moved to (required).
    pub fn destination(mut self, url: impl Into<String>) -> Self {
        self.destination = Some(NodeUrl::new(url));
        self
    }

    /// The switch every connection follows: pass a clone of a [`PatternSwitch`] you keep, to
    /// switch the pattern at run time, or a [`Pattern`](super::Pattern) for a new switch.
    pub fn pattern(mut self, switch: impl Into<PatternSwitch>) -> Self {
        self.switch = switch.into();
        self
    }

    /// Strict mode returns an error when a write applied on the first side fails on the second
    /// (lenient mode, the default, journals it and returns the first side's result).
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Names functions whose call is a write (`"audit_log"` in any schema, or `"app.bump"`):
    /// a `SELECT` that calls one is double-written, as an `INSERT` is, instead of read from one
    /// side. The double write does not learn them from a catalog (a side that is a cluster
    /// learns its own for its routing; see [`crate::functions`]). Adds to the names of earlier
    /// calls.
    pub fn writing_functions<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.writing_functions
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// How statements that provably did not apply are retried. Default [`Retry::off`].
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Where writes that reached one side only are recorded. Default: a [`MemoryJournal`] of
    /// 10 000 entries (see [`DoubleWrite::memory_journal`]). Pass an `Arc` and keep a clone to
    /// read it.
    pub fn journal(mut self, journal: impl Journal) -> Self {
        self.journal = Some(Arc::new(journal));
        self
    }

    /// Maximum connection pairs in the pool. Default 10.
    pub fn max_size(mut self, max_size: u32) -> Self {
        self.max_size = max_size;
        self
    }

    /// Idle connection pairs kept open. `None` keeps `max_size` open. Default `Some(0)`.
    pub fn min_idle(mut self, min_idle: Option<u32>) -> Self {
        self.min_idle = min_idle;
        self
    }

    /// How long a checkout waits for a connection. Default 5 s.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Idle connections are closed after this long. Default 10 minutes.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Connections are closed after this long in total. Default 30 minutes.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// Validates the settings for backend `DB`; the shared part and the pool settings.
    pub(crate) fn into_parts<DB: RwBackend>(
        self,
    ) -> Result<(DoubleWriteContext, PoolSettings), Error> {
        let source = self.source.ok_or_else(|| {
            Error::Config("no source URL: call .source(url) on the builder".into())
        })?;
        let destination = self.destination.ok_or_else(|| {
            Error::Config(
                "no destination URL: call .destination(url) on the builder (a double write needs both)"
                    .into(),
            )
        })?;
        DB::check_url(&source)?;
        DB::check_url(&destination)?;
        if source.expose() == destination.expose() {
            return Err(same_database());
        }
        if self.max_size == 0 {
            return Err(Error::Config("pool size must be at least 1".into()));
        }
        if let Some(min) = self.min_idle.filter(|&m| m > self.max_size) {
            return Err(Error::Config(format!(
                "min_idle ({min}) is larger than max_size ({})",
                self.max_size
            )));
        }
        if self.connection_timeout.is_zero() {
            return Err(Error::Config(
                "the connection timeout must be longer than zero".into(),
            ));
        }
        let connector = match (self.clusters, self.make_connector) {
            ([None, None], _) => None,
            ([Some(source), Some(destination)], Some(make)) => Some(make([source, destination])),
            ([None, _], _) => {
                return Err(Error::Config(
                    "the destination is a cluster and the source is not: give the source as a cluster too, with .source_cluster(pool) (an RwPool with the source's primary and replicas)".into(),
                ))
            }
            (_, _) => {
                return Err(Error::Config(
                    "the source is a cluster and the destination is not: give the destination as a cluster too, with .destination_cluster(pool) (an RwPool with the destination's primary and replicas)".into(),
                ))
            }
        };
        let (journal, memory) = match self.journal {
            Some(journal) => (journal, None),
            None => {
                let memory = Arc::new(MemoryJournal::default());
                (memory.clone() as Arc<dyn Journal>, Some(memory))
            }
        };
        let context = DoubleWriteContext::new(ContextInner {
            source,
            destination: Some(destination),
            switch: self.switch,
            strict: self.strict,
            retry: self.retry,
            journal,
            memory,
            metrics: Metrics::default(),
            on_connect: self.on_connect,
            connector,
            functions: WritingFunctions::new(&self.writing_functions),
            #[cfg(feature = "async")]
            type_oids: Default::default(),
        });
        let settings = PoolSettings {
            max_size: self.max_size,
            min_idle: self.min_idle,
            connection_timeout: self.connection_timeout,
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime,
        };
        Ok((context, settings))
    }
}

impl<P> DoubleWriteBuilder<P> {
    /// Makes `side` the cluster `pool` (its primary's URL is the side's URL); `make` turns the
    /// two pools into the context's connector.
    pub(super) fn cluster<T: Any + Send + Sync>(
        mut self,
        side: Side,
        pool: T,
        url: NodeUrl,
        make: MakeConnector,
    ) -> Self {
        match side {
            Side::Source => self.source = Some(url),
            Side::Destination => self.destination = Some(url),
        }
        self.clusters[side.index()] = Some(Arc::new(pool));
        self.make_connector = Some(make);
        self
    }
}

/// The two pools of a double write over two clusters, by side.
pub(super) fn pools<T: Any + Clone>(clusters: &[Arc<dyn Any + Send + Sync>; 2]) -> [T; 2] {
    clusters.each_ref().map(|pool| {
        pool.downcast_ref::<T>()
            .expect("diesel-rw: both clusters are pools of one type")
            .clone()
    })
}

/// A double write over two clusters: each side is an [`RwPool`] (a primary and its replicas,
/// with its own policy, health checks and [`Consistency`](crate::Consistency)), and each side's
/// connection is that pool's [`RwConnection`].
///
/// Writes go to each side's primary; reads follow the pattern to one cluster (`SrcOnly` and
/// `SrcFirst` to the source's, `DstFirst` and `DstOnly` to the destination's) and are routed
/// there as by the cluster's own pool: to its replicas, and to its primary after a write per its
/// consistency (causal read-your-writes included). Transactions run on both primaries. Each
/// checkout of the double-write pool starts with fresh routing state on both sides. Size each
/// cluster's pools for the double-write pool: every connection in use holds a primary
/// connection of each side.
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # fn main() -> Result<(), diesel_rw::Error> {
/// use diesel::PgConnection;
/// use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch};
/// use diesel_rw::{Consistency, RwConnection, RwPool};
///
/// let cluster = |primary: &str, replica: &str| {
///     RwPool::<PgConnection>::builder()
///         .primary(primary)
///         .replica(replica)
///         .consistency(Consistency::Causal)
///         .build()
/// };
/// let switch = PatternSwitch::new(Pattern::SrcOnly);
/// let pool = DoubleWrite::<RwConnection<PgConnection>>::builder()
///     .source_cluster(cluster("postgres://127.0.0.1:55432/app", "postgres://127.0.0.1:55433/app")?)
///     .destination_cluster(cluster("postgres://127.0.0.1:55434/app", "postgres://127.0.0.1:55435/app")?)
///     .pattern(switch.clone())
///     .build()?;
/// # Ok(()) }
/// # #[cfg(not(feature = "postgres"))] fn main() {}
/// ```
impl<C> DoubleWriteBuilder<DoubleWrite<RwConnection<C>>>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: DoubleWriteBackend,
{
    /// The source cluster: its primary takes the writes, its replicas serve the reads of
    /// `SrcOnly` and `SrcFirst`.
    pub fn source_cluster(self, pool: RwPool<C>) -> Self {
        let url = pool.cluster.primary.url().clone();
        self.cluster(Side::Source, pool, url, connector::<C>)
    }

    /// The destination cluster: its primary takes the writes, its replicas serve the reads of
    /// `DstFirst` and `DstOnly`.
    pub fn destination_cluster(self, pool: RwPool<C>) -> Self {
        let url = pool.cluster.primary.url().clone();
        self.cluster(Side::Destination, pool, url, connector::<C>)
    }
}

/// The connector of a double write over two [`RwPool`]s.
fn connector<C>(clusters: [Arc<dyn Any + Send + Sync>; 2]) -> Arc<dyn Any + Send + Sync>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: DoubleWriteBackend,
{
    let pools = pools::<RwPool<C>>(&clusters);
    let connector: Connector<RwConnection<C>> = Arc::new(move |side| pools[side.index()].get());
    Arc::new(connector)
}

impl<C> DoubleWriteBuilder<DoubleWrite<C>>
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    /// Runs `hook` on every new connection of either side, before its first statement (also
    /// when a lost connection is opened again): to set session options such as a statement
    /// timeout or SQLite's `busy_timeout`. An error makes that connect fail.
    pub fn on_connect(
        mut self,
        hook: impl Fn(Side, &mut C) -> diesel::QueryResult<()> + Send + Sync + 'static,
    ) -> Self {
        let hook: OnConnect<C> = Arc::new(hook);
        self.on_connect = Some(Arc::new(hook));
        self
    }

    /// Validates the settings and builds the pool. Does not connect: the first checkout does.
    pub fn build(self) -> Result<DoubleWrite<C>, Error> {
        let (context, settings) = self.into_parts::<C::Backend>()?;
        Ok(DoubleWrite::new(
            DoubleWriteManager::new(context.clone()),
            context,
            &settings,
        ))
    }

    /// Validates the settings and returns the shared part alone, for
    /// [`DoubleWriteConnection::connect`](super::DoubleWriteConnection::connect) (the pool
    /// settings are ignored).
    pub fn context(self) -> Result<DoubleWriteContext, Error> {
        self.into_parts::<C::Backend>().map(|(context, _)| context)
    }

    /// Validates the settings and registers the shared part under `name`, so that connections
    /// opened with the connection string `shared=NAME` share its switch, journal and metrics:
    /// for an [`RwPool<DoubleWriteConnection<C>>`](crate::RwPool), give `shared=NAME` as the
    /// primary's URL. The pool settings are ignored.
    pub fn register(self, name: &str) -> Result<DoubleWriteContext, Error> {
        let context = self.context()?;
        DoubleWriteContext::register(name, &context)?;
        Ok(context)
    }
}
