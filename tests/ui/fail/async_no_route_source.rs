// An `async fn` routes from an `AsyncRouter`: with no argument, no `self` and no `pool =`,
// there is nothing to route from.
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use diesel_rw::master;

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[master]
pub async fn count() -> QueryResult<i64> {
    users::table.count().get_result(conn).await
}

fn main() {}
