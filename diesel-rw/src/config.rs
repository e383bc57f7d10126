//! Building a pool: [`RwPoolBuilder`], shared by [`RwPool`](crate::RwPool) and the async pool.

use std::marker::PhantomData;
use std::time::Duration;

use crate::consistency::Consistency;
use crate::error::Error;
use crate::health::MaxLag;
use crate::policy::Policy;
use crate::route::Fallback;
use crate::url::NodeUrl;

/// The environment variable holding the primary's URL, read by `from_env()`.
pub const DATABASE_URL: &str = "DATABASE_URL";
/// The environment variable holding the replicas' URLs, comma-separated, read by `from_env()`.
pub const DATABASE_REPLICA_URLS: &str = "DATABASE_REPLICA_URLS";

/// Everything a pool is built from.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) primary: Option<NodeUrl>,
    pub(crate) replicas: Vec<(NodeUrl, u32)>,
    pub(crate) policy: Policy,
    pub(crate) consistency: Consistency,
    pub(crate) fallback: Fallback,
    pub(crate) max_size: u32,
    pub(crate) replica_max_size: Option<u32>,
    pub(crate) min_idle: Option<u32>,
    pub(crate) connection_timeout: Duration,
    pub(crate) replica_timeout: Duration,
    pub(crate) eject_cooldown: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) causal_wait: Option<Duration>,
    pub(crate) health_interval: Option<Option<Duration>>,
    pub(crate) max_replica_lag: Option<MaxLag>,
    pub(crate) eject_after: u32,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) max_replica_latency: Option<Duration>,
    pub(crate) slow_replica_factor: Option<u32>,
    /// Functions whose call is a write, named by the builder (`name` or `schema.name`).
    pub(crate) writing_functions: Vec<String>,
    /// Whether the pool learns its functions that write from the primary's catalog.
    pub(crate) learn_writing_functions: bool,
    /// How often it learns them again.
    pub(crate) writing_functions_refresh: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            primary: None,
            replicas: Vec::new(),
            policy: Policy::default(),
            consistency: Consistency::default(),
            fallback: Fallback::default(),
            max_size: 10,
            replica_max_size: None,
            min_idle: Some(0),
            connection_timeout: Duration::from_secs(5),
            replica_timeout: Duration::from_millis(500),
            eject_cooldown: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            causal_wait: None,
            health_interval: None,
            max_replica_lag: None,
            eject_after: 2,
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(60)),
            max_replica_latency: None,
            slow_replica_factor: None,
            writing_functions: Vec::new(),
            learn_writing_functions: true,
            writing_functions_refresh: Some(Duration::from_secs(300)),
        }
    }
}

impl Config {
    /// How often the lag monitor samples the nodes, if it runs: as set, or every 100 ms when
    /// something needs it (`Consistency::Causal` or `max_replica_lag`).
    pub(crate) fn monitor_interval(&self) -> Option<Duration> {
        match self.health_interval {
            Some(explicit) => explicit,
            None => (self.consistency == Consistency::Causal || self.max_replica_lag.is_some())
                .then_some(Duration::from_millis(100)),
        }
    }

