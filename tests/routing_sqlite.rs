//! The routing suite on SQLite (two files).
#![cfg(feature = "sqlite")]

#[macro_use]
mod common;

routing_suite!(sqlite);
busy_suite!(sqlite);

/// Every node connection of an SQLite pool waits for another connection's lock (busy timeout)
/// instead of failing at once with "database is locked"; replica connections are read-only.
#[test]
fn sqlite_node_connections_wait_for_locks() {
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    #[derive(QueryableByName)]
    struct Value {
        #[diesel(sql_type = BigInt)]
        value: i64,
    }
    let Some(bed) = common::sqlite::bed("sqlite_node_connections_wait_for_locks") else {
        return;
    };
    let pool = diesel_rw::RwPool::<diesel::SqliteConnection>::builder()
        .primary(&bed.primary)
        .replica(&bed.replica)
        .build()
        .unwrap();
    let pragma = |conn: &mut diesel::SqliteConnection, name: &str| {
        diesel::sql_query(format!("SELECT (SELECT * FROM pragma_{name}) AS value"))
            .get_result::<Value>(conn)
            .unwrap()
            .value
    };
    let mut conn = pool.get().unwrap();
    let primary = conn.with_primary(|c| (pragma(c, "busy_timeout"), pragma(c, "query_only")));
    let replica = conn.with_replica(0, |c| (pragma(c, "busy_timeout"), pragma(c, "query_only")));
    assert_eq!(primary.unwrap(), (5000, 0));
    assert_eq!(replica.unwrap(), (5000, 1));
}
