// The body keeps its meaning: `return`, `?`, inner attributes, a tail whose temporaries borrow
// `conn`, an `impl Trait` in the return type, coercions of the tail to the return type.
use diesel::prelude::*;
use diesel_rw::{master, read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn first_or_none(db: &RwPool<SqliteConnection>, id: i32) -> QueryResult<Option<String>> {
    #![allow(clippy::needless_return)]
    if id < 0 {
        return Ok(None);
    }
    let name = users::table
        .find(id)
        .select(users::name)
        .first(conn)
        .optional()?;
    return Ok(name);
}

/// The cursor in the tail borrows `conn`; it is dropped before the connection's guard.
#[read_only]
pub fn names_iter(db: &RwPool<SqliteConnection>) -> QueryResult<Vec<String>> {
    users::table
        .select(users::name)
        .load_iter::<String, diesel::connection::DefaultLoadingMode>(conn)?
        .collect()
}

#[read_only]
pub fn names(db: &RwPool<SqliteConnection>) -> QueryResult<impl Iterator<Item = String>> {
    Ok(users::table
        .select(users::name)
        .load::<String>(conn)?
        .into_iter())
}

#[master]
pub fn boxed(db: &RwPool<SqliteConnection>) -> QueryResult<Box<dyn std::fmt::Debug>> {
    let n: i64 = users::table.count().get_result(conn)?;
    Ok(Box::new(n))
}

pub struct Repo<'a> {
    pub prefix: &'a str,
    pub db: RwPool<SqliteConnection>,
}

impl<'a> Repo<'a> {
    /// The return type borrows from `self`.
    #[read_only(pool = &self.db)]
    pub fn prefix(&self) -> QueryResult<&'a str> {
        let _: i64 = users::table.count().get_result(conn)?;
        Ok(self.prefix)
    }
}

fn main() {}
