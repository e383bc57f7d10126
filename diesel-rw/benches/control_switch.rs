//! `control_switch`: what following the control table costs a statement. The pattern switch of
//! a [`Control`] (the phase kept in a control table, read by a background thread) against a
//! switch of this process alone ([`PatternSwitch::new`]), both read the same way (one atomic
//! load per statement):
//!
//! - `phase_check`: `switch.get()` alone;
//! - `double_write_insert/sqlite_memory`: a single-row insert through a `DoubleWriteConnection`
//!   under `SrcFirst` (SQLite in memory, two databases) following either switch.
//!
//! The control table is a SQLite file in the temp dir, polled every 100 ms during the run (the
//! background thread's work is part of what is measured). After the criterion lines, a paired
//! comparison (see `common::paired`) prints the medians and their ratio.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::prelude::*;
use diesel_rw::double_write::{DoubleWrite, Pattern, PatternSwitch};
use diesel_rw::migrate::control::{Control, Fleet};

use common::{bench_writes, next_id};

/// A control table at `SrcFirst` in a file of its own, and an instance following it.
fn controlled() -> (Control, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("diesel-rw-bench-control-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("control.db");
    let _ = std::fs::remove_file(&db);
    let url = db.to_str().unwrap().to_owned();
    let mut c = SqliteConnection::establish(&url).unwrap();
    Fleet::new("bench").init(&mut c, Pattern::SrcFirst).unwrap();
    let control = Control::builder::<SqliteConnection>(url, "bench")
        .poll_interval(Duration::from_millis(100))
        .start()
        .unwrap();
    assert_eq!(control.switch().get(), Pattern::SrcFirst);
    (control, dir)
}

fn phase_check(c: &mut Criterion) {
    let (control, dir) = controlled();
    let local = PatternSwitch::new(Pattern::SrcFirst);
    let followed = control.switch();
    let mut g = c.benchmark_group("control_switch/phase_check");
    g.bench_function("in_process_switch", |b| {
        b.iter(|| std::hint::black_box(&local).get())
    });
    g.bench_function("control_table_switch", |b| {
        b.iter(|| std::hint::black_box(&followed).get())
    });
    g.finish();
    common::paired(
        "control_switch/phase_check",
        "in_process_switch",
        || {
            std::hint::black_box(std::hint::black_box(&local).get());
        },
        "control_table_switch",
        || {
            std::hint::black_box(std::hint::black_box(&followed).get());
        },
    );
    drop(control);
    let _ = std::fs::remove_dir_all(dir);
}

fn double_write_insert(c: &mut Criterion) {
    let (control, dir) = controlled();
    let bed = common::sqlite::mem_bed("control_switch_local");
    let bed2 = common::sqlite::mem_bed("control_switch_followed");
    let pool = |bed: &common::sqlite::MemBed, switch: PatternSwitch| {
        DoubleWrite::<SqliteConnection>::builder()
            .source(bed.primary.as_str())
            .destination(bed.replica.as_str())
            .pattern(switch)
            .max_size(1)
            .build()
            .unwrap()
    };
    let local_pool = pool(&bed, PatternSwitch::new(Pattern::SrcFirst));
    let followed_pool = pool(&bed2, control.switch());
    let (mut local, mut followed) = (local_pool.get().unwrap(), followed_pool.get().unwrap());
    let insert = |conn: &mut DwConnection, k: i32| {
        diesel::insert_into(bench_writes::table)
            .values(bench_writes::k.eq(k))
            .execute(conn)
            .unwrap()
    };
    let mut g = c.benchmark_group("control_switch/double_write_insert/sqlite_memory");
    let (mut i, mut j) = (0, 0);
    g.bench_function("in_process_switch", |b| {
        b.iter(|| insert(&mut local, next_id(&mut i)))
    });
    g.bench_function("control_table_switch", |b| {
        b.iter(|| insert(&mut followed, next_id(&mut j)))
    });
    g.finish();
    common::paired(
        "control_switch/double_write_insert/sqlite_memory",
        "in_process_switch",
        || {
            std::hint::black_box(insert(&mut local, next_id(&mut i)));
        },
        "control_table_switch",
        || {
            std::hint::black_box(insert(&mut followed, next_id(&mut j)));
        },
    );
    assert_eq!(followed_pool.metrics().destination.failures, 0);
    drop(control);
    let _ = std::fs::remove_dir_all(dir);
}

/// The double-write connection type of the pools above.
type DwConnection = diesel_rw::double_write::DoubleWriteConnection<SqliteConnection>;

criterion_group! {
    name = benches;
    config = common::config();
    targets = phase_check, double_write_insert
}
criterion_main!(benches);
