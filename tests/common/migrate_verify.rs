//! The Verify/Repair suite, the same named tests on every backend: each backend's test file
//! implements [`VerifyBed`] and calls `migrate_verify_suite!(TheBed)`.
//!
//! Every test works on tables of its own, named `mig2_<test>`, on both sides: PostgreSQL 55432
//! (source) and 55434 (destination), MariaDB databases `mig2_verify_src` and `mig2_verify_dst`
//! on 33306, SQLite two files per test.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel_rw::double_write::Side;
pub use diesel_rw::migrate::canonical::Canon;
use diesel_rw::migrate::repair::{Repair, RepairKind, SkipReason};
use diesel_rw::migrate::verify::{Verify, VerifyMode};
use diesel_rw::migrate::{Key, MigrateConnection, TableSpec};
use diesel_rw::Error;

/// One pair of values of a column (source, destination, as SQL literals) and whether the
/// verifier must find them equal.
pub struct Pair {
    pub source: &'static str,
    pub destination: &'static str,
    pub equal: bool,
}

pub const fn eq(source: &'static str, destination: &'static str) -> Pair {
    Pair {
        source,
        destination,
        equal: true,
    }
}

pub const fn ne(source: &'static str, destination: &'static str) -> Pair {
    Pair {
        source,
        destination,
        equal: false,
    }
}

/// A column type on each side, with value pairs.
pub struct Case {
    pub source_type: &'static str,
    pub destination_type: &'static str,
    pub pairs: Vec<Pair>,
    /// SQL run on each side's connection before the rows are inserted (e.g. a session time
    /// zone).
    pub source_session: &'static str,
    pub destination_session: &'static str,
}

impl Case {
    pub fn new(ty: &'static str, pairs: Vec<Pair>) -> Case {
        Case {
            source_type: ty,
            destination_type: ty,
            pairs,
            source_session: "",
            destination_session: "",
        }
    }
}

/// The kinds of values each backend gives cases for.
#[derive(Clone, Copy, Debug)]
pub enum Values {
    NullEmptyTrailing,
    FixedChar,
    NumericScale,
    Float,
    Timestamps,
    WallClock,
    Binary,
    Json,
    Unicode,
}

/// What a backend gives the suite.
pub trait VerifyBed: 'static {
    type Conn: MigrateConnection + SimpleConnection + diesel::connection::LoadConnection;
    const NAME: &'static str;
    /// The source and destination URLs, or `None` (after [`super::unavailable`]) when the
    /// servers are not there; `test` names a fresh SQLite directory.
    fn urls(test: &str) -> Option<(String, String)>;
    fn connect(url: &str) -> Self::Conn;
    /// DDL types: a 64-bit integer key, text, a decimal, a timestamp with time zone.
    const BIGINT: &'static str;
    const TEXT: &'static str;
    const DECIMAL: &'static str;
    const TIMESTAMPTZ: &'static str;
    /// An expression for "now" of [`Self::TIMESTAMPTZ`] type, and one for a text of it.
    const NOW: &'static str;
    /// A type the verifier cannot compare, if the backend has one, a literal of it, and a
    /// class to compare it as on request.
    const UNCOMPARABLE: Option<(&'static str, &'static str, Canon)>;
    fn cases(values: Values) -> Case;
    /// `expr` as text.
    fn text(expr: &str) -> String;
    /// The concurrent writers' double write (see [`double_writer!`]).
    fn double_writer(src: &str, dst: &str) -> Writer;
}

/// A test's two connections and the table name it works on, dropped first.
pub struct Tables<B: VerifyBed> {
    pub src_url: String,
    pub dst_url: String,
    pub src: B::Conn,
    pub dst: B::Conn,
    pub table: String,
}

pub fn tables<B: VerifyBed>(test: &str) -> Option<Tables<B>> {
    let (src_url, dst_url) = B::urls(test)?;
    let mut src = B::connect(&src_url);
    let mut dst = B::connect(&dst_url);
    let table = format!("mig2_{test}");
    for c in [&mut src, &mut dst] {
        c.batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .unwrap();
    }
    Some(Tables {
        src_url,
        dst_url,
        src,
        dst,
        table,
    })
}

