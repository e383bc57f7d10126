//! The application's functions that write: [`WritingFunctions`], the set a pool's
//! classification consults, learned from the database's catalog and named by the builder.
//!
//! A `SELECT f(...)` of a function that writes is a write, but the SQL text does not show that
//! `f` writes. The built-in functions that do are listed ([`WRITE_FUNCTIONS`]); the application's
//! own are learned from the catalog of the primary:
//!
//! * PostgreSQL: the functions that are `VOLATILE` (`pg_proc.provolatile = 'v'`) outside
//!   `pg_catalog` and `information_schema` (a `VOLATILE` function may write; `STABLE` and
//!   `IMMUTABLE` ones cannot, as PostgreSQL refuses a write in them);
//! * MySQL/MariaDB: the stored functions whose `information_schema.ROUTINES.SQL_DATA_ACCESS` is
//!   `MODIFIES SQL DATA`, or `CONTAINS SQL`, what a function declared without a data-access
//!   characteristic gets (the server does not enforce the characteristics, so only `NO SQL` and
//!   `READS SQL DATA` are taken as the author's word that it reads).
//!
//! A pool learns its set when it hands out its first connection (which waits for that, at most
//! the primary's checkout timeout), again in the background (a thread, or a tokio task for the
//! async pool, with a connection of its own) when it hands out a connection once the
//! [`writing_functions_refresh`](crate::RwPoolBuilder::writing_functions_refresh) interval has
//! passed (5 s after a failed attempt), and on
//! [`RwPool::refresh_writing_functions`](crate::RwPool::refresh_writing_functions): never per
//! statement. Until the first learning ends (or when it fails) calls are classified with what
//! the set holds, as [`classify_sql_in`](crate::classify_sql_in) does for the unnamed ones. A
//! connection made by `RwConnection::establish`, without a pool, learns nothing. The builder's [`writing_functions`](crate::RwPoolBuilder::writing_functions) adds
//! names of its own (functions the catalog does not tell, such as a `STABLE` function that calls
//! a `VOLATILE` one, or any function on SQLite).
//!
//! [`WRITE_FUNCTIONS`]: crate::WRITE_FUNCTIONS

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use diesel::connection::LoadConnection;

use crate::backend::RwBackend;
use crate::error::Error;

/// A set of the application's functions whose call makes a statement a write (see the module
/// documentation of [`crate::functions`]): named, learned from a database's catalog, or both.
///
/// Cloning is cheap and shares the set: a pool's connections all see what it learns. Names
/// are compared ASCII case-insensitively. A name without a schema (`"audit_log"`) matches a call
/// of that name in any schema (`audit_log(...)`, `app.audit_log(...)`); a name with one
/// (`"app.bump"`) matches `app.bump(...)` and the unqualified `bump(...)` (which the search path
/// may resolve to it), not `other.bump(...)`.
///
/// ```
/// use diesel_rw::{classify_sql_with, SqlDialect, StatementKind, WritingFunctions};
///
/// let functions = WritingFunctions::new(["audit_log", "app.bump"]);
/// let kind = |sql| classify_sql_with(sql, SqlDialect::Postgres, &functions);
/// assert_eq!(kind("SELECT audit_log('login')"), StatementKind::Write);
/// assert_eq!(kind("SELECT * FROM app.bump(3)"), StatementKind::Write);
/// assert_eq!(kind("SELECT bump(3)"), StatementKind::Write);
/// assert_eq!(kind("SELECT other.bump(3)"), StatementKind::Read);
/// assert_eq!(kind("SELECT lower(name) FROM users"), StatementKind::Read);
/// ```
#[derive(Clone)]
pub struct WritingFunctions {
    inner: Arc<Inner>,
}

struct Inner {
    /// The names given by the builder (or [`WritingFunctions::new`]).
    named: Names,
    /// `named` and the last catalog learned, together.
    all: RwLock<Names>,
    /// Whether `all` holds anything: the fast path when it does not is one load.
    any: AtomicBool,
    /// Incremented whenever `all` changes.
    generation: AtomicU64,
    /// Learning from the catalog, if the pool does.
    learning: Option<Learning>,
}

/// When a pool learns its catalog.
struct Learning {
    /// How often it learns again; `None`: once (and on an explicit refresh).
    refresh: Option<Duration>,
    /// How long the first connections wait for the first learning.
    first_wait: Duration,
    state: Mutex<LearnState>,
    /// Signalled when a learning ends.
    ended: Condvar,
    /// The first learning ended, or its wait is over: nothing waits any more.
    settled: AtomicBool,
    /// Nanoseconds after `epoch` when a learning is next due (`u64::MAX`: never).
    due: AtomicU64,
    epoch: Instant,
}

