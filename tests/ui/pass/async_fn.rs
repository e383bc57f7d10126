// `async fn`s on an `&AsyncRwPool`: `conn` is an `&mut AsyncRwConnection`, the route is awaited,
// and `transaction` is diesel-async's. The futures are `Send` (spawnable, usable in handlers).
use diesel::prelude::*;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::RunQueryDsl;
use diesel_rw::{master, read_only, AsyncRwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

type Conn = SyncConnectionWrapper<SqliteConnection>;

#[read_only]
pub async fn find_name(db: &AsyncRwPool<Conn>, id: i32) -> QueryResult<String> {
    users::table.find(id).select(users::name).first(conn).await
}

#[master]
pub async fn add(db: &AsyncRwPool<Conn>, name: &str) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(users::name.eq(name))
        .execute(conn)
        .await
}

#[master(transaction)]
pub async fn rename(db: &AsyncRwPool<Conn>, id: i32, name: String) -> QueryResult<usize> {
    // The pool argument stays usable: a `&AsyncRwPool` is `Copy`.
    let _replicas = db.replica_count();
    let n = diesel::update(users::table.find(id))
        .set(users::name.eq(&name))
        .execute(conn)
        .await?;
    if n == 0 {
        // Rolls the transaction back.
        return Err(diesel::result::Error::NotFound);
    }
    Ok(n)
}

#[read_only(transaction, conn = tx)]
pub async fn names(db: &AsyncRwPool<Conn>) -> QueryResult<Vec<String>> {
    users::table.select(users::name).load(tx).await
}

/// `return`, `?` and an early exit before any query.
#[read_only]
pub async fn first_or_none(db: &AsyncRwPool<Conn>, id: i32) -> QueryResult<Option<String>> {
    #![allow(clippy::needless_return)]
    if id < 0 {
        return Ok(None);
    }
    let name = users::table
        .find(id)
        .select(users::name)
        .first(conn)
        .await
        .optional()?;
    return Ok(name);
}

#[read_only]
pub async fn names_iter(
    db: &AsyncRwPool<Conn>,
) -> QueryResult<impl Iterator<Item = String> + Send> {
    Ok(users::table
        .select(users::name)
        .load::<String>(conn)
        .await?
        .into_iter())
}

#[master(transaction)]
pub async fn count_in_tx(
    db: &AsyncRwPool<Conn>,
) -> QueryResult<impl std::fmt::Debug + Send + 'static> {
    let n: i64 = users::table.count().get_result(conn).await?;
    Ok(n)
}

fn assert_send<T: Send>(_: T) {}

pub fn futures_are_send(pool: &AsyncRwPool<Conn>) {
    assert_send(find_name(pool, 1));
    assert_send(add(pool, "ada"));
    assert_send(rename(pool, 1, "bob".to_owned()));
    assert_send(names(pool));
    assert_send(first_or_none(pool, 1));
    assert_send(names_iter(pool));
    assert_send(count_in_tx(pool));
}

fn main() {}
