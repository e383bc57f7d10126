// Methods route from `self` when `&Self` implements `Router`.
use std::borrow::BorrowMut;

use diesel::prelude::*;
use diesel_rw::{master, read_only, Error, Role, Router, RwConnection, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

pub struct UserRepo {
    pool: RwPool<SqliteConnection>,
}

impl<'a> Router for &'a UserRepo {
    type Connection = SqliteConnection;
    type Routed = RwConnection<SqliteConnection>;

    fn route(self, role: Role) -> Result<Self::Routed, Error> {
        (&self.pool).route(role)
    }
}

impl UserRepo {
    #[read_only]
    pub fn find_name(&self, id: i32) -> QueryResult<String> {
        users::table.find(id).select(users::name).first(conn)
    }

    #[master(transaction)]
    pub fn add(&self, name: &str) -> QueryResult<String> {
        diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .execute(conn)?;
        // `self` is still usable in the body.
        let _repo: &UserRepo = self;
        users::table
            .select(users::name)
            .order(users::id.desc())
            .first(conn)
    }
}

/// A `&mut self` method: `&mut Self` implements `Router`, and `self` is reborrowed.
pub struct Session {
    conn: RwConnection<SqliteConnection>,
}

impl<'a> Router for &'a mut Session {
    type Connection = SqliteConnection;
    type Routed = diesel_rw::Rerouted<'a, SqliteConnection>;

    fn route(self, role: Role) -> Result<Self::Routed, Error> {
        (&mut self.conn).route(role)
    }
}

impl Session {
    #[read_only]
    pub fn count(&mut self) -> QueryResult<i64> {
        users::table.count().get_result(conn)
    }

    pub fn inner(&mut self) -> &mut RwConnection<SqliteConnection> {
        self.conn.borrow_mut()
    }
}

fn main() {}