#[derive(Default)]
struct LearnState {
    /// A learning is under way.
    running: bool,
    /// When the first learning started.
    first_started: Option<Instant>,
    /// How many learnings ended (well or not).
    ended: u64,
}

/// How long after a failed learning it is tried again (unless the refresh interval is shorter).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

impl fmt::Debug for WritingFunctions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WritingFunctions")
            .field("names", &self.names())
            .field("generation", &self.generation())
            .finish()
    }
}

impl Default for WritingFunctions {
    fn default() -> Self {
        WritingFunctions::new(std::iter::empty::<&str>())
    }
}

impl WritingFunctions {
    /// A set of the functions named (`"name"` or `"schema.name"`), which learns nothing by
    /// itself ([`learn_from`](Self::learn_from) adds a catalog).
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::build(names, None)
    }

    /// A pool's set: `names`, and the catalog learned every `refresh` (or once) when
    /// `learn`; the first connections wait up to `first_wait` for the first learning.
    pub(crate) fn for_pool<I, S>(
        names: I,
        learn: bool,
        refresh: Option<Duration>,
        first_wait: Duration,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let learning = learn.then(|| Learning {
            refresh,
            first_wait,
            state: Mutex::default(),
            ended: Condvar::new(),
            settled: AtomicBool::new(false),
            due: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        Self::build(names, learning)
    }

    fn build<I, S>(names: I, learning: Option<Learning>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut named = Names::default();
        for name in names {
            named.add_spec(name.as_ref());
        }
        WritingFunctions {
            inner: Arc::new(Inner {
                any: AtomicBool::new(!named.is_empty()),
                all: RwLock::new(named.clone()),
                named,
                generation: AtomicU64::new(0),
                learning,
            }),
        }
    }

    /// Replaces what was learned from a catalog with the functions that may write according to
    /// `conn`'s database (see the module documentation of [`crate::functions`]); the named
    /// functions stay. Returns how many functions the catalog named. A backend without a
    /// catalog of functions (SQLite) learns nothing.
    pub fn learn_from<C>(&self, conn: &mut C) -> Result<usize, Error>
    where
        C: LoadConnection,
        C::Backend: RwBackend,
    {
        let Some(catalog) = <C::Backend as RwBackend>::FUNCTION_CATALOG else {
            return Ok(0);
        };
        if !catalog.setup.is_empty() {
            conn.batch_execute(catalog.setup)?;
        }
        let answer = <C::Backend as RwBackend>::query_text(conn, catalog.query)?;
        Ok(self.set_learned(answer.as_deref().unwrap_or("")))
    }

    /// Replaces the learned functions with the catalog answer `answer` (lines of
    /// `schema<TAB>name`); returns how many it names.
    pub(crate) fn set_learned(&self, answer: &str) -> usize {
        let mut all = self.inner.named.clone();
        let mut count = 0;
        for line in answer.lines().filter(|l| !l.trim().is_empty()) {
            match line.split_once('\t') {
                Some((schema, name)) => all.add(Some(schema), name),
                None => all.add(None, line),
            }
            count += 1;
        }
        let any = !all.is_empty();
        *self.inner.all.write().unwrap_or_else(|e| e.into_inner()) = all;
        self.inner.any.store(any, Ordering::Release);
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        count
    }

    /// Whether a call of `name` (`"name"` or `"schema.name"`) is a write.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        match name.rsplit_once('.') {
            Some((schema, name)) => self.matches(Some(schema), name),
            None => self.matches(None, name),
        }
    }

    /// Every function of the set, as `schema.name` (learned) or `name`, lower case, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let all = self.inner.all.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = all
            .0
            .iter()
            .flat_map(|(name, schemas)| match schemas {
                Schemas::Any => vec![name.to_string()],
                Schemas::Of(list) => list.iter().map(|s| format!("{s}.{name}")).collect(),
            })
            .collect();
        names.sort();
        names
    }

    /// How many times the set has changed (each learning counts): a set of another generation
    /// may classify a statement differently.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Whether the set holds nothing (then no call is a write by it).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        !self.inner.any.load(Ordering::Acquire)
    }

    /// Whether a call of `name`, qualified by `schema`, is a write.
    pub(crate) fn matches(&self, schema: Option<&str>, name: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        self.inner
            .all
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .matches(schema, name)
    }

    /// Whether any of `calls` is a write.
    pub(crate) fn calls_any(&self, calls: &[Call]) -> bool {
        if calls.is_empty() || self.is_empty() {
            return false;
        }
        let all = self.inner.all.read().unwrap_or_else(|e| e.into_inner());
        calls
            .iter()
            .any(|c| all.matches(c.schema.as_deref(), &c.name))
    }

    /// Runs `f` with a matcher over the set as it is now (one lock for a whole text).
    pub(crate) fn with_matcher<R>(
        &self,
        f: impl FnOnce(&dyn Fn(Option<&str>, &str) -> bool) -> R,
    ) -> R {
        let all = self.inner.all.read().unwrap_or_else(|e| e.into_inner());
        f(&|schema, name| all.matches(schema, name))
    }

    /// Whether this set learns from a catalog.
    pub(crate) fn learns(&self) -> bool {
        self.inner.learning.is_some()
    }

    /// Claims the next learning if one is due and none is under way: the caller then learns
    /// and reports with [`Self::learned`]. Cheap when none is due (two loads and a clock read).
    pub(crate) fn claim_due(&self) -> bool {
        let Some(learning) = &self.inner.learning else {
            return false;
        };
        let now = learning.epoch.elapsed().as_nanos() as u64;
        if now < learning.due.load(Ordering::Acquire) {
            return false;
        }
        self.claim(learning)
    }

    /// Claims a learning now (an explicit refresh), unless one is under way; `false` if the set
    /// does not learn or one is under way (then wait for it with [`Self::wait_running`]).
    pub(crate) fn claim_now(&self) -> bool {
        match &self.inner.learning {
            Some(learning) => self.claim(learning),
            None => false,
        }
    }

    fn claim(&self, learning: &Learning) -> bool {
        let mut state = learning.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.running {
            return false;
        }
        state.running = true;
        state.first_started.get_or_insert_with(Instant::now);
        // Not due again while this one runs.
        learning.due.store(u64::MAX, Ordering::Release);
        true
    }

    /// Reports the end of a claimed learning: the catalog's answer, or why there is none;
    /// returns how many functions the catalog named, or that error.
    pub(crate) fn learned(&self, answer: Result<Option<String>, Error>) -> Result<usize, Error> {
        let Some(learning) = &self.inner.learning else {
            return answer.map(|_| 0);
        };
        let (result, next) = match answer {
            Ok(answer) => {
                let count = self.set_learned(answer.as_deref().unwrap_or(""));
                tracing::debug!(target: "diesel_rw", functions = count, "learned the functions that write");
                (Ok(count), learning.refresh)
            }
            Err(e) => {
                tracing::warn!(
                    target: "diesel_rw",
                    error = %e,
                    "could not learn the functions that write from the primary's catalog; \
                     calls of the application's functions are classified without it until a \
                     later attempt succeeds"
                );
                let retry = learning
                    .refresh
                    .map_or(RETRY_AFTER_FAILURE, |r| r.min(RETRY_AFTER_FAILURE));
                (Err(e), Some(retry))
            }
        };
        let mut state = learning.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running = false;
        state.ended += 1;
        let due = next.map_or(u64::MAX, |after| {
            (learning.epoch.elapsed() + after).as_nanos() as u64
        });
        learning.due.store(due, Ordering::Release);
        learning.settled.store(true, Ordering::Release);
        learning.ended.notify_all();
        result
    }

    /// Blocks until the first learning ended, at most until its wait is over (from when it
    /// started). Returns at once once that happened.
    pub(crate) fn wait_first(&self) {
        let Some(learning) = &self.inner.learning else {
            return;
        };
        if learning.settled.load(Ordering::Acquire) {
            return;
        }
        let mut state = learning.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.ended == 0 {
            let Some(left) = self.first_wait_left(learning, &state) else {
                break;
            };
            state = learning
                .ended
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        learning.settled.store(true, Ordering::Release);
    }

    /// What is left of the first learning's wait; `None` if it is over (or no learning began).
    fn first_wait_left(&self, learning: &Learning, state: &LearnState) -> Option<Duration> {
        let started = state.first_started?;
        learning
            .first_wait
            .checked_sub(started.elapsed())
            .filter(|left| !left.is_zero())
    }

    /// Whether the first connections no longer wait for the first learning (see
    /// [`Self::wait_first`]); for the async pools, which poll it.
    pub(crate) fn first_wait_over(&self) -> bool {
        let Some(learning) = &self.inner.learning else {
            return true;
        };
        if learning.settled.load(Ordering::Acquire) {
            return true;
        }
        let state = learning.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.ended > 0 || self.first_wait_left(learning, &state).is_none() {
            learning.settled.store(true, Ordering::Release);
            return true;
        }
        false
    }

    /// Blocks until the learning under way (if any) ends, at most `limit`.
    pub(crate) fn wait_running(&self, limit: Duration) {
        let Some(learning) = &self.inner.learning else {
            return;
        };
        let start = Instant::now();
        let mut state = learning.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.running {
            let Some(left) = limit.checked_sub(start.elapsed()) else {
                return;
            };
            state = learning
                .ended
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A call of a function in a statement: its name and schema as written, lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) schema: Option<Box<str>>,
    pub(crate) name: Box<str>,
}

impl Call {
    pub(crate) fn new(schema: Option<&str>, name: &str) -> Self {
        Call {
            schema: schema.map(|s| s.to_ascii_lowercase().into_boxed_str()),
            name: name.to_ascii_lowercase().into_boxed_str(),
        }
    }
}

/// Which schemas a function name is a write in.
#[derive(Clone, Debug)]
enum Schemas {
    /// Any (a name given without a schema).
    Any,
    /// These (lower case).
    Of(Vec<Box<str>>),
}

/// Function name (lower case) -> the schemas in which it writes.
#[derive(Clone, Debug, Default)]
struct Names(HashMap<Box<str>, Schemas>);

impl Names {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `"name"` or `"schema.name"`.
    fn add_spec(&mut self, spec: &str) {
        let spec = spec.trim();
        match spec.rsplit_once('.') {
            Some((schema, name)) => self.add(Some(schema), name),
            None => self.add(None, spec),
        }
    }

    fn add(&mut self, schema: Option<&str>, name: &str) {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return;
        }
        let entry = self.0.entry(name.into_boxed_str());
        match schema.map(str::trim).filter(|s| !s.is_empty()) {
            None => *entry.or_insert(Schemas::Any) = Schemas::Any,
            Some(schema) => {
                let schema = schema.to_ascii_lowercase().into_boxed_str();
                match entry.or_insert_with(|| Schemas::Of(Vec::new())) {
                    Schemas::Any => {}
                    Schemas::Of(list) => {
                        if !list.contains(&schema) {
                            list.push(schema);
                        }
                    }
                }
            }
        }
    }

    fn matches(&self, schema: Option<&str>, name: &str) -> bool {
        let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.0.get(name.to_ascii_lowercase().as_str())
        } else {
            self.0.get(name)
        };
        match (found, schema) {
            (None, _) => false,
            (Some(Schemas::Any), _) | (Some(Schemas::Of(_)), None) => true,
            (Some(Schemas::Of(list)), Some(schema)) => {
                list.iter().any(|s| s.eq_ignore_ascii_case(schema))
            }
        }
    }
}

