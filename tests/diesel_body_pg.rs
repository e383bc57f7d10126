//! Diesel code unchanged on PostgreSQL (primary 55432, hot standby 55433, double write to 55434):
//! the body of tests/common/diesel_body.rs over the bare `PgConnection`, `RwConnection` and the
//! double write gives the same results.
#![cfg(feature = "postgres")]

#[macro_use]
mod common;
#[path = "common/diesel_body.rs"]
#[macro_use]
mod diesel_body;

mod flavor {
    use diesel::connection::{LoadConnection, SimpleConnection};
    use diesel::prelude::*;
    use diesel_migrations::{embed_migrations, EmbeddedMigrations};

    use super::diesel_body::BodyUrls;
    use super::{body_users, NewUser, User};

    pub type DB = diesel::pg::Pg;
    pub type Conn = PgConnection;
    pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("tests/body_migrations/pg");
    pub const SQL_QUERY: &str = "SELECT name, score FROM body_users WHERE score > $1 ORDER BY id";

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
        conn.batch_execute("DROP TABLE IF EXISTS body_posts, body_users CASCADE")
            .unwrap();
        let _ = conn.batch_execute(
            "DELETE FROM __diesel_schema_migrations WHERE version IN ('20261203000001', '20261203000002')",
        );
    }

    pub fn upsert<C: Connection<Backend = DB> + LoadConnection>(
        conn: &mut C,
        name: &str,
        score: i32,
    ) -> usize {
        diesel::insert_into(body_users::table)
            .values(NewUser {
                name,
                mood: super::Mood::Happy,
                score,
            })
            .on_conflict(body_users::name)
            .do_update()
            .set(body_users::score.eq(diesel::upsert::excluded(body_users::score)))
            .execute(conn)
            .unwrap()
    }

    pub fn insert_returning<C: Connection<Backend = DB> + LoadConnection>(
        conn: &mut C,
        new: NewUser<'_>,
    ) -> User {
        diesel::insert_into(body_users::table)
            .values(&new)
            .returning(User::as_returning())
            .get_result(conn)
            .unwrap()
    }

    /// Waits until the standby has replayed every write; its URL.
    pub fn replicate(urls: &BodyUrls) -> String {
        super::common::pg::wait_replayed(&urls.primary, &urls.replica);
        urls.replica.clone()
    }
}

diesel_body_suite!();
