//! Diesel code unchanged on SQLite (a primary file, a read-only replica file that is a copy of
//! it, a destination file): the body of tests/common/diesel_body.rs over the bare
//! `SqliteConnection`, `RwConnection` and the double write gives the same results.
#![cfg(feature = "sqlite")]

#[macro_use]
mod common;
#[path = "common/diesel_body.rs"]
#[macro_use]
mod diesel_body;

mod flavor {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::connection::{LoadConnection, SimpleConnection};
    use diesel::prelude::*;
    use diesel_migrations::{embed_migrations, EmbeddedMigrations};

    use super::diesel_body::BodyUrls;
    use super::{body_users, NewUser, User};

    pub type DB = diesel::sqlite::Sqlite;
    pub type Conn = SqliteConnection;
    pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("tests/body_migrations/sqlite");
    pub const SQL_QUERY: &str = "SELECT name, score FROM body_users WHERE score > ? ORDER BY id";

    pub fn urls() -> Option<BodyUrls> {
        let dir = super::common::test_dir("diesel_body");
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        Some(BodyUrls {
            primary: path("primary.db"),
            replica: path("replica.db"),
            destination: path("destination.db"),
        })
    }

    pub fn reset(url: &str) {
        let mut conn = SqliteConnection::establish(url).unwrap();
        conn.batch_execute("DROP TABLE IF EXISTS body_posts; DROP TABLE IF EXISTS body_users")
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

    /// SQLite has no replication: the replica is a new copy of the primary's file; its path.
    pub fn replicate(urls: &BodyUrls) -> String {
        static COPIES: AtomicUsize = AtomicUsize::new(0);
        let copy = format!(
            "{}.copy{}",
            urls.replica,
            COPIES.fetch_add(1, Ordering::Relaxed)
        );
        std::fs::copy(&urls.primary, &copy).unwrap();
        copy
    }
}

diesel_body_suite!();
