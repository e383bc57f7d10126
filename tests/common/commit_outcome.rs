//! A `COMMIT` whose reply is lost (included by the PostgreSQL and MariaDB routing suites): the
//! caller learns the truth or is told it is unknown, never an ordinary error. On PostgreSQL the
//! routing connection asks the server (`txid_status`) and returns the true outcome; on MariaDB
//! it returns `Error::CommitOutcomeUnknown`. Each test counts the rows that were committed, so
//! what the caller was told is checked against what happened.
//!
//! The link to the primary goes through a proxy that can cut it before the `COMMIT` is sent,
//! lose the reply to the `COMMIT` (the server committed), or swallow the `COMMIT` (the server
//! never gets it; its session stays open in the transaction).

/// Rows tagged `tag` on the primary, counted on a connection of its own.
macro_rules! committed_rows {
    ($backend:ident, $url:expr, $tag:expr) => {{
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let query = diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM items WHERE tag = '{}'",
            $tag
        ));
        diesel::RunQueryDsl::get_result::<Count>(query, &mut $backend::direct($url))
            .unwrap()
            .n
    }};
}

/// The sync suite for `$backend` (PostgreSQL or MariaDB).
macro_rules! commit_outcome_suite {
    ($backend:ident) => {
        mod commit_outcome_suite {
            use diesel::prelude::*;
            use diesel::sql_types::Text;
            use diesel_rw::{Error, RwConnection, RwPool};

            use crate::common::$backend as backend;

            type Conn = backend::Conn;

            macro_rules! bed {
                ($name:literal) => {
                    match backend::bed($name) {
                        Some(bed) => bed,
                        None => return,
                    }
                };
            }

            fn served_by(conn: &mut RwConnection<Conn>) -> String {
                diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                    .get_result(conn)
                    .unwrap()
            }

            fn insert(c: &mut RwConnection<Conn>, tag: &str) -> QueryResult<usize> {
                diesel::sql_query(format!(
                    "INSERT INTO items (tag, node) VALUES ('{tag}', 'x')"
                ))
                .execute(c)
            }

            fn pg() -> bool {
                backend::NAME == "PostgreSQL"
            }

            #[test]
            fn a_commit_cut_before_it_was_sent_is_reported_not_committed() {
                let bed = bed!("commit_cut_before_sent");
                let primary = crate::common::Flaky::proxied(&bed.primary);
                let pool = RwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .build()
                    .unwrap();
                let mut conn = pool.get().unwrap();
                let tag = format!("{}-{}", bed.tag, std::process::id());
                let err = conn
                    .transaction(|c| {
                        insert(c, &tag)?;
                        // The link goes down before the COMMIT is sent.
                        primary.down();
                        QueryResult::Ok(())
                    })
                    .unwrap_err();
                primary.up();
                let err = Error::from_diesel(err);
                let message = err.to_string();
                assert!(!message.contains("diesel_rw_pw"), "{message}");
                let committed = committed_rows!(backend, &bed.primary, tag);
                println!("{}: {err}; rows committed: {committed}", backend::NAME);
                assert_eq!(committed, 0, "the server never got the COMMIT");
                if pg() {
                    // The transaction id could not be noted: the COMMIT was never sent.
                    assert!(matches!(err, Error::NotCommitted { .. }), "{err:?}");
                    assert!(
                        message.contains("safe to run the whole transaction again"),
                        "{message}"
                    );
                } else {
                    assert!(matches!(err, Error::CommitOutcomeUnknown { .. }), "{err:?}");
                    assert!(message.contains("may have committed"), "{message}");
                }
                // The connection is not left pinned to the broken link.
                assert_eq!(served_by(&mut conn), bed.primary_id);
            }

            #[test]
            fn a_commit_whose_reply_is_lost_is_resolved_or_reported_unknown() {
                let bed = bed!("commit_reply_lost");
                let primary = crate::common::Flaky::proxied(&bed.primary);
                let pool = RwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .build()
                    .unwrap();
                let mut conn = pool.get().unwrap();
                let rounds = 5;
                let (mut resolved, mut unknown) = (0, 0);
                for round in 0..rounds {
                    let tag = format!("{}-{}-{round}", bed.tag, std::process::id());
                    let result = conn.transaction(|c| {
                        insert(c, &tag)?;
                        // The COMMIT reaches the server; its reply does not come back.
                        primary.lose_reply_to(b"COMMIT");
                        QueryResult::Ok(())
                    });
                    let committed = committed_rows!(backend, &bed.primary, tag);
                    assert_eq!(committed, 1, "the server got the COMMIT and committed");
                    match result {
                        Ok(()) => {
                            assert!(pg(), "only PostgreSQL can tell the outcome");
                            resolved += 1;
                        }
                        Err(err) => {
                            let err = Error::from_diesel(err);
                            assert!(!pg(), "PostgreSQL resolves it: {err}");
                            assert!(matches!(err, Error::CommitOutcomeUnknown { .. }), "{err:?}");
                            assert!(err.to_string().contains("may have committed"), "{err}");
                            assert!(!err.to_string().contains("diesel_rw_pw"), "{err}");
                            unknown += 1;
                        }
                    }
                    // Usable again at once, on a new connection to the primary.
                    assert_eq!(served_by(&mut conn), bed.primary_id);
                }
                println!(
                    "{}: {rounds} lost COMMIT replies, all committed: {resolved} resolved to \
                     committed, {unknown} reported CommitOutcomeUnknown",
                    backend::NAME
                );
            }

            #[test]
            fn a_read_only_transaction_notes_no_transaction_id() {
                // A transaction that only read sends nothing extra before its COMMIT: its
                // instrumentation sees BEGIN, the read and COMMIT.
                let bed = bed!("commit_read_only_no_capture");
                let pool = RwPool::<Conn>::builder()
                    .primary(&bed.primary)
                    .build()
                    .unwrap();
                let mut conn = pool.primary().unwrap();
                let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
                let log = seen.clone();
                conn.set_instrumentation(
                    move |event: diesel::connection::InstrumentationEvent<'_>| {
                        if let diesel::connection::InstrumentationEvent::StartQuery {
                            query, ..
                        } = event
                        {
                            log.lock().unwrap().push(query.to_string());
                        }
                    },
                );
                conn.transaction(|c| {
                    served_by(c);
                    QueryResult::Ok(())
                })
                .unwrap();
                let tag = format!("{}-{}", bed.tag, std::process::id());
                conn.transaction(|c| insert(c, &tag)).unwrap();
                let seen = seen.lock().unwrap();
                let captures = seen.iter().filter(|q| q.contains("txid_current")).count();
                println!("{}: statements seen: {seen:?}", backend::NAME);
                assert_eq!(
                    captures,
                    usize::from(pg()),
                    "one capture, for the writing transaction only"
                );
            }
        }
    };
}

