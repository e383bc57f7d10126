// A `#[read_only]` body that writes is rejected at compile time, at the write.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn add(db: &RwPool<SqliteConnection>, name: &str) -> QueryResult<i64> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(conn)?;
    users::table.count().get_result(conn)
}

fn main() {}
