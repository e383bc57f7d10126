// A connection is had at run time: a `const fn` cannot be routed.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub const fn answer(db: &RwPool<SqliteConnection>) -> QueryResult<i64> {
    Ok(42)
}

fn main() {}