    /// Validates the settings; `check_url` checks each URL for the backend.
    pub(crate) fn validate(
        &self,
        check_url: impl Fn(&NodeUrl) -> Result<(), Error>,
    ) -> Result<&NodeUrl, Error> {
        let primary = self.primary.as_ref().ok_or_else(|| {
            Error::Config("no primary URL: call .primary(url) on the builder".into())
        })?;
        check_url(primary)?;
        if !self.replicas.is_empty() && crate::double_write::is_connection_string(primary) {
            return Err(crate::double_write::replicas_of_a_double_write());
        }
        for (url, _) in &self.replicas {
            check_url(url)?;
        }
        if self.max_size == 0 || self.replica_max_size == Some(0) {
            return Err(Error::Config("pool size must be at least 1".into()));
        }
        if let Some(min) = self.min_idle {
            if min > self.max_size {
                return Err(Error::Config(format!(
                    "min_idle ({min}) is larger than max_size ({})",
                    self.max_size
                )));
            }
        }
        if self.health_interval == Some(Some(Duration::ZERO)) {
            return Err(Error::Config(
                "health_interval must be longer than zero".into(),
            ));
        }
        if self.writing_functions_refresh == Some(Duration::ZERO) {
            return Err(Error::Config(
                "writing_functions_refresh must be longer than zero (None: learn once)".into(),
            ));
        }
        if let Some(bad) = self
            .writing_functions
            .iter()
            .find(|f| f.trim().is_empty() || f.trim().ends_with('.') || f.trim().starts_with('.'))
        {
            return Err(Error::Config(format!(
                "writing_functions: `{bad}` is not a function name (give `name` or `schema.name`)"
            )));
        }
        if self.eject_after == 0 {
            return Err(Error::Config("eject_after must be at least 1".into()));
        }
        if self.connection_timeout.is_zero()
            || self.replica_timeout.is_zero()
            || self.read_timeout.is_some_and(|t| t.is_zero())
            || self.write_timeout.is_some_and(|t| t.is_zero())
        {
            return Err(Error::Config("timeouts must be longer than zero".into()));
        }
        if self.policy == Policy::Weighted
            && self.replicas.iter().all(|(_, w)| *w == 0)
            && !self.replicas.is_empty()
        {
            return Err(Error::Config(
                "Policy::Weighted with every replica weight 0: no replica could ever be chosen"
                    .into(),
            ));
        }
        Ok(primary)
    }

    /// Parses the spec of [`RwConnection::establish`](crate::RwConnection): a plain URL, or
    /// whitespace-separated `primary=URL` / `replica=URL` entries.
    pub(crate) fn from_spec(spec: &str) -> Result<Self, Error> {
        // A connection on its own has no pool to learn the catalog for it.
        let mut config = Config {
            learn_writing_functions: false,
            ..Config::default()
        };
        let entries: Vec<&str> = spec.split_whitespace().collect();
        let keyed = |e: &str| e.starts_with("primary=") || e.starts_with("replica=");
        if !entries.iter().any(|e| keyed(e)) {
            // A plain URL (it may contain spaces, as libpq key/value strings do).
            config.primary = Some(NodeUrl::new(spec.trim()));
            return Ok(config);
        }
        for entry in entries {
            if let Some(url) = entry.strip_prefix("primary=") {
                if config.primary.is_some() {
                    return Err(Error::Config(
                        "the connection spec names more than one `primary=`".into(),
                    ));
                }
                config.primary = Some(NodeUrl::new(url));
            } else if let Some(url) = entry.strip_prefix("replica=") {
                config.replicas.push((NodeUrl::new(url), 1));
            } else {
                return Err(Error::Config(format!(
                    "`{}` in the connection spec is neither `primary=URL` nor `replica=URL`",
                    crate::url::redact(entry)
                )));
            }
        }
        Ok(config)
    }

    pub(crate) fn from_env() -> Result<Self, Error> {
        let primary =
            std::env::var(DATABASE_URL).map_err(|_| Error::MissingEnv { name: DATABASE_URL })?;
        let mut config = Config {
            primary: Some(NodeUrl::new(primary)),
            ..Config::default()
        };
        if let Ok(replicas) = std::env::var(DATABASE_REPLICA_URLS) {
            config.replicas = replicas
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| (NodeUrl::new(s), 1))
                .collect();
        }
        Ok(config)
    }
}

/// Builds a pool of type `P` (an [`RwPool`](crate::RwPool) or an async pool) from a primary
/// URL, replica URLs and settings. `build()` validates everything and says what is wrong.
///
/// Defaults: [`Policy::RoundRobin`], [`Consistency::UnitOfWork`], [`Fallback::Primary`],
/// 10 connections per node, no idle connections kept open ahead of need (`min_idle(Some(0))`),
/// a 5 s checkout timeout on the primary and 500 ms on replicas, a 5 s ejection cooldown, no
/// health check on checkout (a broken connection is found by its error).
#[must_use = "a builder does nothing until .build()"]
pub struct RwPoolBuilder<P> {
    pub(crate) config: Config,
    _pool: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for RwPoolBuilder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RwPoolBuilder")
            .field("config", &self.config)
            .finish()
    }
}

