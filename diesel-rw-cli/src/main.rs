//! `diesel-rw`, the operator tool of diesel-rw's online migrations:
//!
//! ```text
//! diesel-rw migrate init|status|backfill|verify|repair|advance|retreat|journal
//! ```
//!
//! `diesel-rw migrate --help` lists the options; `--json` prints one JSON document for scripts.
//! Exit codes: 0 ok, 1 error, 2 bad usage, 3 refused by a gate, 4 instances lag, 5 differences
//! found, 6 another step came first.

mod args;
mod commands;
mod exit;
mod progress;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use diesel::{MysqlConnection, PgConnection, SqliteConnection};

use crate::args::{Cli, Top};
use crate::exit::Failure;
use crate::settings::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Top::Migrate(m) = cli.command;
    let json = m.global.json;
    let result = Settings::resolve(&m.global).and_then(|s| {
        // The backend is the source URL's.
        let url = s.source.as_str();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            commands::run::<PgConnection>(&s, &m.command)
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            commands::run::<MysqlConnection>(&s, &m.command)
        } else {
            commands::run::<SqliteConnection>(&s, &m.command)
        }
    });
    match result {
        Ok(done) => {
            if json {
                println!("{}", done.json);
            } else {
                print!("{}", done.text);
                if !done.text.ends_with('\n') {
                    println!();
                }
            }
            ExitCode::from(done.code)
        }
        Err(failure) => report(&failure, json),
    }
}

fn report(f: &Failure, json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({"error": f.kind(), "message": f.message, "exit_code": f.code})
        );
    } else {
        eprintln!("diesel-rw: {}", f.message);
    }
    f.exit_code()
}
