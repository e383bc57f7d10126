//! An online migration with double writes, on SQLite files standing in for the databases. Needs
//! no server: `cargo run --example double_write_migration`.
//!
//! Part 1, two databases: the application keeps writing while an operator walks the four phases
//! `SrcOnly -> SrcFirst -> DstFirst -> DstOnly`. After each phase it prints the rows on each
//! side, which side served a read, and what the journal holds. Between `SrcOnly` and `SrcFirst`
//! the destination is backfilled with the rows written so far, as a migration tool would. Under
//! `SrcFirst` the destination rejects one write, first in lenient mode (journaled, the caller
//! gets the source's result), then in strict mode (the caller gets an error saying what holds).
//!
//! Part 2, two clusters: each side is a primary and a replica (four files), and each phase shows
//! which file served a read, which files took a write, and which served the read right after it.

use std::path::{Path, PathBuf};

use diesel::connection::{LoadConnection, SimpleConnection};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;
use diesel_rw::double_write::{DoubleWrite, DoubleWriteConnection, Pattern, PatternSwitch, Side};
use diesel_rw::{Consistency, Error, RwConnection, RwPool};

type BoxError = Box<dyn std::error::Error>;

diesel::table! {
    orders (id) {
        id -> Integer,
        item -> Text,
    }
}

type Conn = DoubleWriteConnection<SqliteConnection>;

/// The application: writes an order with an explicit key (generated keys would diverge between
/// the sides) and reads the number of orders back. Runs on any SQLite connection: a
/// double-write connection over two files or over two clusters.
fn place_order<C>(conn: &mut C, id: i32, item: &str) -> QueryResult<i64>
where
    C: LoadConnection<Backend = Sqlite>,
{
    diesel::insert_into(orders::table)
        .values((orders::id.eq(id), orders::item.eq(item)))
        .execute(conn)?;
    orders::table.count().get_result(conn)
}

/// Which file answered a read: each file has a `node` table naming itself, and this read goes
/// through the routing like any other.
fn served_by<C>(conn: &mut C) -> QueryResult<String>
where
    C: LoadConnection<Backend = Sqlite>,
{
    diesel::select(diesel::dsl::sql::<Text>("(SELECT name FROM node)")).get_result(conn)
}

/// The path of a file, as diesel takes it.
fn url(path: &Path) -> Result<&str, BoxError> {
    Ok(path.to_str().ok_or("non-UTF-8 temp dir")?)
}

/// Creates a database file with its `node` marker and the `orders` table.
fn create(path: &Path, name: &str) -> Result<(), BoxError> {
    let _ = std::fs::remove_file(path);
    SqliteConnection::establish(url(path)?)?.batch_execute(&format!(
        "CREATE TABLE node (name TEXT NOT NULL);
         INSERT INTO node VALUES ('{name}');
         CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL);"
    ))?;
    Ok(())
}

/// The rows on one side, read there directly.
fn count(conn: &mut Conn, side: Side) -> Result<i64, BoxError> {
    Ok(conn.with_side(side, |c| {
        diesel::select(diesel::dsl::sql::<BigInt>("(SELECT COUNT(*) FROM orders)")).get_result(c)
    })??)
}

fn report(conn: &mut Conn, pool: &DoubleWrite<SqliteConnection>) -> Result<(), BoxError> {
    println!(
        "  rows: source {}, destination {}; reads served by the {}; journal: {} entries",
        count(conn, Side::Source)?,
        count(conn, Side::Destination)?,
        served_by(conn)?,
        pool.memory_journal().map_or(0, |j| j.len()),
    );
    Ok(())
}

