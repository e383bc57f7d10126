//! The durable journal suite ([`TableJournal`] and [`Verify::run_journal`]), the same named
//! tests on every backend: each `migrate_verify_*` test file implements [`JournalBed`] for its
//! [`VerifyBed`](crate::mv::VerifyBed) and calls `migrate_journal_suite!(TheBed)`.
//!
//! Tables `mig2_j<test>` (through `mv::tables`); the journal is `diesel_rw_journal` on the
//! source, shared by the tests, each reading and clearing the entries of its own table only.
//! The double write's destination refuses writes (a read-only session) where a test needs a
//! second side that fails.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use diesel_rw::double_write::{
    DoubleWrite, DoubleWriteBackend, EntryKind, Pattern, PatternSwitch, Side, TableJournal,
};
use diesel_rw::migrate::journal::{self, JournalRow, Which, JOURNAL_TABLE};
use diesel_rw::migrate::repair::Repair;
use diesel_rw::migrate::verify::VerifyMode;
use diesel_rw::migrate::verify_runs::{self, RunFilter, RunMode, VERIFY_RUN_TABLE};
use diesel_rw::migrate::{Binds, MigrateConnection, TableSpec};

use crate::mv::{key, keys, sorted, verify, Tables, VerifyBed};

/// What a backend adds for the journal suite.
pub trait JournalBed: VerifyBed {
    /// SQL that makes a session refuse writes.
    const READ_ONLY: &'static str;
    /// SQL each double-write connection runs first (may be empty).
    const SESSION: &'static str;
    /// Begins a transaction that holds the write locks its statements take.
    const BEGIN: &'static str;
}

/// The source, created once for the suite: the journal table (two tests creating it at once
/// would race on PostgreSQL's catalog).
pub fn journal_table<B: JournalBed>(t: &mut Tables<B>) {
    journal::create_table(&mut t.src).unwrap();
    let mut b = Binds::new(<B::Conn as MigrateConnection>::DIALECT);
    let sql = format!(
        "DELETE FROM {JOURNAL_TABLE} WHERE table_name = {} OR table_name LIKE {}",
        b.push(t.table.clone()),
        b.push(format!("%.{}", t.table))
    );
    t.src.execute_binds(&sql, b.values()).unwrap();
    runs_table(t);
}

/// Both sides, created once for the suite: the verify runs' table, without the rows of this
/// test's table.
pub fn runs_table<B: JournalBed>(t: &mut Tables<B>) {
    for c in [&mut t.src, &mut t.dst] {
        verify_runs::create_table(c).unwrap();
        let mut b = Binds::new(<B::Conn as MigrateConnection>::DIALECT);
        let sql = format!(
            "DELETE FROM {VERIFY_RUN_TABLE} WHERE table_name = {} OR table_name LIKE {}",
            b.push(t.table.clone()),
            b.push(format!("%.{}", t.table))
        );
        c.execute_binds(&sql, b.values()).unwrap();
    }
}

/// The journal's rows of `table`, read on a fresh connection to `url`.
pub fn entries_of<B: JournalBed>(url: &str, table: &str) -> Vec<JournalRow> {
    let mut c = B::connect(url);
    journal::rows(&mut c, Which::All)
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.table
                .as_deref()
                .is_some_and(|n| n == table || n.ends_with(&format!(".{table}")))
        })
        .collect()
}

/// A double write under SrcFirst, its destination refusing writes if `read_only`.
pub fn pool<B: JournalBed>(
    t: &Tables<B>,
    journal: Arc<TableJournal<B::Conn>>,
    read_only: bool,
) -> DoubleWrite<B::Conn>
where
    B::Conn: R2D2Connection,
    <B::Conn as diesel::Connection>::Backend: DoubleWriteBackend,
{
    pool_of::<B>(&t.src_url, &t.dst_url, journal, read_only, B::SESSION)
}

pub fn pool_of<B: JournalBed>(
    src: &str,
    dst: &str,
    journal: Arc<TableJournal<B::Conn>>,
    read_only: bool,
    session: &'static str,
) -> DoubleWrite<B::Conn>
where
    B::Conn: R2D2Connection,
    <B::Conn as diesel::Connection>::Backend: DoubleWriteBackend,
{
    DoubleWrite::<B::Conn>::builder()
        .on_connect(move |side, c| {
            if !session.is_empty() {
                c.batch_execute(session)?;
            }
            if read_only && side == Side::Destination {
                c.batch_execute(B::READ_ONLY)?;
            }
            Ok(())
        })
        .source(src)
        .destination(dst)
        .pattern(PatternSwitch::new(Pattern::SrcFirst))
        .journal(journal)
        .max_size(2)
        .connection_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Runs `sql` on a connection of `pool`; lenient: it succeeds if the source applied it.
pub fn run<C>(pool: &DoubleWrite<C>, sql: &str)
where
    C: R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    pool.get().unwrap().batch_execute(sql).unwrap();
}

