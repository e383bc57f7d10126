// Getting a connection can fail: the function must return a `Result` to say so.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn print_count(db: &RwPool<SqliteConnection>) {
    let n: i64 = users::table.count().get_result(conn).unwrap();
    println!("{n}");
}

fn main() {}
