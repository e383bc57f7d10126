//! Diesel code unchanged on the async stack (issue #15 item 5): the body of
//! `tests/common/diesel_body.rs` written as a diesel-async user writes it (`diesel_async::RunQueryDsl`,
//! `SaveChangesDsl`, `AsyncConnection::transaction` with an async closure, migrations through
//! `AsyncConnectionWrapper` on a blocking thread) runs on the bare diesel-async connection, on
//! `AsyncRwConnection` (primary + read-only replica) and on `AsyncDoubleWriteConnection`, and
//! every step's result must be the same.
//!
//! The body has two phases. The write phase migrates and writes, reading its own writes back
//! (on the routing connection they go to the primary: read-your-writes). Then the replica
//! replays, and the read phase runs on a connection of a new pool, whose reads go to the replica
//! (asserted by the pool's counters, the last route and the identity of the server that answers).
//! On the double write the write phase runs with `SrcFirst` (both sides), the read phase once
//! from the source (`SrcFirst`) and once from the destination (`DstFirst`), each time asserting
//! the side that answered; then each side is read directly.
//!
//! Each test file gives a module `flavor` with what differs per backend: `DB`, `Conn`, the
//! embedded migrations, `reset(url)` (drops this suite's tables and its migration rows), the
//! upsert, the `RETURNING` insert, the `sql_query` text, the
//! identity query `SERVED_BY`, the URLs and `replicate`. The tables are `abody_users` and
//! `abody_posts` (not the sync suite's, which may run at the same time in another process); the
//! runs of a process are serialized by a lock, each starts from `reset`.

