// `async fn` comes with the async pool.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub async fn count(db: &RwPool<SqliteConnection>) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

fn main() {}
