// Async methods: from `self` (`&Self` or `&mut Self` implementing `AsyncRouter`), from
// `pool = <expr>`, and async functions generic over `AsyncRouter` called with another
// function's `conn`, which keeps its route.
use diesel::prelude::*;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::RunQueryDsl;
use diesel_rw::{
    master, read_only, AsyncRerouted, AsyncRouter, AsyncRwConnection, AsyncRwPool, Error, Role,
};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

type Conn = SyncConnectionWrapper<SqliteConnection>;

/// Owns its pool: `pool = &self.pool`.
pub struct UserRepo {
    pool: AsyncRwPool<Conn>,
}

impl UserRepo {
    #[read_only(pool = &self.pool)]
    pub async fn count(&self) -> QueryResult<i64> {
        users::table.count().get_result(conn).await
    }

    #[master(pool = &self.pool, transaction, conn = tx)]
    pub async fn add(&self, name: &str) -> QueryResult<i32> {
        diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .execute(tx)
            .await?;
        // A nested annotated call with the transaction's connection.
        find_id(&mut *tx, name).await
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

impl Repo {
    #[read_only]
    pub async fn find_name(&self, id: i32) -> QueryResult<String> {
        users::table.find(id).select(users::name).first(conn).await
    }

    #[master(transaction)]
    pub async fn add(&self, name: &str) -> QueryResult<String> {
        diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .execute(conn)
            .await?;
        // `self` is still usable in the body.
        let _repo: &Repo = self;
        users::table
            .select(users::name)
            .order(users::id.desc())
            .first(conn)
            .await
    }
}

/// A unit of work: `&mut Session` implements `AsyncRouter`, and `self` is reborrowed.
pub struct Session {
    conn: AsyncRwConnection<Conn>,
}

impl<'a> AsyncRouter for &'a mut Session {
    type Connection = Conn;
    type Routed = AsyncRerouted<'a, Conn>;

    async fn route(self, role: Role) -> Result<Self::Routed, Error> {
        (&mut self.conn).route(role).await
    }
}

impl Session {
    #[read_only]
    pub async fn count(&mut self) -> QueryResult<i64> {
        users::table.count().get_result(conn).await
    }

    #[master(pool = &mut self.conn)]
    pub async fn add(&mut self, name: &str) -> QueryResult<usize> {
        diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .execute(conn)
            .await
    }
}

/// Declared on `&mut AsyncRwConnection`: callers pass `conn` and keep using it.
#[read_only]
pub async fn find_id(db: &mut AsyncRwConnection<Conn>, name: &str) -> QueryResult<i32> {
    users::table
        .filter(users::name.eq(name))
        .select(users::id)
        .first(conn)
        .await
}

/// Generic: takes a pool or another function's `conn` (`&mut *conn` to keep using it).
#[read_only]
pub async fn count<R: AsyncRouter<Connection = Conn>>(db: R) -> QueryResult<i64> {
    users::table.count().get_result(conn).await
}

#[master]
pub async fn add(db: impl AsyncRouter<Connection = Conn>, name: &str) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(conn)
        .await
}

/// Three levels: a read inside a write inside a transaction.
#[master(transaction)]
pub async fn outer(db: &AsyncRwPool<Conn>) -> QueryResult<(i64, i32)> {
    add(&mut *conn, "x").await?;
    let id = find_id(conn, "x").await?;
    Ok((middle(conn).await?, id))
}

#[master]
pub async fn middle(db: &mut AsyncRwConnection<Conn>) -> QueryResult<i64> {
    add(&mut *conn, "y").await?;
    count(conn).await
}

/// The parameter may itself be named `conn`: the binding shadows it.
#[read_only]
pub async fn exists(conn: &mut AsyncRwConnection<Conn>, id: i32) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.find(id)))
        .get_result(conn)
        .await
}

fn assert_send<T: Send>(_: T) {}

pub async fn callers(pool: &AsyncRwPool<Conn>, conn: &mut AsyncRwConnection<Conn>) {
    let _ = count(pool).await;
    let _ = count(&mut *conn).await;
    let _ = add(pool, "ada").await;
    let _ = add(&mut *conn, "bob").await;
    let _ = exists(conn, 1).await;
    assert_send(outer(pool));
    assert_send(count(pool));
}

pub fn methods_are_send(repo: &UserRepo, other: &Repo, session: &mut Session) {
    assert_send(repo.count());
    assert_send(repo.add("ada"));
    assert_send(other.find_name(1));
    assert_send(other.add("ada"));
    assert_send(session.count());
}

fn main() {}
