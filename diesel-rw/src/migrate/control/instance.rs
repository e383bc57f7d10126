//! [`Control`]: one instance of the service following the phase kept in the control table.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::store::{self, ControlTables, InstanceId};
use crate::double_write::{Pattern, PatternSwitch};
use crate::error::{Error, Result};
use crate::migrate::MigrateConnection;

/// What an instance's [`Control`] last read from the control table
/// ([`Control::status`], [`PatternSwitch::control_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ControlStatus {
    /// The migration.
    pub migration: String,
    /// This instance's id in the instance table.
    pub instance_id: String,
    /// The phase this instance applies.
    pub pattern: Pattern,
    /// The epoch of that phase.
    pub epoch: i64,
    /// How long ago the control table was last read successfully.
    pub last_read_age: Duration,
    /// Reads that failed since the last one that did not (the instance keeps the last
    /// phase it saw meanwhile).
    pub failures: u64,
    /// The last failure's message (passwords redacted), while `failures > 0`.
    pub last_error: Option<String>,
    /// Whether it also listens for PostgreSQL notifications of a step.
    pub listening: bool,
    /// Whether its thread stopped (the [`Control`] was dropped): the switch keeps the last
    /// phase.
    pub stopped: bool,
}

impl ControlStatus {
    /// Whether the last read failed: the instance is applying the last phase it saw, which
    /// may be out of date.
    pub fn is_stale(&self) -> bool {
        self.failures > 0 || self.stopped
    }
}

/// The state a [`Control`] shares with its [`PatternSwitch`] and its thread.
pub(crate) struct ControlShared {
    migration: String,
    table: String,
    instance_id: String,
    epoch: AtomicI64,
    last_read: Mutex<Instant>,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    listening: AtomicBool,
    stopped: AtomicBool,
}

impl ControlShared {
    pub(crate) fn status(&self, pattern: Pattern) -> ControlStatus {
        ControlStatus {
            migration: self.migration.clone(),
            instance_id: self.instance_id.clone(),
            pattern,
            epoch: self.epoch.load(Ordering::Acquire),
            last_read_age: self
                .last_read
                .lock()
                .map(|t| t.elapsed())
                .unwrap_or_default(),
            failures: self.failures.load(Ordering::Acquire),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
            listening: self.listening.load(Ordering::Acquire),
            stopped: self.stopped.load(Ordering::Acquire),
        }
    }

    pub(crate) fn controlled_error(&self) -> Error {
        Error::PatternControlled {
            migration: self.migration.clone(),
            table: self.table.clone(),
        }
    }
}

/// Configures and starts a [`Control`] ([`Control::builder`]).
#[derive(Clone)]
pub struct ControlBuilder<C> {
    url: String,
    migration: String,
    tables: ControlTables,
    poll_interval: Duration,
    listen: bool,
    instance_id: Option<String>,
    initial: Option<Pattern>,
    _conn: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for ControlBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlBuilder")
            .field("url", &crate::url::redact(&self.url))
            .field("migration", &self.migration)
            .field("tables", &self.tables)
            .field("poll_interval", &self.poll_interval)
            .field("listen", &self.listen)
            .field("instance_id", &self.instance_id)
            .finish()
    }
}

impl<C: MigrateConnection> ControlBuilder<C> {
    /// The control tables ([`ControlTables::named`]); default `diesel_rw_control`.
    pub fn control_table(mut self, name: &str) -> Result<Self> {
        self.tables = ControlTables::named(name)?;
        Ok(self)
    }

    /// How often the control table is read and the heartbeat written; default 1 s. A step is
    /// seen within this interval (at once on PostgreSQL while listening).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Whether to `LISTEN` for steps on PostgreSQL (default `true`; no effect elsewhere).
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// This instance's id in the instance table; default `<host>-<pid>-<random>`. An id
    /// already there is taken over (a restarted instance keeping its id).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// Adds the migration to the control table at `pattern` when it is not there (default:
    /// it must be there, added by `diesel-rw migrate init` or [`Fleet::init`](super::Fleet::init),
    /// else [`Error::UnknownMigration`]).
    pub fn create_at(mut self, pattern: Pattern) -> Self {
        self.initial = Some(pattern);
        self
    }

