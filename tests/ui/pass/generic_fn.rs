// A function generic over `Router` takes a pool or another function's `conn`.
use diesel::prelude::*;
use diesel_rw::{master, read_only, Router, RwConnection, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn count<R>(db: R) -> QueryResult<i64>
where
    R: Router<Connection = SqliteConnection>,
{
    users::table.count().get_result(conn)
}

#[master]
pub fn add(db: impl Router<Connection = SqliteConnection>, name: &str) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(conn)
}

pub fn callers(pool: &RwPool<SqliteConnection>, conn: &mut RwConnection<SqliteConnection>) {
    let _ = count(pool);
    let _ = count(&mut *conn);
    let _ = add(pool, "ada");
    let _ = add(conn, "bob");
}

fn main() {}