/// Part 1: a double write over two databases, one file each.
fn two_databases(dir: &Path) -> Result<(), BoxError> {
    println!("== Part 1: two databases (source.db, destination.db)");
    let source = dir.join("source.db");
    let destination = dir.join("destination.db");
    create(&source, "source")?;
    create(&destination, "destination")?;

    let switch = PatternSwitch::new(Pattern::SrcOnly);
    let pool = DoubleWrite::<SqliteConnection>::builder()
        .source(url(&source)?)
        .destination(url(&destination)?)
        .pattern(switch.clone())
        .build()?;
    let journal = pool
        .memory_journal()
        .ok_or("the default journal is in memory")?;
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

    // A write the destination rejects: a stray row with the same key is there alone.
    conn.with_side(Side::Destination, |c| {
        c.batch_execute("INSERT INTO orders VALUES (50, 'stray')")
    })??;
    let rows = place_order(&mut conn, 50, "order 50")?;
    println!("  lenient: the destination rejected order 50; the call returned the source's result ({rows} rows)");
    for entry in journal.entries() {
        println!("  journal: {entry}");
    }
    // Repair (a repair job's work): make the destination's row the source's, then forget it.
    conn.with_side(Side::Destination, |c| {
        c.batch_execute("UPDATE orders SET item = 'order 50' WHERE id = 50")
    })??;
    println!(
        "  repaired the destination; {} entry drained from the journal",
        journal.drain().len()
    );

    // The same failure in strict mode: the call returns an error that says what holds.
    let strict = DoubleWrite::<SqliteConnection>::builder()
        .source(url(&source)?)
        .destination(url(&destination)?)
        .pattern(switch.clone())
        .strict(true)
        .build()?;
    let mut strict_conn = strict.get()?;
    strict_conn.with_side(Side::Destination, |c| {
        c.batch_execute("INSERT INTO orders VALUES (51, 'stray'), (52, 'stray')")
    })??;
    if let Err(e) = place_order(&mut *strict_conn, 51, "order 51") {
        println!("  strict, outside a transaction: {}", Error::from_diesel(e));
    }
    let in_transaction = strict_conn.transaction(|c| place_order(c, 52, "order 52"));
    if let Err(e) = in_transaction {
        println!("  strict, in a transaction: {}", Error::from_diesel(e));
    }
    println!(
        "  order 52 after that rollback: {} row(s) on the source, {} on the destination (the stray one)",
        count_id(&mut strict_conn, Side::Source, 52)?,
        count_id(&mut strict_conn, Side::Destination, 52)?,
    );
    // Journaled in strict mode too: order 51 only (the rolled-back transaction left nothing).
    let strict_journal = strict
        .memory_journal()
        .ok_or("the default journal is in memory")?;
    for entry in strict_journal.drain() {
        println!("  strict journal: {entry}");
    }
    // Repair: order 51 reached the source alone; the stray 52 goes.
    strict_conn.with_side(Side::Destination, |c| {
        c.batch_execute(
            "UPDATE orders SET item = 'order 51' WHERE id = 51; DELETE FROM orders WHERE id = 52",
        )
    })??;
    drop(strict_conn);
    report(&mut conn, &pool)?;

    match switch.set(Pattern::DstOnly) {
        Err(e) => println!("skipping a phase is refused: {e}"),
        Ok(_) => unreachable!("a skip is an error"),
    }

    // The step to DstFirst through the connection checks the generated-key counters first:
    // `orders` writes its keys explicitly and has no counter, so nothing is behind.
    let now = conn.advance_pattern()?;
    println!("phase {now}: reads from the destination; writes to it first, then the source");
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
    Ok(())
}

/// How many rows with key `id` one side holds, read there directly.
fn count_id(conn: &mut Conn, side: Side, id: i32) -> Result<i64, BoxError> {
    Ok(conn.with_side(side, |c| {
        orders::table
            .filter(orders::id.eq(id))
            .count()
            .get_result(c)
    })??)
}

/// The four files of part 2: each side's primary and the copy standing as its replica.
struct Files {
    source: PathBuf,
    source_replica: PathBuf,
    destination: PathBuf,
    destination_replica: PathBuf,
}