    /// Connects, reads the stored phase (the instance starts in it), registers the instance
    /// with its heartbeat, and starts the thread that follows the table.
    ///
    /// Fails, and starts nothing, when the table cannot be read
    /// ([`Error::ControlUnreadable`]): an instance never guesses its phase.
    pub fn start(self) -> Result<Control> {
        let unreadable = |e: &dyn std::fmt::Display| Error::ControlUnreadable {
            migration: self.migration.clone(),
            table: self.tables.control().to_owned(),
            reason: crate::url::redact(&e.to_string()),
        };
        let mut conn = connect::<C>(&self.url).map_err(|e| unreadable(&e))?;
        let record = match self.initial {
            Some(pattern) => store::init(
                &mut conn,
                &self.tables,
                &self.migration,
                pattern,
                "instance",
            )
            .map_err(|e| unreadable(&e))?,
            None => store::read_phase(&mut conn, &self.tables, &self.migration)
                .map_err(|e| unreadable(&e))?
                .ok_or_else(|| Error::UnknownMigration {
                    migration: self.migration.clone(),
                    table: self.tables.control().to_owned(),
                })?,
        };
        let me = InstanceId {
            id: self.instance_id.clone().unwrap_or_else(default_instance_id),
            host: host_name(),
            pid: std::process::id(),
        };
        store::heartbeat(
            &mut conn,
            &self.tables,
            &self.migration,
            &me,
            record.pattern,
            record.epoch,
        )
        .map_err(|e| unreadable(&e))?;
        let listening = self.listen
            && conn
                .listen(self.tables.channel())
                .map_err(|e| unreadable(&e))?;
        let shared = Arc::new(ControlShared {
            migration: self.migration.clone(),
            table: self.tables.control().to_owned(),
            instance_id: me.id.clone(),
            epoch: AtomicI64::new(record.epoch),
            last_read: Mutex::new(Instant::now()),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
            listening: AtomicBool::new(listening),
            stopped: AtomicBool::new(false),
        });
        let switch = PatternSwitch::controlled(record.pattern, shared.clone());
        tracing::info!(target: "diesel_rw::control", migration = %self.migration, instance = %me.id, pattern = %record.pattern, epoch = record.epoch, listening, "instance follows the control table");
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let mut follower = Follower::<C> {
            url: self.url,
            migration: self.migration,
            tables: self.tables,
            poll_interval: self.poll_interval,
            listen: self.listen,
            me,
            conn: Some(conn),
            switch: switch.clone(),
            shared: shared.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("diesel-rw-control".into())
            .spawn(move || follower.run())
            .map_err(|e| Error::Config(format!("could not start the control thread: {e}")))?;
        Ok(Control {
            switch,
            shared,
            stop,
            thread: Some(thread),
        })
    }
}

/// One instance of the service following the phase of a migration kept in the control table
/// on the source database (see [the module](super)).
///
/// [`start`](ControlBuilder::start) reads the stored phase, so a process that starts
/// mid-migration starts in it. A thread then reads the table every
/// [`poll_interval`](ControlBuilder::poll_interval) (default 1 s; on PostgreSQL it also
/// `LISTEN`s, and a step is seen at once), applies a new phase to the [`switch`](Self::switch)
/// (one atomic store: the double write's statements read only that atomic, no round trip), and
/// writes the instance's heartbeat with the phase and epoch it applies, which is its
/// acknowledgement for the barrier of the next step.
///
/// If the table cannot be read, the instance keeps the last phase it saw, logs it at WARN
/// level (target `diesel_rw::control`), and says so in [`status`](Self::status); it never
/// guesses. Dropping the `Control` stops the thread and removes the instance's row; the switch
/// keeps the last phase.
///
/// ```no_run
/// # #[cfg(feature = "postgres")] fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::PgConnection;
/// use diesel_rw::double_write::DoubleWrite;
/// use diesel_rw::migrate::control::Control;
///
/// let (src, dst) = ("postgres://app@127.0.0.1:55432/app", "postgres://app@127.0.0.1:55434/app");
/// let control = Control::builder::<PgConnection>(src, "orders_move").start()?;
/// let pool = DoubleWrite::<PgConnection>::builder()
///     .source(src)
///     .destination(dst)
///     .pattern(control.switch())
///     .build()?;
/// # let _ = pool;
/// println!("{:?}", control.status()); // phase, epoch, last read
/// # Ok(()) }
/// # #[cfg(not(feature = "postgres"))] fn main() {}
/// ```
pub struct Control {
    switch: PatternSwitch,
    shared: Arc<ControlShared>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("status", &self.status())
            .finish()
    }
}

impl Control {
    /// A builder for an instance following `migration` in the control table on the database
    /// at `url` (the source's), over connections of type `C`.
    pub fn builder<C: MigrateConnection>(
        url: impl Into<String>,
        migration: impl Into<String>,
    ) -> ControlBuilder<C> {
        ControlBuilder {
            url: url.into(),
            migration: migration.into(),
            tables: ControlTables::default(),
            poll_interval: Duration::from_secs(1),
            listen: true,
            instance_id: None,
            initial: None,
            _conn: PhantomData,
        }
    }

    /// The switch to give the double write ([`DoubleWriteBuilder::pattern`](crate::double_write::DoubleWriteBuilder::pattern)):
    /// it follows the table.
    pub fn switch(&self) -> PatternSwitch {
        self.switch.clone()
    }

    /// What this instance applies and when it last read the table.
    pub fn status(&self) -> ControlStatus {
        self.shared.status(self.switch.get())
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.shared.instance_id
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.stop;
        if let Ok(mut stop) = lock.lock() {
            *stop = true;
        }
        cvar.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.stopped.store(true, Ordering::Release);
    }
}

struct Follower<C> {
    url: String,
    migration: String,
    tables: ControlTables,
    poll_interval: Duration,
    listen: bool,
    me: InstanceId,
    conn: Option<C>,
    switch: PatternSwitch,
    shared: Arc<ControlShared>,
    stop: Arc<(Mutex<bool>, Condvar)>,
}

