//! The double-write suite on PostgreSQL: source 55432, destination 55434 (`scripts/db up`). The
//! "destination down" tests stop the real destination server (`scripts/db stop pg-dest`) and
//! start it again, even when they fail.
#![cfg(feature = "postgres")]

mod common;
#[macro_use]
#[path = "common/double_write.rs"]
mod dw;

#[macro_use]
#[path = "common/dw_contract.rs"]
mod contract;

double_write_suite!(pg);
dw_contract_suite!(pg);

/// The destination server is stopped: a statement on its open connection fails with a lost
/// connection, which may have applied and is not retried (it is journaled). Later statements
/// reconnect first, and a refused connect (nothing sent) is retried until the server is back.
#[test]
fn retry_reconnects_when_the_destination_server_returns() {
    let bed = exclusive_bed!("dw_retry_reconnects_pg");
    let mut outage = backend::outage(&bed);
    let retry = Retry::attempts(200)
        .initial_backoff(Duration::from_millis(20))
        .max_backoff(Duration::from_millis(100))
        .max_elapsed(Duration::from_secs(30));
    let pool = builder(&bed, Pattern::SrcFirst)
        .retry(retry)
        .build()
        .unwrap();
    let mut conn = pool.get().unwrap();
    insert(&mut conn, &format!("{}:1", bed.tag)).unwrap();
    outage.down();
    // Sent on a connection that died: ambiguous, not retried, journaled.
    insert(&mut conn, &format!("{}:2", bed.tag)).unwrap();
    assert_eq!(pool.metrics().destination.retries, 0);
    assert_eq!(journal(&pool).len(), 1);
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        outage.up();
        outage
    });
    // Reconnects, retrying the refused connects until the server is up again.
    insert(&mut conn, &format!("{}:3", bed.tag)).unwrap();
    let _outage = starter.join().unwrap();
    assert!(pool.metrics().destination.retries >= 1);
    let prefix = format!("{}:", bed.tag);
    assert_eq!(tags(&bed, Side::Source, &prefix).len(), 3);
    assert_eq!(
        tags(&bed, Side::Destination, &prefix),
        [format!("{}:1", bed.tag), format!("{}:3", bed.tag)]
    );
    assert_eq!(journal(&pool).len(), 1);
}

#[test]
fn sync_sequences_sets_the_destination_to_the_source() {
    let bed = bed!("dw_sync_sequences");
    for (url, start) in [(&bed.source, 500), (&bed.destination, 10)] {
        backend::direct(url)
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS dw_seq_a, dw_seq_b;
                 CREATE TABLE dw_seq_a (id SERIAL PRIMARY KEY);
                 CREATE TABLE dw_seq_b (id SERIAL PRIMARY KEY);
                 SELECT setval('dw_seq_a_id_seq', {start});
                 SELECT setval('dw_seq_b_id_seq', {});",
                start * 2
            ))
            .unwrap();
    }
    // The destination's dw_seq_b is further than the source's: it is left alone.
    backend::direct(&bed.destination)
        .batch_execute("SELECT setval('dw_seq_b_id_seq', 5000)")
        .unwrap();
    let pool = pool(&bed, Pattern::SrcFirst);
    let mut conn = pool.get().unwrap();
    let report = conn.sync_sequences().unwrap();
    assert!(
        report
            .synced
            .contains(&("public.dw_seq_a_id_seq".into(), 500)),
        "{report:?}"
    );
    assert!(
        report
            .ahead
            .contains(&("public.dw_seq_b_id_seq".into(), 1000, 5000)),
        "{report:?}"
    );
    // The next generated keys agree on dw_seq_a.
    let next = |url: &str| -> i32 {
        diesel::sql_query("INSERT INTO dw_seq_a DEFAULT VALUES")
            .execute(&mut backend::direct(url))
            .unwrap();
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
            "(SELECT max(id) FROM dw_seq_a)",
        ))
        .get_result(&mut backend::direct(url))
        .unwrap()
    };
    assert_eq!(next(&bed.source), 501);
    assert_eq!(next(&bed.destination), 501);
    for url in [&bed.source, &bed.destination] {
        backend::direct(url)
            .batch_execute("DROP TABLE IF EXISTS dw_seq_a, dw_seq_b")
            .unwrap();
    }
}

/// Creates, on both sides, a table whose unique constraint is checked at `COMMIT` (deferred):
/// two equal rows make the `COMMIT` itself fail.
fn deferred_table(bed: &DwBed) {
    for url in [&bed.source, &bed.destination] {
        backend::direct(url)
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS dw_deferred (tag TEXT NOT NULL, n INT NOT NULL, \
                 CONSTRAINT dw_deferred_u UNIQUE (tag, n) DEFERRABLE INITIALLY DEFERRED)",
            )
            .unwrap();
    }
}

fn deferred_rows(bed: &DwBed, side: Side, tag: &str) -> i64 {
    diesel::sql_query(format!(
        "SELECT count(*)::int8 AS n FROM dw_deferred WHERE tag = '{tag}'"
    ))
    .get_result::<Count>(&mut backend::direct(bed.url(side)))
    .unwrap()
    .n
}

