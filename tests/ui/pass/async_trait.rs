// `#[async_trait]` methods: async_trait expands the `impl` block first and rewrites each
// `async fn` into a `fn` returning `Pin<Box<dyn Future + Send>>`; `#[read_only]` and `#[master]`
// then route inside its `async move` block. `self`, `pool = &self.pool` and the first
// argument work as for an `async fn`.
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::RunQueryDsl;
use diesel_rw::{master, read_only, AsyncRouter, AsyncRwConnection, AsyncRwPool, Error, Role};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

type Conn = SyncConnectionWrapper<SqliteConnection>;

#[async_trait]
pub trait UserStore {
    async fn find_name(&self, id: i32) -> QueryResult<String>;
    async fn add(&self, name: &str) -> QueryResult<usize>;
    async fn rename(&self, id: i32, name: String) -> QueryResult<()>;
    async fn count_in(&self, db: &mut AsyncRwConnection<Conn>) -> QueryResult<i64>;
    async fn names(&mut self) -> QueryResult<Vec<String>>;

    /// A default method, annotated in the trait.
    #[read_only(pool = db)]
    async fn count_on(&self, db: &AsyncRwPool<Conn>) -> QueryResult<i64> {
        users::table.count().get_result(conn).await
    }
}

pub struct PgUsers {
    pool: AsyncRwPool<Conn>,
    calls: usize,
}

#[async_trait]
impl UserStore for PgUsers {
    #[read_only(pool = &self.pool)]
    async fn find_name(&self, id: i32) -> QueryResult<String> {
        users::table.find(id).select(users::name).first(conn).await
    }

    #[master(pool = &self.pool)]
    async fn add(&self, name: &str) -> QueryResult<usize> {
        diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .execute(conn)
            .await
    }

    #[master(pool = &self.pool, transaction)]
    async fn rename(&self, id: i32, name: String) -> QueryResult<()> {
        let n = diesel::update(users::table.find(id))
            .set(users::name.eq(&name))
            .execute(conn)
            .await?;
        if n == 0 {
            return Err(diesel::result::Error::NotFound);
        }
        // `self` works in the body, as async_trait allows.
        let _calls = self.calls;
        Ok(())
    }

    /// From an argument, with `pool =`; the nested read is in the caller's route.
    #[read_only(pool = db)]
    async fn count_in(&self, db: &mut AsyncRwConnection<Conn>) -> QueryResult<i64> {
        users::table.count().get_result(conn).await
    }

    /// A `&mut self` method: `self` moved to `__self` by async_trait, and still the source.
    #[read_only(pool = &self.pool, transaction, conn = tx)]
    async fn names(&mut self) -> QueryResult<Vec<String>> {
        self.calls += 1;
        users::table.select(users::name).load(tx).await
    }
}

/// Routes from `self`: `&Repo` implements `AsyncRouter`.
pub struct Repo {
    pool: AsyncRwPool<Conn>,
}

impl<'a> AsyncRouter for &'a Repo {
    type Connection = Conn;
    type Routed = AsyncRwConnection<Conn>;

    async fn route(self, role: Role) -> Result<Self::Routed, Error> {
        (&self.pool).route(role).await
    }
}

#[async_trait]
pub trait Counter {
    async fn count(&self) -> QueryResult<i64>;
    async fn add(&self, name: &str) -> QueryResult<i64>;
}

#[async_trait]
impl Counter for Repo {
    #[read_only]
    async fn count(&self) -> QueryResult<i64> {
        users::table.count().get_result(conn).await
    }

    #[master(transaction)]
    async fn add(&self, name: &str) -> QueryResult<i64> {
        diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .execute(conn)
            .await?;
        // A trait method called with the transaction's connection.
        let store = PgUsers {
            pool: self.pool.clone(),
            calls: 0,
        };
        store.count_in(conn).await
    }
}

/// Annotations on the `async fn` of an `#[async_trait]` impl whose futures are not `Send`.
#[async_trait(?Send)]
pub trait Local {
    async fn local_count(&self) -> QueryResult<i64>;
}

#[async_trait(?Send)]
impl Local for Repo {
    #[read_only]
    async fn local_count(&self) -> QueryResult<i64> {
        users::table.count().get_result(conn).await
    }
}

pub fn dyn_store(store: Box<dyn UserStore + Send + Sync>) -> Box<dyn UserStore + Send + Sync> {
    store
}

fn main() {}
