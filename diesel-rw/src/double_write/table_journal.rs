//! The durable journal: [`TableJournal`], a journal that writes its entries to a table.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::journal::{Journal, JournalEntry};
use super::statement_keys::{written_keys_with, written_table};
use crate::error::{Error, Result};
use crate::migrate::journal::{self as store, JournalRow};
use crate::migrate::{MigrateConnection, TableSpec};

/// Counters of a [`TableJournal`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableJournalStats {
    /// Entries written to the table.
    pub written: u64,
    /// Attempts to write an entry that failed (the journal database down or refusing); the
    /// entry stayed in the backlog.
    pub failed: u64,
    /// `record` calls that returned before the journal's thread answered (the journal
    /// database hung or slow); the entry stayed queued.
    pub unconfirmed: u64,
    /// Entries dropped because the backlog was full (lost from the journal; still in the
    /// `tracing` events).
    pub dropped: u64,
    /// Entries not written yet (queued or in the backlog).
    pub backlog: usize,
}

#[derive(Default)]
struct Shared {
    written: AtomicU64,
    failed: AtomicU64,
    unconfirmed: AtomicU64,
    dropped: AtomicU64,
    /// Entries handed to the thread and not written yet.
    backlog: AtomicUsize,
    /// A `record` gave up waiting and the thread has not finished a job since.
    stalled: AtomicBool,
}

enum Job {
    Entry(
        Box<JournalEntry>,
        Option<mpsc::SyncSender<std::result::Result<(), String>>>,
    ),
    Flush(mpsc::SyncSender<std::result::Result<(), String>>),
}

/// The durable journal: a [`Journal`] that writes each [`JournalEntry`] to a table
/// ([`JOURNAL_TABLE`](crate::migrate::journal::JOURNAL_TABLE), schema in
/// [`migrate::journal`](crate::migrate::journal)) before the write that produced it returns.
///
/// The table lives on the source database by default (pass the source's URL), or anywhere
/// else (another URL of the same backend). The journal keeps a connection of its own to it,
/// on a thread of its own, so that a statement of the double write never waits on the
/// journal database for longer than [`TableJournalBuilder::timeout`]:
///
/// - `record` hands the entry to the journal's thread, which writes it (connecting first if
///   needed) and answers; `record` waits up to the timeout (default 5 s) for that answer. When
///   it returns without an error logged, the entry is in the table.
/// - **The journal database down or failing**: the entry stays in an in-memory backlog
///   (bounded: [`TableJournalBuilder::backlog`], default 100 000 entries), is counted
///   ([`TableJournalStats::failed`]) and logged at ERROR (target `diesel_rw::double_write`,
///   with the entry), and the write that produced it proceeds as it would without a journal.
///   The backlog is written, oldest first, as soon as the journal database answers again (the
///   thread tries again at most every [`TableJournalBuilder::retry_interval`], default 1 s, and
///   at each new entry after that). A backlog that overflows drops its oldest entry, counted in
///   [`TableJournalStats::dropped`] and logged at ERROR. The backlog is memory: a process that
///   ends with entries in it loses them (see [`TableJournal::flush`]); the incremental verify
///   since the last clean run (a "changed at" column) still finds their rows.
/// - **The journal database hung** (it accepts and never answers): `record` returns after the
///   timeout, counted in [`TableJournalStats::unconfirmed`] and logged; while the thread is
///   still stuck, the next entries are queued without waiting (each counted as unconfirmed),
///   so a hung journal costs one timeout, not one per write.
///
/// The journal's connection is a blocking (sync diesel) one, also under an
/// `AsyncDoubleWrite`: there `record` blocks the task's
/// thread while the entry is written (one round trip; at most the timeout).
///
/// Each entry row names the table the statement wrote and, when the statement reveals them (as
/// literals, bind values of a statement built with diesel's DSL, or the rows a write returned),
/// the primary keys of its rows ([`statement_keys`](crate::double_write::statement_keys) says exactly what
/// is and is not extracted); the key columns are read from the journal database's catalog
/// (the source's, by default) or given with [`TableJournalBuilder::key`].
///
/// ```no_run
/// # #[cfg(feature = "postgres")] fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::PgConnection;
/// use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch, TableJournal};
///
/// let (src, dst) = ("postgres://app@127.0.0.1:55432/app", "postgres://app@127.0.0.1:55434/app");
/// // Entries go to `diesel_rw_journal` on the source (created if absent).
/// let journal = std::sync::Arc::new(TableJournal::<PgConnection>::builder(src).build()?);
/// let pool = DoubleWrite::<PgConnection>::builder()
///     .source(src)
///     .destination(dst)
///     .pattern(PatternSwitch::new(Pattern::SrcFirst))
///     .journal(journal.clone())
///     .build()?;
/// # let _ = pool;
/// // ... later: what the journal could not write yet, and what it wrote.
/// println!("{:?}", journal.stats());
/// # Ok(()) }
/// # #[cfg(not(feature = "postgres"))] fn main() {}
/// ```
///
/// `C` is the journal database's connection type (`PgConnection`, `MysqlConnection`,
/// `SqliteConnection`), which need not be the double write's.
pub struct TableJournal<C> {
    jobs: Mutex<mpsc::Sender<Job>>,
    shared: Arc<Shared>,
    timeout: Duration,
    url_shown: String,
    _conn: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for TableJournal<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableJournal")
            .field("database", &self.url_shown)
            .field("timeout", &self.timeout)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Configures a [`TableJournal`].
#[derive(Clone)]
pub struct TableJournalBuilder<C> {
    url: String,
    timeout: Duration,
    connect_timeout: Duration,
    retry_interval: Duration,
    backlog: usize,
    keys: HashMap<String, Vec<String>>,
    _conn: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for TableJournalBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableJournalBuilder")
            .field("database", &crate::url::redact(&self.url))
            .field("timeout", &self.timeout)
            .field("backlog", &self.backlog)
            .finish_non_exhaustive()
    }
}