/// The table of these tests on both sides, with rows `1..=rows` equal.
pub fn plain_table<B: JournalBed>(t: &mut Tables<B>, rows: i64) {
    let ddl = format!(
        "CREATE TABLE {} (id {} PRIMARY KEY, v {} NULL, changed_at {} NULL)",
        t.table,
        B::BIGINT,
        B::TEXT,
        B::TIMESTAMPTZ
    );
    crate::mv::both(t, &ddl);
    let values: Vec<String> = (1..=rows)
        .map(|i| format!("({i}, 'v{i}', '2020-01-01 00:00:00')"))
        .collect();
    for chunk in values.chunks(500) {
        let sql = format!("INSERT INTO {} VALUES {}", t.table, chunk.join(", "));
        crate::mv::both(t, &sql);
    }
}

fn key_texts(row: &JournalRow) -> Option<Vec<String>> {
    row.keys
        .as_ref()
        .map(|ks| ks.iter().map(|k| k.to_string()).collect())
}

/// Each write that fails on the destination is an entry in the table when the call returns,
/// with the table and the keys its statement spells out; the entries are read back on a fresh
/// connection after the journal and the pool are gone; an incremental verify from them finds
/// exactly those rows, and marks them done once a repair made them equal.
pub fn entries_are_written_in_the_same_run_and_verified<B: JournalBed>(t: &mut Tables<B>)
where
    B::Conn: R2D2Connection,
    <B::Conn as diesel::Connection>::Backend: DoubleWriteBackend,
{
    plain_table(t, 10);
    journal_table(t);
    let tb = t.table.clone();
    {
        let journal = Arc::new(TableJournal::<B::Conn>::new(t.src_url.clone()).unwrap());
        let dw = pool(t, journal.clone(), true);
        let steps: [(String, &[&str]); 3] = [
            (
                format!("INSERT INTO {tb} (id, v) VALUES (11, 'a'), (12, 'b')"),
                &["11", "12"],
            ),
            (format!("UPDATE {tb} SET v = 'u' WHERE id = 3"), &["3"]),
            (format!("DELETE FROM {tb} WHERE id IN (4, 5)"), &["4", "5"]),
        ];
        for (i, (sql, expected)) in steps.iter().enumerate() {
            run(&dw, sql);
            // Right after the call: on a connection of another session.
            let rows = entries_of::<B>(&t.src_url, &tb);
            assert_eq!(rows.len(), i + 1, "{} {sql}: {rows:?}", B::NAME);
            let last = rows.last().unwrap();
            assert_eq!(
                key_texts(last),
                Some(expected.iter().map(|s| s.to_string()).collect()),
                "{last:?}"
            );
            assert_eq!(last.side, Side::Destination);
            assert_eq!(last.kind, EntryKind::WriteFailed);
            assert_eq!(last.pattern, Pattern::SrcFirst);
            assert_eq!(&last.statement, sql);
            assert!(last.done_at.is_none() && !last.error.is_empty(), "{last:?}");
        }
        let stats = journal.stats();
        assert_eq!(
            (stats.written, stats.backlog, stats.dropped),
            (3, 0, 0),
            "{stats:?}"
        );
    }
    // The journal and its pool are gone: the entries are on the source.
    let rows = entries_of::<B>(&t.src_url, &tb);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let out = verify(&tb)
        .run_journal(&mut t.src, &mut t.dst, None)
        .unwrap();
    assert_eq!(out.entries, 3);
    assert!(!out.whole_table);
    assert!(out.done.is_empty(), "{out:?}");
    let r = &out.report;
    assert_eq!(
        sorted(r.missing_on_destination_keys()),
        keys(&[11, 12]),
        "{r:?}"
    );
    assert_eq!(sorted(r.missing_on_source_keys()), keys(&[4, 5]), "{r:?}");
    assert_eq!(r.different_keys(), vec![key(3)], "{r:?}");
    assert_eq!(r.rows_compared, 5, "{r:?}");
    Repair::new(TableSpec::new(tb.as_str()))
        .run(r, &mut t.src, &mut t.dst)
        .unwrap();
    let out = verify(&tb)
        .run_journal(&mut t.src, &mut t.dst, None)
        .unwrap();
    assert!(out.report.is_clean(), "{out:?}");
    assert_eq!(out.done.len(), 3, "{out:?}");
    let rows = entries_of::<B>(&t.src_url, &tb);
    assert!(rows.iter().all(|r| r.done_at.is_some()), "{rows:?}");
    // Nothing pending: the next run compares nothing and marks nothing.
    let out = verify(&tb)
        .run_journal(&mut t.src, &mut t.dst, None)
        .unwrap();
    assert_eq!((out.entries, out.report.rows_compared), (0, 0), "{out:?}");
}

