// `transaction` on an `#[async_trait]` method that returns nothing: the error is at the option.
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::RunQueryDsl;
use diesel_rw::{master, AsyncRwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

type Conn = SyncConnectionWrapper<SqliteConnection>;

#[async_trait]
pub trait Users {
    async fn touch(&self);
}

pub struct Repo {
    pool: AsyncRwPool<Conn>,
}

#[async_trait]
impl Users for Repo {
    #[master(pool = &self.pool, transaction)]
    async fn touch(&self) {
        let _ = diesel::update(users::table)
            .set(users::name.eq("x"))
            .execute(conn)
            .await;
    }
}

fn main() {}