impl<C: MigrateConnection> TableJournalBuilder<C> {
    /// How long `record` waits for the entry to be written (default 5 s); also the longest
    /// [`build`](Self::build) waits to connect.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connect timeout given to the driver where it takes one (PostgreSQL
    /// `connect_timeout`, added to a URL that has none; default 5 s, whole seconds, at least 1).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The least time between two attempts to reach a journal database that failed
    /// (default 1 s).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// The most entries kept in memory while the journal database is down (default 100 000,
    /// at least 1).
    pub fn backlog(mut self, entries: usize) -> Self {
        self.backlog = entries.max(1);
        self
    }

    /// The key columns of `table` (as statements name it), in key order, instead of the
    /// journal database's catalog (for a journal on another database than the source).
    pub fn key<I, S>(mut self, table: impl Into<String>, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys
            .insert(table.into(), columns.into_iter().map(Into::into).collect());
        self
    }

    /// Starts the journal's thread, connects and creates the table if absent.
    ///
    /// Errors: [`Error::InvalidState`] naming why if the journal database cannot be reached
    /// or the table cannot be created, [`Error::Timeout`] if it does not answer within the
    /// timeout.
    pub fn build(self) -> Result<TableJournal<C>> {
        let shown = crate::url::redact(&self.url);
        let url = with_connect_timeout::<C>(&self.url, self.connect_timeout);
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let mut worker = Worker::<C> {
            url,
            shown: shown.clone(),
            conn: None,
            backlog: VecDeque::new(),
            capacity: self.backlog,
            keys: self
                .keys
                .into_iter()
                .map(|(t, k)| (t, Some((None, k))))
                .collect(),
            shared: shared.clone(),
            retry_interval: self.retry_interval,
            failed_at: None,
        };
        std::thread::Builder::new()
            .name("diesel-rw-journal".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| Error::Config(format!("cannot start the journal's thread: {e}")))?;
        let journal = TableJournal {
            jobs: Mutex::new(tx),
            shared,
            timeout: self.timeout,
            url_shown: shown,
            _conn: PhantomData,
        };
        journal.flush(self.timeout)?;
        Ok(journal)
    }
}

