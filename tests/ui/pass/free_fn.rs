// Free functions on a `&RwPool`: `conn` is bound by the macro.
use diesel::prelude::*;
use diesel_rw::{master, read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn find_name(db: &RwPool<SqliteConnection>, id: i32) -> QueryResult<String> {
    users::table.find(id).select(users::name).first(conn)
}

#[master]
pub fn add(db: &RwPool<SqliteConnection>, name: &str) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(conn)
}

#[master(transaction)]
pub fn rename(db: &RwPool<SqliteConnection>, id: i32, name: &str) -> QueryResult<usize> {
    // The pool argument stays usable: a `&RwPool` is `Copy`.
    let _replicas = db.replica_count();
    diesel::update(users::table.find(id))
        .set(users::name.eq(name))
        .execute(conn)
}

#[read_only(transaction, conn = tx)]
pub fn names(db: &RwPool<SqliteConnection>) -> QueryResult<Vec<String>> {
    users::table.select(users::name).load(tx)
}

fn main() {}
