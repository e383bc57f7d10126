//! Backfill: copies the rows of a source table into the destination in primary-key keyset
//! chunks, while the application keeps writing through the double write under `SrcFirst`.
//!
//! - **Insert-if-absent**: a row already on the destination (written by the double write, or
//!   copied before) is never overwritten (PostgreSQL `ON CONFLICT (key) DO NOTHING`, MariaDB
//!   `ON DUPLICATE KEY UPDATE k = k` on rows not already there, SQLite
//!   `ON CONFLICT (key) DO NOTHING`): other errors (a NOT NULL or CHECK violation) still fail.
//! - **No stale copy**: each chunk is read under a share lock on the source rows (PostgreSQL
//!   `FOR SHARE`, MariaDB `LOCK IN SHARE MODE`, SQLite `BEGIN IMMEDIATE`) held until the
//!   destination has committed the chunk, so an update or delete of a row being copied waits
//!   and then reaches a destination that has the row: it is never lost under an older copy.
//! - **Resumable**: the [checkpoint](super::checkpoint) is written in the destination's
//!   transaction of each chunk; a run killed at any point resumes after the last committed
//!   chunk and copies each row once.
//! - **Throttled**: a target time per chunk adapts the chunk size; a pause between chunks.
//! - **Observable**: a `tracing` event per chunk (target `diesel_rw::migrate`, INFO) and a
//!   progress callback, with rows copied, rows/s and an ETA.
//!
//! Row data crosses the client as one JSON document per chunk, rendered by the source and
//! parsed by the destination (see [`Dialect`]), so every type arrives as the
//! server wrote it: numeric scale, time zones, binary, JSON, Unicode text, floats.
//!
//! One window remains, outside any transaction: a write that the source has committed and the
//! double write has not yet sent to the destination can be copied first. An insert then finds
//! its row there (a duplicate key, journaled by the double write) with the same values, and an
//! idempotent update (`SET v = 'x'`) sets what is there already; but a relative update
//! (`SET n = n + 1`) applies twice on the destination. Run relative updates in a transaction
//! during a backfill (the double write sends a transaction's statements to both sides before
//! it commits either, and the chunk's share lock waits for the source's commit), or let
//! Verify and Repair converge such rows afterwards.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

use super::checkpoint::Checkpoint;
use super::dialect::{Binds, Dialect, MigrateConnection};
use super::key::{Key, KeyRange};
use super::table::{Table, TableSpec};

/// Progress of a backfill, after each chunk.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Progress {
    /// The source table.
    pub table: String,
    /// Chunks copied in this run.
    pub chunks: u64,
    /// Rows copied (read from the source and offered to the destination), over every run.
    pub rows_copied: u64,
    /// Of those, rows inserted (the others were there already), over every run.
    pub rows_inserted: u64,
    /// Rows copied in this run.
    pub rows_this_run: u64,
    /// The last key copied.
    pub last_key: Option<Key>,
    /// Time since this run began.
    pub elapsed: Duration,
    /// Rows copied per second in this run.
    pub rows_per_sec: f64,
    /// The source's rows when the run began (`None` if not counted).
    pub total_rows: Option<u64>,
    /// The estimated time to the end, from the rows left and the rate so far.
    pub eta: Option<Duration>,
    /// The chunk size the next chunk will use.
    pub chunk_size: u64,
}

/// What a backfill run did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BackfillReport {
    /// The progress after the last chunk of this run.
    pub progress: Progress,
    /// The key this run resumed after (from the checkpoint); `None`: from the first row.
    pub resumed_after: Option<Key>,
    /// Whether the table is done (the end was reached, now or by an earlier run).
    pub done: bool,
}

/// A progress callback.
type ProgressFn = Box<dyn FnMut(&Progress) + Send>;

