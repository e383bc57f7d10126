// A function is read-only or on the primary, not both: the error is on the second attribute.
use diesel::prelude::*;
use diesel_rw::{master, read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
#[master]
pub fn count(db: &RwPool<SqliteConnection>) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

fn main() {}
