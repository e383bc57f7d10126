//! Diesel code unchanged (issue #15 item 5): one body of ordinary Diesel usage (migrations,
//! batch inserts, upserts, `RETURNING`, `save_changes`, associations with `belonging_to` and
//! `grouped_by`, joins, boxed and dynamic queries, `sql_query`, a custom type, transactions,
//! aggregates) runs on the bare connection, on `RwConnection` (primary + read-only replica) and on
//! the double write, and every step's result must be the same.
//!
//! The body has two phases. The write phase migrates and writes, reading its own writes back
//! (on the routing connection they go to the primary: read-your-writes). Then the replica
//! replays (PostgreSQL, MariaDB) or is made a copy of the primary (SQLite), and the read phase
//! runs on a new connection, whose reads go to the replica (asserted by the pool's counters). On
//! the double write the write phase runs with `SrcFirst` (both sides), the read phase once from
//! the source (`SrcFirst`) and once from the destination (`DstFirst`).
//!
//! Each test file gives a module `flavor` with what differs per backend: `DB`, `Conn`, the
//! embedded migrations, `reset(url)` (drops this suite's tables and its migration rows), the
//! upsert, the `RETURNING` insert, the `sql_query` text, the URLs and `replicate`. The tables are
//! `body_users` and `body_posts`; the runs of a process are serialized by a lock, each starts
//! from `reset`.