/// A backfill of one table: built with its options, then [`run`](Backfill::run).
///
/// ```
/// # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::connection::SimpleConnection;
/// use diesel::prelude::*;
/// use diesel_rw::migrate::Backfill;
///
/// let mut src = SqliteConnection::establish(":memory:")?;
/// let mut dst = SqliteConnection::establish(":memory:")?;
/// src.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
///                    INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")?;
/// dst.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
///                    INSERT INTO t VALUES (2, 'newer')")?;   // written by the double write
/// let report = Backfill::new("t").chunk_size(2).run(&mut src, &mut dst)?;
/// assert!(report.done);
/// assert_eq!((report.progress.rows_copied, report.progress.rows_inserted), (3, 2));
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
pub struct Backfill {
    spec: TableSpec,
    destination: Option<String>,
    checkpoint: Option<String>,
    chunk_size: u64,
    min_chunk: u64,
    max_chunk: u64,
    target_chunk_time: Option<Duration>,
    pause: Duration,
    restart: bool,
    stop_after: Option<u64>,
    count_rows: bool,
    retries: u32,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Backfill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backfill")
            .field("table", &self.spec.name())
            .field("chunk_size", &self.chunk_size)
            .field("target_chunk_time", &self.target_chunk_time)
            .field("pause", &self.pause)
            .finish_non_exhaustive()
    }
}

impl Backfill {
    /// A backfill of the table `spec` (a name, or a [`TableSpec`]) into the table of the same
    /// name on the destination; chunks of 1,000 rows adapted to a target of 500 ms each
    /// (between 50 and 20,000 rows), no pause.
    pub fn new(spec: impl Into<TableSpec>) -> Backfill {
        Backfill {
            spec: spec.into(),
            destination: None,
            checkpoint: None,
            chunk_size: 1_000,
            min_chunk: 50,
            max_chunk: 20_000,
            target_chunk_time: Some(Duration::from_millis(500)),
            pause: Duration::ZERO,
            restart: false,
            stop_after: None,
            count_rows: true,
            retries: 5,
            progress: None,
        }
    }

    /// The destination's table, when its name differs from the source's.
    pub fn destination_table(mut self, name: impl Into<String>) -> Backfill {
        self.destination = Some(name.into());
        self
    }

    /// The checkpoint's name (default: the source table's name as described, e.g.
    /// `public.accounts`). Two backfills of one table need two names.
    pub fn checkpoint_name(mut self, name: impl Into<String>) -> Backfill {
        self.checkpoint = Some(name.into());
        self
    }

    /// The first chunk's size in rows (the lower bound of [`chunk_limits`](Self::chunk_limits)
    /// comes down to it if it is smaller).
    pub fn chunk_size(mut self, rows: u64) -> Backfill {
        self.chunk_size = rows.max(1);
        self.min_chunk = self.min_chunk.min(self.chunk_size);
        self
    }

    /// The bounds within which the chunk size adapts.
    pub fn chunk_limits(mut self, min: u64, max: u64) -> Backfill {
        self.min_chunk = min.max(1);
        self.max_chunk = max.max(self.min_chunk);
        self
    }

    /// The time each chunk should take: the size grows or shrinks (at most 2x per chunk)
    /// towards it. `None`: a fixed size.
    pub fn target_chunk_time(mut self, target: Option<Duration>) -> Backfill {
        self.target_chunk_time = target;
        self
    }

    /// A pause after each chunk, to leave the servers room.
    pub fn pause(mut self, pause: Duration) -> Backfill {
        self.pause = pause;
        self
    }

    /// Discards the checkpoint and starts from the first row (rows already on the destination
    /// stay: they are skipped).
    pub fn restart(mut self, restart: bool) -> Backfill {
        self.restart = restart;
        self
    }

    /// Stops after `chunks` chunks of this run (the checkpoint says where); for a backfill
    /// spread over several runs.
    pub fn stop_after_chunks(mut self, chunks: u64) -> Backfill {
        self.stop_after = Some(chunks);
        self
    }

    /// Whether to count the source's rows first, for the ETA (default: yes; one `COUNT(*)`).
    pub fn count_rows(mut self, count: bool) -> Backfill {
        self.count_rows = count;
        self
    }

