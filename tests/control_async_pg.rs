//! Migration control on the async stack: an `AsyncDoubleWrite` over `AsyncPgConnection`
//! follows the phase in the control table (the same `Control` and switch as the sync pools),
//! on PostgreSQL (source 55432, destination 55434).
#![cfg(all(feature = "async", feature = "postgres"))]

mod common;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use diesel_rw::double_write::{AsyncDoubleWrite, Pattern};
use diesel_rw::migrate::control::{Control, Direction, Fleet, NoGates, StepOptions};
use diesel_rw::migrate::MigrateConnection;

fn count(url: &str, t: &str) -> i64 {
    PgConnection::establish(url)
        .unwrap()
        .query_texts(&format!("SELECT count(*)::text AS value FROM {t}"), &[])
        .unwrap()[0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_double_write_pool_follows_the_phase_in_the_table() {
    let (src, dst) = (common::pg::primary_url(), common::pg::dest_url());
    for url in [&src, &dst] {
        if let Err(e) = PgConnection::establish(url) {
            common::unavailable("PostgreSQL", &e.to_string());
            return;
        }
    }
    let (t, name) = ("ctl_async_items", "ctl_async");
    for url in [&src, &dst] {
        PgConnection::establish(url)
            .unwrap()
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (id BIGINT PRIMARY KEY)"
            ))
            .unwrap();
    }
    let mut ops = PgConnection::establish(&src).unwrap();
    let fleet = Fleet::new(name);
    fleet.init(&mut ops, Pattern::SrcOnly).unwrap();
    ops.batch_execute(&format!(
        "DELETE FROM diesel_rw_control WHERE migration = '{name}'; \
         DELETE FROM diesel_rw_control_instance WHERE migration = '{name}'"
    ))
    .unwrap();
    fleet.init(&mut ops, Pattern::SrcOnly).unwrap();
    let control = Control::builder::<PgConnection>(src.clone(), name)
        .poll_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    let pool = AsyncDoubleWrite::<AsyncPgConnection>::builder()
        .source(&src)
        .destination(&dst)
        .pattern(control.switch())
        .max_size(2)
        .build()
        .unwrap();
    pool.get()
        .await
        .unwrap()
        .batch_execute(&format!("INSERT INTO {t} VALUES (1)"))
        .await
        .unwrap();
    fleet
        .step(
            &mut ops,
            Direction::Advance,
            &mut NoGates,
            &StepOptions::new(),
        )
        .unwrap();
    // NOTIFY brings it at once; the deadline is only a bound.
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool.switch().get() != Pattern::SrcFirst {
        assert!(
            Instant::now() < deadline,
            "the async pool's switch applies src_first"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.get()
        .await
        .unwrap()
        .batch_execute(&format!("INSERT INTO {t} VALUES (2)"))
        .await
        .unwrap();
    assert_eq!(count(&src, t), 2);
    assert_eq!(
        count(&dst, t),
        1,
        "only the write under src_first reached the destination"
    );
    assert!(control.status().listening, "{:?}", control.status());
    for url in [&src, &dst] {
        PgConnection::establish(url)
            .unwrap()
            .batch_execute(&format!("DROP TABLE {t}"))
            .unwrap();
    }
}
