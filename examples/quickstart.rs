//! diesel-rw in one page, on two SQLite files standing in for a primary and its replica.
//! Needs no server: `cargo run --example quickstart`.
//!
//! Each call prints the node that served it, read from the database itself: each file has a
//! `node` table naming itself, so a query that reads it shows where it ran.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_rw::{Consistency, RwConnection, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[derive(QueryableByName)]
struct Served {
    #[diesel(sql_type = Text)]
    node: String,
}

/// Which file answered: a read that goes through the routing like any other.
fn served_by(conn: &mut RwConnection<SqliteConnection>) -> QueryResult<String> {
    Ok(diesel::sql_query("SELECT name AS node FROM node")
        .get_result::<Served>(conn)?
        .node)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("diesel-rw-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let primary = dir.join("primary.db");
    let replica = dir.join("replica.db");
    for (path, name) in [(&primary, "primary"), (&replica, "replica")] {
        let mut c = SqliteConnection::establish(path.to_str().ok_or("non-UTF-8 temp dir")?)?;
        c.batch_execute(&format!(
            "CREATE TABLE node (name TEXT NOT NULL);
             INSERT INTO node VALUES ('{name}');
             CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO users (name) VALUES ('ada');"
        ))?;
    }

    let pool = RwPool::<SqliteConnection>::builder()
        .primary(primary.to_str().ok_or("non-UTF-8 temp dir")?)
        .replica(replica.to_str().ok_or("non-UTF-8 temp dir")?)
        .consistency(Consistency::UnitOfWork)
        .build()?;

    let mut conn = pool.get()?;
    let names: Vec<String> = users::table.select(users::name).load(&mut conn)?;
    println!("read {names:?}: served by {}", served_by(&mut conn)?);

    diesel::insert_into(users::table)
        .values(users::name.eq("grace"))
        .execute(&mut conn)?;
    let route = conn.last_route().ok_or("no route recorded")?;
    println!("write insert grace: routed to {route}");

    let names: Vec<String> = users::table.select(users::name).load(&mut conn)?;
    println!(
        "read after write {names:?}: served by {} (sticky: this connection wrote)",
        served_by(&mut conn)?
    );

    conn.transaction(|c| {
        diesel::update(users::table.filter(users::name.eq("grace")))
            .set(users::name.eq("grace hopper"))
            .execute(c)?;
        println!("in a transaction: served by {}", served_by(c)?);
        QueryResult::Ok(())
    })?;

    let mut fresh = pool.get()?;
    println!("a new connection reads from: {}", served_by(&mut fresh)?);

    let mut read_only = pool.replica()?;
    match diesel::delete(users::table).execute(&mut read_only) {
        Err(e) => println!("a write on the replica handle is rejected before it is sent: {e}"),
        Ok(_) => return Err("the replica handle accepted a write".into()),
    }

    let stats = pool.stats();
    println!(
        "statements: primary {}, replica {}",
        stats.primary.queries,
        stats.replica_queries()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
