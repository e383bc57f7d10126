//! [`DoubleWriteContext`]: what every connection of a double-write pool shares, and the registry
//! that lets connections opened from a string (`shared=NAME`) find it.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use super::journal::{Journal, MemoryJournal};
use super::metrics::Metrics;
use super::pattern::Side;
use super::retry::Retry;
use super::switch::PatternSwitch;
use crate::error::Error;
use crate::functions::WritingFunctions;
use crate::url::NodeUrl;

/// What the connections of one migration share: the two URLs, the [`PatternSwitch`], strict or
/// lenient mode, the [`Retry`] policy, the [`Journal`] and the [`Metrics`]. Cloning is cheap and
/// shares all of it.
///
/// A [`DoubleWrite`](super::DoubleWrite) pool makes one for its connections. To share one with
/// connections opened by a connection string (as an [`RwPool`](crate::RwPool) opens its
/// primary), [`register`](super::DoubleWriteBuilder::register) it under a name and open them with
/// `shared=NAME`.
#[derive(Clone)]
pub struct DoubleWriteContext {
    pub(crate) inner: Arc<ContextInner>,
}

pub(crate) struct ContextInner {
    pub(crate) source: NodeUrl,
    pub(crate) destination: Option<NodeUrl>,
    pub(crate) switch: PatternSwitch,
    pub(crate) strict: bool,
    pub(crate) retry: Retry,
    pub(crate) journal: Arc<dyn Journal>,
    /// The default journal, when no other was given.
    pub(crate) memory: Option<Arc<MemoryJournal>>,
    pub(crate) metrics: Metrics,
    /// An `OnConnect<C>` for the connection type the context was built for.
    pub(crate) on_connect: Option<Arc<dyn Any + Send + Sync>>,
    /// For a double write over two clusters: a `Connector<C>` (sync) or an
    /// `AsyncConnector<C>` that checks a side's connection out of that side's pool.
    pub(crate) connector: Option<Arc<dyn Any + Send + Sync>>,
    /// The application's functions whose call is a write (double-written).
    pub(crate) functions: WritingFunctions,
    /// The OIDs of the PostgreSQL user-defined types looked up on each side (async).
    #[cfg(feature = "async")]
    pub(crate) type_oids: [super::type_oids::TypeOids; 2],
}

/// Opens a side's connection from that side's cluster (sync).
pub(crate) type Connector<C> = Arc<dyn Fn(Side) -> Result<C, Error> + Send + Sync + 'static>;

/// Opens a side's connection from that side's cluster (async).
#[cfg(feature = "async")]
pub(crate) type AsyncConnector<C> = Arc<
    dyn Fn(Side) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<C, Error>> + Send>>
        + Send
        + Sync
        + 'static,
>;

/// A hook run on each new connection of a side (typed by the connection type).
pub(crate) type OnConnect<C> =
    Arc<dyn Fn(Side, &mut C) -> diesel::QueryResult<()> + Send + Sync + 'static>;

impl DoubleWriteContext {
    pub(crate) fn new(inner: ContextInner) -> Self {
        DoubleWriteContext {
            inner: Arc::new(inner),
        }
    }

    /// A context for connections opened by `establish` with their own settings: a new switch at
    /// `switch`'s pattern, the default in-memory journal, no retry.
    pub(crate) fn standalone(
        source: NodeUrl,
        destination: Option<NodeUrl>,
        switch: PatternSwitch,
        strict: bool,
    ) -> Self {
        let memory = Arc::new(MemoryJournal::default());
        DoubleWriteContext::new(ContextInner {
            source,
            destination,
            switch,
            strict,
            retry: Retry::off(),
            journal: memory.clone(),
            memory: Some(memory),
            metrics: Metrics::default(),
            on_connect: None,
            connector: None,
            functions: WritingFunctions::default(),
            #[cfg(feature = "async")]
            type_oids: Default::default(),
        })
    }

    /// Classifies a query as this context's connections do: with its functions that write.
    #[inline]
    pub(crate) fn classify_query<DB, T>(&self, source: &T) -> crate::StatementKind
    where
        DB: crate::RwBackend,
        T: diesel::query_builder::QueryFragment<DB> + diesel::query_builder::QueryId + ?Sized,
    {
        crate::classify::classify_query_with::<DB, T>(source, &self.inner.functions)
    }