#[macro_export]
macro_rules! diesel_body_suite {
    () => {
        use std::sync::Mutex;

        use diesel::connection::LoadConnection;
        use diesel::prelude::*;
        use diesel::sql_types::{BigInt, Integer, Text};
        use diesel_migrations::MigrationHarness;
        use diesel_rw::{DoubleWrite, Pattern, RwPool};

        use flavor::{Conn, DB};

        /// One run at a time: every run uses the same tables.
        static RUNS: Mutex<()> = Mutex::new(());

        diesel::table! {
            body_users (id) {
                id -> Integer,
                name -> Text,
                mood -> Text,
                score -> Integer,
            }
        }

        diesel::table! {
            body_posts (id) {
                id -> Integer,
                user_id -> Integer,
                title -> Text,
                published -> Bool,
                views -> Integer,
            }
        }

        diesel::joinable!(body_posts -> body_users (user_id));
        diesel::allow_tables_to_appear_in_same_query!(body_users, body_posts);

        /// A custom type: stored as text, mapped by its own `ToSql`/`FromSql`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub enum Mood {
            Sad,
            Ok,
            Happy,
        }

        impl Mood {
            fn as_str(self) -> &'static str {
                match self {
                    Mood::Sad => "sad",
                    Mood::Ok => "ok",
                    Mood::Happy => "happy",
                }
            }
        }

        impl<B> diesel::serialize::ToSql<Text, B> for Mood
        where
            B: diesel::backend::Backend,
            str: diesel::serialize::ToSql<Text, B>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, B>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<Text, B>>::to_sql(self.as_str(), out)
            }
        }

        impl<B> diesel::deserialize::FromSql<Text, B> for Mood
        where
            B: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<Text, B>,
        {
            fn from_sql(bytes: B::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                match String::from_sql(bytes)?.as_str() {
                    "sad" => Ok(Mood::Sad),
                    "ok" => Ok(Mood::Ok),
                    "happy" => Ok(Mood::Happy),
                    other => Err(format!("no mood {other:?}").into()),
                }
            }
        }

        #[derive(
            Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, AsChangeset,
        )]
        #[diesel(table_name = body_users)]
        pub struct User {
            pub id: i32,
            pub name: String,
            pub mood: Mood,
            pub score: i32,
        }

        #[derive(Debug, Clone, Insertable)]
        #[diesel(table_name = body_users)]
        pub struct NewUser<'a> {
            pub name: &'a str,
            pub mood: Mood,
            pub score: i32,
        }

        #[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Associations)]
        #[diesel(belongs_to(User))]
        #[diesel(table_name = body_posts)]
        pub struct Post {
            pub id: i32,
            pub user_id: i32,
            pub title: String,
            pub published: bool,
            pub views: i32,
        }

        #[derive(Debug, Clone, Insertable)]
        #[diesel(table_name = body_posts)]
        pub struct NewPost {
            pub user_id: i32,
            pub title: String,
            pub published: bool,
        }

        #[derive(Debug, QueryableByName)]
        pub struct NameScore {
            #[diesel(sql_type = Text)]
            pub name: String,
            #[diesel(sql_type = Integer)]
            pub score: i32,
        }

        /// What the body needs of a connection: what diesel's own connections give.
        pub trait BodyConnection:
            Connection<Backend = DB>
            + LoadConnection
            + MigrationHarness<DB>
            + for<'a> diesel::query_dsl::UpdateAndFetchResults<&'a User, User>
        {
        }
        impl<C> BodyConnection for C where
            C: Connection<Backend = DB>
                + LoadConnection
                + MigrationHarness<DB>
                + for<'a> diesel::query_dsl::UpdateAndFetchResults<&'a User, User>
        {
        }

        /// The step results of a phase, by name.
        type Steps = Vec<(&'static str, String)>;

        fn step(steps: &mut Steps, name: &'static str, value: impl std::fmt::Debug) {
            steps.push((name, format!("{value:?}")));
        }

        fn ordered_users<C: BodyConnection>(conn: &mut C) -> Vec<User> {
            body_users::table
                .order(body_users::id)
                .select(User::as_select())
                .load(conn)
                .unwrap()
        }

        /// Migrates, writes, and reads the writes back.
        fn write_phase<C: BodyConnection>(conn: &mut C) -> Steps {
            let mut steps = Steps::new();
            let applied = conn.run_pending_migrations(flavor::MIGRATIONS).unwrap();
            step(&mut steps, "migrations", applied.iter().map(|v| v.to_string()).collect::<Vec<_>>());
            let pending = conn.has_pending_migration(flavor::MIGRATIONS).unwrap();
            step(&mut steps, "pending after", pending);

            // A batch insert.
            let new = [
                NewUser { name: "ada", mood: Mood::Happy, score: 3 },
                NewUser { name: "bob", mood: Mood::Ok, score: 7 },
                NewUser { name: "cy", mood: Mood::Sad, score: 1 },
            ];
            let n = diesel::insert_into(body_users::table)
                .values(&new[..])
                .execute(conn)
                .unwrap();
            step(&mut steps, "batch insert", n);
            // An upsert of an existing and a new name.
            step(&mut steps, "upsert existing", flavor::upsert(conn, "bob", 70));
            step(&mut steps, "upsert new", flavor::upsert(conn, "dee", 5));
            // INSERT ... RETURNING (where the backend has it; else insert and read back).
            let eve = flavor::insert_returning(conn, NewUser { name: "eve", mood: Mood::Ok, score: 9 });
            step(&mut steps, "insert returning", &eve);
            let users = ordered_users(conn);
            step(&mut steps, "users after inserts", &users);

            // save_changes (UPDATE ... RETURNING, or UPDATE and SELECT).
            let mut ada = users[0].clone();
            ada.score += 10;
            ada.mood = Mood::Ok;
            let saved: User = (&ada).save_changes(conn).unwrap();
            step(&mut steps, "save_changes", &saved);

            // Associated rows, a batch of them.
            let posts: Vec<NewPost> = users
                .iter()
                .flat_map(|u| {
                    (0..(u.id % 3 + 1)).map(move |k| NewPost {
                        user_id: u.id,
                        title: format!("{} #{k}", u.name),
                        published: k % 2 == 0,
                    })
                })
                .collect();
            let n = diesel::insert_into(body_posts::table)
                .values(&posts)
                .execute(conn)
                .unwrap();
            step(&mut steps, "posts inserted", n);

            // A transaction: an update and a read inside it, then one rolled back.
            let in_tx = conn
                .transaction(|c| {
                    diesel::update(body_posts::table.filter(body_posts::published.eq(true)))
                        .set(body_posts::views.eq(body_posts::views + 5))
                        .execute(c)?;
                    body_posts::table
                        .select(body_posts::views)
                        .order(body_posts::id)
                        .load::<i32>(c)
                })
                .unwrap();
            step(&mut steps, "transaction", in_tx);
            let rolled_back = conn.transaction::<(), _, _>(|c| {
                diesel::delete(body_posts::table).execute(c)?;
                Err(diesel::result::Error::RollbackTransaction)
            });
            step(&mut steps, "rolled back", rolled_back.is_err());
            let count: i64 = body_posts::table.count().get_result(conn).unwrap();
            step(&mut steps, "posts after rollback", count);

            // An update by a subquery, a delete, and sql_query with binds.
            let n = diesel::update(
                body_users::table.filter(
                    body_users::id.eq_any(
                        body_posts::table
                            .filter(body_posts::published.eq(false))
                            .select(body_posts::user_id),
                    ),
                ),
            )
            .set(body_users::score.eq(body_users::score + 1))
            .execute(conn)
            .unwrap();
            step(&mut steps, "update by subquery", n);
            let n = diesel::delete(body_posts::table.filter(body_posts::title.like("cy%")))
                .execute(conn)
                .unwrap();
            step(&mut steps, "delete", n);
            let rows: Vec<NameScore> = diesel::sql_query(flavor::SQL_QUERY)
                .bind::<Integer, _>(5)
                .load(conn)
                .unwrap();
            step(&mut steps, "sql_query", rows);
            step(&mut steps, "users at the end", ordered_users(conn));
            steps
        }

        /// Reads only.
        fn read_phase<C: BodyConnection>(conn: &mut C) -> Steps {
            let mut steps = Steps::new();
            let users = ordered_users(conn);
            step(&mut steps, "users", &users);
            let posts = Post::belonging_to(&users)
                .select(Post::as_select())
                .order(body_posts::id)
                .load(conn)
                .unwrap();
            let grouped: Vec<(String, Vec<String>)> = posts
                .grouped_by(&users)
                .into_iter()
                .zip(&users)
                .map(|(p, u)| (u.name.clone(), p.into_iter().map(|p| p.title).collect()))
                .collect();
            step(&mut steps, "belonging_to + grouped_by", grouped);
            let joined: Vec<(String, String, i32)> = body_users::table
                .inner_join(body_posts::table)
                .select((body_users::name, body_posts::title, body_posts::views))
                .order((body_users::name, body_posts::id))
                .load(conn)
                .unwrap();
            step(&mut steps, "inner join", joined);
            let left: Vec<(String, Option<String>)> = body_users::table
                .left_join(body_posts::table)
                .select((body_users::name, body_posts::title.nullable()))
                .order((body_users::id, body_posts::id.nullable()))
                .load(conn)
                .unwrap();
            step(&mut steps, "left join", left);
            // A boxed query built at run time.
            for (min, mood) in [(Some(5), None), (None, Some(Mood::Ok)), (Some(2), Some(Mood::Sad))] {
                let mut query = body_users::table.into_boxed();
                if let Some(min) = min {
                    query = query.filter(body_users::score.ge(min));
                }
                if let Some(mood) = mood {
                    query = query.or_filter(body_users::mood.eq(mood));
                }
                let names: Vec<String> = query
                    .select(body_users::name)
                    .order(body_users::name.desc())
                    .load(conn)
                    .unwrap();
                step(&mut steps, "boxed", names);
            }
            // Dynamic: an IN list of run-time length, a raw SQL fragment, aggregates.
            let ids: Vec<i32> = users.iter().map(|u| u.id).filter(|id| id % 2 == 1).collect();
            let odd: Vec<String> = body_users::table
                .filter(body_users::id.eq_any(&ids))
                .select(body_users::name)
                .order(body_users::id)
                .load(conn)
                .unwrap();
            step(&mut steps, "eq_any", odd);
            let fragment: Vec<i64> = body_users::table
                .select(diesel::dsl::sql::<BigInt>("COUNT(*)"))
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("score > 4"))
                .load(conn)
                .unwrap();
            step(&mut steps, "sql fragment", fragment);
            let stats: (i64, Option<i32>, Option<i32>) = body_users::table
                .select((
                    diesel::dsl::count_star(),
                    diesel::dsl::max(body_users::score),
                    diesel::dsl::min(body_users::score),
                ))
                .get_result(conn)
                .unwrap();
            step(&mut steps, "aggregates", stats);
            let by_mood: Vec<(Mood, i64)> = body_users::table
                .group_by(body_users::mood)
                .select((body_users::mood, diesel::dsl::count(body_users::id)))
                .order(body_users::mood)
                .load(conn)
                .unwrap();
            step(&mut steps, "group by custom type", by_mood);
            let found = body_users::table.find(users[1].id).first::<User>(conn).optional().unwrap();
            step(&mut steps, "find", found);
            let none = body_users::table.find(-1).first::<User>(conn).optional().unwrap();
            step(&mut steps, "find missing", none);
            let exists: bool = diesel::select(diesel::dsl::exists(
                body_posts::table.filter(body_posts::views.gt(0)),
            ))
            .get_result(conn)
            .unwrap();
            step(&mut steps, "exists", exists);
            let rows: Vec<NameScore> = diesel::sql_query(flavor::SQL_QUERY)
                .bind::<Integer, _>(0)
                .load(conn)
                .unwrap();
            step(&mut steps, "sql_query", rows);
            steps
        }

        #[track_caller]
        fn assert_same(what: &str, bare: &Steps, other: &Steps) {
            assert_eq!(bare.len(), other.len(), "{what}: not the same steps");
            for ((name, a), (_, b)) in bare.iter().zip(other) {
                assert_eq!(a, b, "{what}: step {name:?} differs from the bare connection's");
            }
        }

        /// The bare connection's results (on the primary's database, reset first).
        fn bare(url: &str) -> (Steps, Steps) {
            flavor::reset(url);
            let mut conn = Conn::establish(url).unwrap();
            let written = write_phase(&mut conn);
            let read = read_phase(&mut conn);
            flavor::reset(url);
            assert!(written.len() >= 16 && read.len() >= 15, "the body ran short");
            println!(
                "BODY bare: {} write-phase and {} read-phase steps; users at the end: {}",
                written.len(),
                read.len(),
                written.last().map(|(_, v)| v.as_str()).unwrap_or_default()
            );
            (written, read)
        }

        #[test]
        fn diesel_code_over_rwconnection_gives_the_bare_connections_results() {
            let _run = RUNS.lock().unwrap_or_else(|e| e.into_inner());
            let Some(urls) = flavor::urls() else { return };
            let (bare_written, bare_read) = bare(&urls.primary);

            let pool = RwPool::<Conn>::builder()
                .primary(&urls.primary)
                .replica(&urls.replica)
                .replica_timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            let written = write_phase(&mut conn);
            assert_same("RwConnection, write phase", &bare_written, &written);
            let primary_before = pool.stats().primary.queries;
            drop(conn);
            // The replica has every write; a new connection reads there.
            let replica = flavor::replicate(&urls);
            let pool = RwPool::<Conn>::builder()
                .primary(&urls.primary)
                .replica(&replica)
                .replica_timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            let read = read_phase(&mut conn);
            assert_same("RwConnection, read phase (replica)", &bare_read, &read);
            let stats = pool.stats();
            assert_eq!(stats.primary.queries, 0, "a read went to the primary: {stats:?}");
            assert!(stats.replicas[0].queries >= read.len() as u64, "{stats:?}");
            assert!(primary_before > 0);
            flavor::reset(&urls.primary);
        }

        #[test]
        fn diesel_code_over_the_double_write_gives_the_bare_connections_results() {
            let _run = RUNS.lock().unwrap_or_else(|e| e.into_inner());
            let Some(urls) = flavor::urls() else { return };
            let (bare_written, bare_read) = bare(&urls.primary);
            flavor::reset(&urls.destination);

            let pool = DoubleWrite::<Conn>::builder()
                .source(&urls.primary)
                .destination(&urls.destination)
                .pattern(Pattern::SrcFirst)
                .strict(true)
                .build()
                .unwrap();
            let mut conn = pool.get().unwrap();
            let written = write_phase(&mut conn);
            assert_same("double write, write phase", &bare_written, &written);
            drop(conn);
            for (pattern, side) in [(Pattern::SrcFirst, "source"), (Pattern::DstFirst, "destination")] {
                let pool = DoubleWrite::<Conn>::builder()
                    .source(&urls.primary)
                    .destination(&urls.destination)
                    .pattern(pattern)
                    .build()
                    .unwrap();
                let mut conn = pool.get().unwrap();
                let read = read_phase(&mut conn);
                assert_same(&format!("double write, read phase from the {side}"), &bare_read, &read);
            }
            // Each side on its own holds what the bare connection wrote.
            for url in [&urls.primary, &urls.destination] {
                let mut side = Conn::establish(url).unwrap();
                assert_same(&format!("{url}, read directly"), &bare_read, &read_phase(&mut side));
            }
            flavor::reset(&urls.primary);
            flavor::reset(&urls.destination);
        }
    };
}

/// The servers a body test uses.
pub struct BodyUrls {
    pub primary: String,
    pub replica: String,
    /// The double write's destination.
    pub destination: String,
}