/// How a backend lists the functions that may write (see the module documentation of
/// [`crate::functions`]).
#[derive(Clone, Copy, Debug)]
pub struct FunctionCatalog {
    /// Run first on the same connection (empty for nothing): MySQL raises
    /// `group_concat_max_len`.
    pub setup: &'static str,
    /// One row, one text column named `value`: lines of `schema<TAB>name`.
    pub query: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_by_schema() {
        let f = WritingFunctions::new(["audit_log", "app.bump", "  "]);
        assert!(f.matches(None, "audit_log"));
        assert!(f.matches(Some("x"), "AUDIT_LOG"));
        assert!(f.matches(None, "bump"));
        assert!(f.matches(Some("APP"), "bump"));
        assert!(!f.matches(Some("other"), "bump"));
        assert!(!f.matches(None, "lower"));
        assert!(f.contains("app.bump"));
        assert_eq!(f.names(), ["app.bump", "audit_log"]);
    }

    #[test]
    fn learning_replaces_the_catalog_and_keeps_the_names() {
        let f = WritingFunctions::new(["audit_log"]);
        assert_eq!(f.set_learned("public\tf1\napp\tf2\n"), 2);
        assert!(f.matches(Some("public"), "f1") && f.matches(None, "f2"));
        let generation = f.generation();
        assert_eq!(f.set_learned("public\tf3"), 1);
        assert!(!f.matches(None, "f1") && f.matches(None, "f3") && f.matches(None, "audit_log"));
        assert!(f.generation() > generation);
        assert!(WritingFunctions::default().is_empty());
    }

    #[test]
    fn a_pool_set_learns_when_due_and_the_first_wait_ends() {
        let f = WritingFunctions::for_pool(
            std::iter::empty::<&str>(),
            true,
            None,
            Duration::from_secs(5),
        );
        assert!(f.claim_due());
        assert!(!f.claim_due(), "claimed twice");
        assert!(!f.first_wait_over(), "the first learning is under way");
        let g = f.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            g.learned(Ok(Some("public\tf".into()))).unwrap();
        });
        f.wait_first();
        t.join().unwrap();
        assert!(f.matches(None, "f"));
        assert!(f.first_wait_over());
        assert!(!f.claim_due(), "no refresh interval: learned once");
        assert!(f.claim_now());
        assert!(f.learned(Err(Error::Config("down".into()))).is_err());
        assert!(f.matches(None, "f"), "a failed learning keeps the last set");
    }
}
