//! Read-your-writes by replication position (`Consistency::Causal`) on the PostgreSQL pair of
//! the test bed: `scripts/db up`, then `cargo run --example read_your_writes --features postgres`.
//! URLs come from DIESEL_RW_PG_PRIMARY_URL / DIESEL_RW_PG_REPLICA_URL (defaults: the test bed).
//!
//! It writes, reads back on the same connection and on a new one that carries the write's
//! token, and prints where each read went. The replica serves a read only once it has replayed
//! the write; until then the primary does.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_rw::{Consistency, RwConnection, RwPool};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The port of the server that ran this read: which node served it.
fn served_by(conn: &mut RwConnection<PgConnection>) -> QueryResult<String> {
    diesel::select(diesel::dsl::sql::<Text>("inet_server_port()::text")).get_result(conn)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let primary = env_or(
        "DIESEL_RW_PG_PRIMARY_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
    );
    let replica = env_or(
        "DIESEL_RW_PG_REPLICA_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55433/diesel_rw",
    );
    let pool = RwPool::<PgConnection>::builder()
        .primary(&primary)
        .replica(&replica)
        .consistency(Consistency::Causal)
        // Let a read wait up to 100 ms for the replica to replay the write before it goes to
        // the primary.
        .causal_wait(Some(Duration::from_millis(100)))
        .build()?;

    pool.primary()?.batch_execute(
        "CREATE TABLE IF NOT EXISTS ryw_notes (id SERIAL PRIMARY KEY, body TEXT NOT NULL)",
    )?;

    let mut conn = pool.get()?;
    println!(
        "before any write, a read is served by port {}",
        served_by(&mut conn)?
    );
    let id: i32 = diesel::sql_query("INSERT INTO ryw_notes (body) VALUES ('hello') RETURNING id")
        .get_result::<Id>(&mut conn)?
        .id;
    let token = conn.write_token().ok_or("no position after the write")?;
    println!("wrote note {id} at primary position {}", token.position());

    let body: String = diesel::sql_query(format!("SELECT body FROM ryw_notes WHERE id = {id}"))
        .get_result::<Body>(&mut conn)?
        .body;
    println!(
        "read it back ({body:?}) on {}: the replica had replayed it, or the primary served",
        conn.last_route().ok_or("no route")?
    );

    // Another request, another connection: the token carries read-your-writes there.
    let mut later = pool.get_after(&token)?;
    let body: String = diesel::sql_query(format!("SELECT body FROM ryw_notes WHERE id = {id}"))
        .get_result::<Body>(&mut later)?
        .body;
    println!(
        "a new connection with the token read {body:?} on {}",
        later.last_route().ok_or("no route")?
    );

    let stats = pool.stats();
    println!(
        "statements: primary {}, replica {}; reads that waited for the replica: {}; read on the primary for causality: {}",
        stats.primary.queries,
        stats.replica_queries(),
        stats.causal_waits,
        stats.causal_primary_reads
    );
    Ok(())
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    id: i32,
}

#[derive(QueryableByName)]
struct Body {
    #[diesel(sql_type = Text)]
    body: String,
}
