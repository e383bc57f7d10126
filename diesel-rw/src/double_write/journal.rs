//! The [`Journal`]: every write that reached one side and not the other, for repair.
//!
//! A double write cannot be atomic across two databases. When one side applied a write and the
//! other did not (it failed there, its transaction was rolled back there, its commit failed), or
//! both applied it and returned different rows, the connection records a [`JournalEntry`] with
//! the statement's SQL text (binds are counted, never printed: they may hold personal data; they
//! are kept in memory, in [`JournalEntry::revealed`], for the durable journal to find keys), the
//! error, the time and the pattern. A repair job reads the journal and brings the lagging side
//! up to date; nothing else in diesel-rw tries to.
//!
//! The default journal is a bounded [`MemoryJournal`]; implement [`Journal`] to keep entries
//! somewhere durable (a table on a third database, a queue, a file). Each entry is also a
//! `tracing` event at WARN level, target `diesel_rw::double_write`, whatever the journal.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use super::pattern::{Pattern, Side};
use super::revealed::Revealed;

/// What a [`JournalEntry`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A write outside a transaction was applied on one side and failed on
    /// [`side`](JournalEntry::side).
    WriteFailed,
    /// A transaction committed on one side, and on [`side`](JournalEntry::side) its commit
    /// failed, or it was rolled back because a statement, savepoint or its `BEGIN` failed there.
    /// There is one entry per write statement of the transaction.
    PartialCommit,
    /// Both sides applied a write and returned different results: the rows of an
    /// `INSERT/UPDATE ... RETURNING` (e.g. diverging generated keys), or the affected row counts
    /// of an `execute`. [`side`](JournalEntry::side) is the side whose result was not returned
    /// to the caller.
    Divergence,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::WriteFailed => "write failed",
            EntryKind::PartialCommit => "partial commit",
            EntryKind::Divergence => "divergence",
        })
    }
}

/// One write that reached one side and not the other (or reached both with different results).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// What happened.
    pub kind: EntryKind,
    /// The side that lacks the write (for a [`EntryKind::Divergence`], the side whose result
    /// was not returned).
    pub side: Side,
    /// The statement's SQL text as rendered for the backend, without bind values.
    pub sql: String,
    /// How many bind parameters the statement had (their values are not recorded).
    pub binds: usize,
    /// The error on [`side`](Self::side), or what differed.
    pub error: String,
    /// When the entry was made.
    pub at: SystemTime,
    /// The pattern the write ran under (a transaction's pattern is the one it began with).
    pub pattern: Pattern,
    /// Whether the write was part of a transaction.
    pub in_transaction: bool,
    /// The statement's bind values and returned rows, kept for a journal to find the keys of
    /// the rows it wrote ([`TableJournal`](super::TableJournal)); never displayed or logged
    /// (its `Debug` shows counts). Empty: not collected ([`Revealed::none`]).
    pub revealed: Revealed,
}

impl fmt::Display for JournalEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on the {} under {}{}: `{}` ({} binds): {}",
            self.kind,
            self.side,
            self.pattern,
            if self.in_transaction {
                " in a transaction"
            } else {
                ""
            },
            self.sql,
            self.binds,
            self.error
        )
    }
}

/// Where a double-write connection records what reached one side only.
///
/// `record` is called on the thread that ran the statement, after the statement; keep it
/// short (hand the entry to a channel if it must go over the network).
pub trait Journal: Send + Sync + 'static {
    /// Records one entry.
    fn record(&self, entry: JournalEntry);
}

impl<J: Journal + ?Sized> Journal for std::sync::Arc<J> {
    fn record(&self, entry: JournalEntry) {
        (**self).record(entry);
    }
}

/// A journal that keeps the last `capacity` entries in memory (the default, 10 000).
///
/// When full, the oldest entry is dropped and counted in [`dropped`](Self::dropped), so a
/// repair job that reads it knows it missed some (they are also in the `tracing` events).
///
/// ```
/// use diesel_rw::double_write::{EntryKind, Journal, JournalEntry, MemoryJournal, Pattern, Side};
///
/// let journal = MemoryJournal::new(1);
/// use diesel_rw::double_write::Revealed;
/// let entry = JournalEntry {
///     kind: EntryKind::WriteFailed,
///     side: Side::Destination,
///     sql: "INSERT INTO t (a) VALUES ($1)".into(),
///     binds: 1,
///     error: "connection refused".into(),
///     at: std::time::SystemTime::now(),
///     pattern: Pattern::SrcFirst,
///     in_transaction: false,
///     revealed: Revealed::none(),
/// };
/// journal.record(entry.clone());
/// journal.record(entry);
/// assert_eq!(journal.len(), 1);
/// assert_eq!(journal.dropped(), 1);
/// ```
#[derive(Debug)]
pub struct MemoryJournal {
    capacity: usize,
    entries: Mutex<VecDeque<JournalEntry>>,
    dropped: AtomicU64,
    recorded: AtomicU64,
}