    /// How many times a chunk is tried again after a deadlock or a serialization failure
    /// (default 5).
    pub fn retries(mut self, retries: u32) -> Backfill {
        self.retries = retries;
        self
    }

    /// Calls `f` after each chunk.
    pub fn on_progress(mut self, f: impl FnMut(&Progress) + Send + 'static) -> Backfill {
        self.progress = Some(Box::new(f));
        self
    }

    /// Checks the two tables: both described, every source column that can be written is on
    /// the destination, the same key. Nothing is written.
    fn tables<C: MigrateConnection>(&self, src: &mut C, dst: &mut C) -> Result<(Table, Table)> {
        let source = self.spec.describe(src)?;
        let dst_name = self
            .destination
            .clone()
            .unwrap_or_else(|| self.spec.name().to_owned());
        let dst_spec = match self.spec.key_columns() {
            Some(key) => TableSpec::new(dst_name).key(key.iter().cloned()),
            None => TableSpec::new(dst_name),
        };
        let destination = dst_spec.describe(dst)?;
        let missing: Vec<String> = source
            .writable_columns()
            .into_iter()
            .filter(|c| destination.column(&c.name).is_none())
            .map(|c| c.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(Error::DestinationMissingColumns {
                table: destination.name,
                missing,
            });
        }
        if destination.key_names() != source.key_names() {
            return Err(Error::Config(format!(
                "the key of destination table `{}` is ({}) and the source's ({}): they must be the same columns in the same order",
                destination.name,
                destination.key_names().join(", "),
                source.key_names().join(", ")
            )));
        }
        Ok((source, destination))
    }

    /// Runs the backfill from `src` to `dst` (connections of one backend; for pools, pass
    /// `&mut *pooled`), from the checkpoint if there is one, until the end of the table (or
    /// [`stop_after_chunks`](Self::stop_after_chunks)).
    ///
    /// Errors before anything is written: [`Error::UnknownTable`], [`Error::UnknownColumn`],
    /// [`Error::NoPrimaryKey`] (either side), [`Error::DestinationMissingColumns`],
    /// [`Error::CheckpointMismatch`]. On MariaDB both sessions get `time_zone = '+00:00'` (so
    /// that `TIMESTAMP` values cross unchanged) and a large `group_concat_max_len`.
    pub fn run<C: MigrateConnection>(
        &mut self,
        src: &mut C,
        dst: &mut C,
    ) -> Result<BackfillReport> {
        self.run_inner(src, None, dst)
    }

    /// [`run`](Self::run) with a second connection to the source (e.g. a second one from the
    /// same pool), so that the next chunk is read, under its own lock and transaction, while
    /// the destination writes the current one: reading and writing overlap, on different
    /// servers. Each chunk's lock is still held until the destination has committed it. On
    /// SQLite (one writer at a time) this is [`run`](Self::run). A chunk is not run again on a
    /// deadlock in this mode: the error is returned, and the next run resumes.
    pub fn run_overlapped<C: MigrateConnection>(
        &mut self,
        src: &mut C,
        second_src: &mut C,
        dst: &mut C,
    ) -> Result<BackfillReport> {
        if C::DIALECT == Dialect::Sqlite {
            return self.run_inner(src, None, dst);
        }
        self.run_inner(src, Some(second_src), dst)
    }