/// How often a listening instance looks for a notification (no round trip: it reads what the
/// server already sent).
const NOTIFY_CHECK: Duration = Duration::from_millis(20);

impl<C: MigrateConnection> Follower<C> {
    fn run(&mut self) {
        loop {
            if self.wait() {
                break;
            }
            match self.poll() {
                Ok(()) => {
                    if self.shared.failures.swap(0, Ordering::AcqRel) > 0 {
                        tracing::info!(target: "diesel_rw::control", migration = %self.migration, "control table readable again");
                    }
                    if let Ok(mut e) = self.shared.last_error.lock() {
                        *e = None;
                    }
                }
                Err(e) => {
                    self.conn = None;
                    self.shared.listening.store(false, Ordering::Release);
                    let message = crate::url::redact(&e.to_string());
                    let failures = self.shared.failures.fetch_add(1, Ordering::AcqRel) + 1;
                    if failures == 1 || failures % 60 == 0 {
                        tracing::warn!(target: "diesel_rw::control", migration = %self.migration, pattern = %self.switch.get(), failures, error = %message, "control table unreadable: keeping the last phase seen");
                    }
                    if let Ok(mut last) = self.shared.last_error.lock() {
                        *last = Some(message);
                    }
                }
            }
        }
        if let Some(conn) = self.conn.as_mut() {
            let _ = store::deregister(conn, &self.tables, &self.migration, &self.me.id);
        }
    }

    /// Waits for the next poll: the interval, or a notification; `true` to stop.
    fn wait(&mut self) -> bool {
        let deadline = Instant::now() + self.poll_interval;
        let (lock, cvar) = &*self.stop;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return *lock.lock().unwrap_or_else(|e| e.into_inner());
            }
            let listening = self.shared.listening.load(Ordering::Acquire);
            let step = if listening {
                NOTIFY_CHECK.min(deadline - now)
            } else {
                deadline - now
            };
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let (guard, _) = cvar
                .wait_timeout_while(guard, step, |stop| !*stop)
                .unwrap_or_else(|e| e.into_inner());
            if *guard {
                return true;
            }
            drop(guard);
            if listening {
                match self.conn.as_mut().map(|c| c.notified()) {
                    Some(Ok(true)) => return false,
                    Some(Ok(false)) | None => {}
                    // A broken connection: read now (and reconnect).
                    Some(Err(_)) => return false,
                }
            }
        }
    }

    fn poll(&mut self) -> Result<()> {
        if self.conn.is_none() {
            let mut conn = connect::<C>(&self.url)?;
            if self.listen {
                let listening = conn.listen(self.tables.channel())?;
                self.shared.listening.store(listening, Ordering::Release);
            }
            self.conn = Some(conn);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let record = store::read_phase(conn, &self.tables, &self.migration)?.ok_or_else(|| {
            Error::UnknownMigration {
                migration: self.migration.clone(),
                table: self.tables.control().to_owned(),
            }
        })?;
        let applied = self.shared.epoch.load(Ordering::Acquire);
        if record.epoch != applied || record.pattern != self.switch.get() {
            let from = self.switch.apply(record.pattern);
            self.shared.epoch.store(record.epoch, Ordering::Release);
            tracing::info!(target: "diesel_rw::control", migration = %self.migration, %from, to = %record.pattern, epoch = record.epoch, by = %record.changed_by, "phase applied from the control table");
        }
        if let Ok(mut t) = self.shared.last_read.lock() {
            *t = Instant::now();
        }
        store::heartbeat(
            conn,
            &self.tables,
            &self.migration,
            &self.me,
            record.pattern,
            record.epoch,
        )
    }
}

/// A connection to the control database, with a bounded connect on PostgreSQL and each
/// statement bounded on the servers that can (so a hung read shows in the status).
fn connect<C: MigrateConnection>(url: &str) -> Result<C> {
    let url = with_connect_timeout::<C>(url);
    let mut conn =
        C::establish(&url).map_err(|e| Error::Config(crate::url::redact(&e.to_string())))?;
    let setup = match C::DIALECT {
        crate::migrate::Dialect::Postgres => "SET statement_timeout = 5000",
        crate::migrate::Dialect::Mysql => "SET SESSION max_statement_time = 5",
        crate::migrate::Dialect::Sqlite => "PRAGMA busy_timeout = 5000",
    };
    if let Err(e) = conn.batch_execute(setup) {
        // MySQL has no `max_statement_time` (MariaDB's); its statements stay unbounded.
        if C::DIALECT != crate::migrate::Dialect::Mysql {
            return Err(e.into());
        }
    }
    Ok(conn)
}

fn with_connect_timeout<C: MigrateConnection>(url: &str) -> String {
    if C::DIALECT != crate::migrate::Dialect::Postgres
        || url.contains("connect_timeout")
        || !url.contains("://")
    {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout=5")
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

fn default_instance_id() -> String {
    format!(
        "{}-{}-{:04x}",
        host_name(),
        std::process::id(),
        fastrand::u16(..)
    )
}