    /// Classifies SQL text of backend `DB` as this context's connections do.
    pub(crate) fn classify_sql<DB: crate::RwBackend>(&self, sql: &str) -> crate::StatementKind {
        crate::classify::classify_sql_with(sql, DB::DIALECT, &self.inner.functions)
    }

    /// The pattern switch every connection of this context reads.
    pub fn switch(&self) -> &PatternSwitch {
        &self.inner.switch
    }

    /// Whether a second-side failure is returned as an error (strict) or only journaled
    /// (lenient).
    pub fn is_strict(&self) -> bool {
        self.inner.strict
    }

    /// The retry policy.
    pub fn retry(&self) -> Retry {
        self.inner.retry
    }

    /// The journal.
    pub fn journal(&self) -> &dyn Journal {
        &*self.inner.journal
    }

    /// The default in-memory journal, if no other journal was configured.
    pub fn memory_journal(&self) -> Option<&MemoryJournal> {
        self.inner.memory.as_deref()
    }

    /// The live metrics of both sides.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The URL of `side` with its password redacted (`None` for a destination that is not
    /// configured).
    pub fn node(&self, side: Side) -> Option<&str> {
        self.url(side).map(NodeUrl::redacted)
    }

    pub(crate) fn url(&self, side: Side) -> Option<&NodeUrl> {
        match side {
            Side::Source => Some(&self.inner.source),
            Side::Destination => self.inner.destination.as_ref(),
        }
    }

    /// Whether each side is a cluster (primary and replicas) whose connections come from that
    /// side's pool.
    pub fn is_cluster(&self) -> bool {
        self.inner.connector.is_some()
    }

    pub(crate) fn connector<C: 'static>(&self) -> Option<&Connector<C>> {
        self.inner
            .connector
            .as_ref()
            .and_then(|c| c.downcast_ref::<Connector<C>>())
    }

    /// The OIDs of the PostgreSQL user-defined types looked up on `side`.
    #[cfg(feature = "async")]
    pub(crate) fn type_oids(&self, side: Side) -> &super::type_oids::TypeOids {
        &self.inner.type_oids[side.index()]
    }

    #[cfg(feature = "async")]
    pub(crate) fn async_connector<C: 'static>(&self) -> Option<&AsyncConnector<C>> {
        self.inner
            .connector
            .as_ref()
            .and_then(|c| c.downcast_ref::<AsyncConnector<C>>())
    }

    pub(crate) fn on_connect<C: 'static>(&self) -> Option<&OnConnect<C>> {
        self.inner
            .on_connect
            .as_ref()
            .and_then(|hook| hook.downcast_ref::<OnConnect<C>>())
    }

    /// The context registered under `name` (see
    /// [`DoubleWriteBuilder::register`](super::DoubleWriteBuilder::register)).
    pub fn registered(name: &str) -> Option<DoubleWriteContext> {
        registry().get(name).cloned()
    }

    /// Removes the context registered under `name`, returning it. Connections already open keep
    /// it.
    pub fn unregister(name: &str) -> Option<DoubleWriteContext> {
        registry().remove(name)
    }

    pub(crate) fn register(name: &str, context: &DoubleWriteContext) -> Result<(), Error> {
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(Error::Config(format!(
                "`{name}` cannot name a double-write context: use a non-empty name without spaces"
            )));
        }
        let mut registry = registry();
        if registry.contains_key(name) {
            return Err(Error::Config(format!(
                "a double-write context is already registered as `{name}`: choose another name, or DoubleWriteContext::unregister(\"{name}\") first"
            )));
        }
        registry.insert(name.to_owned(), context.clone());
        Ok(())
    }
}

fn registry() -> std::sync::MutexGuard<'static, HashMap<String, DoubleWriteContext>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, DoubleWriteContext>>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl fmt::Debug for DoubleWriteContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoubleWriteContext")
            .field("source", &self.inner.source)
            .field("destination", &self.inner.destination)
            .field("pattern", &self.inner.switch.get())
            .field("strict", &self.inner.strict)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}
