// A literal statement that is not recognisably a read counts as a write in `#[read_only]`.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn version(db: &RwPool<SqliteConnection>) -> QueryResult<usize> {
    diesel::sql_query("PRAGMA user_version = 2").execute(conn)
}

fn main() {}
