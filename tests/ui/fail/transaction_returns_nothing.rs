// A transaction commits on `Ok` and rolls back on `Err`: the function must return a `Result`.
use diesel::prelude::*;
use diesel_rw::{master, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[master(transaction)]
pub fn add(db: &RwPool<SqliteConnection>, name: &str) {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(conn)
        .unwrap();
}

fn main() {}