/// A statement that does not spell out its keys (a bound or non-key predicate) is an entry
/// naming the table only; the incremental verify then covers the whole table.
pub fn an_entry_without_keys_verifies_the_whole_table<B: JournalBed>(t: &mut Tables<B>)
where
    B::Conn: R2D2Connection,
    <B::Conn as diesel::Connection>::Backend: DoubleWriteBackend,
{
    plain_table(t, 300);
    journal_table(t);
    let tb = t.table.clone();
    let journal = Arc::new(TableJournal::<B::Conn>::new(t.src_url.clone()).unwrap());
    let dw = pool(t, journal, true);
    run(&dw, &format!("UPDATE {tb} SET v = 'w' WHERE id > 290"));
    let rows = entries_of::<B>(&t.src_url, &tb);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].keys, None, "{rows:?}");
    let out = verify(&tb)
        .run_journal(&mut t.src, &mut t.dst, None)
        .unwrap();
    assert!(out.whole_table && out.done.is_empty(), "{out:?}");
    assert_eq!(out.report.rows_compared, 300);
    assert_eq!(
        sorted(out.report.different_keys()),
        keys(&(291..=300).collect::<Vec<_>>())
    );
    Repair::new(TableSpec::new(tb.as_str()))
        .run(&out.report, &mut t.src, &mut t.dst)
        .unwrap();
    let out = verify(&tb)
        .run_journal(&mut t.src, &mut t.dst, None)
        .unwrap();
    assert!(out.report.is_clean(), "{out:?}");
    assert_eq!(out.done, vec![rows[0].id]);
}

/// The journal's entries of `table` since `from` (an index into them), as key texts, after
/// each write of a DSL test; the entries must be of `kind` on the destination.
pub fn keys_since<B: JournalBed>(
    t: &Tables<B>,
    from: usize,
    kind: EntryKind,
) -> Vec<Option<Vec<String>>> {
    let rows = entries_of::<B>(&t.src_url, &t.table);
    rows[from.min(rows.len())..]
        .iter()
        .map(|r| {
            assert_eq!((r.kind, r.side), (kind, Side::Destination), "{r:?}");
            key_texts(r)
        })
        .collect()
}

/// After the DSL writes of a test (rows 11 and 12 inserted, 7 updated, 4 and 5 deleted on the
/// source only): the incremental verify from the journal compares those rows only (the entries
/// have keys), the repair converges them, and the next run marks every entry done.
pub fn dsl_entries_verify_and_repair<B: JournalBed>(t: &mut Tables<B>, entries: usize) {
    let tb = t.table.clone();
    let out = verify(&tb)
        .run_journal(&mut t.src, &mut t.dst, None)
        .unwrap();
    assert_eq!(out.entries, entries, "{out:?}");
    assert!(!out.whole_table, "every entry has keys: {out:?}");
    let r = &out.report;
    assert_eq!(
        sorted(r.missing_on_destination_keys()),
        keys(&[11, 12]),
        "{r:?}"
    );
    assert_eq!(sorted(r.missing_on_source_keys()), keys(&[4, 5]), "{r:?}");
    assert_eq!(r.different_keys(), vec![key(7)], "{r:?}");
    Repair::new(TableSpec::new(tb.as_str()))
        .run(r, &mut t.src, &mut t.dst)
        .unwrap();
    let out = verify(&tb)
        .run_journal(&mut t.src, &mut t.dst, None)
        .unwrap();
    assert!(out.report.is_clean(), "{out:?}");
    assert_eq!(out.done.len(), entries, "{out:?}");
    assert!(journal::rows(&mut t.src, Which::PendingFor(&tb))
        .unwrap()
        .is_empty());
}

/// Run by `a_write_killed_between_its_two_sides_leaves_no_entry_and_is_found_since_the_last_clean_run`
/// as a child process (this test binary), which it kills.
pub fn child<B: JournalBed>()
where
    B::Conn: R2D2Connection,
    <B::Conn as diesel::Connection>::Backend: DoubleWriteBackend,
{
    let (Ok(src), Ok(dst), Ok(tb)) = (
        std::env::var("MIG2J_CHILD_SRC"),
        std::env::var("MIG2J_CHILD_DST"),
        std::env::var("MIG2J_CHILD_TABLE"),
    ) else {
        return;
    };
    let journal = Arc::new(TableJournal::<B::Conn>::new(src.clone()).unwrap());
    // An entry of this process: the destination refuses the write.
    let refused = pool_of::<B>(&src, &dst, journal.clone(), true, B::SESSION);
    run(
        &refused,
        &format!(
            "INSERT INTO {tb} (id, v, changed_at) VALUES (60, 'refused', {})",
            B::NOW
        ),
    );
    // The destination's row 50 is locked by the parent: this write waits there, after the
    // source applied it, until the kill.
    let dw = pool_of::<B>(&src, &dst, journal, false, B::SESSION);
    run(
        &dw,
        &format!(
            "INSERT INTO {tb} (id, v, changed_at) VALUES (50, 'child', {})",
            B::NOW
        ),
    );
    panic!("the destination's lock did not hold the write");
}