/// Runs `sql` on both connections.
pub fn both<B: VerifyBed>(t: &mut Tables<B>, sql: &str) {
    t.src.batch_execute(sql).unwrap();
    t.dst.batch_execute(sql).unwrap();
}

pub fn key(id: i64) -> Key {
    Key::new(vec![id.to_string()])
}

pub fn keys(ids: &[i64]) -> Vec<Key> {
    ids.iter().map(|&i| key(i)).collect()
}

/// A verification with short re-check delays (the default is for production).
pub fn verify(table: &str) -> Verify {
    Verify::new(TableSpec::new(table))
        .recheck_delay(Duration::from_millis(50))
        .chunk_rows(100)
}

/// Creates the typed table of [`finds_each_kind_of_divergence`] on both sides with `rows`
/// equal rows.
pub fn typed_table<B: VerifyBed>(t: &mut Tables<B>, rows: i64) {
    let ddl = format!(
        "CREATE TABLE {} (id {} PRIMARY KEY, name {} NULL, price {} NULL, at {} NULL, note {} NULL)",
        t.table,
        B::BIGINT,
        B::TEXT,
        B::DECIMAL,
        B::TIMESTAMPTZ,
        B::TEXT
    );
    both(t, &ddl);
    let mut values = Vec::new();
    for i in 1..=rows {
        let note = if i % 7 == 0 {
            "NULL".to_owned()
        } else {
            format!("'n{i}'")
        };
        values.push(format!(
            "({i}, 'name {i}', {}.{:02}, '2024-01-{:02} 10:00:00', {note})",
            i * 3,
            i % 100,
            1 + i % 28
        ));
        if values.len() == 500 || i == rows {
            let sql = format!("INSERT INTO {} VALUES {}", t.table, values.join(", "));
            both(t, &sql);
            values.clear();
        }
    }
}

pub fn sorted(keys: Vec<Key>) -> Vec<Key> {
    let set: BTreeSet<Key> = keys.into_iter().collect();
    set.into_iter().collect()
}

/// Every kind of divergence, each found with its key, in a table of several chunks.
pub fn finds_each_kind_of_divergence<B: VerifyBed>(t: &mut Tables<B>) {
    typed_table(t, 1000);
    let tb = t.table.clone();
    t.dst
        .batch_execute(&format!(
            "DELETE FROM {tb} WHERE id IN (5, 500);
             INSERT INTO {tb} (id, name) VALUES (5000, 'extra');
             UPDATE {tb} SET name = 'other' WHERE id = 10;
             UPDATE {tb} SET price = price + 0.01 WHERE id = 20;
             UPDATE {tb} SET at = '2024-01-03 10:00:00.000001' WHERE id = 30;
             UPDATE {tb} SET note = NULL WHERE id = 40;
             UPDATE {tb} SET note = '' WHERE id = 49;"
        ))
        .unwrap();
    t.src
        .batch_execute(&format!("DELETE FROM {tb} WHERE id = 999"))
        .unwrap();
    // Chunks of 400 rows, split down to parts of at most 20 rows.
    let report = verify(&tb)
        .chunk_rows(400)
        .leaf_rows(20)
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    assert_eq!(
        sorted(report.missing_on_destination_keys()),
        sorted(keys(&[5, 500])),
        "{report:?}"
    );
    assert_eq!(
        sorted(report.missing_on_source_keys()),
        sorted(keys(&[999, 5000])),
        "{report:?}"
    );
    assert_eq!(
        sorted(report.different_keys()),
        sorted(keys(&[10, 20, 30, 40, 49])),
        "{report:?}"
    );
    assert_eq!(report.rows_compared, 1001, "{report:?}");
    assert_eq!(report.chunks, 3, "{report:?}");
    assert_eq!(report.chunks_differing, 3, "{report:?}");
    // The same with chunks of 100 rows compared row by row: only the chunks with differences.
    let report = verify(&tb).run(&mut t.src, &mut t.dst).unwrap();
    assert_eq!(report.differences(), 9, "{report:?}");
    assert_eq!(report.chunks, 10, "{report:?}");
    assert_eq!(report.chunks_differing, 3, "{report:?}");
}