#[macro_export]
macro_rules! diesel_body_async_suite {
    () => {
        use std::future::Future;

        use diesel::prelude::{
            AsChangeset, Associations, BelongingToDsl, ExpressionMethods, GroupedBy, Identifiable,
            Insertable, NullableExpressionMethods, OptionalExtension, QueryDsl, QueryResult,
            Queryable, QueryableByName, Selectable, SelectableHelper, TextExpressionMethods,
        };
        use diesel::sql_types::{BigInt, Integer, Text};
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        use diesel_async::{AsyncConnection, RunQueryDsl, SaveChangesDsl};
        use diesel_migrations::MigrationHarness;
        use diesel_rw::double_write::{AsyncDoubleWrite, AsyncDoubleWriteConnection, Pattern};
        use diesel_rw::{AsyncRwConnection, AsyncRwPool, Node};

        use flavor::{Conn, DB};

        /// One run at a time: every run uses the same tables.
        static RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

        diesel::table! {
            abody_users (id) {
                id -> Integer,
                name -> Text,
                mood -> Text,
                score -> Integer,
            }
        }

        diesel::table! {
            abody_posts (id) {
                id -> Integer,
                user_id -> Integer,
                title -> Text,
                published -> Bool,
                views -> Integer,
            }
        }

        diesel::joinable!(abody_posts -> abody_users (user_id));
        diesel::allow_tables_to_appear_in_same_query!(abody_users, abody_posts);

        /// A custom type: stored as text, mapped by its own `ToSql`/`FromSql`.
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            diesel::expression::AsExpression,
            diesel::deserialize::FromSqlRow,
        )]
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

        #[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, AsChangeset)]
        #[diesel(table_name = abody_users)]
        pub struct User {
            pub id: i32,
            pub name: String,
            pub mood: Mood,
            pub score: i32,
        }

        #[derive(Debug, Clone, Insertable)]
        #[diesel(table_name = abody_users)]
        pub struct NewUser<'a> {
            pub name: &'a str,
            pub mood: Mood,
            pub score: i32,
        }

        #[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Associations)]
        #[diesel(belongs_to(User))]
        #[diesel(table_name = abody_posts)]
        pub struct Post {
            pub id: i32,
            pub user_id: i32,
            pub title: String,
            pub published: bool,
            pub views: i32,
        }

        #[derive(Debug, Clone, Insertable)]
        #[diesel(table_name = abody_posts)]
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

        /// What the body needs of a connection: what diesel-async's own connections give.
        pub trait BodyConnection: AsyncConnection<Backend = DB> + Send + 'static {
            /// `(&user).save_changes(conn)`: `SaveChangesDsl`, where the connection implements
            /// diesel-async's `UpdateAndFetchResults`.
            fn save_user<'a>(
                &'a mut self,
                user: &'a User,
            ) -> impl Future<Output = QueryResult<User>> + Send + 'a;
        }

        impl BodyConnection for Conn {
            fn save_user<'a>(
                &'a mut self,
                user: &'a User,
            ) -> impl Future<Output = QueryResult<User>> + Send + 'a {
                user.save_changes(self)
            }
        }

        impl BodyConnection for AsyncRwConnection<Conn> {
            fn save_user<'a>(
                &'a mut self,
                user: &'a User,
            ) -> impl Future<Output = QueryResult<User>> + Send + 'a {
                user.save_changes(self)
            }
        }

        impl BodyConnection for AsyncDoubleWriteConnection<Conn> {
            fn save_user<'a>(
                &'a mut self,
                user: &'a User,
            ) -> impl Future<Output = QueryResult<User>> + Send + 'a {
                user.save_changes(self)
            }
        }

        /// The step results of a phase, by name.
        type Steps = Vec<(&'static str, String)>;

        fn step(steps: &mut Steps, name: &'static str, value: impl std::fmt::Debug) {
            steps.push((name, format!("{value:?}")));
        }

        async fn ordered_users<C: BodyConnection>(conn: &mut C) -> Vec<User> {
            abody_users::table
                .order(abody_users::id)
                .select(User::as_select())
                .load(conn)
                .await
                .unwrap()
        }

        /// Runs the pending migrations as diesel-async documents it: diesel_migrations' harness
        /// on an `AsyncConnectionWrapper` around the connection, on a blocking thread. The
        /// applied versions, whether any is still pending, and the connection back.
        async fn migrate<C>(conn: C) -> (C, Vec<String>, bool)
        where
            C: BodyConnection,
            AsyncConnectionWrapper<C>: MigrationHarness<DB>,
        {
            tokio::task::spawn_blocking(move || {
                let mut wrapped = AsyncConnectionWrapper::<C>::from(conn);
                let applied = wrapped
                    .run_pending_migrations(flavor::MIGRATIONS)
                    .unwrap()
                    .iter()
                    .map(|v| v.to_string())
                    .collect();
                let pending = wrapped.has_pending_migration(flavor::MIGRATIONS).unwrap();
                (wrapped.into_inner(), applied, pending)
            })
            .await
            .unwrap()
        }

        /// Migrates, writes, and reads the writes back. The connection moves into the
        /// migration harness and back: it is returned.
        async fn write_phase<C>(conn: C) -> (C, Steps)
        where
            C: BodyConnection,
            AsyncConnectionWrapper<C>: MigrationHarness<DB>,
        {
            let mut steps = Steps::new();
            let (mut owned, applied, pending) = migrate(conn).await;
            step(&mut steps, "migrations", applied);
            step(&mut steps, "pending after", pending);
            let conn = &mut owned;

            // A batch insert.
            let new = [
                NewUser {
                    name: "ada",
                    mood: Mood::Happy,
                    score: 3,
                },
                NewUser {
                    name: "bob",
                    mood: Mood::Ok,
                    score: 7,
                },
                NewUser {
                    name: "cy",
                    mood: Mood::Sad,
                    score: 1,
                },
            ];
            let n = diesel::insert_into(abody_users::table)
                .values(&new[..])
                .execute(conn)
                .await
                .unwrap();
            step(&mut steps, "batch insert", n);
            // An upsert of an existing and a new name.
            step(
                &mut steps,
                "upsert existing",
                flavor::upsert(conn, "bob", 70).await,
            );
            step(&mut steps, "upsert new", flavor::upsert(conn, "dee", 5).await);
            // INSERT ... RETURNING (where the backend has it; else insert and read back).
            let eve = flavor::insert_returning(
                conn,
                NewUser {
                    name: "eve",
                    mood: Mood::Ok,
                    score: 9,
                },
            )
            .await;
            step(&mut steps, "insert returning", &eve);
            let users = ordered_users(conn).await;
            step(&mut steps, "users after inserts", &users);

            // save_changes (UPDATE ... RETURNING, or UPDATE and SELECT).
            let mut ada = users[0].clone();
            ada.score += 10;
            ada.mood = Mood::Ok;
            let saved: User = conn.save_user(&ada).await.unwrap();
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
            let n = diesel::insert_into(abody_posts::table)
                .values(&posts)
                .execute(conn)
                .await
                .unwrap();
            step(&mut steps, "posts inserted", n);

            // A transaction: an update and a read inside it, then one rolled back.
            let in_tx = conn
                .transaction::<_, diesel::result::Error, _>(async |c| {
                    diesel::update(abody_posts::table.filter(abody_posts::published.eq(true)))
                        .set(abody_posts::views.eq(abody_posts::views + 5))
                        .execute(c)
                        .await?;
                    abody_posts::table
                        .select(abody_posts::views)
                        .order(abody_posts::id)
                        .load::<i32>(c)
                        .await
                })
                .await
                .unwrap();
            step(&mut steps, "transaction", in_tx);
            let rolled_back = conn
                .transaction::<(), diesel::result::Error, _>(async |c| {
                    diesel::delete(abody_posts::table).execute(c).await?;
                    Err(diesel::result::Error::RollbackTransaction)
                })
                .await;
            step(&mut steps, "rolled back", rolled_back.is_err());
            let count: i64 = abody_posts::table
                .count()
                .get_result(conn)
                .await
                .unwrap();
            step(&mut steps, "posts after rollback", count);

            // An update by a subquery, a delete, and sql_query with binds.
            let n = diesel::update(
                abody_users::table.filter(
                    abody_users::id.eq_any(
                        abody_posts::table
                            .filter(abody_posts::published.eq(false))
                            .select(abody_posts::user_id),
                    ),
                ),
            )
            .set(abody_users::score.eq(abody_users::score + 1))
            .execute(conn)
            .await
            .unwrap();
            step(&mut steps, "update by subquery", n);
            let n = diesel::delete(abody_posts::table.filter(abody_posts::title.like("cy%")))
                .execute(conn)
                .await
                .unwrap();
            step(&mut steps, "delete", n);
            let rows: Vec<NameScore> = diesel::sql_query(flavor::SQL_QUERY)
                .bind::<Integer, _>(5)
                .load(conn)
                .await
                .unwrap();
            step(&mut steps, "sql_query", rows);
            step(&mut steps, "users at the end", ordered_users(conn).await);
            (owned, steps)
        }

        /// Reads only.
        async fn read_phase<C: BodyConnection>(conn: &mut C) -> Steps {
            let mut steps = Steps::new();
            let users = ordered_users(conn).await;
            step(&mut steps, "users", &users);
            let posts = Post::belonging_to(&users)
                .select(Post::as_select())
                .order(abody_posts::id)
                .load(conn)
                .await
                .unwrap();
            let grouped: Vec<(String, Vec<String>)> = posts
                .grouped_by(&users)
                .into_iter()
                .zip(&users)
                .map(|(p, u)| (u.name.clone(), p.into_iter().map(|p| p.title).collect()))
                .collect();
            step(&mut steps, "belonging_to + grouped_by", grouped);
            let joined: Vec<(String, String, i32)> = abody_users::table
                .inner_join(abody_posts::table)
                .select((abody_users::name, abody_posts::title, abody_posts::views))
                .order((abody_users::name, abody_posts::id))
                .load(conn)
                .await
                .unwrap();
            step(&mut steps, "inner join", joined);
            let left: Vec<(String, Option<String>)> = abody_users::table
                .left_join(abody_posts::table)
                .select((abody_users::name, abody_posts::title.nullable()))
                .order((abody_users::id, abody_posts::id.nullable()))
                .load(conn)
                .await
                .unwrap();
            step(&mut steps, "left join", left);
            // A boxed query built at run time.
            for (min, mood) in [
                (Some(5), None),
                (None, Some(Mood::Ok)),
                (Some(2), Some(Mood::Sad)),
            ] {
                let mut query = abody_users::table.into_boxed();
                if let Some(min) = min {
                    query = query.filter(abody_users::score.ge(min));
                }
                if let Some(mood) = mood {
                    query = query.or_filter(abody_users::mood.eq(mood));
                }
                let names: Vec<String> = query
                    .select(abody_users::name)
                    .order(abody_users::name.desc())
                    .load(conn)
                    .await
                    .unwrap();
                step(&mut steps, "boxed", names);
            }
            // Dynamic: an IN list of run-time length, a raw SQL fragment, aggregates.
            let ids: Vec<i32> = users
                .iter()
                .map(|u| u.id)
                .filter(|id| id % 2 == 1)
                .collect();
            let odd: Vec<String> = abody_users::table
                .filter(abody_users::id.eq_any(&ids))
                .select(abody_users::name)
                .order(abody_users::id)
                .load(conn)
                .await
                .unwrap();
            step(&mut steps, "eq_any", odd);
            let fragment: Vec<i64> = abody_users::table
                .select(diesel::dsl::sql::<BigInt>("COUNT(*)"))
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("score > 4"))
                .load(conn)
                .await
                .unwrap();
            step(&mut steps, "sql fragment", fragment);
            let stats: (i64, Option<i32>, Option<i32>) = abody_users::table
                .select((
                    diesel::dsl::count_star(),
                    diesel::dsl::max(abody_users::score),
                    diesel::dsl::min(abody_users::score),
                ))
                .get_result(conn)
                .await
                .unwrap();
            step(&mut steps, "aggregates", stats);
            let by_mood: Vec<(Mood, i64)> = abody_users::table
                .group_by(abody_users::mood)
                .select((abody_users::mood, diesel::dsl::count(abody_users::id)))
                .order(abody_users::mood)
                .load(conn)
                .await
                .unwrap();
            step(&mut steps, "group by custom type", by_mood);
            let found = abody_users::table
                .find(users[1].id)
                .first::<User>(conn)
                .await
                .optional()
                .unwrap();
            step(&mut steps, "find", found);
            let none = abody_users::table
                .find(-1)
                .first::<User>(conn)
                .await
                .optional()
                .unwrap();
            step(&mut steps, "find missing", none);
            let exists: bool = diesel::select(diesel::dsl::exists(
                abody_posts::table.filter(abody_posts::views.gt(0)),
            ))
            .get_result(conn)
            .await
            .unwrap();
            step(&mut steps, "exists", exists);
            let rows: Vec<NameScore> = diesel::sql_query(flavor::SQL_QUERY)
                .bind::<Integer, _>(0)
                .load(conn)
                .await
                .unwrap();
            step(&mut steps, "sql_query", rows);
            steps
        }

        /// The identity of the server that answers a read on `conn` (routed like any read).
        async fn served_by<C: BodyConnection>(conn: &mut C) -> String {
            diesel::select(diesel::dsl::sql::<Text>(flavor::SERVED_BY))
                .get_result(conn)
                .await
                .unwrap()
        }

        /// The identity `url`'s server reports, on a bare connection.
        async fn identity(url: &str) -> String {
            served_by(&mut Conn::establish(url).await.unwrap()).await
        }

        #[track_caller]
        fn assert_same(what: &str, bare: &Steps, other: &Steps) {
            assert_eq!(bare.len(), other.len(), "{what}: not the same steps");
            for ((name, a), (_, b)) in bare.iter().zip(other) {
                assert_eq!(
                    a, b,
                    "{what}: step {name:?} differs from the bare connection's"
                );
            }
        }

        /// The bare connection's results (on the primary's database, reset first).
        async fn bare(url: &str) -> (Steps, Steps) {
            flavor::reset(url);
            let conn = Conn::establish(url).await.unwrap();
            let (mut conn, written) = write_phase(conn).await;
            let read = read_phase(&mut conn).await;
            drop(conn);
            flavor::reset(url);
            assert!(
                written.len() >= 16 && read.len() >= 15,
                "the body ran short"
            );
            println!(
                "ABODY bare: {} write-phase and {} read-phase steps; users at the end: {}",
                written.len(),
                read.len(),
                written
                    .last()
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_default()
            );
            (written, read)
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_diesel_code_over_rwconnection_gives_the_bare_connections_results() {
            let _run = RUNS.lock().await;
            let Some(urls) = flavor::urls() else { return };
            let (bare_written, bare_read) = bare(&urls.primary).await;

            let pool = AsyncRwPool::<Conn>::builder()
                .primary(&urls.primary)
                .replica(&urls.replica)
                .replica_timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap();
            let conn = pool.get().await.unwrap();
            let (conn, written) = write_phase(conn).await;
            assert_same("AsyncRwConnection, write phase", &bare_written, &written);
            let primary_before = pool.stats().primary.queries;
            assert_eq!(
                conn.last_route().unwrap().node,
                Node::Primary,
                "the write phase reads its writes on the primary"
            );
            drop(conn);
            // The replica has every write; a connection of a new pool reads there.
            let replica = flavor::replicate(&urls);
            let pool = AsyncRwPool::<Conn>::builder()
                .primary(&urls.primary)
                .replica(&replica)
                .replica_timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap();
            let mut conn = pool.get().await.unwrap();
            let read = read_phase(&mut conn).await;
            assert_same("AsyncRwConnection, read phase (replica)", &bare_read, &read);
            let stats = pool.stats();
            assert_eq!(
                stats.primary.queries, 0,
                "a read went to the primary: {stats:?}"
            );
            assert!(stats.replicas[0].queries >= read.len() as u64, "{stats:?}");
            assert!(primary_before > 0);
            assert_eq!(conn.last_route().unwrap().node, Node::Replica(0));
            // The server that answers this connection's reads is the replica.
            assert_eq!(served_by(&mut conn).await, identity(&urls.replica).await);
            assert_ne!(
                identity(&urls.replica).await,
                identity(&urls.primary).await
            );
            drop(conn);
            flavor::reset(&urls.primary);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_diesel_code_over_the_double_write_gives_the_bare_connections_results() {
            use diesel_async::pooled_connection::deadpool::Object;
            let _run = RUNS.lock().await;
            let Some(urls) = flavor::urls() else { return };
            let (bare_written, bare_read) = bare(&urls.primary).await;
            flavor::reset(&urls.destination);

            let pool = AsyncDoubleWrite::<Conn>::builder()
                .source(&urls.primary)
                .destination(&urls.destination)
                .pattern(Pattern::SrcFirst)
                .strict(true)
                .build()
                .unwrap();
            // The connection itself (out of the pool): the migration harness takes it by value.
            let conn: AsyncDoubleWriteConnection<Conn> = Object::take(pool.get().await.unwrap());
            let (conn, written) = write_phase(conn).await;
            assert_same("double write, write phase", &bare_written, &written);
            drop(conn);
            let (source_id, destination_id) = (
                identity(&urls.primary).await,
                identity(&urls.destination).await,
            );
            assert_ne!(source_id, destination_id);
            for (pattern, side, id) in [
                (Pattern::SrcFirst, "source", &source_id),
                (Pattern::DstFirst, "destination", &destination_id),
            ] {
                let pool = AsyncDoubleWrite::<Conn>::builder()
                    .source(&urls.primary)
                    .destination(&urls.destination)
                    .pattern(pattern)
                    .build()
                    .unwrap();
                let mut conn = pool.get().await.unwrap();
                let read = read_phase(&mut *conn).await;
                assert_same(
                    &format!("double write, read phase from the {side}"),
                    &bare_read,
                    &read,
                );
                assert_eq!(
                    &served_by(&mut *conn).await,
                    id,
                    "{pattern:?} reads from the {side}"
                );
            }
            // Each side on its own holds what the bare connection wrote, and the migrations'
            // rows (the harness ran through the double write).
            for url in [&urls.primary, &urls.destination] {
                let mut side = Conn::establish(url).await.unwrap();
                assert_same(
                    &format!("{url}, read directly"),
                    &bare_read,
                    &read_phase(&mut side).await,
                );
                let migrated: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
                    "(SELECT COUNT(*) FROM __diesel_schema_migrations \
                     WHERE version IN ('20261204000001', '20261204000002'))",
                ))
                .get_result(&mut side)
                .await
                .unwrap();
                assert_eq!(migrated, 2, "{url}: the migrations' rows");
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