impl<P> Default for RwPoolBuilder<P> {
    fn default() -> Self {
        Self::with_config(Config::default())
    }
}

impl<P> RwPoolBuilder<P> {
    pub(crate) fn with_config(config: Config) -> Self {
        RwPoolBuilder {
            config,
            _pool: PhantomData,
        }
    }

    /// The primary's URL (required).
    pub fn primary(mut self, url: impl Into<String>) -> Self {
        self.config.primary = Some(NodeUrl::new(url));
        self
    }

    /// Adds a replica with weight 1.
    pub fn replica(self, url: impl Into<String>) -> Self {
        self.replica_weighted(url, 1)
    }

    /// Adds a replica with a weight for [`Policy::Weighted`] (ignored by the other policies).
    /// A weight of 0 never receives reads under `Policy::Weighted`.
    pub fn replica_weighted(mut self, url: impl Into<String>, weight: u32) -> Self {
        self.config.replicas.push((NodeUrl::new(url), weight));
        self
    }

    /// Adds several replicas with weight 1.
    pub fn replicas<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for url in urls {
            self = self.replica(url);
        }
        self
    }

    /// How reads choose a replica. Default [`Policy::RoundRobin`].
    pub fn policy(mut self, policy: Policy) -> Self {
        self.config.policy = policy;
        self
    }

    /// How long reads stick to the primary after a write. Default [`Consistency::UnitOfWork`].
    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.config.consistency = consistency;
        self
    }

    /// What a read does when no replica is available. Default [`Fallback::Primary`].
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.config.fallback = fallback;
        self
    }

    /// Maximum connections per node (the primary's pool, and each replica's unless
    /// [`replica_max_size`](Self::replica_max_size) is set). Default 10.
    pub fn max_size(mut self, max_size: u32) -> Self {
        self.config.max_size = max_size;
        self
    }

    /// Maximum connections of each replica's pool. Default: `max_size`.
    pub fn replica_max_size(mut self, max_size: u32) -> Self {
        self.config.replica_max_size = Some(max_size);
        self
    }

    /// Idle connections each node's pool keeps open. `None` keeps `max_size` open. Default
    /// `Some(0)`: connections open on demand.
    pub fn min_idle(mut self, min_idle: Option<u32>) -> Self {
        self.config.min_idle = min_idle;
        self
    }

    /// How long a checkout from the primary waits for a connection. Default 5 s. When it
    /// expires, the call fails with [`Error::PrimaryUnavailable`].
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.config.connection_timeout = timeout;
        self
    }

    /// How long a checkout from a replica waits before the replica is ejected and the read
    /// goes elsewhere. Default 500 ms.
    pub fn replica_timeout(mut self, timeout: Duration) -> Self {
        self.config.replica_timeout = timeout;
        self
    }

    /// The deadline of a read statement on any node (default 30 s; `None`: none). A read that
    /// has no answer by then returns [`Error::Timeout`](crate::Error::Timeout), its connection
    /// is discarded and its node's connections retired (a replica is ejected), and outside a
    /// transaction it runs once more on another node. Bounds the async stack's statements
    /// (diesel-async, whose futures can be dropped); the sync stack's drivers block in the
    /// socket and are not bounded by it.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// The deadline of a write statement (default 60 s; `None`: none): past it,
    /// [`Error::Timeout`](crate::Error::Timeout) with `maybe_applied` (the primary may still
    /// apply it: check before running it again), and the connection is discarded. Async stack
    /// only, as [`read_timeout`](Self::read_timeout).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// How long an ejected replica is skipped before a read probes it again. Default 5 s.
    pub fn eject_cooldown(mut self, cooldown: Duration) -> Self {
        self.config.eject_cooldown = cooldown;
        self
    }

    /// Idle connections are closed after this long. Default 10 minutes.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// With [`Consistency::Causal`]: how long a read after a write may wait for a replica to
    /// replay the write before it goes to the primary. Default `None`: no wait, the primary
    /// serves it at once.
    pub fn causal_wait(mut self, wait: Option<Duration>) -> Self {
        self.config.causal_wait = wait;
        self
    }

    /// How often the lag monitor samples each replica's replayed position and lag (one
    /// background thread or task per pool, with its own connections), so a routing decision
    /// costs no round trip. `None` turns it off. Default: every 100 ms when
    /// [`Consistency::Causal`] or [`max_replica_lag`](Self::max_replica_lag) is set, else off.
    pub fn health_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.health_interval = Some(interval);
        self
    }

    /// Replicas further behind the primary than this get no reads until they catch up
    /// (measured by the lag monitor). Default: no limit.
    pub fn max_replica_lag(mut self, lag: MaxLag) -> Self {
        self.config.max_replica_lag = Some(lag);
        self
    }

    /// A replica whose smoothed read latency (a moving average of its reads) passes this is
    /// slow: it is taken out of rotation for `eject_cooldown`, then tried again (with its
    /// average started afresh), as ProxySQL's `max_latency_ms` does. Default: no limit.
    pub fn max_replica_latency(mut self, latency: Option<Duration>) -> Self {
        self.config.max_replica_latency = latency;
        self
    }

    /// A replica whose smoothed read latency is more than `factor` times the fastest other
    /// replica's (and above 50 ms) is slow, as with
    /// [`max_replica_latency`](Self::max_replica_latency) (relative to its peers; needs two or
    /// more replicas). Default: off.
    pub fn slow_replica_factor(mut self, factor: Option<u32>) -> Self {
        self.config.slow_replica_factor = factor;
        self
    }

    /// How many consecutive failed lag-monitor probes eject a replica. Default 2. (A failed
    /// checkout ejects it at once.)
    pub fn eject_after(mut self, failures: u32) -> Self {
        self.config.eject_after = failures;
        self
    }

    /// Names functions whose call is a write, besides those the pool learns from the primary's
    /// catalog (see [`crate::functions`]): `"audit_log"` (in any schema) or `"app.bump"`. A
    /// `SELECT` that calls one goes to the primary, as a `SELECT nextval(...)` does. For
    /// functions the catalog does not tell (a `STABLE` PostgreSQL function that writes through
    /// another, a MySQL function declared `READS SQL DATA` that writes) and for SQLite, which
    /// has no catalog of functions. Adds to the names of earlier calls.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] fn main() -> Result<(), diesel_rw::Error> {
    /// use diesel::SqliteConnection;
    /// use diesel_rw::RwPool;
    ///
    /// let pool = RwPool::<SqliteConnection>::builder()
    ///     .primary("primary.db")
    ///     .writing_functions(["audit_log", "app.bump"])
    ///     .build()?;
    /// assert!(pool.writing_functions().contains("audit_log"));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn writing_functions<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config
            .writing_functions
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Whether the pool learns which of the application's functions write from the primary's
    /// catalog (PostgreSQL: `VOLATILE` functions; MySQL/MariaDB: functions that modify SQL data
    /// or do not say, see [`crate::functions`]). Default `true`. Learned when the pool hands
    /// out its first connection (which waits for it, at most
    /// [`connection_timeout`](Self::connection_timeout)), then again, on a connection of its
    /// own in the background, when it hands out a connection once
    /// [`writing_functions_refresh`](Self::writing_functions_refresh) has passed: never per
    /// statement.
    pub fn learn_writing_functions(mut self, learn: bool) -> Self {
        self.config.learn_writing_functions = learn;
        self
    }

    /// How often the pool learns its functions that write again, in the background, started by
    /// the first connection it hands out after the interval (a function created since is a
    /// write from then on; call `refresh_writing_functions()` on the pool to learn at once).
    /// `None`: learned once. Default 5 minutes.
    pub fn writing_functions_refresh(mut self, interval: Option<Duration>) -> Self {
        self.config.writing_functions_refresh = interval;
        self
    }

    /// Connections are closed after this long in total. Default 30 minutes.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.config.max_lifetime = lifetime;
        self
    }
}