/// Each pair of `case` in its own row; the rows found different are exactly the pairs marked
/// different.
pub fn values_compare_by_value<B: VerifyBed>(t: &mut Tables<B>, values: Values) {
    let case = B::cases(values);
    let tb = t.table.clone();
    t.src
        .batch_execute(&format!(
            "CREATE TABLE {tb} (id {} PRIMARY KEY, v {} NULL)",
            B::BIGINT,
            case.source_type
        ))
        .unwrap();
    t.dst
        .batch_execute(&format!(
            "CREATE TABLE {tb} (id {} PRIMARY KEY, v {} NULL)",
            B::BIGINT,
            case.destination_type
        ))
        .unwrap();
    if !case.source_session.is_empty() {
        t.src.batch_execute(case.source_session).unwrap();
    }
    if !case.destination_session.is_empty() {
        t.dst.batch_execute(case.destination_session).unwrap();
    }
    let mut expected = Vec::new();
    for (i, pair) in case.pairs.iter().enumerate() {
        let id = i as i64 + 1;
        t.src
            .batch_execute(&format!("INSERT INTO {tb} VALUES ({id}, {})", pair.source))
            .unwrap();
        t.dst
            .batch_execute(&format!(
                "INSERT INTO {tb} VALUES ({id}, {})",
                pair.destination
            ))
            .unwrap();
        if !pair.equal {
            expected.push(key(id));
        }
    }
    let report = verify(&tb).run(&mut t.src, &mut t.dst).unwrap();
    let found = sorted(report.different_keys());
    let describe = |keys: &[Key]| {
        keys.iter()
            .map(|k| {
                let p = &case.pairs[k.values()[0].parse::<usize>().unwrap() - 1];
                format!("{k}: {} vs {}", p.source, p.destination)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        describe(&found),
        describe(&sorted(expected)),
        "{} {values:?}: rows found different (left) vs expected (right)",
        B::NAME
    );
    assert!(report.missing_on_destination.is_empty() && report.missing_on_source.is_empty());
}

/// Runs one statement.
pub type Exec = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The concurrent writers' double write (SrcFirst, 8 connections): runs one statement on a
/// connection of the pool; and the number of second-side failures so far.
pub struct Writer {
    pub exec: Exec,
    pub destination_failures: Arc<dyn Fn() -> u64 + Send + Sync>,
}

/// A [`Writer`] over `DoubleWrite<$conn>` from the source and destination URLs; `$setup`: SQL
/// each new connection runs first (empty: none).
#[macro_export]
macro_rules! double_writer {
    ($conn:ty, $src:expr, $dst:expr, $setup:expr) => {{
        use diesel::connection::SimpleConnection as _;
        let setup: &'static str = $setup;
        let pool = diesel_rw::double_write::DoubleWrite::<$conn>::builder()
            .on_connect(move |_, c| {
                if setup.is_empty() {
                    Ok(())
                } else {
                    c.batch_execute(setup)
                }
            })
            .source($src)
            .destination($dst)
            .pattern(diesel_rw::double_write::PatternSwitch::new(
                diesel_rw::double_write::Pattern::SrcFirst,
            ))
            .max_size(8)
            .connection_timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        let metrics = pool.clone();
        $crate::mv::Writer {
            exec: std::sync::Arc::new(move |sql: &str| {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                conn.batch_execute(sql).map_err(|e| e.to_string())
            }),
            destination_failures: std::sync::Arc::new(move || {
                metrics.metrics().destination.failures
            }),
        }
    }};
}

/// 8 threads double-write (updates, inserts, deletes) while Verify runs twice: no difference
/// is reported; afterwards, with the writers stopped, a full verify is clean too.
pub fn no_false_positives_under_concurrent_double_writes<B: VerifyBed>(t: &mut Tables<B>) {
    let writer = B::double_writer(&t.src_url, &t.dst_url);
    typed_table(t, 2000);
    let tb = t.table.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicI64::new(100_000));
    let writes = Arc::new(AtomicI64::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut threads = Vec::new();
    for n in 0..8 {
        let (exec, stop, next_id, writes, errors, tb) = (
            writer.exec.clone(),
            stop.clone(),
            next_id.clone(),
            writes.clone(),
            errors.clone(),
            tb.clone(),
        );
        threads.push(std::thread::spawn(move || {
            // Each thread writes its own rows only: two threads' writes to one row could
            // reach the two sides in different orders, a real divergence (not this test's
            // subject).
            let mut i: i64 = 0;
            let mut inserted = std::collections::VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = 1 + ((i * 7919) % 250) * 8 + n;
                let sql = match i % 5 {
                    0 => {
                        let new = next_id.fetch_add(1, Ordering::Relaxed);
                        inserted.push_back(new);
                        format!("INSERT INTO {tb} (id, name, price) VALUES ({new}, 'w{n}', {i}.5)")
                    }
                    1 if inserted.len() > 3 => {
                        format!("DELETE FROM {tb} WHERE id = {}", inserted.pop_front().unwrap())
                    }
                    _ => format!(
                        "UPDATE {tb} SET name = 'w{n}-{i}', price = {i}.25, note = NULL WHERE id = {id}"
                    ),
                };
                match exec(&sql) {
                    Ok(()) => {
                        writes.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => errors.lock().unwrap().push(e.to_string()),
                }
            }
        }));
    }
    // Let the writers get going.
    let deadline = Instant::now() + Duration::from_secs(60);
    while writes.load(Ordering::Relaxed) < 200 {
        assert!(Instant::now() < deadline, "writers made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut reports = Vec::new();
    for _ in 0..2 {
        reports.push(
            verify(&tb)
                .chunk_rows(250)
                .rechecks(5)
                .recheck_delay(Duration::from_millis(400))
                .run(&mut t.src, &mut t.dst)
                .unwrap(),
        );
    }
    let during = writes.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().unwrap();
    }
    assert_eq!(
        (writer.destination_failures)(),
        0,
        "a second-side write failed: a real divergence, not the test's subject ({:?})",
        errors.lock().unwrap().first()
    );
    for report in &reports {
        assert!(
            report.is_clean(),
            "{}: false positives under concurrent double writes: {report:?}",
            B::NAME
        );
    }
    assert!(
        reports.iter().any(|r| r.chunks_differing > 0),
        "the writes never caught the verifier between the two sides, so the test proved nothing: {reports:?}"
    );
    assert!(during > 200, "the writers wrote {during} statements");
    let after = verify(&tb).run(&mut t.src, &mut t.dst).unwrap();
    assert!(after.is_clean(), "{after:?}");
    eprintln!(
        "{}: {during} double writes during 2 verifies; {} + {} rows settled on re-check",
        B::NAME,
        reports[0].settled_on_recheck,
        reports[1].settled_on_recheck
    );
}

/// Injects one divergence of each kind.
fn diverge<B: VerifyBed>(t: &mut Tables<B>) {
    let tb = t.table.clone();
    t.dst
        .batch_execute(&format!(
            "DELETE FROM {tb} WHERE id = 3;
             INSERT INTO {tb} (id, name) VALUES (9000, 'extra');
             UPDATE {tb} SET name = 'other', price = NULL WHERE id = 4;
             UPDATE {tb} SET at = NULL WHERE id = 150;"
        ))
        .unwrap();
}

/// A dry run lists the actions and writes nothing; the repair applies them, and a verify
/// afterwards is clean; the destination then holds the source's values.
pub fn repair_converges<B: VerifyBed>(t: &mut Tables<B>) {
    typed_table(t, 300);
    diverge(t);
    let tb = t.table.clone();
    let report = verify(&tb).run(&mut t.src, &mut t.dst).unwrap();
    assert_eq!(report.differences(), 4, "{report:?}");

    let dry = Repair::new(TableSpec::new(tb.as_str()))
        .dry_run(true)
        .run(&report, &mut t.src, &mut t.dst)
        .unwrap();
    let mut planned: Vec<(String, RepairKind)> = dry
        .planned
        .iter()
        .map(|a| (a.key.to_string(), a.kind))
        .collect();
    planned.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        planned,
        vec![
            ("150".into(), RepairKind::Update),
            ("3".into(), RepairKind::Insert),
            ("4".into(), RepairKind::Update),
            ("9000".into(), RepairKind::Delete),
        ]
    );
    assert!(dry.applied.is_empty());
    assert_eq!(
        verify(&tb)
            .run(&mut t.src, &mut t.dst)
            .unwrap()
            .differences(),
        4,
        "the dry run wrote nothing"
    );

    let done = Repair::new(TableSpec::new(tb.as_str()))
        .run(&report, &mut t.src, &mut t.dst)
        .unwrap();
    assert_eq!(done.applied.len(), 4, "{done:?}");
    assert!(done.applied.iter().all(|a| a.side == Side::Destination));
    assert!(done.requeued.is_empty());
    let after = verify(&tb).run(&mut t.src, &mut t.dst).unwrap();
    assert!(after.is_clean(), "{after:?}");
    assert_eq!(after.rows_compared, 300);
}

/// With the destination authoritative (from DstFirst on), the source converges to it.
pub fn destination_authoritative<B: VerifyBed>(t: &mut Tables<B>) {
    typed_table(t, 300);
    diverge(t);
    let tb = t.table.clone();
    let report = verify(&tb)
        .authoritative(Side::Destination)
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    assert_eq!(report.authoritative, Side::Destination);
    assert_eq!(report.missing_on_source_keys(), keys(&[9000]));
    assert_eq!(report.missing_on_destination_keys(), keys(&[3]));
    let done = Repair::new(TableSpec::new(tb.as_str()))
        .run(&report, &mut t.src, &mut t.dst)
        .unwrap();
    assert_eq!(done.applied.len(), 4, "{done:?}");
    assert!(done.applied.iter().all(|a| a.side == Side::Source));
    assert!(verify(&tb).run(&mut t.src, &mut t.dst).unwrap().is_clean());
    // The source took the destination's rows: 3 is gone, 9000 is there.
    let count = |c: &mut B::Conn, id: i64| -> String {
        c.query_texts(
            &format!(
                "SELECT {} AS value FROM {tb} WHERE id = {id}",
                B::text("COUNT(*)")
            ),
            &[],
        )
        .unwrap()[0]
            .clone()
            .unwrap()
    };
    assert_eq!(count(&mut t.src, 3), "0");
    assert_eq!(count(&mut t.src, 9000), "1");
}

/// A row written between the verification and the repair's lock is skipped and re-queued, and
/// never overwritten with the older version: on the follower (the newer version stays) and on
/// the authoritative side (the repair leaves it to the double write).
pub fn repair_never_overwrites_a_row_updated_during_the_repair<B: VerifyBed>(t: &mut Tables<B>) {
    typed_table(t, 50);
    let tb = t.table.clone();
    t.dst
        .batch_execute(&format!(
            "UPDATE {tb} SET name = 'stale' WHERE id IN (7, 8, 9)"
        ))
        .unwrap();
    let report = verify(&tb).run(&mut t.src, &mut t.dst).unwrap();
    assert_eq!(report.different_keys(), keys(&[7, 8, 9]));
    // Between the verification and the lock: row 7 gets a newer version on the follower only
    // (a write the destination took first), row 8 on the authoritative side only (the first
    // half of a double write in flight). Row 9 is left alone.
    let writer = Arc::new(Mutex::new((B::connect(&t.src_url), B::connect(&t.dst_url))));
    let hook_writer = writer.clone();
    let hook_tb = tb.clone();
    let repair = Repair::new(TableSpec::new(tb.as_str())).before_lock(move |k| {
        let mut w = hook_writer.lock().unwrap();
        match k.values()[0].as_str() {
            "7" => {
                w.1.batch_execute(&format!(
                    "UPDATE {hook_tb} SET name = 'newer on dst' WHERE id = 7"
                ))
                .unwrap()
            }
            "8" => {
                w.0.batch_execute(&format!(
                    "UPDATE {hook_tb} SET name = 'newer on src' WHERE id = 8"
                ))
                .unwrap()
            }
            _ => {}
        }
    });
    let done = repair.run(&report, &mut t.src, &mut t.dst).unwrap();
    assert_eq!(done.applied.len(), 1, "{done:?}");
    assert_eq!(done.applied[0].key, key(9));
    assert_eq!(sorted(done.requeued.clone()), keys(&[7, 8]), "{done:?}");
    let reasons: Vec<_> = done
        .skipped
        .iter()
        .map(|s| (s.key.to_string(), s.reason))
        .collect();
    assert!(reasons.contains(&(
        "7".into(),
        SkipReason::ChangedSinceVerify(Side::Destination)
    )));
    assert!(reasons.contains(&("8".into(), SkipReason::ChangedSinceVerify(Side::Source))));
    let name = |c: &mut B::Conn, id: i64| -> String {
        c.query_texts(
            &format!("SELECT name AS value FROM {tb} WHERE id = {id}"),
            &[],
        )
        .unwrap()[0]
            .clone()
            .unwrap()
    };
    assert_eq!(
        name(&mut t.dst, 7),
        "newer on dst",
        "the newer version was kept"
    );
    assert_eq!(
        name(&mut t.dst, 8),
        "stale",
        "not repaired from a read older than the lock"
    );
    assert_eq!(name(&mut t.src, 8), "newer on src");
    assert_eq!(name(&mut t.dst, 9), "name 9");
    // The re-queued rows verify again, by key, and repair then.
    let again = verify(&tb)
        .mode(VerifyMode::Keys(done.requeued.clone()))
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    assert_eq!(again.different_keys(), keys(&[7, 8]));
    let done = Repair::new(TableSpec::new(tb.as_str()))
        .run(&again, &mut t.src, &mut t.dst)
        .unwrap();
    assert_eq!(done.applied.len(), 2);
    assert!(verify(&tb).run(&mut t.src, &mut t.dst).unwrap().is_clean());
}

/// Incremental: the rows changed since a time (by the "changed at" column), and the rows a
/// list of keys names; rows outside them are not looked at.
pub fn incremental_modes<B: VerifyBed>(t: &mut Tables<B>) {
    typed_table(t, 200);
    let tb = t.table.clone();
    // An old divergence, outside the window.
    t.dst
        .batch_execute(&format!("UPDATE {tb} SET name = 'old' WHERE id = 1"))
        .unwrap();
    let since = t
        .src
        .query_texts(&format!("SELECT {} AS value", B::text(B::NOW)), &[])
        .unwrap()[0]
        .clone()
        .unwrap();
    t.src
        .batch_execute(&format!(
            "UPDATE {tb} SET name = 'new', at = {now} WHERE id = 2;
             INSERT INTO {tb} (id, name, at) VALUES (500, 'fresh', {now});",
            now = B::NOW
        ))
        .unwrap();
    t.dst
        .batch_execute(&format!(
            "UPDATE {tb} SET at = {now} WHERE id = 3",
            now = B::NOW
        ))
        .unwrap();
    let spec = TableSpec::new(tb.as_str()).changed_at("at");
    let report = Verify::new(spec.clone())
        .recheck_delay(Duration::from_millis(50))
        .mode(VerifyMode::ChangedSince(since.clone()))
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    assert_eq!(
        report.missing_on_destination_keys(),
        keys(&[500]),
        "{report:?}"
    );
    assert_eq!(sorted(report.different_keys()), keys(&[2, 3]), "{report:?}");
    assert_eq!(report.rows_compared, 3, "{report:?}");
    let listed = verify(&tb)
        .mode(VerifyMode::Keys(keys(&[1, 4, 500, 777])))
        .run(&mut t.src, &mut t.dst)
        .unwrap();
    assert_eq!(listed.different_keys(), keys(&[1]));
    assert_eq!(listed.missing_on_destination_keys(), keys(&[500]));
    assert_eq!(
        listed.rows_compared, 3,
        "777 is on neither side: {listed:?}"
    );
    // Without a "changed at" column, the incremental mode says what is missing.
    let err = verify(&tb)
        .mode(VerifyMode::ChangedSince(since))
        .run(&mut t.src, &mut t.dst)
        .unwrap_err();
    assert!(err.to_string().contains("changed at"), "{err}");
}

/// Bad input: each a clear error naming what is wrong, and nothing written on either side.
pub fn bad_input_is_refused_and_nothing_written<B: VerifyBed>(t: &mut Tables<B>) {
    let tb = t.table.clone();
    t.src
        .batch_execute(&format!(
            "CREATE TABLE {tb} (id {} PRIMARY KEY, name {} NULL, extra {} NULL)",
            B::BIGINT,
            B::TEXT,
            B::TEXT
        ))
        .unwrap();
    t.dst
        .batch_execute(&format!(
            "CREATE TABLE {tb} (id {} PRIMARY KEY, name {} NULL)",
            B::BIGINT,
            B::TEXT
        ))
        .unwrap();
    t.src
        .batch_execute(&format!(
            "INSERT INTO {tb} VALUES (1, 'a', 'x'), (2, 'b', NULL)"
        ))
        .unwrap();
    // A valid table with one row missing on the destination, and its report.
    let ok = format!("{tb}_ok");
    for c in [&mut t.src, &mut t.dst] {
        c.batch_execute(&format!("DROP TABLE IF EXISTS {ok}"))
            .unwrap();
        c.batch_execute(&format!(
            "CREATE TABLE {ok} (id {} PRIMARY KEY, name {} NULL)",
            B::BIGINT,
            B::TEXT
        ))
        .unwrap();
    }
    t.src
        .batch_execute(&format!("INSERT INTO {ok} VALUES (1, 'a')"))
        .unwrap();
    let ok_report = verify(&ok).run(&mut t.src, &mut t.dst).unwrap();
    assert_eq!(ok_report.missing_on_destination_keys(), keys(&[1]));
    let snapshot = |t: &mut Tables<B>| -> Vec<Vec<Option<String>>> {
        let mut out = Vec::new();
        for table in [&tb, &ok] {
            let sql = format!("SELECT {} AS value FROM {table} ORDER BY id", B::text("id"));
            out.push(t.src.query_texts(&sql, &[]).unwrap());
            out.push(t.dst.query_texts(&sql, &[]).unwrap());
        }
        out
    };
    let before = snapshot(t);

    let err = verify("mig2_no_such_table")
        .run(&mut t.src, &mut t.dst)
        .unwrap_err();
    assert!(matches!(err, Error::UnknownTable { .. }), "{err:?}");
    assert!(err.to_string().contains("mig2_no_such_table"), "{err}");

    let err = verify(&tb)
        .compare_as("no_such_column", diesel_rw::migrate::canonical::Canon::Text)
        .run(&mut t.src, &mut t.dst)
        .unwrap_err();
    assert!(matches!(err, Error::UnknownColumn { .. }), "{err:?}");
    assert!(err.to_string().contains("no_such_column"), "{err}");

    let err = verify(&tb).run(&mut t.src, &mut t.dst).unwrap_err();
    assert!(
        matches!(err, Error::DestinationMissingColumns { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("`extra`"), "{err}");
    // Repair checks the same before writing anything.
    let err = Repair::new(TableSpec::new(tb.as_str()))
        .run(&ok_report, &mut t.src, &mut t.dst)
        .unwrap_err();
    assert!(
        matches!(err, Error::DestinationMissingColumns { .. }),
        "{err:?}"
    );

    // A table only on the source.
    let only = format!("{tb}_src_only");
    t.src
        .batch_execute(&format!("DROP TABLE IF EXISTS {only}"))
        .unwrap();
    t.dst
        .batch_execute(&format!("DROP TABLE IF EXISTS {only}"))
        .unwrap();
    t.src
        .batch_execute(&format!(
            "CREATE TABLE {only} (id {} PRIMARY KEY)",
            B::BIGINT
        ))
        .unwrap();
    let err = verify(&only).run(&mut t.src, &mut t.dst).unwrap_err();
    assert!(matches!(err, Error::UnknownTable { .. }), "{err:?}");
    assert!(err.to_string().contains("destination"), "{err}");
    t.src.batch_execute(&format!("DROP TABLE {only}")).unwrap();

    // A type the verifier cannot compare: named with its column.
    if let Some((ty, literal, canon)) = B::UNCOMPARABLE {
        let odd = format!("{tb}_odd");
        for c in [&mut t.src, &mut t.dst] {
            c.batch_execute(&format!("DROP TABLE IF EXISTS {odd}"))
                .unwrap();
            c.batch_execute(&format!(
                "CREATE TABLE {odd} (id {} PRIMARY KEY, span {ty} NULL)",
                B::BIGINT
            ))
            .unwrap();
            c.batch_execute(&format!("INSERT INTO {odd} VALUES (1, {literal})"))
                .unwrap();
        }
        let err = verify(&odd).run(&mut t.src, &mut t.dst).unwrap_err();
        assert!(matches!(err, Error::UncomparableType { .. }), "{err:?}");
        assert!(err.to_string().contains("`span`"), "{err}");
        // Compared as another class, on request.
        let report = verify(&odd)
            .compare_as("span", canon)
            .run(&mut t.src, &mut t.dst)
            .unwrap();
        assert!(report.is_clean());
        for c in [&mut t.src, &mut t.dst] {
            c.batch_execute(&format!("DROP TABLE {odd}")).unwrap();
        }
    } else {
        eprintln!(
            "{}: every declared type is compared (dynamic typing)",
            B::NAME
        );
    }

    // A report of another table.
    t.dst
        .batch_execute(&format!(
            "ALTER TABLE {tb} ADD COLUMN extra {} NULL",
            B::TEXT
        ))
        .unwrap();
    let err = Repair::new(TableSpec::new(tb.as_str()))
        .run(&ok_report, &mut t.src, &mut t.dst)
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains(&ok), "{err}");
    assert_eq!(snapshot(t), before, "nothing was written");
    let still = verify(&ok).run(&mut t.src, &mut t.dst).unwrap();
    assert_eq!(still.missing_on_destination_keys(), keys(&[1]));
}

#[macro_export]
macro_rules! migrate_verify_suite {
    ($bed:ty) => {
        use $crate::mv::*;

        fn t(test: &str) -> Option<Tables<$bed>> {
            tables::<$bed>(test)
        }

        #[test]
        fn finds_each_kind_of_divergence_in_a_chunked_table() {
            let Some(mut t) = t("divergences") else {
                return;
            };
            finds_each_kind_of_divergence(&mut t);
        }

        #[test]
        fn null_empty_string_and_trailing_spaces_are_different_values() {
            let Some(mut t) = t("v_null_empty") else {
                return;
            };
            values_compare_by_value(&mut t, Values::NullEmptyTrailing);
        }

        #[test]
        fn fixed_width_char_ignores_trailing_spaces() {
            let Some(mut t) = t("v_char") else { return };
            values_compare_by_value(&mut t, Values::FixedChar);
        }

        #[test]
        fn numerics_compare_whatever_their_scale() {
            let Some(mut t) = t("v_numeric") else { return };
            values_compare_by_value(&mut t, Values::NumericScale);
        }

        #[test]
        fn floats_compare_to_the_last_bit() {
            let Some(mut t) = t("v_float") else { return };
            values_compare_by_value(&mut t, Values::Float);
        }

        #[test]
        fn timestamps_compare_as_instants_whatever_the_session_time_zone() {
            let Some(mut t) = t("v_timestamps") else {
                return;
            };
            values_compare_by_value(&mut t, Values::Timestamps);
        }

        #[test]
        fn timestamps_without_time_zone_compare_as_written_whatever_the_precision() {
            let Some(mut t) = t("v_wall_clock") else {
                return;
            };
            values_compare_by_value(&mut t, Values::WallClock);
        }

        #[test]
        fn binary_values_compare_byte_for_byte() {
            let Some(mut t) = t("v_binary") else { return };
            values_compare_by_value(&mut t, Values::Binary);
        }

        #[test]
        fn json_compares_by_document_not_formatting() {
            let Some(mut t) = t("v_json") else { return };
            values_compare_by_value(&mut t, Values::Json);
        }

        #[test]
        fn unicode_text_compares_by_characters() {
            let Some(mut t) = t("v_unicode") else { return };
            values_compare_by_value(&mut t, Values::Unicode);
        }

        #[test]
        fn no_false_positives_while_8_threads_double_write() {
            let Some(mut t) = t("concurrent") else { return };
            no_false_positives_under_concurrent_double_writes(&mut t);
        }

        #[test]
        fn repair_converges_and_dry_run_writes_nothing() {
            let Some(mut t) = t("repair") else { return };
            repair_converges(&mut t);
        }

        #[test]
        fn repair_converges_the_source_when_the_destination_is_authoritative() {
            let Some(mut t) = t("repair_dst") else { return };
            destination_authoritative(&mut t);
        }

        #[test]
        fn repair_never_overwrites_a_row_updated_during_it() {
            let Some(mut t) = t("repair_race") else {
                return;
            };
            repair_never_overwrites_a_row_updated_during_the_repair(&mut t);
        }

        #[test]
        fn incremental_verify_since_a_time_and_by_keys() {
            let Some(mut t) = t("incremental") else {
                return;
            };
            incremental_modes(&mut t);
        }

        #[test]
        fn bad_input_gives_clear_errors_and_writes_nothing() {
            let Some(mut t) = t("bad_input") else { return };
            bad_input_is_refused_and_nothing_written(&mut t);
        }
    };
}
