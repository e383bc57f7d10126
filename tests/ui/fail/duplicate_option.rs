// An option given twice: the error is on the second.
use diesel::prelude::*;
use diesel_rw::{master, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[master(transaction, conn = tx, transaction)]
pub fn add(db: &RwPool<SqliteConnection>, name: &str) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(tx)
}

fn main() {}
