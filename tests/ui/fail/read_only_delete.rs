// A `#[read_only]` body that writes is rejected at compile time, at the write, even in a closure.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn remove_all(db: &RwPool<SqliteConnection>, ids: &[i32]) -> QueryResult<usize> {
    ids.iter()
        .map(|id| diesel::delete(users::table.find(id)).execute(conn))
        .sum()
}

fn main() {}
