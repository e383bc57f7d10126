//! An online migration with double writes, on two SQLite files standing in for the source and
//! the destination database. Needs no server: `cargo run --example double_write_migration`.
//!
//! The application keeps writing while an operator walks the four phases
//! `SrcOnly -> SrcFirst -> DstFirst -> DstOnly`. After each phase it prints the rows on each
//! side, which side served a read, and what the journal holds. Between `SrcOnly` and `SrcFirst`
//! the destination is backfilled with the rows written so far, as a migration tool would.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_rw::double_write::{DoubleWrite, DoubleWriteConnection, Pattern, PatternSwitch, Side};

diesel::table! {
    orders (id) {
        id -> Integer,
        item -> Text,
    }
}

type Conn = DoubleWriteConnection<SqliteConnection>;

/// The application: writes an order with an explicit key (generated keys would diverge between
/// the sides) and reads the number of orders back.
fn place_order(conn: &mut Conn, id: i32, item: &str) -> QueryResult<i64> {
    diesel::insert_into(orders::table)
        .values((orders::id.eq(id), orders::item.eq(item)))
        .execute(conn)?;
    orders::table.count().get_result(conn)
}

/// Which side answered a read: each file has a `side` table naming itself.
fn served_by(conn: &mut Conn) -> QueryResult<String> {
    diesel::select(diesel::dsl::sql::<Text>("(SELECT name FROM side)")).get_result(conn)
}

/// The rows on one side, read there directly.
fn count(conn: &mut Conn, side: Side) -> Result<i64, Box<dyn std::error::Error>> {
    Ok(conn.with_side(side, |c| {
        diesel::select(diesel::dsl::sql::<BigInt>("(SELECT COUNT(*) FROM orders)")).get_result(c)
    })??)
}

fn report(
    conn: &mut Conn,
    pool: &DoubleWrite<SqliteConnection>,
) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "  rows: source {}, destination {}; reads served by the {}; journal: {} entries",
        count(conn, Side::Source)?,
        count(conn, Side::Destination)?,
        served_by(conn)?,
        pool.memory_journal().map_or(0, |j| j.len()),
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("diesel-rw-double-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let source = dir.join("source.db");
    let destination = dir.join("destination.db");
    for (path, name) in [(&source, "source"), (&destination, "destination")] {
        let _ = std::fs::remove_file(path);
        SqliteConnection::establish(path.to_str().ok_or("non-UTF-8 temp dir")?)?.batch_execute(
            &format!(
                "CREATE TABLE side (name TEXT NOT NULL);
                 INSERT INTO side VALUES ('{name}');
                 CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL);"
            ),
        )?;
    }

    let switch = PatternSwitch::new(Pattern::SrcOnly);
    let pool = DoubleWrite::<SqliteConnection>::builder()
        .source(source.to_str().ok_or("non-UTF-8 temp dir")?)
        .destination(destination.to_str().ok_or("non-UTF-8 temp dir")?)
        .pattern(switch.clone())
        .build()?;
    let mut conn = pool.get()?;
    let mut next_id = 1;
    let mut write_some = |conn: &mut Conn, n: i32| -> QueryResult<()> {
        for _ in 0..n {
            place_order(conn, next_id, &format!("item {next_id}"))?;
            next_id += 1;
        }
        Ok(())
    };

    println!("phase {}: the application runs on the source", switch.get());
    write_some(&mut conn, 3)?;
    report(&mut conn, &pool)?;

    // Backfill: copy what the source holds to the destination (a migration tool's job).
    conn.with_side(Side::Destination, |c| {
        c.batch_execute(&format!(
            "ATTACH DATABASE '{}' AS src; INSERT INTO orders SELECT * FROM src.orders; DETACH DATABASE src;",
            source.display()
        ))
    })??;
    println!("backfilled the destination");

    switch.advance()?;
    println!(
        "phase {}: writes go to the source, then the destination",
        switch.get()
    );
    write_some(&mut conn, 2)?;
    report(&mut conn, &pool)?;

    match switch.set(Pattern::DstOnly) {
        Err(e) => println!("skipping a phase is refused: {e}"),
        Ok(_) => unreachable!("a skip is an error"),
    }

    switch.advance()?;
    println!(
        "phase {}: reads from the destination; writes to it first, then the source",
        switch.get()
    );
    write_some(&mut conn, 2)?;
    report(&mut conn, &pool)?;

    // A transaction keeps the pattern it began with, even if the switch moves meanwhile.
    conn.transaction(|c| {
        place_order(c, 100, "in a transaction")?;
        switch
            .advance()
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
        place_order(c, 101, "same transaction, same pattern")?;
        println!(
            "  a transaction begun under {} kept it after the switch moved to {}",
            c.transaction_pattern().map_or("-", |p| p.name()),
            switch.get()
        );
        QueryResult::Ok(())
    })?;

    println!(
        "phase {}: the application runs on the destination",
        switch.get()
    );
    write_some(&mut conn, 2)?;
    report(&mut conn, &pool)?;

    let metrics = pool.metrics();
    println!("source:      {}", metrics.source);
    println!("destination: {}", metrics.destination);
    println!("health: {}", pool.health_check());
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
