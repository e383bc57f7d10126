//! Diesel code unchanged on the async stack, PostgreSQL (primary 55432, hot standby 55433, double
//! write to 55434): the body of tests/common/diesel_body_async.rs over the bare
//! `AsyncPgConnection`, `AsyncRwConnection` and `AsyncDoubleWriteConnection` gives the same
//! results.
#![cfg(all(feature = "async", feature = "postgres"))]

#[macro_use]
mod common;
#[path = "common/diesel_body_async.rs"]
#[macro_use]
mod diesel_body_async;

mod flavor {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::{Connection, ExpressionMethods, PgConnection, SelectableHelper};
    use diesel_async::RunQueryDsl;
    use diesel_migrations::{embed_migrations, EmbeddedMigrations};

    use super::diesel_body_async::BodyUrls;
    use super::{abody_users, BodyConnection, NewUser, User};

    pub type DB = diesel::pg::Pg;
    pub type Conn = diesel_async::AsyncPgConnection;
    pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("tests/body_migrations/async_pg");
    pub const SQL_QUERY: &str = "SELECT name, score FROM abody_users WHERE score > $1 ORDER BY id";
    /// The port of the server that runs the statement (a standby says its own).
    pub const SERVED_BY: &str =
        "inet_server_port()::text || CASE WHEN pg_is_in_recovery() THEN ' standby' ELSE '' END";

    pub fn urls() -> Option<BodyUrls> {
        let urls = BodyUrls {
            primary: super::common::pg::primary_url(),
            replica: super::common::pg::replica_url(),
            destination: super::common::pg::dest_url(),
        };
        for url in [&urls.primary, &urls.replica, &urls.destination] {
            if let Err(e) = PgConnection::establish(url) {
                super::common::unavailable("PostgreSQL", &e.to_string());
                return None;
            }
        }
        Some(urls)
    }

    pub fn reset(url: &str) {
        let mut conn = PgConnection::establish(url).unwrap();
        conn.batch_execute("DROP TABLE IF EXISTS abody_posts, abody_users CASCADE")
            .unwrap();
        let _ = conn.batch_execute(
            "DELETE FROM __diesel_schema_migrations WHERE version IN ('20261204000001', '20261204000002')",
        );
    }

    pub async fn upsert<C: BodyConnection>(conn: &mut C, name: &str, score: i32) -> usize {
        diesel::insert_into(abody_users::table)
            .values(NewUser {
                name,
                mood: super::Mood::Happy,
                score,
            })
            .on_conflict(abody_users::name)
            .do_update()
            .set(abody_users::score.eq(diesel::upsert::excluded(abody_users::score)))
            .execute(conn)
            .await
            .unwrap()
    }

    pub async fn insert_returning<C: BodyConnection>(conn: &mut C, new: NewUser<'_>) -> User {
        diesel::insert_into(abody_users::table)
            .values(&new)
            .returning(User::as_returning())
            .get_result(conn)
            .await
            .unwrap()
    }

    /// Waits until the standby has replayed every write; its URL.
    pub fn replicate(urls: &BodyUrls) -> String {
        super::common::pg::wait_replayed(&urls.primary, &urls.replica);
        urls.replica.clone()
    }
}

diesel_body_async_suite!();
