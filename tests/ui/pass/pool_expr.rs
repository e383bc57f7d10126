// `pool = <expr>` is the route source, used as written.
use diesel::prelude::*;
use diesel_rw::{master, read_only, RwConnection, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

/// Owns its pool: `pool = &self.db`.
pub struct UserRepo {
    db: RwPool<SqliteConnection>,
}

impl UserRepo {
    #[read_only(pool = &self.db)]
    pub fn count(&self) -> QueryResult<i64> {
        users::table.count().get_result(conn)
    }

    #[master(pool = &self.db, transaction, conn = tx)]
    pub fn add(&self, name: &str) -> QueryResult<usize> {
        diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .execute(tx)
    }
}

/// Borrows its pool: `pool = self.db`.
pub struct BorrowedRepo<'a> {
    db: &'a RwPool<SqliteConnection>,
}

impl BorrowedRepo<'_> {
    #[read_only(pool = self.db)]
    pub fn count(&self) -> QueryResult<i64> {
        users::table.count().get_result(conn)
    }
}

/// Holds a routing connection: `pool = &mut self.conn`.
pub struct Unit {
    conn: RwConnection<SqliteConnection>,
}

impl Unit {
    #[master(pool = &mut self.conn)]
    pub fn add(&mut self, name: &str) -> QueryResult<usize> {
        diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .execute(conn)
    }
}

/// A free function routing from something other than its first argument.
#[read_only(pool = pool)]
pub fn count_with(label: &str, pool: &RwPool<SqliteConnection>) -> QueryResult<(String, i64)> {
    Ok((label.to_owned(), users::table.count().get_result(conn)?))
}

fn main() {}