impl Files {
    fn all(&self) -> [(&'static str, &Path); 4] {
        [
            ("source primary", &self.source),
            ("source replica", &self.source_replica),
            ("destination primary", &self.destination),
            ("destination replica", &self.destination_replica),
        ]
    }

    /// The files that hold order `id`, each read directly (not through the double write).
    fn holding(&self, id: i32) -> Result<Vec<&'static str>, BoxError> {
        let mut holding = Vec::new();
        for (name, path) in self.all() {
            let n: i64 = orders::table
                .filter(orders::id.eq(id))
                .count()
                .get_result(&mut SqliteConnection::establish(url(path)?)?)?;
            if n > 0 {
                holding.push(name);
            }
        }
        Ok(holding)
    }
}

/// Part 2: a double write over two clusters, each a primary and a replica.
fn two_clusters(dir: &Path) -> Result<(), BoxError> {
    println!();
    println!("== Part 2: two clusters (a primary and a replica on each side)");
    let files = Files {
        source: dir.join("cluster-source.db"),
        source_replica: dir.join("cluster-source-replica.db"),
        destination: dir.join("cluster-destination.db"),
        destination_replica: dir.join("cluster-destination-replica.db"),
    };
    // SQLite files do not replicate: each "replica" is a copy of its primary made here, whose
    // marker row says which file it is, and it never receives the writes made afterwards. On
    // PostgreSQL or MariaDB it would be a streaming (or GTID) replica of its primary.
    for (name, path) in files.all() {
        create(path, name)?;
    }

    let cluster = |primary: &Path, replica: &Path| -> Result<RwPool<SqliteConnection>, BoxError> {
        Ok(RwPool::<SqliteConnection>::builder()
            .primary(url(primary)?)
            .replica(url(replica)?)
            .consistency(Consistency::Causal) // on SQLite (no positions) as UnitOfWork
            .build()?)
    };
    let switch = PatternSwitch::new(Pattern::SrcOnly);
    let pool = DoubleWrite::<RwConnection<SqliteConnection>>::builder()
        .source_cluster(cluster(&files.source, &files.source_replica)?)
        .destination_cluster(cluster(&files.destination, &files.destination_replica)?)
        .pattern(switch.clone())
        .build()?;

    for (i, pattern) in Pattern::ALL.into_iter().enumerate() {
        let mut conn = pool.get()?;
        match pattern {
            Pattern::SrcOnly => {}
            // The step to DstFirst checks the key counters first (see part 1).
            Pattern::DstFirst => {
                conn.advance_pattern()?;
            }
            _ => {
                switch.advance()?;
            }
        }
        println!("phase {}:", switch.get());
        if pattern == Pattern::SrcFirst {
            // Backfill the destination's primary with what the source's holds.
            conn.with_side(Side::Destination, |c| {
                c.with_primary(|p| {
                    p.batch_execute(&format!(
                        "ATTACH DATABASE '{}' AS src; INSERT INTO orders SELECT * FROM src.orders; DETACH DATABASE src;",
                        files.source.display()
                    ))
                })
            })???;
            println!("  backfilled the destination primary");
        }
        let id = 1_000 + i as i32;
        let fresh = served_by(&mut *conn)?;
        let rows = place_order(&mut *conn, id, &format!("order {id}"))?;
        let after = served_by(&mut *conn)?;
        println!("  a read on a fresh checkout: served by the {fresh}");
        println!(
            "  order {id} was written to: {}",
            files.holding(id)?.join(", ")
        );
        println!("  the read right after the write: served by the {after} ({rows} orders)");
        // Back to the pool: the next checkout starts with fresh routing state on both sides.
        drop(conn);
    }
    println!(
        "the replicas hold nothing written after setup: SQLite files do not replicate (the \
         lag of a real replica would show the same way until it caught up)"
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("diesel-rw-double-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = two_databases(&dir).and_then(|()| two_clusters(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}