/// The async suite for `$backend` (PostgreSQL or MariaDB).
#[cfg(feature = "async")]
macro_rules! async_commit_outcome_suite {
    ($backend:ident) => {
        mod async_commit_outcome_suite {
            use std::sync::Arc;
            use std::time::{Duration, Instant};

            use diesel::sql_types::Text;
            use diesel_async::{AsyncConnection, RunQueryDsl};
            use diesel_rw::{AsyncRwConnection, AsyncRwPool, Error};

            use crate::common::$backend as backend;

            type Conn = backend::AsyncConn;

            macro_rules! bed {
                ($name:literal) => {
                    match backend::bed($name) {
                        Some(bed) => bed,
                        None => return,
                    }
                };
            }

            async fn served_by(conn: &mut AsyncRwConnection<Conn>) -> String {
                diesel::select(diesel::dsl::sql::<Text>(backend::IDENTITY))
                    .get_result(conn)
                    .await
                    .unwrap()
            }

            fn pg() -> bool {
                backend::NAME == "PostgreSQL"
            }

            /// Runs a transaction that inserts a row tagged `tag`; `trap` is sprung on the link
            /// after the insert.
            async fn insert_then(
                conn: &mut AsyncRwConnection<Conn>,
                tag: &str,
                trap: impl FnOnce() + Send,
            ) -> Result<(), Error> {
                conn.transaction::<(), diesel::result::Error, _>(async |c| {
                    diesel::sql_query(format!(
                        "INSERT INTO items (tag, node) VALUES ('{tag}', 'x')"
                    ))
                    .execute(c)
                    .await?;
                    trap();
                    Ok(())
                })
                .await
                .map_err(Error::from_diesel)
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_a_commit_cut_before_it_was_sent_is_reported_not_committed() {
                let bed = bed!("async_commit_cut_before_sent");
                let primary = Arc::new(crate::common::Flaky::proxied(&bed.primary));
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .build()
                    .unwrap();
                let mut conn = pool.get().await.unwrap();
                let tag = format!("{}-{}", bed.tag, std::process::id());
                let link = primary.clone();
                let err = insert_then(&mut conn, &tag, move || link.down())
                    .await
                    .unwrap_err();
                primary.up();
                assert!(!err.to_string().contains("diesel_rw_pw"), "{err}");
                let committed = committed_rows!(backend, &bed.primary, tag);
                println!("{}: {err}; rows committed: {committed}", backend::NAME);
                assert_eq!(committed, 0, "the server never got the COMMIT");
                if pg() {
                    assert!(matches!(err, Error::NotCommitted { .. }), "{err:?}");
                } else {
                    assert!(matches!(err, Error::CommitOutcomeUnknown { .. }), "{err:?}");
                    assert!(err.to_string().contains("may have committed"), "{err}");
                }
                assert_eq!(served_by(&mut conn).await, bed.primary_id);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_a_commit_whose_reply_is_lost_is_resolved_or_reported_unknown() {
                let bed = bed!("async_commit_reply_lost");
                let primary = Arc::new(crate::common::Flaky::proxied(&bed.primary));
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .build()
                    .unwrap();
                let mut conn = pool.get().await.unwrap();
                let rounds = 5;
                let (mut resolved, mut unknown) = (0, 0);
                for round in 0..rounds {
                    let tag = format!("{}-{}-{round}", bed.tag, std::process::id());
                    let link = primary.clone();
                    let result =
                        insert_then(&mut conn, &tag, move || link.lose_reply_to(b"COMMIT")).await;
                    let committed = committed_rows!(backend, &bed.primary, tag);
                    assert_eq!(committed, 1, "the server got the COMMIT and committed");
                    match result {
                        Ok(()) => {
                            assert!(pg(), "only PostgreSQL can tell the outcome");
                            resolved += 1;
                        }
                        Err(err) => {
                            assert!(!pg(), "PostgreSQL resolves it: {err}");
                            assert!(matches!(err, Error::CommitOutcomeUnknown { .. }), "{err:?}");
                            unknown += 1;
                        }
                    }
                    assert_eq!(served_by(&mut conn).await, bed.primary_id);
                }
                println!(
                    "{}: {rounds} lost COMMIT replies, all committed: {resolved} resolved to \
                     committed, {unknown} reported CommitOutcomeUnknown",
                    backend::NAME
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_a_commit_that_never_arrives_ends_at_the_write_deadline() {
                // The COMMIT never reaches the server and its session stays open in the
                // transaction: past the write deadline the reply counts as lost; PostgreSQL
                // then finds the transaction still running, ends its orphaned session and
                // reports it rolled back.
                let bed = bed!("async_commit_swallowed");
                let primary = Arc::new(crate::common::Flaky::proxied(&bed.primary));
                let deadline = Duration::from_secs(2);
                let pool = AsyncRwPool::<Conn>::builder()
                    .primary(&primary.url)
                    .write_timeout(Some(deadline))
                    .connection_timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut conn = pool.get().await.unwrap();
                let tag = format!("{}-{}", bed.tag, std::process::id());
                let link = primary.clone();
                let start = Instant::now();
                let err = insert_then(&mut conn, &tag, move || link.swallow(b"COMMIT"))
                    .await
                    .unwrap_err();
                let took = start.elapsed();
                println!("{}: after {took:?}: {err}", backend::NAME);
                assert!(took >= deadline, "returned before the deadline: {took:?}");
                assert!(
                    took < deadline + Duration::from_secs(20),
                    "unbounded: {took:?}"
                );
                if pg() {
                    assert!(matches!(err, Error::NotCommitted { .. }), "{err:?}");
                } else {
                    assert!(matches!(err, Error::CommitOutcomeUnknown { .. }), "{err:?}");
                }
                drop(conn);
                drop(pool);
                drop(primary); // closes the swallowed session's server side too
                assert_eq!(committed_rows!(backend, &bed.primary, tag), 0);
            }
        }
    };
}
