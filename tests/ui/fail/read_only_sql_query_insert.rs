// A `#[read_only]` body that runs a literal write statement is rejected at compile time.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn add(db: &RwPool<SqliteConnection>) -> QueryResult<usize> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    diesel::sql_query(
        "-- a new user
         INSERT INTO users (name) VALUES ('ada')",
    )
    .execute(conn)
}

fn main() {}