    fn run_inner<C: MigrateConnection>(
        &mut self,
        src: &mut C,
        second_src: Option<&mut C>,
        dst: &mut C,
    ) -> Result<BackfillReport> {
        let setup = C::DIALECT.session_setup();
        if !setup.is_empty() {
            src.execute_binds(setup, &[])?;
            dst.execute_binds(setup, &[])?;
        }
        let (source, destination) = self.tables(src, dst)?;
        let name = self
            .checkpoint
            .clone()
            .unwrap_or_else(|| source.name.clone());
        let existing = Checkpoint::load(dst, &name)?;
        if let Some(cp) = &existing {
            cp.check(&source)?;
        }
        Checkpoint::create_table(dst)?;
        let mut cp = match existing {
            Some(_) if self.restart => {
                Checkpoint::delete(dst, &name)?;
                Checkpoint::new(&name, &source)
            }
            Some(cp) => cp,
            None => Checkpoint::new(&name, &source),
        };
        let resumed_after = cp.last_key.clone();
        let total_rows = if self.count_rows {
            count(src, &source)?
        } else {
            None
        };
        let started = Instant::now();
        let mut size = self.chunk_size.clamp(self.min_chunk, self.max_chunk);
        let mut chunks = 0u64;
        let mut this_run = 0u64;
        let progress = |cp: &Checkpoint, chunks, this_run, size| {
            let elapsed = started.elapsed();
            let rate = this_run as f64 / elapsed.as_secs_f64().max(1e-9);
            let eta = total_rows.filter(|_| rate > 0.0).map(|total| {
                let left = total.saturating_sub(cp.rows_copied);
                Duration::from_secs_f64(if cp.done { 0.0 } else { left as f64 / rate })
            });
            Progress {
                table: source.name.clone(),
                chunks,
                rows_copied: cp.rows_copied,
                rows_inserted: cp.rows_inserted,
                rows_this_run: this_run,
                last_key: cp.last_key.clone(),
                elapsed,
                rows_per_sec: rate,
                total_rows,
                eta,
                chunk_size: size,
            }
        };
        tracing::info!(
            target: "diesel_rw::migrate",
            table = %source.name,
            checkpoint = %name,
            resumed_after = %cp.last_key.as_ref().map(Key::to_string).unwrap_or_default(),
            done = cp.done,
            "backfill starts"
        );
        let mut on_progress = self.progress.take();
        let result = std::thread::scope(|scope| -> Result<()> {
            let (mut overlap, mut alone) = match second_src {
                Some(second) => {
                    if !setup.is_empty() {
                        second.execute_binds(setup, &[])?;
                    }
                    let both = [src, second];
                    (
                        Some(Overlap::start(scope, both, &source, &destination)),
                        None,
                    )
                }
                None => (None, Some(src)),
            };
            while !cp.done && self.stop_after.is_none_or(|n| chunks < n) {
                let t0 = Instant::now();
                let copied = match (&mut overlap, &mut alone) {
                    (Some(o), _) => o.step(dst, &source, &destination, &mut cp, size)?,
                    (None, Some(src)) => {
                        self.copy_chunk(&mut **src, dst, &source, &destination, &mut cp, size)?
                    }
                    (None, None) => unreachable!("one source at least"),
                };
                chunks += 1;
                this_run += copied;
                let took = t0.elapsed();
                if let Some(target) = self.target_chunk_time {
                    let factor =
                        (target.as_secs_f64() / took.as_secs_f64().max(1e-6)).clamp(0.5, 2.0);
                    size = ((size as f64 * factor) as u64).clamp(self.min_chunk, self.max_chunk);
                }
                let p = progress(&cp, chunks, this_run, size);
                tracing::info!(
                    target: "diesel_rw::migrate",
                    table = %p.table,
                    chunk = chunks,
                    rows_copied = p.rows_copied,
                    rows_inserted = p.rows_inserted,
                    rows_per_sec = p.rows_per_sec as u64,
                    eta_secs = p.eta.map(|e| e.as_secs()),
                    chunk_size = size,
                    chunk_ms = took.as_millis() as u64,
                    last_key = %p.last_key.as_ref().map(Key::to_string).unwrap_or_default(),
                    done = cp.done,
                    "backfill chunk"
                );
                if let Some(f) = &mut on_progress {
                    f(&p);
                }
                if !cp.done && !self.pause.is_zero() {
                    std::thread::sleep(self.pause);
                }
            }
            Ok(())
        });
        self.progress = on_progress;
        result?;
        let p = progress(&cp, chunks, this_run, size);
        tracing::info!(
            target: "diesel_rw::migrate",
            table = %p.table,
            rows_copied = p.rows_copied,
            rows_inserted = p.rows_inserted,
            rows_this_run = this_run,
            elapsed_ms = p.elapsed.as_millis() as u64,
            done = cp.done,
            "backfill stops"
        );
        Ok(BackfillReport {
            progress: p,
            resumed_after,
            done: cp.done,
        })
    }

