//! A repository whose methods choose their route at compile time with `#[read_only]` and
//! `#[master]`, on two SQLite files standing in for a primary and its replica.
//! Needs no server: `cargo run --example repository`.
//!
//! Each call prints the node that served it, read from the database itself: each file has a
//! `node` table naming itself, so a query that reads it shows where it ran.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_rw::{master, read_only, Router, RwConnection, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct User {
    id: i32,
    name: String,
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {}", self.id, self.name)
    }
}

/// `Some(user)` as the user, `None` as "not found".
fn found(user: Option<User>) -> String {
    user.map_or_else(|| "not found".into(), |u| u.to_string())
}

fn names(users: &[User]) -> String {
    users
        .iter()
        .map(User::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(QueryableByName)]
struct Served {
    #[diesel(sql_type = Text)]
    node: String,
}

/// Prints which file answered `what`: a read that goes through the routing like any other, so
/// it runs where the call's other statements ran.
fn report(conn: &mut RwConnection<SqliteConnection>, what: &str) -> QueryResult<()> {
    let node = diesel::sql_query("SELECT name AS node FROM node")
        .get_result::<Served>(conn)?
        .node;
    let route = conn.last_route().map(|r| r.to_string()).unwrap_or_default();
    println!("  {what:<34} served by {node:<8} ({route})");
    Ok(())
}

/// The users of the application. Every method gets `conn` from the attribute: a replica for
/// `#[read_only]`, the primary for `#[master]`.
struct UserRepo {
    pool: RwPool<SqliteConnection>,
}

impl UserRepo {
    /// One user, read on a replica.
    #[read_only(pool = &self.pool)]
    fn find(&self, id: i32) -> QueryResult<Option<User>> {
        self.find_on(conn, id)
    }

    /// One user, on the route the caller gives (`pool = db`): with the pool, a replica; with
    /// another method's `conn`, that same connection, and its transaction if one is open.
    #[read_only(pool = db)]
    fn find_on<R: Router<Connection = SqliteConnection>>(
        &self,
        db: R,
        id: i32,
    ) -> QueryResult<Option<User>> {
        let user = users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()?;
        report(conn, &format!("find({id})"))?;
        Ok(user)
    }

    /// Every user, read on a replica.
    #[read_only(pool = &self.pool)]
    fn list(&self) -> QueryResult<Vec<User>> {
        let all = users::table
            .select(User::as_select())
            .order(users::id)
            .load(conn)?;
        report(conn, "list()")?;
        Ok(all)
    }

    /// A new user, written on the primary.
    #[master(pool = &self.pool)]
    fn create(&self, name: &str) -> QueryResult<User> {
        let user = diesel::insert_into(users::table)
            .values(users::name.eq(name))
            .returning(User::as_returning())
            .get_result(conn)?;
        report(conn, &format!("create({name:?})"))?;
        Ok(user)
    }

    /// Renames a user in one transaction on the primary. The lookup is the `#[read_only]`
    /// method, called with `conn`: it runs in this transaction, on the primary, so it finds a
    /// user that the replica has not received yet.
    #[master(pool = &self.pool, transaction)]
    fn rename(&self, id: i32, name: &str) -> QueryResult<User> {
        let Some(user) = self.find_on(&mut *conn, id)? else {
            return Err(diesel::result::Error::NotFound);
        };
        let renamed = diesel::update(users::table.find(user.id))
            .set(users::name.eq(name))
            .returning(User::as_returning())
            .get_result(conn)?;
        report(conn, &format!("rename({id}, {name:?})"))?;
        Ok(renamed)
    }
}

/// SQLite has no replication: copies the primary's users to the replica file, as a replica's
/// replay would.
fn replicate(primary: &str, replica: &str) -> QueryResult<()> {
    SqliteConnection::establish(replica)
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?
        .batch_execute(&format!(
            "ATTACH DATABASE '{primary}' AS p;
             DELETE FROM users; INSERT INTO users SELECT * FROM p.users;
             DETACH DATABASE p;"
        ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("diesel-rw-repository-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let primary = dir.join("primary.db");
    let replica = dir.join("replica.db");
    let primary = primary.to_str().ok_or("non-UTF-8 temp dir")?;
    let replica = replica.to_str().ok_or("non-UTF-8 temp dir")?;
    for (path, name) in [(primary, "primary"), (replica, "replica")] {
        SqliteConnection::establish(path)?.batch_execute(&format!(
            "CREATE TABLE node (name TEXT NOT NULL);
             INSERT INTO node VALUES ('{name}');
             CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO users (name) VALUES ('ada'), ('grace');"
        ))?;
    }

    let repo = UserRepo {
        pool: RwPool::<SqliteConnection>::builder()
            .primary(primary)
            .replica(replica)
            .build()?,
    };

    println!("#[read_only] methods read on the replica:");
    let ada = repo.find(1)?;
    println!("    -> {}", found(ada));
    let all = repo.list()?;
    println!("    -> {}", names(&all));

    println!("#[master] methods write on the primary:");
    let linus = repo.create("linus")?;
    println!("    -> {linus}");

    println!("the replica has not replayed that write yet:");
    let missing = repo.find(linus.id)?;
    println!("    -> {}", found(missing));

    println!(
        "#[master(transaction)] rename: the nested #[read_only] lookup reads in the transaction:"
    );
    let renamed = repo.rename(linus.id, "linus torvalds")?;
    println!("    -> {renamed}");

    println!("after replay, the replica has it:");
    replicate(primary, replica)?;
    let all = repo.list()?;
    println!("    -> {}", names(&all));

    let stats = repo.pool.stats();
    println!(
        "statements: primary {}, replica {}",
        stats.primary.queries,
        stats.replica_queries()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