/// A process killed with SIGKILL between the two sides of a write leaves no entry for it (its
/// earlier entry survives the process); the incremental verify since the last clean run (the
/// "changed at" column) finds the row anyway, with the entry's; after the repair the entry is
/// done.
pub fn a_killed_write_is_found_since_the_last_clean_run<B: JournalBed>(
    t: &mut Tables<B>,
    child_test: &str,
) {
    plain_table(t, 10);
    journal_table(t);
    let tb = t.table.clone();
    // The last clean run, recorded on the source (the "changed at" values' clock).
    let clean = verify(&tb)
        .record_to(Side::Source)
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    assert!(clean.is_clean() && clean.recorded.is_some(), "{clean:?}");
    // Holds the destination's row 50 (SQLite: the database's write lock), so that the child's
    // write waits there after the source applied it.
    t.dst.batch_execute(B::BEGIN).unwrap();
    t.dst
        .batch_execute(&format!("INSERT INTO {tb} (id, v) VALUES (50, 'parent')"))
        .unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--ignored", "--nocapture"])
        .env("MIG2J_CHILD_SRC", &t.src_url)
        .env("MIG2J_CHILD_DST", &t.dst_url)
        .env("MIG2J_CHILD_TABLE", &tb)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let on_source = |src: &mut B::Conn| {
        src.query_texts(
            &format!("SELECT {} AS value FROM {tb} WHERE id = 50", B::text("v")),
            &[],
        )
        .unwrap()
        .len()
            == 1
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !on_source(&mut t.src) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the child ended ({status}) before its write reached the source");
        }
        assert!(
            Instant::now() < deadline,
            "the child's write did not reach the source"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: between the two sides of the write.
    child.wait().unwrap();
    // The parent's row 50 is committed: the killed write's server session, if it is still
    // waiting, fails on it instead of applying the child's row later.
    t.dst.batch_execute("COMMIT").unwrap();
    let rows = entries_of::<B>(&t.src_url, &tb);
    assert_eq!(rows.len(), 1, "only the refused write's entry: {rows:?}");
    assert_eq!(key_texts(&rows[0]), Some(vec!["60".to_owned()]));
    // The journal alone: only row 60.
    let out = verify(&tb)
        .run_journal(&mut t.src, &mut t.dst, None)
        .unwrap();
    assert_eq!(
        out.report.missing_on_destination_keys(),
        vec![key(60)],
        "{out:?}"
    );
    assert_eq!(out.report.differences(), 1, "{out:?}");
    // Since the last clean run, as recorded: row 50 too.
    let changed = || {
        diesel_rw::migrate::verify::Verify::new(
            TableSpec::new(tb.as_str()).changed_at("changed_at"),
        )
        .recheck_delay(Duration::from_millis(50))
        .chunk_rows(100)
        .record_to(Side::Source)
        .mode(VerifyMode::SinceLastClean)
    };
    let out = changed().run_journal(&mut t.src, &mut t.dst, None).unwrap();
    assert_eq!(out.report.mode, RunMode::ChangedSince, "{out:?}");
    assert!(out.report.since.is_some() && out.report.journal, "{out:?}");
    // Row 50: the child's on the source, the parent's on the destination.
    assert_eq!(
        out.report.missing_on_destination_keys(),
        vec![key(60)],
        "{out:?}"
    );
    assert_eq!(out.report.different_keys(), vec![key(50)], "{out:?}");
    assert!(out.done.is_empty());
    Repair::new(TableSpec::new(tb.as_str()))
        .run(&out.report, &mut t.src, &mut t.dst)
        .unwrap();
    let out = changed().run_journal(&mut t.src, &mut t.dst, None).unwrap();
    assert!(out.report.is_clean(), "{out:?}");
    assert_eq!(out.done, vec![rows[0].id]);
    // That clean run is now the last clean one: the next window starts at it.
    let last = verify_runs::last_clean(&mut t.src, &tb, &RunFilter::new().every_row())
        .unwrap()
        .unwrap();
    assert_eq!(Some(last.id), out.report.recorded, "{last:?}");
    assert!(
        last.journal && last.mode == RunMode::ChangedSince,
        "{last:?}"
    );
}

/// Each recorded run is a row on the side it was recorded to, with its mode, direction,
/// pattern, counts and times; `latest` and `last_clean` answer the gates' questions (clean,
/// under which pattern, in which direction, how long ago); a run that fails is recorded with
/// its error; bad input records nothing; a report is recorded after the fact.
pub fn verify_runs_are_recorded_and_answer_the_gates<B: JournalBed>(t: &mut Tables<B>) {
    use diesel_rw::double_write::Side::{Destination, Source};
    plain_table(t, 20);
    runs_table(t);
    let tb = t.table.clone();
    let any = RunFilter::new();
    assert!(verify_runs::last_clean(&mut t.src, &tb, &any)
        .unwrap()
        .is_none());
    assert!(verify_runs::latest(&mut t.src, &tb, &any)
        .unwrap()
        .is_none());
    // A clean full run under SrcFirst, the source authoritative.
    let r = verify(&tb)
        .record_to(Source)
        .pattern(Pattern::SrcFirst)
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    assert!(r.is_clean(), "{r:?}");
    let first = verify_runs::last_clean(&mut t.src, &tb, &any)
        .unwrap()
        .unwrap();
    assert_eq!(Some(first.id), r.recorded);
    assert!(
        first.table == tb || first.table.ends_with(&format!(".{tb}")),
        "{first:?}"
    );
    assert_eq!(
        (
            first.mode,
            first.journal,
            first.authoritative,
            first.pattern
        ),
        (RunMode::Full, false, Source, Some(Pattern::SrcFirst)),
        "{first:?}"
    );
    assert_eq!(
        (first.rows_compared, first.differences, first.clean),
        (20, 0, true),
        "{first:?}"
    );
    assert!(
        first.finished_at.is_some() && first.error.is_none(),
        "{first:?}"
    );
    assert!(first.age.unwrap() < Duration::from_secs(600), "{first:?}");
    // Not recorded on the destination.
    assert!(verify_runs::latest(&mut t.dst, &tb, &any)
        .unwrap()
        .is_none());

    // The destination loses row 3; a run with the destination authoritative under DstFirst.
    t.dst
        .batch_execute(&format!("DELETE FROM {tb} WHERE id = 3"))
        .unwrap();
    let r = verify(&tb)
        .record_to(Source)
        .pattern(Pattern::DstFirst)
        .authoritative(Destination)
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    assert_eq!(r.differences(), 1, "{r:?}");
    let latest = verify_runs::latest(&mut t.src, &tb, &any).unwrap().unwrap();
    assert_eq!(
        (
            latest.id,
            latest.clean,
            latest.differences,
            latest.authoritative,
            latest.pattern
        ),
        (
            r.recorded.unwrap(),
            false,
            1,
            Destination,
            Some(Pattern::DstFirst)
        ),
        "{latest:?}"
    );
    // The gates: the last clean run is still the first; none under DstFirst, none with the
    // destination authoritative.
    let last = verify_runs::last_clean(&mut t.src, &tb, &any)
        .unwrap()
        .unwrap();
    assert_eq!(last.id, first.id);
    for filter in [
        RunFilter::new().pattern(Pattern::DstFirst),
        RunFilter::new().authoritative(Destination),
    ] {
        assert!(
            verify_runs::last_clean(&mut t.src, &tb, &filter)
                .unwrap()
                .is_none(),
            "{filter:?}"
        );
    }
    // A clean run of some keys: the last clean run, but not one that covered every row.
    let r = verify(&tb)
        .record_to(Source)
        .mode(VerifyMode::Keys(keys(&[1, 2])))
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    assert!(r.is_clean());
    let last = verify_runs::last_clean(&mut t.src, &tb, &any)
        .unwrap()
        .unwrap();
    assert_eq!((last.id, last.mode), (r.recorded.unwrap(), RunMode::Keys));
    let covering = verify_runs::last_clean(&mut t.src, &tb, &RunFilter::new().every_row())
        .unwrap()
        .unwrap();
    assert_eq!(covering.id, first.id);
    // A run that fails is recorded with its error: changed-since without a "changed at".
    let e = verify(&tb)
        .record_to(Source)
        .mode(VerifyMode::ChangedSince("2020-01-01 00:00:00".into()))
        .run(&mut t.src, &mut t.dst)
        .unwrap_err();
    let failed = verify_runs::latest(&mut t.src, &tb, &any).unwrap().unwrap();
    assert_eq!(
        failed.error.as_deref(),
        Some(e.to_string().as_str()),
        "{failed:?}"
    );
    assert!(!failed.clean && failed.finished_at.is_some(), "{failed:?}");
    assert_eq!(failed.since.as_deref(), Some("2020-01-01 00:00:00"));
    // Bad input records nothing.
    let before = verify_runs::runs(&mut t.src, Some(&tb), 100).unwrap().len();
    assert_eq!(before, 4);
    verify(&tb)
        .record_to(Source)
        .compare_as("no_such_column", crate::mv::Canon::Plain)
        .run(&mut t.src, &mut t.dst)
        .unwrap_err();
    assert_eq!(
        verify_runs::runs(&mut t.src, Some(&tb), 100).unwrap().len(),
        before
    );
    // Recorded on the destination: there.
    let r = verify(&tb)
        .record_to(Destination)
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    let on_dst = verify_runs::latest(&mut t.dst, &tb, &any).unwrap().unwrap();
    assert_eq!((Some(on_dst.id), on_dst.differences), (r.recorded, 1));
    // A report recorded after the fact.
    let r = verify(&tb).run(&mut t.src, &mut t.dst).unwrap();
    assert_eq!(r.recorded, None);
    let after = verify_runs::record(&mut t.src, &r, Some(Pattern::SrcFirst)).unwrap();
    assert_eq!(
        (
            after.mode,
            after.rows_compared,
            after.differences,
            after.clean
        ),
        (RunMode::Full, 20, 1, false),
        "{after:?}"
    );
    assert!(
        after.finished_at.is_some() && after.age.is_some(),
        "{after:?}"
    );
    // Newest first.
    let all = verify_runs::runs(&mut t.src, Some(&tb), 100).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].id, after.id);
    assert_eq!(all[4].id, first.id);
    // Since the last clean run that covered every row: from the first run's start, every row
    // there changed earlier; nothing compared but nothing missed either (row 3 did not change).
    let r = diesel_rw::migrate::verify::Verify::new(
        TableSpec::new(tb.as_str()).changed_at("changed_at"),
    )
    .recheck_delay(Duration::from_millis(50))
    .mode(VerifyMode::SinceLastClean)
    .run(&mut t.src, &mut t.dst)
    .unwrap();
    assert_eq!(
        (r.mode, r.rows_compared),
        (RunMode::ChangedSince, 0),
        "{r:?}"
    );
}

