//! The async double-write suite (`AsyncDoubleWriteConnection`, `AsyncDoubleWrite`) on PostgreSQL (source 55432, destination 55434; "destination down" stops the real server).
#![cfg(all(feature = "async", feature = "postgres"))]

mod common;
#[macro_use]
#[path = "common/double_write.rs"]
mod dw;

#[macro_use]
#[path = "common/dw_contract.rs"]
mod contract;

double_write_async_suite!(pg);
dw_contract_async_suite!(pg);

/// The async twin of the sync suite's lost-COMMIT test: the reply to the source's `COMMIT` is
/// lost after the source committed; the double write finds it committed (`txid_status` on a new
/// connection) and commits the destination: success, both sides have the row, nothing journaled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_a_lost_first_side_commit_that_committed_commits_the_second_side() {
    use diesel_async::AsyncConnection;
    let bed = bed!("dw_async_lost_commit_committed");
    let source = common::Flaky::proxied(&bed.source);
    let pool = AsyncDoubleWrite::<Conn>::builder()
        .source(&source.url)
        .destination(&bed.destination)
        .pattern(Pattern::SrcFirst)
        .strict(true)
        .max_size(1)
        .build()
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    insert(&mut conn, &format!("{}:before", bed.tag))
        .await
        .unwrap();
    source.lose_reply_to(b"COMMIT");
    let tag = bed.tag.clone();
    conn.transaction::<_, diesel::result::Error, _>(async |c| insert(c, &tag).await)
        .await
        .unwrap();
    assert_eq!(source.sprung(), 1, "the COMMIT's reply was lost");
    assert_eq!(nodes(&bed, Side::Source, &bed.tag), [bed.id(Side::Source)]);
    assert_eq!(
        nodes(&bed, Side::Destination, &bed.tag),
        [bed.id(Side::Destination)],
        "the destination committed too"
    );
    assert!(journal(&pool).is_empty(), "{:#?}", journal(&pool));
    insert(&mut conn, &format!("{}:after", bed.tag))
        .await
        .unwrap();
}

/// The source's connection is cut inside an async transaction before its `COMMIT`: the
/// `COMMIT` is never sent; the destination is rolled back: `NothingApplied` caused by
/// `NotCommitted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_a_first_side_lost_before_its_commit_is_not_committed() {
    use diesel_async::AsyncConnection;
    let bed = bed!("dw_async_lost_before_commit");
    let source = std::sync::Arc::new(common::Flaky::proxied(&bed.source));
    let pool = AsyncDoubleWrite::<Conn>::builder()
        .source(&source.url)
        .destination(&bed.destination)
        .pattern(Pattern::SrcFirst)
        .max_size(1)
        .build()
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    insert(&mut conn, &format!("{}:before", bed.tag))
        .await
        .unwrap();
    let (tag, cut) = (bed.tag.clone(), source.clone());
    let err = conn
        .transaction::<(), diesel::result::Error, _>(async |c| {
            insert(c, &tag).await?;
            cut.down();
            Ok(())
        })
        .await
        .unwrap_err();
    source.up();
    let err = Error::from_diesel(err);
    match &err {
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
    assert!(nodes(&bed, Side::Source, &bed.tag).is_empty());
    assert!(nodes(&bed, Side::Destination, &bed.tag).is_empty());
    insert(&mut conn, &format!("{}:after", bed.tag))
        .await
        .unwrap();
}
