//! The `#[read_only]` and `#[master]` attributes of [diesel-rw](https://docs.rs/diesel-rw).
//!
//! Use them through `diesel_rw::{read_only, master}`: the expansion names
//! `::diesel_rw::__private`, so a crate that uses them depends on `diesel-rw`. The runnable
//! examples are on those re-exports; the ones here show the shape and are not compiled.
//!
//! `lib.rs` holds the entry points, `args.rs` parses the options, `expand.rs` checks the item and
//! generates the code.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use proc_macro::TokenStream;

mod args;
mod expand;

use expand::Kind;

/// Runs a function on a read-only connection: reads go to a replica, writes are rejected.
///
/// The body gets `conn`, a `&mut RwConnection<C>` that is read-only: each read goes to a replica
/// chosen by the pool's policy (or stays where the route source is pinned: see below), and a
/// write is rejected before it is sent with `diesel_rw::Error::WriteOnReadRoute`. The function's
/// signature, `return` and `?` are unchanged.
///
/// ```ignore
/// use diesel::prelude::*;
/// use diesel_rw::{read_only, RwPool};
///
/// #[read_only]
/// fn find(db: &RwPool<PgConnection>, id: i32) -> QueryResult<User> {
///     users.find(id).first(conn)
/// }
/// ```
///
/// expands to (the guard's name is hygienic: the body cannot name it)
///
/// ```ignore
/// fn find(db: &RwPool<PgConnection>, id: i32) -> QueryResult<User> {
///     let mut __diesel_rw_routed =
///         ::diesel_rw::__private::route(db, ::diesel_rw::__private::Role::Replica)?;
///     let conn: &mut ::diesel_rw::__private::RwConnection<_> =
///         ::diesel_rw::__private::BorrowMut::borrow_mut(&mut __diesel_rw_routed);
///     let __diesel_rw_result: QueryResult<User> = { users.find(id).first(conn) };
///     __diesel_rw_result
/// }
/// ```
///
/// and with `transaction`, the last two lines are
/// `::diesel_rw::__private::Connection::transaction(conn, |conn| { users.find(id).first(conn) })`.
///
/// # Where the connection comes from
///
/// The route source must implement `diesel_rw::Router`. It is, in this order:
///
/// - `pool = <expr>`, the expression **as written**: `pool = &self.pool` for an `RwPool` field,
///   `pool = self.pool` for a `&RwPool` field, `pool = &mut self.conn` for an `RwConnection`;
/// - else `self`, for a method (`&Self` or `&mut Self` must implement `Router`);
/// - else the first argument, which must be a plain name. If its type is `&mut T` it is
///   reborrowed (`&mut *db`) and stays usable after the call; otherwise it is used as written: a
///   `&RwPool` is `Copy`, a generic `R: Router` is moved.
///
/// A `&RwPool` gives a fresh read-only connection from the pool. A `&mut RwConnection` (such as
/// the `conn` of another annotated function) gives the same connection, read-only for the call
/// and restored afterwards: if it is pinned to the primary (an open transaction, `#[master]`, or
/// stickiness after a write), the reads stay on the primary and see its writes. That is how a
/// `#[read_only]` function called with the `conn` of a `#[master(transaction)]` reads that
/// transaction's uncommitted writes:
///
/// ```ignore
/// #[read_only]
/// fn count<R: Router<Connection = PgConnection>>(db: R) -> QueryResult<i64> {
///     users.count().get_result(conn)
/// }
///
/// #[master(transaction)]
/// fn add(db: &RwPool<PgConnection>, name: &str) -> QueryResult<i64> {
///     insert_into(users).values(users::name.eq(name)).execute(conn)?;
///     count(&mut *conn) // same connection, same transaction: sees the insert
/// }
/// ```
///
/// A generic `R: Router` takes both a pool and a `conn`; passing `conn` to it moves the
/// reference, so write `&mut *conn` where `conn` is used again after the call (a parameter
/// declared `&mut RwConnection<C>` reborrows by itself).
///
/// # Options
///
/// - `transaction`: runs the body in a read-only transaction on one replica (every statement of
///   the body sees the same snapshot, on the same replica). Needs a `Result` return type whose
///   error type implements `From<diesel::result::Error>` too.
/// - `conn = <name>`: binds the connection to `<name>` instead of `conn`.
/// - `pool = <expr>`: the route source (see above).
///
/// # Errors
///
/// The function returns a `Result` whose error type implements `From<diesel_rw::Error>`
/// (`QueryResult<T>` does): getting the connection can fail, and the error is returned with `?`.
///
/// # Compile-time check
///
/// The body is rejected at compile time, with the error on the call, if it calls `insert_into`,
/// `insert_or_ignore_into`, `replace_into`, `update` or `delete` (by the last segment of the
/// path), or `sql_query`/`sql` with a string literal that writes. The literal check is small on
/// purpose: a statement whose first keyword is SELECT, WITH, SHOW, EXPLAIN or VALUES is a read
/// unless INSERT, UPDATE, DELETE or MERGE appears in it; for `sql_query`, anything else counts as
/// a write (as it does at run time); for `sql`, usually a fragment such as `count(*)`, only a
/// known write keyword first does. Writes that the macro cannot see (built SQL, calls into other
/// functions) are rejected at run time by the read-only connection. A function of your own named
/// like one of diesel's write functions is taken for it: import it under another name
/// (`use crate::cache::update as refresh_cache;`).
///
/// Misuse (an unknown or repeated option, no route source, a `const fn`, a trait method without
/// a body, both attributes on one function, ...) is one compile error at the offending token.
///
/// # Async functions
///
/// On an `async fn` (a free function or a method), the route source must implement
/// `diesel_rw::AsyncRouter` (`&AsyncRwPool<C>`, `&mut AsyncRwConnection<C>`, ...; diesel-rw's
/// `async` feature), the route is awaited and `conn` is a `&mut AsyncRwConnection<C>`:
///
/// ```ignore
/// #[read_only]
/// async fn find(db: &AsyncRwPool<AsyncPgConnection>, id: i32) -> QueryResult<User> {
///     users.find(id).first(conn).await
/// }
/// ```
///
/// expands to
///
/// ```ignore
/// async fn find(db: &AsyncRwPool<AsyncPgConnection>, id: i32) -> QueryResult<User> {
///     let mut __diesel_rw_routed =
///         ::diesel_rw::__private::route_async(db, ::diesel_rw::__private::Role::Replica).await?;
///     let conn: &mut ::diesel_rw::__private::AsyncRwConnection<_> =
///         ::diesel_rw::__private::BorrowMut::borrow_mut(&mut __diesel_rw_routed);
///     let __diesel_rw_result: QueryResult<User> = { users.find(id).first(conn).await };
///     __diesel_rw_result
/// }
/// ```
///
/// and `transaction` runs the body in diesel-async's transaction:
/// `AsyncConnection::transaction(conn, async |conn| -> QueryResult<User> { ... }).await`. The
/// future stays `Send` when the body's is (axum handlers, `tokio::spawn`).
///
/// Methods of an `#[async_trait]` impl or trait work too, with the attribute on the method as
/// usual (`#[async_trait] impl Repo for PgRepo { #[read_only] async fn find(&self, ...) }`):
/// async_trait expands first and turns the method into a `fn` returning
/// `Pin<Box<dyn Future<Output = T> + Send>>` around an `async move` block; the attribute
/// recognises that shape and routes inside the block as for an `async fn` returning `T`
/// (`self`, `pool = &self.pool` and the first argument mean what they mean in the method as
/// written).
#[proc_macro_attribute]
pub fn read_only(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(args as args::Args);
    expand::attribute(Kind::ReadOnly, args, item.into()).into()
}

