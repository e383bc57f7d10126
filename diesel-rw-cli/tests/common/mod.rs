//! Shared by the CLI's tests: the test bed's URLs, the binary, and the suite.
#![allow(dead_code)]

use std::process::{Command, Output};

/// A server the suite needs is missing: under `CI=true` that fails the test, otherwise the
/// test prints why and returns.
pub fn unavailable(backend: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{backend} test bed unavailable under CI=true: {why} (run scripts/db up)");
    }
    eprintln!("SKIPPED: {backend} test bed unavailable: {why} (run scripts/db up)");
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// One test's source and destination.
pub struct Bed {
    pub src: String,
    pub dst: String,
    pub dir: Option<std::path::PathBuf>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn pg_bed(_test: &str) -> Option<Bed> {
    use diesel::Connection;
    let src = env_or(
        "DIESEL_RW_PG_PRIMARY_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
    );
    let dst = env_or(
        "DIESEL_RW_PG_DEST_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55434/diesel_rw",
    );
    for url in [&src, &dst] {
        if let Err(e) = diesel::PgConnection::establish(url) {
            unavailable("PostgreSQL", &e.to_string());
            return None;
        }
    }
    Some(Bed {
        src,
        dst,
        dir: None,
    })
}

pub fn mysql_bed(_test: &str) -> Option<Bed> {
    use diesel::Connection;
    let src = env_or(
        "DIESEL_RW_MYSQL_PRIMARY_URL",
        "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw",
    );
    let dst = env_or(
        "DIESEL_RW_MYSQL_DEST_URL",
        "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw_dst",
    );
    for url in [&src, &dst] {
        if let Err(e) = diesel::MysqlConnection::establish(url) {
            unavailable("MariaDB", &e.to_string());
            return None;
        }
    }
    Some(Bed {
        src,
        dst,
        dir: None,
    })
}

pub fn sqlite_bed(test: &str) -> Option<Bed> {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let dir = std::env::temp_dir().join(format!("diesel-rw-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("src.db").to_str().unwrap().to_owned();
    let dst = dir.join("dst.db").to_str().unwrap().to_owned();
    for url in [&src, &dst] {
        diesel::SqliteConnection::establish(url)
            .unwrap()
            .batch_execute("PRAGMA journal_mode = WAL")
            .unwrap();
    }
    Some(Bed {
        src,
        dst,
        dir: Some(dir),
    })
}

/// `diesel-rw migrate <args>` with the bed's URLs in the environment.
pub fn cli(bed: &Bed, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diesel-rw"))
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", &bed.src)
        .env("DESTINATION_DATABASE_URL", &bed.dst)
        .env_remove("DIESEL_RW_CONFIG")
        .env_remove("DIESEL_RW_MIGRATION")
        .output()
        .unwrap()
}

/// The exit code, stdout and stderr of a run, for assertions.
pub fn parts(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The JSON document a `--json` run printed.
pub fn json(o: &Output) -> serde_json::Value {
    let (code, out, err) = parts(o);
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}); exit {code}, stdout `{out}`, stderr `{err}`"))
}

/// Waits up to `secs` for `f` to hold.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
