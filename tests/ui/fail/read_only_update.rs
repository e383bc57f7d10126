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
pub fn rename(db: &RwPool<SqliteConnection>, id: i32, name: &str) -> QueryResult<usize> {
    let target = users::table.find(id);
    diesel::update(target)
        .set(users::name.eq(name))
        .execute(conn)
}

fn main() {}