/// `err` says the source's COMMIT did not commit and nothing is applied on either side.
fn assert_nothing_committed(err: &Error) {
    match err {
        Error::NothingApplied {
            what: "COMMIT",
            failed: Side::Source,
            source,
        } => assert!(
            matches!(**source, Error::NotCommitted { .. }),
            "caused by NotCommitted: {source:?}"
        ),
        other => panic!("expected NothingApplied(NotCommitted), got {other:?}"),
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The reply to the source's `COMMIT` is lost after the source committed: the double write
/// asks the source on a new connection (`txid_status`), finds the transaction committed, and
/// commits the destination too. The caller sees success, both sides have the row, nothing is
/// journaled, and the connection goes on.
#[test]
fn a_lost_first_side_commit_that_committed_commits_the_second_side() {
    let bed = bed!("dw_lost_commit_committed");
    let source = common::Flaky::proxied(&bed.source);
    for (i, strict) in [false, true].into_iter().enumerate() {
        let pool = DoubleWrite::<Conn>::builder()
            .source(&source.url)
            .destination(&bed.destination)
            .pattern(Pattern::SrcFirst)
            .strict(strict)
            .max_size(1)
            .build()
            .unwrap();
        let mut conn = pool.get().unwrap();
        let tag = format!("{}:{strict}", bed.tag);
        insert(&mut conn, &format!("{tag}:before")).unwrap();
        source.lose_reply_to(b"COMMIT");
        conn.transaction(|c| insert(c, &tag)).unwrap();
        assert_eq!(source.sprung(), i as u64 + 1, "the COMMIT's reply was lost");
        assert_eq!(nodes(&bed, Side::Source, &tag), [bed.id(Side::Source)]);
        assert_eq!(
            nodes(&bed, Side::Destination, &tag),
            [bed.id(Side::Destination)],
            "strict={strict}: the destination committed too"
        );
        assert!(journal(&pool).is_empty(), "{:#?}", journal(&pool));
        insert(&mut conn, &format!("{tag}:after")).unwrap();
        assert_eq!(
            nodes(&bed, Side::Destination, &format!("{tag}:after")).len(),
            1
        );
    }
}

/// The source's `COMMIT` fails on the server (a deferred unique constraint) and its reply is
/// lost: the double write finds the transaction rolled back there, rolls the destination back
/// and reports `NothingApplied` caused by `NotCommitted`: safe to run again, nothing journaled.
#[test]
fn a_lost_first_side_commit_that_rolled_back_rolls_back_the_second_side() {
    let bed = bed!("dw_lost_commit_aborted");
    deferred_table(&bed);
    let source = common::Flaky::proxied(&bed.source);
    let pool = DoubleWrite::<Conn>::builder()
        .source(&source.url)
        .destination(&bed.destination)
        .pattern(Pattern::SrcFirst)
        .max_size(1)
        .build()
        .unwrap();
    let mut conn = pool.get().unwrap();
    insert(&mut conn, &format!("{}:before", bed.tag)).unwrap();
    source.lose_reply_to(b"COMMIT");
    let err = conn
        .transaction(|c| {
            c.batch_execute(&format!(
                "INSERT INTO dw_deferred (tag, n) VALUES ('{0}', 1), ('{0}', 1)",
                bed.tag
            ))
        })
        .unwrap_err();
    assert_eq!(source.sprung(), 1, "the COMMIT's reply was lost");
    let err = Error::from_diesel(err);
    assert_nothing_committed(&err);
    assert!(!err.to_string().contains("diesel_rw_pw"), "{err}");
    assert_eq!(deferred_rows(&bed, Side::Source, &bed.tag), 0);
    assert_eq!(deferred_rows(&bed, Side::Destination, &bed.tag), 0);
    assert!(journal(&pool).is_empty(), "{:#?}", journal(&pool));
    insert(&mut conn, &format!("{}:after", bed.tag)).unwrap();
}

/// The source's connection is cut inside the transaction, before its `COMMIT`: noting the
/// transaction's id fails, so the `COMMIT` is never sent; the destination is rolled back and the
/// caller gets `NothingApplied` caused by `NotCommitted`.
#[test]
fn a_first_side_lost_before_its_commit_is_not_committed() {
    let bed = bed!("dw_lost_before_commit");
    let source = common::Flaky::proxied(&bed.source);
    let pool = DoubleWrite::<Conn>::builder()
        .source(&source.url)
        .destination(&bed.destination)
        .pattern(Pattern::SrcFirst)
        .max_size(1)
        .build()
        .unwrap();
    let mut conn = pool.get().unwrap();
    insert(&mut conn, &format!("{}:before", bed.tag)).unwrap();
    let err = conn
        .transaction(|c| {
            insert(c, &bed.tag)?;
            source.down();
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap_err();
    source.up();
    let err = Error::from_diesel(err);
    assert_nothing_committed(&err);
    assert!(nodes(&bed, Side::Source, &bed.tag).is_empty());
    assert!(nodes(&bed, Side::Destination, &bed.tag).is_empty());
    insert(&mut conn, &format!("{}:after", bed.tag)).unwrap();
    assert_eq!(
        nodes(&bed, Side::Source, &format!("{}:after", bed.tag)).len(),
        1
    );
}