/// `url` with a PostgreSQL `connect_timeout` when it has none.
fn with_connect_timeout<C: MigrateConnection>(url: &str, timeout: Duration) -> String {
    if C::DIALECT != crate::migrate::Dialect::Postgres
        || url.contains("connect_timeout")
        || !url.contains("://")
    {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={}", timeout.as_secs().max(1))
}

impl<C: MigrateConnection> TableJournal<C> {
    /// A builder for a journal on the database at `url` (the source's, by default).
    pub fn builder(url: impl Into<String>) -> TableJournalBuilder<C> {
        TableJournalBuilder {
            url: url.into(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            retry_interval: Duration::from_secs(1),
            backlog: 100_000,
            keys: HashMap::new(),
            _conn: PhantomData,
        }
    }

    /// A journal on the database at `url`, with the defaults (see [`builder`](Self::builder)).
    pub fn new(url: impl Into<String>) -> Result<TableJournal<C>> {
        Self::builder(url).build()
    }
}

impl<C> TableJournal<C> {
    /// Its counters.
    pub fn stats(&self) -> TableJournalStats {
        let s = &self.shared;
        TableJournalStats {
            written: s.written.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            unconfirmed: s.unconfirmed.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            backlog: s.backlog.load(Ordering::Relaxed),
        }
    }

    fn send(&self, job: Job) -> bool {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job)
            .is_ok()
    }

    /// Waits up to `timeout` until every entry recorded so far is in the table (e.g. before
    /// the process exits).
    ///
    /// Errors: [`Error::InvalidState`] naming why the backlog could not be written;
    /// [`Error::Timeout`] if the journal database did not answer in time.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let (ack, answer) = mpsc::sync_channel(1);
        if !self.send(Job::Flush(ack)) {
            return Err(Error::InvalidState(
                "the journal's thread has ended".to_owned(),
            ));
        }
        match answer.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::InvalidState(format!(
                "the durable journal at `{}` could not be written: {e}; check that its database is up and reachable (the entries stay in memory and are written when it answers)",
                self.url_shown
            ))),
            Err(_) => Err(Error::Timeout {
                node: self.url_shown.clone(),
                after: timeout,
                maybe_applied: false,
            }),
        }
    }
}

impl<C: MigrateConnection> Journal for TableJournal<C> {
    fn record(&self, entry: JournalEntry) {
        let shared = &self.shared;
        shared.backlog.fetch_add(1, Ordering::Relaxed);
        if shared.stalled.load(Ordering::Relaxed) {
            // The thread is stuck on a hung journal database: queue without waiting.
            shared.unconfirmed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                target: "diesel_rw::double_write",
                journal = %self.url_shown,
                backlog = shared.backlog.load(Ordering::Relaxed),
                sql = %entry.sql,
                "journal database not answering: entry queued, not written yet"
            );
            self.send(Job::Entry(Box::new(entry), None));
            return;
        }
        let (ack, answer) = mpsc::sync_channel(1);
        let sql = entry.sql.clone();
        if !self.send(Job::Entry(Box::new(entry), Some(ack))) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(target: "diesel_rw::double_write", journal = %self.url_shown, sql = %sql,
                "the journal's thread has ended: entry lost");
            return;
        }
        match answer.recv_timeout(self.timeout) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(
                    target: "diesel_rw::double_write",
                    journal = %self.url_shown,
                    backlog = shared.backlog.load(Ordering::Relaxed),
                    sql = %sql,
                    error = %error,
                    "journal database unavailable: entry kept in memory, written when it answers"
                );
            }
            Err(_) => {
                shared.stalled.store(true, Ordering::Relaxed);
                shared.unconfirmed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    target: "diesel_rw::double_write",
                    journal = %self.url_shown,
                    timeout_ms = self.timeout.as_millis() as u64,
                    sql = %sql,
                    "journal database did not answer in time: entry queued, not written yet"
                );
            }
        }
    }
}

/// What the journal knows of a table: its catalog name (if read there) and key columns;
/// `None`: no key known.
type KnownKey = Option<(Option<String>, Vec<String>)>;

/// The journal's thread: its connection and the entries not written yet.
struct Worker<C> {
    url: String,
    shown: String,
    conn: Option<C>,
    backlog: VecDeque<JournalEntry>,
    capacity: usize,
    /// Per table as statements name it.
    keys: HashMap<String, KnownKey>,
    shared: Arc<Shared>,
    retry_interval: Duration,
    /// When the last attempt failed.
    failed_at: Option<Instant>,
}

