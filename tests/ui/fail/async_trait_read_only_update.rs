// ...and `#[async_trait]` methods, whose body async_trait has moved into a boxed future: the
// error is at the write in the method as written.
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::RunQueryDsl;
use diesel_rw::{read_only, AsyncRwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

type Conn = SyncConnectionWrapper<SqliteConnection>;

#[async_trait]
pub trait Users {
    async fn rename(&self, id: i32, name: &str) -> QueryResult<usize>;
}

pub struct Repo {
    pool: AsyncRwPool<Conn>,
}

#[async_trait]
impl Users for Repo {
    #[read_only(pool = &self.pool)]
    async fn rename(&self, id: i32, name: &str) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set(users::name.eq(name))
            .execute(conn)
            .await
    }
}

fn main() {}