/// The journal database down: the write proceeds (lenient), the entry is counted as failed
/// and kept in memory, and written once the database is back. Hung: `record` returns after
/// its timeout, the next one without waiting; both entries are written once it answers.
pub fn journal_database_down_or_hung_does_not_stop_writes<B: JournalBed>(
    t: &mut Tables<B>,
    proxy: &crate::common::proxy::Proxy,
    journal_url: &str,
) where
    B::Conn: R2D2Connection,
    <B::Conn as diesel::Connection>::Backend: DoubleWriteBackend,
{
    plain_table(t, 10);
    journal_table(t);
    let tb = t.table.clone();
    let journal = Arc::new(
        TableJournal::<B::Conn>::builder(journal_url)
            .timeout(Duration::from_secs(2))
            .retry_interval(Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    let dw = pool(t, journal.clone(), true);
    proxy.down();
    let started = Instant::now();
    run(&dw, &format!("UPDATE {tb} SET v = 'd' WHERE id = 1"));
    let s = journal.stats();
    assert!(s.failed >= 1 && s.backlog == 1 && s.written == 0, "{s:?}");
    assert!(entries_of::<B>(&t.src_url, &tb).is_empty());
    proxy.up();
    journal.flush(Duration::from_secs(60)).unwrap();
    let rows = entries_of::<B>(&t.src_url, &tb);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(key_texts(&rows[0]), Some(vec!["1".to_owned()]));
    // Hung: accepts, never answers.
    proxy.hang();
    run(&dw, &format!("UPDATE {tb} SET v = 'h' WHERE id = 2"));
    run(&dw, &format!("UPDATE {tb} SET v = 'h' WHERE id = 3"));
    let s = journal.stats();
    assert!(s.unconfirmed >= 2 && s.backlog == 2, "{s:?}");
    // Bounded: the timeout, not forever (a generous deadline on a busy machine).
    assert!(started.elapsed() < Duration::from_secs(120));
    proxy.resume();
    let deadline = Instant::now() + Duration::from_secs(120);
    while journal.stats().backlog > 0 {
        assert!(Instant::now() < deadline, "{:?}", journal.stats());
        let _ = journal.flush(Duration::from_secs(5));
    }
    let rows = entries_of::<B>(&t.src_url, &tb);
    let keys: Vec<Option<Vec<String>>> = rows.iter().map(key_texts).collect();
    assert_eq!(
        keys,
        vec![
            Some(vec!["1".to_owned()]),
            Some(vec!["2".to_owned()]),
            Some(vec!["3".to_owned()])
        ],
        "{rows:?}"
    );
}

/// `url` with the port of its `127.0.0.1:` host replaced by `port`, and that host's address.
pub fn via_port(url: &str, port: u16) -> (String, std::net::SocketAddr) {
    let at = url.find("127.0.0.1:").expect("a 127.0.0.1 URL") + "127.0.0.1:".len();
    let end = url[at..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(url.len(), |e| at + e);
    let addr = format!("127.0.0.1:{}", &url[at..end]).parse().unwrap();
    (format!("{}{port}{}", &url[..at], &url[end..]), addr)
}

/// The journal suite's tests for `$bed` (a [`JournalBed`]).
#[macro_export]
macro_rules! migrate_journal_suite {
    ($bed:ty) => {
        mod journal_suite {
            use $crate::mj::*;

            fn t(test: &str) -> Option<$crate::mv::Tables<$bed>> {
                $crate::mv::tables::<$bed>(test)
            }

            #[test]
            fn journal_entries_are_in_the_table_when_the_write_returns_and_verify_marks_them_done(
            ) {
                let Some(mut t) = t("j_same_run") else { return };
                entries_are_written_in_the_same_run_and_verified(&mut t);
            }

            diesel::table! {
                mig2_j_dsl (id) {
                    id -> BigInt,
                    v -> Nullable<Text>,
                }
            }

            diesel::table! {
                mig2_j_dsl_tx (id) {
                    id -> BigInt,
                    v -> Nullable<Text>,
                }
            }

            /// Statements built with diesel's DSL (all values bound) under a double write whose
            /// destination refuses writes: each entry has the keys, from the binds.
            #[test]
            fn journal_entries_of_dsl_statements_have_the_keys_of_their_binds() {
                use diesel::prelude::*;
                use std::sync::Arc;
                let Some(mut t) = t("j_dsl") else { return };
                plain_table(&mut t, 10);
                journal_table(&mut t);
                let journal = Arc::new(
                    diesel_rw::double_write::TableJournal::<<$bed as $crate::mv::VerifyBed>::Conn>::new(
                        t.src_url.clone(),
                    )
                    .unwrap(),
                );
                let dw = pool(&t, journal, true);
                let mut c = dw.get().unwrap();
                diesel::insert_into(mig2_j_dsl::table)
                    .values(&vec![
                        (mig2_j_dsl::id.eq(11i64), mig2_j_dsl::v.eq("a")),
                        (mig2_j_dsl::id.eq(12i64), mig2_j_dsl::v.eq("b")),
                    ])
                    .execute(&mut *c)
                    .unwrap();
                diesel::update(mig2_j_dsl::table.find(7i64))
                    .set(mig2_j_dsl::v.eq("u"))
                    .execute(&mut *c)
                    .unwrap();
                diesel::delete(mig2_j_dsl::table.filter(mig2_j_dsl::id.eq_any([4i64, 5])))
                    .execute(&mut *c)
                    .unwrap();
                drop(c);
                let got = keys_since(&t, 0, diesel_rw::double_write::EntryKind::WriteFailed);
                let want = |k: &[&str]| Some(k.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                assert_eq!(got, vec![want(&["11", "12"]), want(&["7"]), want(&["4", "5"])]);
                dsl_entries_verify_and_repair(&mut t, 3);
            }

            /// A transaction of DSL statements that commits on the source only (the
            /// destination refuses its statements, so its side is rolled back at COMMIT): one
            /// partial-commit entry per statement, each with its keys; verify, repair, done.
            #[test]
            fn journal_partial_commit_entries_have_their_keys_and_are_verified_and_done() {
                use diesel::prelude::*;
                use std::sync::Arc;
                let Some(mut t) = t("j_dsl_tx") else { return };
                plain_table(&mut t, 10);
                journal_table(&mut t);
                let journal = Arc::new(
                    diesel_rw::double_write::TableJournal::<<$bed as $crate::mv::VerifyBed>::Conn>::new(
                        t.src_url.clone(),
                    )
                    .unwrap(),
                );
                let dw = pool(&t, journal, true);
                let mut c = dw.get().unwrap();
                c.transaction::<_, diesel::result::Error, _>(|c| {
                    diesel::insert_into(mig2_j_dsl_tx::table)
                        .values(&vec![
                            (mig2_j_dsl_tx::id.eq(11i64), mig2_j_dsl_tx::v.eq("a")),
                            (mig2_j_dsl_tx::id.eq(12i64), mig2_j_dsl_tx::v.eq("b")),
                        ])
                        .execute(c)?;
                    diesel::update(mig2_j_dsl_tx::table.find(7i64))
                        .set(mig2_j_dsl_tx::v.eq("u"))
                        .execute(c)?;
                    diesel::delete(
                        mig2_j_dsl_tx::table.filter(mig2_j_dsl_tx::id.eq_any([4i64, 5])),
                    )
                    .execute(c)?;
                    Ok(())
                })
                .unwrap();
                drop(c);
                let got = keys_since(&t, 0, diesel_rw::double_write::EntryKind::PartialCommit);
                let want = |k: &[&str]| Some(k.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                assert_eq!(got, vec![want(&["11", "12"]), want(&["7"]), want(&["4", "5"])]);
                dsl_entries_verify_and_repair(&mut t, 3);
            }

            #[test]
            fn verify_runs_record_each_run_and_answer_the_gates() {
                let Some(mut t) = t("j_runs") else { return };
                verify_runs_are_recorded_and_answer_the_gates(&mut t);
            }

            #[test]
            fn journal_entry_without_keys_verifies_the_whole_table() {
                let Some(mut t) = t("j_whole") else { return };
                an_entry_without_keys_verifies_the_whole_table(&mut t);
            }

            #[test]
            #[ignore = "the child process of journal_write_killed_between_its_sides_leaves_no_entry_and_is_found_since_the_last_clean_run, which runs it with --ignored and kills it"]
            fn journal_child_process() {
                child::<$bed>();
            }

            #[test]
            fn journal_write_killed_between_its_sides_leaves_no_entry_and_is_found_since_the_last_clean_run(
            ) {
                let Some(mut t) = t("j_killed") else { return };
                a_killed_write_is_found_since_the_last_clean_run(
                    &mut t,
                    "journal_suite::journal_child_process",
                );
            }

        }
    };
}

/// The journal suite's test of a journal database that goes down or hangs, for `$bed` (a
/// [`JournalBed`] reached over TCP: a proxy takes it down).
#[macro_export]
macro_rules! migrate_journal_network_suite {
    ($bed:ty) => {
        mod journal_network_suite {
            use $crate::mj::*;

            #[test]
            fn journal_database_down_or_hung_writes_proceed_and_entries_follow() {
                let Some(mut t) = $crate::mv::tables::<$bed>("j_down") else {
                    return;
                };
                let (_, addr) = via_port(&t.src_url, 0);
                let proxy = $crate::common::proxy::Proxy::start(addr);
                let (url, _) = via_port(&t.src_url, proxy.port());
                journal_database_down_or_hung_does_not_stop_writes(&mut t, &proxy, &url);
            }
        }
    };
}

/// The journal suite's test of writes loaded with `RETURNING`, for `$bed` (a [`JournalBed`]
/// whose diesel backend has `RETURNING`: PostgreSQL, SQLite).
#[macro_export]
macro_rules! migrate_journal_returning_suite {
    ($bed:ty) => {
        mod journal_returning_suite {
            use $crate::mj::*;

            diesel::table! {
                mig2_j_ret (id) {
                    id -> BigInt,
                    v -> Nullable<Text>,
                }
            }

            /// Writes whose predicates name no key, loaded with `RETURNING` of the key, under
            /// a double write whose destination refuses writes: each entry has the keys of the
            /// rows the source returned; verify, repair, done.
            #[test]
            fn journal_entries_of_writes_with_returning_have_the_returned_keys() {
                use diesel::prelude::*;
                use std::sync::Arc;
                let Some(mut t) = $crate::mv::tables::<$bed>("j_ret") else {
                    return;
                };
                plain_table(&mut t, 10);
                journal_table(&mut t);
                let journal =
                    Arc::new(
                        diesel_rw::double_write::TableJournal::<
                            <$bed as $crate::mv::VerifyBed>::Conn,
                        >::new(t.src_url.clone())
                        .unwrap(),
                    );
                let dw = pool(&t, journal, true);
                let mut c = dw.get().unwrap();
                let mut ids: Vec<i64> =
                    diesel::update(mig2_j_ret::table.filter(mig2_j_ret::v.eq_any(["v3", "v8"])))
                        .set(mig2_j_ret::v.eq("r"))
                        .returning(mig2_j_ret::id)
                        .get_results(&mut *c)
                        .unwrap();
                ids.sort();
                assert_eq!(ids, vec![3, 8]);
                let id: i64 = diesel::delete(mig2_j_ret::table.filter(mig2_j_ret::v.eq("v9")))
                    .returning(mig2_j_ret::id)
                    .get_result(&mut *c)
                    .unwrap();
                assert_eq!(id, 9);
                drop(c);
                let got = keys_since(&t, 0, diesel_rw::double_write::EntryKind::WriteFailed);
                let want = |k: &[&str]| Some(k.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                assert_eq!(got, vec![want(&["3", "8"]), want(&["9"])]);
                let tb = t.table.clone();
                let out = $crate::mv::verify(&tb)
                    .run_journal(&mut t.src, &mut t.dst, None)
                    .unwrap();
                assert!(!out.whole_table, "{out:?}");
                let r = &out.report;
                assert_eq!(
                    $crate::mv::sorted(r.different_keys()),
                    $crate::mv::keys(&[3, 8]),
                    "{r:?}"
                );
                assert_eq!(r.missing_on_source_keys(), $crate::mv::keys(&[9]), "{r:?}");
                assert_eq!(r.rows_compared, 3, "{r:?}");
                diesel_rw::migrate::repair::Repair::new(tb.as_str())
                    .run(r, &mut t.src, &mut t.dst)
                    .unwrap();
                let out = $crate::mv::verify(&tb)
                    .run_journal(&mut t.src, &mut t.dst, None)
                    .unwrap();
                assert!(out.report.is_clean(), "{out:?}");
                assert_eq!(out.done.len(), 2, "{out:?}");
            }
        }
    };
}