impl MemoryJournal {
    /// The default capacity.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// A journal keeping at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        MemoryJournal {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
            recorded: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<JournalEntry>> {
        // An entry is pushed or popped whole: a panic elsewhere cannot leave it half-written.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the entries, oldest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.lock().iter().cloned().collect()
    }

    /// Removes and returns the entries, oldest first (for a repair job that handles them).
    pub fn drain(&self) -> Vec<JournalEntry> {
        self.lock().drain(..).collect()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries were dropped because the journal was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// How many entries were recorded since it was made (including dropped ones).
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }
}

impl Default for MemoryJournal {
    fn default() -> Self {
        MemoryJournal::new(MemoryJournal::DEFAULT_CAPACITY)
    }
}

impl Journal for MemoryJournal {
    fn record(&self, entry: JournalEntry) {
        self.recorded.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        entries.push_back(entry);
    }
}

/// A journal that keeps nothing (the `tracing` events remain).
#[derive(Clone, Copy, Debug, Default)]
pub struct NopJournal;

impl Journal for NopJournal {
    fn record(&self, _: JournalEntry) {}
}

/// Emits the entry's `tracing` event, then records it.
pub(crate) fn record(journal: &dyn Journal, entry: JournalEntry) {
    tracing::warn!(
        target: "diesel_rw::double_write",
        kind = %entry.kind,
        side = %entry.side,
        pattern = %entry.pattern,
        in_transaction = entry.in_transaction,
        sql = %entry.sql,
        binds = entry.binds,
        error = %entry.error,
        "double write reached one side only"
    );
    journal.record(entry);
}

/// How many bind parameters `sql` (rendered by diesel) has: the highest `$n` (PostgreSQL), or
/// the number of `?` (MySQL, SQLite), outside quotes and comments.
pub(crate) fn count_binds(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let (mut i, mut questions, mut highest) = (0, 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b'?' => questions += 1,
            b'$' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                let preceded_by_word = i > 0
                    && (bytes[i - 1].is_ascii_alphanumeric()
                        || bytes[i - 1] == b'_'
                        || bytes[i - 1] == b'$');
                if end > start && !preceded_by_word {
                    if let Ok(n) = sql[start..end].parse::<usize>() {
                        highest = highest.max(n);
                    }
                    i = end - 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    highest.max(questions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_binds_of_rendered_sql() {
        assert_eq!(count_binds("SELECT 1"), 0);
        assert_eq!(
            count_binds(r#"INSERT INTO "t" ("a", "b") VALUES ($1, $2) RETURNING "t"."id""#),
            2
        );
        assert_eq!(count_binds("UPDATE t SET a = $2 WHERE id = $1"), 2);
        assert_eq!(count_binds("INSERT INTO `t` (`a`) VALUES (?), (?)"), 2);
        assert_eq!(
            count_binds("SELECT '?', \"$1\", `?` -- ?\n /* $3 ? */ FROM t"),
            0
        );
        assert_eq!(count_binds("SELECT 'it''s ?' , ?"), 1);
        assert_eq!(count_binds("SELECT a$1 FROM t"), 0);
    }

    #[test]
    fn memory_journal_is_bounded() {
        let journal = MemoryJournal::new(2);
        for i in 0..3 {
            journal.record(JournalEntry {
                kind: EntryKind::WriteFailed,
                side: Side::Destination,
                sql: format!("INSERT {i}"),
                binds: 0,
                error: String::new(),
                at: SystemTime::now(),
                pattern: Pattern::SrcFirst,
                in_transaction: false,
                revealed: Revealed::none(),
            });
        }
        let entries = journal.entries();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].sql, "INSERT 1");
        assert_eq!(journal.dropped(), 1);
        assert_eq!(journal.recorded(), 3);
        assert_eq!(journal.drain().len(), 2);
        assert!(journal.is_empty());
    }
}
