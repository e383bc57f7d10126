//! The async double-write suite (`AsyncDoubleWriteConnection`, `AsyncDoubleWrite`) on SQLite (`SyncConnectionWrapper<SqliteConnection>`; two files per test).
#![cfg(all(feature = "async", feature = "sqlite"))]

mod common;
#[macro_use]
#[path = "common/double_write.rs"]
mod dw;

#[macro_use]
#[path = "common/dw_contract.rs"]
mod contract;

double_write_async_suite!(sqlite);
dw_contract_async_suite!(sqlite);

/// On SQLite the sync double-write connection also runs on diesel-async's blocking-thread
/// wrapper: `SyncConnectionWrapper<DoubleWriteConnection<SqliteConnection>>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_connection_wrapper_around_a_double_write_connection() {
    use diesel::SqliteConnection;
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    use diesel_rw::double_write::DoubleWriteConnection;

    type Wrapped = SyncConnectionWrapper<DoubleWriteConnection<SqliteConnection>>;
    let bed = bed!("dw_async_sync_wrapper");
    let spec = format!(
        "source={} destination={} pattern=src_first",
        bed.source, bed.destination
    );
    let mut conn = Wrapped::establish(&spec).await.unwrap();
    diesel::insert_into(dw_items::table)
        .values((
            dw_items::tag.eq(&bed.tag),
            dw_items::node.eq(diesel::dsl::sql::<Text>(backend::SIDE_ID)),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let returned: Vec<String> = diesel::insert_into(dw_items::table)
        .values((
            dw_items::tag.eq(&bed.tag),
            dw_items::node.eq(diesel::dsl::sql::<Text>(backend::SIDE_ID)),
        ))
        .returning(dw_items::node)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(returned, ["source"]);
    conn.transaction::<_, diesel::result::Error, _>(async |c| {
        diesel::insert_into(dw_items::table)
            .values((
                dw_items::tag.eq(&bed.tag),
                dw_items::node.eq("in a transaction"),
            ))
            .execute(c)
            .await
    })
    .await
    .unwrap();
    for side in [Side::Source, Side::Destination] {
        let rows = nodes(&bed, side, &bed.tag);
        assert_eq!(rows.len(), 3, "{side}: {rows:?}");
        assert_eq!(rows[0], bed.id(side));
    }
}