/// Runs a function on the primary: every statement, read or write, goes there.
///
/// The body gets `conn`, a `&mut RwConnection<C>` pinned to the primary, so its reads see its
/// writes. The function's signature, `return` and `?` are unchanged.
///
/// ```ignore
/// use diesel::prelude::*;
/// use diesel_rw::{master, RwPool};
///
/// #[master(transaction)]
/// fn rename(db: &RwPool<PgConnection>, id: i32, name: &str) -> QueryResult<User> {
///     update(users.find(id)).set(users::name.eq(name)).get_result(conn)
/// }
/// ```
///
/// expands to (the guard's name is hygienic: the body cannot name it)
///
/// ```ignore
/// fn rename(db: &RwPool<PgConnection>, id: i32, name: &str) -> QueryResult<User> {
///     let mut __diesel_rw_routed =
///         ::diesel_rw::__private::route(db, ::diesel_rw::__private::Role::Primary)?;
///     let conn: &mut ::diesel_rw::__private::RwConnection<_> =
///         ::diesel_rw::__private::BorrowMut::borrow_mut(&mut __diesel_rw_routed);
///     ::diesel_rw::__private::Connection::transaction(conn, |conn| {
///         update(users.find(id)).set(users::name.eq(name)).get_result(conn)
///     })
/// }
/// ```
///
/// Without `transaction`, the body's value is returned as it is (see
/// [`read_only`](macro@read_only) for that shape).
///
/// The route source is found as for [`read_only`](macro@read_only): `pool = <expr>` as written,
/// else `self`, else the first argument. A `&RwPool` gives a fresh connection pinned to the
/// primary; a `&mut RwConnection` (such as another annotated function's `conn`) is pinned to the
/// primary for the call and restored afterwards. A read-only connection is never escalated: a
/// `#[master]` function called with the `conn` of a `#[read_only]` one returns
/// `diesel_rw::Error::WriteOnReadRoute` (inside `diesel::result::Error` for a `QueryResult`;
/// `diesel_rw::Error::from_diesel` recovers it) without sending anything.
///
/// # Options
///
/// - `transaction`: runs the body in a transaction on the primary, with diesel's
///   `Connection::transaction`: committed when the body returns `Ok`, rolled back on `Err`. The
///   error type must implement `From<diesel::result::Error>` as well as `From<diesel_rw::Error>`.
///   A `#[read_only]` function called with `conn` inside runs in this transaction.
/// - `conn = <name>`: binds the connection to `<name>` instead of `conn`.
/// - `pool = <expr>`: the route source.
///
/// On an `async fn` or an `#[async_trait]` method, the route source is an `AsyncRouter`, the
/// route is awaited and `transaction` is diesel-async's: see
/// [`read_only`](macro@read_only#async-functions).
///
/// Misuse is one compile error at the offending token, as for [`read_only`](macro@read_only).
#[proc_macro_attribute]
pub fn master(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(args as args::Args);
    expand::attribute(Kind::Master, args, item.into()).into()
}
