//! Diesel code unchanged on MariaDB (primary 33306, GTID replica 33307, double write to the
//! database diesel_rw_dst): the body of tests/common/diesel_body.rs over the bare
//! `MysqlConnection`, `RwConnection` and the double write gives the same results.
#![cfg(feature = "mysql")]

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

    pub type DB = diesel::mysql::Mysql;
    pub type Conn = MysqlConnection;
    pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("tests/body_migrations/mysql");
    pub const SQL_QUERY: &str = "SELECT name, score FROM body_users WHERE score > ? ORDER BY id";

    pub fn urls() -> Option<BodyUrls> {
        let urls = BodyUrls {
            primary: super::common::mysql::primary_url(),
            replica: super::common::mysql::replica_url(),
            destination: super::common::env_or(
                "DIESEL_RW_MYSQL_DEST_URL",
                "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw_dst",
            ),
        };
        for url in [&urls.primary, &urls.replica, &urls.destination] {
            if let Err(e) = MysqlConnection::establish(url) {
                super::common::unavailable("MariaDB", &e.to_string());
                return None;
            }
        }
        Some(urls)
    }

    pub fn reset(url: &str) {
        let mut conn = MysqlConnection::establish(url).unwrap();
        conn.batch_execute("DROP TABLE IF EXISTS body_posts, body_users")
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
            .on_conflict(diesel::dsl::DuplicatedKeys)
            .do_update()
            .set(body_users::score.eq(score))
            .execute(conn)
            .unwrap()
    }

    /// No `RETURNING` on MySQL: the insert and the row read back, in one transaction.
    pub fn insert_returning<C: Connection<Backend = DB> + LoadConnection>(
        conn: &mut C,
        new: NewUser<'_>,
    ) -> User {
        conn.transaction(|c| {
            diesel::insert_into(body_users::table)
                .values(&new)
                .execute(c)?;
            body_users::table
                .order(body_users::id.desc())
                .select(User::as_select())
                .first(c)
        })
        .unwrap()
    }

    /// Waits until the replica has applied every write (GTID); its URL.
    pub fn replicate(urls: &BodyUrls) -> String {
        let bed = super::common::Bed {
            primary: urls.primary.clone(),
            replica: urls.replica.clone(),
            primary_id: String::new(),
            replica_id: String::new(),
            tag: "body".into(),
            dir: None,
        };
        super::common::mysql::replicate(&bed);
        urls.replica.clone()
    }
}

diesel_body_suite!();
