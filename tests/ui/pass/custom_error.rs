// The function's own error type works if it implements `From<diesel_rw::Error>` (and, with
// `transaction`, `From<diesel::result::Error>`).
use diesel::prelude::*;
use diesel_rw::{master, read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[derive(Debug)]
pub enum RepoError {
    Routing(diesel_rw::Error),
    Database(diesel::result::Error),
    NotFound(i32),
}

impl From<diesel_rw::Error> for RepoError {
    fn from(e: diesel_rw::Error) -> Self {
        RepoError::Routing(e)
    }
}

impl From<diesel::result::Error> for RepoError {
    fn from(e: diesel::result::Error) -> Self {
        RepoError::Database(e)
    }
}

/// Only `From<diesel_rw::Error>`: enough without `transaction`.
#[derive(Debug)]
pub struct RouteOnly(pub diesel_rw::Error);

impl From<diesel_rw::Error> for RouteOnly {
    fn from(e: diesel_rw::Error) -> Self {
        RouteOnly(e)
    }
}

#[read_only]
pub fn find_name(db: &RwPool<SqliteConnection>, id: i32) -> Result<String, RepoError> {
    users::table
        .find(id)
        .select(users::name)
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound(id))
}

#[master(transaction)]
pub fn rename(db: &RwPool<SqliteConnection>, id: i32, name: &str) -> Result<(), RepoError> {
    let changed = diesel::update(users::table.find(id))
        .set(users::name.eq(name))
        .execute(conn)?;
    if changed == 0 {
        // Rolls the transaction back.
        return Err(RepoError::NotFound(id));
    }
    Ok(())
}

#[read_only]
pub fn is_read_only(db: &RwPool<SqliteConnection>) -> Result<bool, RouteOnly> {
    Ok(conn.is_read_only())
}

fn main() {}
