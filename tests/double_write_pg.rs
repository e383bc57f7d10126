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
