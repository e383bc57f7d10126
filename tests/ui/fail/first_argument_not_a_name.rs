// The route source is the first argument, used by its name: a pattern has none.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn count((db, label): (&RwPool<SqliteConnection>, &str)) -> QueryResult<(String, i64)> {
    Ok((label.to_owned(), users::table.count().get_result(conn)?))
}

fn main() {}
