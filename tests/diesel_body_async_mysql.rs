//! Diesel code unchanged on the async stack, MariaDB (primary 33306, GTID replica 33307, double
//! write to the database diesel_rw_dst): the body of tests/common/diesel_body_async.rs over the
//! bare `AsyncMysqlConnection`, `AsyncRwConnection` and `AsyncDoubleWriteConnection` gives the
//! same results.
#![cfg(all(feature = "async", feature = "mysql"))]

#[macro_use]
mod common;
#[path = "common/diesel_body_async.rs"]
#[macro_use]
mod diesel_body_async;

mod flavor {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::{
        Connection, ExpressionMethods, MysqlConnection, QueryDsl, SelectableHelper,
    };
    use diesel_async::RunQueryDsl;
    use diesel_migrations::{embed_migrations, EmbeddedMigrations};

    use super::diesel_body_async::BodyUrls;
    use super::{abody_users, BodyConnection, NewUser, User};

    pub type DB = diesel::mysql::Mysql;
    pub type Conn = diesel_async::AsyncMysqlConnection;
    pub const MIGRATIONS: EmbeddedMigrations =
        embed_migrations!("tests/body_migrations/async_mysql");
    pub const SQL_QUERY: &str = "SELECT name, score FROM abody_users WHERE score > ? ORDER BY id";
    /// The port and database of the connection that runs the statement (the double write's two
    /// sides are two databases on one server).
    pub const SERVED_BY: &str = "CONCAT(CAST(@@port AS CHAR), '/', DATABASE())";

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
        conn.batch_execute("DROP TABLE IF EXISTS abody_posts, abody_users")
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
            .on_conflict(diesel::dsl::DuplicatedKeys)
            .do_update()
            .set(abody_users::score.eq(score))
            .execute(conn)
            .await
            .unwrap()
    }

    /// No `RETURNING` on MySQL: the insert and the row read back, in one transaction.
    pub async fn insert_returning<C: BodyConnection>(conn: &mut C, new: NewUser<'_>) -> User {
        conn.transaction::<_, diesel::result::Error, _>(async |c| {
            diesel::insert_into(abody_users::table)
                .values(&new)
                .execute(c)
                .await?;
            abody_users::table
                .order(abody_users::id.desc())
                .select(User::as_select())
                .first(c)
                .await
        })
        .await
        .unwrap()
    }

    /// Waits until the replica has applied every write (GTID); its URL.
    pub fn replicate(urls: &BodyUrls) -> String {
        let bed = super::common::Bed {
            primary: urls.primary.clone(),
            replica: urls.replica.clone(),
            primary_id: String::new(),
            replica_id: String::new(),
            tag: "abody".into(),
            dir: None,
        };
        super::common::mysql::replicate(&bed);
        urls.replica.clone()
    }
}

diesel_body_async_suite!();