impl<C: MigrateConnection> Worker<C> {
    fn run(&mut self, jobs: mpsc::Receiver<Job>) {
        loop {
            let job = if self.backlog.is_empty() {
                match jobs.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                }
            } else {
                match jobs.recv_timeout(self.retry_interval) {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        let _ = self.drain(true);
                        return;
                    }
                }
            };
            let (result, ack) = match job {
                Some(Job::Entry(entry, ack)) => {
                    if self.backlog.len() >= self.capacity {
                        let lost = self.backlog.pop_front();
                        self.shared.backlog.fetch_sub(1, Ordering::Relaxed);
                        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            target: "diesel_rw::double_write",
                            journal = %self.shown,
                            sql = %lost.map(|e| e.sql).unwrap_or_default(),
                            "journal backlog full: oldest entry dropped"
                        );
                    }
                    self.backlog.push_back(*entry);
                    (self.drain(false), ack)
                }
                Some(Job::Flush(ack)) => (self.drain(true), Some(ack)),
                None => (self.drain(false), None),
            };
            self.shared.stalled.store(false, Ordering::Relaxed);
            if let Some(ack) = ack {
                let _ = ack.send(result);
            }
        }
    }

    /// Writes the backlog, oldest first; `now`: even within the retry interval of a failure.
    fn drain(&mut self, now: bool) -> std::result::Result<(), String> {
        if self.backlog.is_empty() {
            if self.conn.is_none() && now {
                // A flush with nothing to write checks the database (`build`).
                return self.connect().map(|_| ());
            }
            return Ok(());
        }
        if let (Some(at), false) = (self.failed_at, now) {
            if at.elapsed() < self.retry_interval {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                return Err(format!(
                    "it failed {} ms ago; {} entries waiting",
                    at.elapsed().as_millis(),
                    self.backlog.len()
                ));
            }
        }
        while let Some(entry) = self.backlog.front().cloned() {
            let written = self.write(&entry);
            match written {
                Ok(()) => {
                    self.backlog.pop_front();
                    self.shared.backlog.fetch_sub(1, Ordering::Relaxed);
                    self.shared.written.fetch_add(1, Ordering::Relaxed);
                    self.failed_at = None;
                }
                Err(e) => {
                    self.conn = None;
                    self.failed_at = Some(Instant::now());
                    self.shared.failed.fetch_add(1, Ordering::Relaxed);
                    return Err(e.to_string());
                }
            }
        }
        Ok(())
    }

    fn connect(&mut self) -> std::result::Result<&mut C, String> {
        if self.conn.is_none() {
            let mut conn =
                C::establish(&self.url).map_err(|e| crate::url::redact(&e.to_string()))?;
            if C::DIALECT == crate::migrate::Dialect::Sqlite {
                // The database file is the double write's too: wait for its writes.
                conn.batch_execute("PRAGMA busy_timeout = 5000")
                    .map_err(|e| e.to_string())?;
            }
            store::create_table(&mut conn).map_err(|e| e.to_string())?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    fn write(&mut self, entry: &JournalEntry) -> std::result::Result<(), String> {
        let table = written_table(&entry.sql);
        let (name, keys) = match &table {
            Some(t) => {
                let known = self.key_of(t)?;
                match known {
                    Some((catalog, key)) => (
                        Some(catalog.unwrap_or_else(|| t.clone())),
                        written_keys_with(&entry.sql, &key, &entry.revealed),
                    ),
                    None => (Some(t.clone()), None),
                }
            }
            None => (None, None),
        };
        let row = JournalRow {
            id: 0,
            recorded_at: String::new(),
            table: name,
            kind: entry.kind,
            side: entry.side,
            pattern: entry.pattern,
            in_transaction: entry.in_transaction,
            keys,
            statement: entry.sql.clone(),
            error: entry.error.clone(),
            done_at: None,
        };
        let conn = self.connect()?;
        store::insert(conn, &row).map_err(|e| e.to_string())
    }

    /// The catalog name and key columns of `table`, read once from the journal database.
    fn key_of(&mut self, table: &str) -> std::result::Result<KnownKey, String> {
        if let Some(known) = self.keys.get(table) {
            return Ok(known.clone());
        }
        let conn = self.connect()?;
        let known = match TableSpec::new(table).describe(conn) {
            Ok(t) => Some((Some(t.name.clone()), t.key_names())),
            Err(Error::UnknownTable { .. } | Error::NoPrimaryKey { .. }) => None,
            Err(e) => return Err(e.to_string()),
        };
        self.keys.insert(table.to_owned(), known.clone());
        Ok(known)
    }
}