    /// One chunk after the checkpoint's key, tried again on a deadlock or a serialization
    /// failure; returns the rows it copied, with `cp` advanced (and saved on `dst`).
    fn copy_chunk<C: MigrateConnection>(
        &self,
        src: &mut C,
        dst: &mut C,
        source: &Table,
        destination: &Table,
        cp: &mut Checkpoint,
        size: u64,
    ) -> Result<u64> {
        let mut attempt = 0;
        loop {
            match self.try_chunk(src, dst, source, destination, cp, size) {
                Ok(n) => return Ok(n),
                Err(Error::Database(e))
                    if attempt < self.retries && crate::double_write::transient(&e).is_some() =>
                {
                    attempt += 1;
                    tracing::warn!(target: "diesel_rw::migrate", table = %source.name, attempt, error = %e, "backfill chunk runs again");
                    std::thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn try_chunk<C: MigrateConnection>(
        &self,
        src: &mut C,
        dst: &mut C,
        source: &Table,
        destination: &Table,
        cp: &mut Checkpoint,
        size: u64,
    ) -> Result<u64> {
        let mut next = cp.clone();
        let mut rows = 0;
        read_chunk(
            src,
            source,
            destination,
            cp.last_key.as_ref(),
            size,
            |data| {
                rows = data.as_ref().map_or(0, |d| d.rows);
                dst.write_transaction(|d| apply_chunk(d, source, destination, data, &mut next))
            },
        )?;
        *cp = next;
        Ok(rows)
    }
}

/// One chunk as read from the source, on its way to the destination.
struct ChunkData {
    last: Key,
    rows: u64,
    payload: Payload,
}

/// The chunk's rows: one JSON document, or PostgreSQL records in text form.
enum Payload {
    Json(Option<String>),
    Records(Vec<String>),
}

/// PostgreSQL, when the destination's columns are the source's (same names, same order, none
/// generated): rows cross as records in PostgreSQL's own text form, which the destination
/// parses with its column types (faster than JSON), and the chunk is found, locked and read in
/// one statement.
fn records_fit(source: &Table, destination: &Table) -> bool {
    let names = |t: &Table| t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    !destination.columns.iter().any(|c| c.generated)
        && !source.columns.iter().any(|c| c.generated)
        && names(source) == names(destination)
}

/// Reads the chunk after `after` from the source under a share lock and calls `hold` with it
/// (`None`: no row follows) before the source's transaction ends: `hold` writes it to the
/// destination (or has it written), so the rows cannot change in between.
fn read_chunk<C: MigrateConnection>(
    src: &mut C,
    source: &Table,
    destination: &Table,
    after: Option<&Key>,
    size: u64,
    hold: impl FnOnce(Option<ChunkData>) -> Result<()>,
) -> Result<()> {
    let d = C::DIALECT;
    if d == Dialect::Postgres && records_fit(source, destination) {
        let mut binds = Binds::new(d);
        let range = KeyRange {
            after: after.cloned(),
            upto: None,
        };
        let predicate = source.range_predicate(&range, None, &mut binds)?;
        let cols: Vec<String> = source.columns.iter().map(|c| d.quote(&c.name)).collect();
        let outer: Vec<String> = source
            .key_columns()
            .map(|c| format!("dw_c.{}", d.quote(&c.name)))
            .collect();
        // One statement finds the chunk, locks it and reads it: a row per record, in key
        // order (the last one gives the checkpoint's key).
        let read = format!(
            "SELECT dw_c::text AS value FROM (SELECT {cols} FROM {from} WHERE {predicate} \
             ORDER BY {order} LIMIT {size} FOR SHARE) dw_c ORDER BY {outer}",
            cols = cols.join(", "),
            from = source.sql_name,
            order = source.order_by(),
            outer = outer.join(", "),
        );
        return src.locking_transaction(|s| {
            let records: Vec<String> = s
                .query_texts(&read, binds.values())?
                .into_iter()
                .flatten()
                .collect();
            let Some(last) = records.last() else {
                return hold(None);
            };
            let bad = || {
                Error::InvalidState(format!(
                    "unreadable record from `{}`: {last:.200}",
                    source.name
                ))
            };
            #[cfg(feature = "postgres")]
            let fields = super::dialect::record_fields(last).ok_or_else(bad)?;
            #[cfg(not(feature = "postgres"))]
            let fields: Vec<Option<String>> = return Err(bad());
            let key = source
                .key
                .iter()
                .map(|&i| fields.get(i).cloned().flatten().ok_or_else(bad))
                .collect::<Result<Vec<_>>>()?;
            hold(Some(ChunkData {
                last: Key::new(key),
                rows: records.len() as u64,
                payload: Payload::Records(records),
            }))
        });
    }
    // The boundary first, outside the transaction: on MariaDB (REPEATABLE READ) the
    // transaction's snapshot is then taken after the lock, by the read.
    let Some(chunk) = source.next_chunk(src, after, size)? else {
        return hold(None);
    };
    let range = KeyRange {
        after: after.cloned(),
        upto: Some(chunk.last.clone()),
    };
    let mut binds = Binds::new(d);
    let predicate = source.range_predicate(&range, None, &mut binds)?;
    let columns = source.writable_columns();
    let read = d.rows_json_sql(source, &columns, &predicate, true);
    let lock = d.lock_rows_sql(source, &predicate);
    src.locking_transaction(|s| {
        if let Some(lock) = &lock {
            s.query_texts(lock, binds.values())?;
        }
        let doc = s
            .query_texts(&read, binds.values())?
            .into_iter()
            .flatten()
            .next();
        hold(Some(ChunkData {
            last: chunk.last,
            rows: chunk.rows,
            payload: Payload::Json(doc),
        }))
    })
}

/// Inserts a chunk's rows that are absent on the destination and advances the checkpoint
/// `next` (saved), in the destination's transaction; `None`: the end, the checkpoint is done.
fn apply_chunk<C: MigrateConnection>(
    dst: &mut C,
    source: &Table,
    destination: &Table,
    data: Option<ChunkData>,
    next: &mut Checkpoint,
) -> Result<()> {
    let d = C::DIALECT;
    let Some(data) = data else {
        next.done = true;
        return next.save(dst);
    };
    let inserted = match data.payload {
        Payload::Records(records) => {
            let cols: Vec<String> = destination
                .columns
                .iter()
                .map(|c| d.quote(&c.name))
                .collect();
            let keys: Vec<String> = destination
                .key_columns()
                .map(|c| d.quote(&c.name))
                .collect();
            let insert = format!(
                "INSERT INTO {to} ({cols}) SELECT * FROM unnest(CAST($1 AS {to}[]))",
                to = destination.sql_name,
                cols = cols.join(", "),
            );
            // A plain INSERT first, in a savepoint: it is much cheaper than ON CONFLICT's
            // speculative insertion, and the chunk's rows are usually all absent. When one is
            // there (the double write's), the savepoint is rolled back and the rows are
            // inserted with ON CONFLICT DO NOTHING.
            match dst.write_transaction(|d| d.execute_text_array(&insert, &records)) {
                Ok(n) => n,
                Err(Error::Database(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ))) => dst.execute_text_array(
                    &format!("{insert} ON CONFLICT ({}) DO NOTHING", keys.join(", ")),
                    &records,
                )?,
                Err(e) => return Err(e),
            }
        }
        Payload::Json(None) => 0,
        Payload::Json(Some(doc)) => {
            let columns: Vec<_> = source
                .writable_columns()
                .iter()
                .filter_map(|c| destination.column(&c.name))
                .collect();
            let mut binds = Binds::new(d);
            let ph = binds.push(String::new());
            dst.execute_binds(&d.insert_json_sql(destination, &columns, &ph), &[doc])?
        }
    };
    next.last_key = Some(data.last);
    next.rows_copied += data.rows;
    next.rows_inserted += inserted as u64;
    next.save(dst)
}

/// The two source readers of [`Backfill::run_overlapped`]: while the destination writes the
/// chunk one of them holds (its transaction open, its rows locked), the other reads the next.
struct Overlap {
    readers: [Reader; 2],
    /// The reader with a chunk on its way, if any.
    pending: Option<usize>,
    next: usize,
}

struct Reader {
    jobs: mpsc::Sender<(Option<Key>, u64)>,
    data: mpsc::Receiver<Result<Option<ChunkData>>>,
    acks: mpsc::Sender<bool>,
    finished: mpsc::Receiver<Result<()>>,
}

impl Overlap {
    fn start<'scope, 'env, C: MigrateConnection>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        conns: [&'env mut C; 2],
        source: &'env Table,
        destination: &'env Table,
    ) -> Overlap {
        let readers = conns.map(|conn| {
            let (jobs, job_rx) = mpsc::channel::<(Option<Key>, u64)>();
            let (data_tx, data) = mpsc::channel();
            let (acks, ack_rx) = mpsc::channel::<bool>();
            let (finished_tx, finished) = mpsc::channel();
            scope.spawn(move || {
                while let Ok((after, size)) = job_rx.recv() {
                    let mut handed = false;
                    let result = read_chunk(conn, source, destination, after.as_ref(), size, |d| {
                        handed = true;
                        let _ = data_tx.send(Ok(d));
                        match ack_rx.recv() {
                            Ok(true) => Ok(()),
                            _ => Err(Error::InvalidState(
                                "the destination did not write this chunk: rolled back".into(),
                            )),
                        }
                    });
                    if handed {
                        let _ = finished_tx.send(result);
                    } else {
                        let _ = data_tx.send(Err(result.err().unwrap_or_else(|| {
                            Error::InvalidState("a chunk read ended without its rows".into())
                        })));
                    }
                }
            });
            Reader {
                jobs,
                data,
                acks,
                finished,
            }
        });
        Overlap {
            readers,
            pending: None,
            next: 0,
        }
    }

    fn step<C: MigrateConnection>(
        &mut self,
        dst: &mut C,
        source: &Table,
        destination: &Table,
        cp: &mut Checkpoint,
        size: u64,
    ) -> Result<u64> {
        let gone = || Error::InvalidState("a backfill reader thread ended".into());
        let r = match self.pending.take() {
            Some(r) => r,
            None => {
                let r = self.next;
                self.readers[r]
                    .jobs
                    .send((cp.last_key.clone(), size))
                    .map_err(|_| gone())?;
                r
            }
        };
        let data = self.readers[r].data.recv().map_err(|_| gone())??;
        if let Some(d) = &data {
            let other = 1 - r;
            self.readers[other]
                .jobs
                .send((Some(d.last.clone()), size))
                .map_err(|_| gone())?;
            self.pending = Some(other);
        }
        let rows = data.as_ref().map_or(0, |d| d.rows);
        let mut next = cp.clone();
        let written =
            dst.write_transaction(|d| apply_chunk(d, source, destination, data, &mut next));
        let _ = self.readers[r].acks.send(written.is_ok());
        let released = self.readers[r].finished.recv().map_err(|_| gone())?;
        written?;
        *cp = next;
        self.next = 1 - r;
        // The chunk is on the destination; a source COMMIT that failed only released the locks.
        if let Err(e) = released {
            tracing::warn!(target: "diesel_rw::migrate", error = %e, "the source's transaction of a copied chunk did not commit");
        }
        Ok(rows)
    }
}

/// The source's rows.
fn count<C: MigrateConnection>(conn: &mut C, table: &Table) -> Result<Option<u64>> {
    let sql = format!(
        "SELECT {} AS value FROM {}",
        C::DIALECT.to_text("COUNT(*)"),
        table.sql_name
    );
    Ok(conn
        .query_texts(&sql, &[])?
        .into_iter()
        .flatten()
        .next()
        .and_then(|n| n.parse().ok()))
}
