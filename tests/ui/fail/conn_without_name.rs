// `conn` without `= <name>`; the rest of the options are still read (`conn = tx` binds `tx`).
use diesel::prelude::*;
use diesel_rw::{master, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[master(conn, transaction, conn = tx)]
pub fn add(db: &RwPool<SqliteConnection>, name: &str) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(tx)
}

fn main() {}
