// Annotated functions called with `conn` keep its route: the nested read runs on the
// transaction's connection.
use diesel::prelude::*;
use diesel_rw::{master, read_only, Router, RwConnection, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

/// Declared on `&mut RwConnection`: callers pass `conn` and keep using it (implicit reborrow).
#[read_only]
pub fn find_id(db: &mut RwConnection<SqliteConnection>, name: &str) -> QueryResult<i32> {
    users::table
        .filter(users::name.eq(name))
        .select(users::id)
        .first(conn)
}

/// Generic: callers pass `&mut *conn` to keep using `conn`.
#[read_only]
pub fn count<R: Router<Connection = SqliteConnection>>(db: R) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

#[master]
pub fn add<R: Router<Connection = SqliteConnection>>(db: R, name: &str) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(conn)
}

#[master(transaction)]
pub fn add_and_find(db: &RwPool<SqliteConnection>, name: &str) -> QueryResult<(i32, i64)> {
    add(&mut *conn, name)?;
    let id = find_id(conn, name)?;
    let n = count(&mut *conn)?;
    assert!(exists(conn, id)?);
    diesel::update(users::table.find(id))
        .set(users::name.eq(name.to_uppercase()))
        .execute(conn)?;
    Ok((id, n))
}

/// The parameter may itself be named `conn`: the binding shadows it.
#[read_only]
pub fn exists(conn: &mut RwConnection<SqliteConnection>, id: i32) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.find(id))).get_result(conn)
}

/// Three levels: a read inside a write inside a transaction.
#[master(transaction)]
pub fn outer(db: &RwPool<SqliteConnection>) -> QueryResult<i64> {
    middle(conn)
}

#[master]
pub fn middle(db: &mut RwConnection<SqliteConnection>) -> QueryResult<i64> {
    add(&mut *conn, "x")?;
    count(conn)
}

fn main() {}
