// The compile-time write check covers `async fn`s as well.
use diesel::prelude::*;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::RunQueryDsl;
use diesel_rw::{read_only, AsyncRwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

type Conn = SyncConnectionWrapper<SqliteConnection>;

#[read_only]
pub async fn add(db: &AsyncRwPool<Conn>, name: &str) -> QueryResult<i64> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(conn)
        .await?;
    users::table.count().get_result(conn).await
}

fn main() {}
