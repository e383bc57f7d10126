//! Shared by the integration tests: per-backend test beds with the same functions, so one suite
//! macro runs the same named tests on SQLite, PostgreSQL and MariaDB.
#![allow(dead_code, unused_macros, unused_imports)]

pub mod proxy;
#[macro_use]
pub mod suite;
#[macro_use]
pub mod busy;
#[macro_use]
pub mod commit_outcome;
#[macro_use]
pub mod fault_load;
#[macro_use]
pub mod causal;
#[cfg(feature = "async")]
#[macro_use]
pub mod async_causal;
#[macro_use]
pub mod macros;
#[cfg(feature = "async")]
#[macro_use]
pub mod async_macros;

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "sqlite")]
pub mod sqlite;

diesel::table! {
    /// Every test writes rows tagged with its own name; `node` records the server that ran the
    /// INSERT (an expression evaluated by that server).
    items (id) {
        id -> Integer,
        tag -> Text,
        node -> Text,
    }
}

/// A server the suite needs is missing: under `CI=true` that fails the test, otherwise the test
/// prints why and returns.
pub fn unavailable(backend: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{backend} test bed unavailable under CI=true: {why} (run scripts/db up)");
    }
    eprintln!("SKIPPED: {backend} test bed unavailable: {why} (run scripts/db up)");
}

/// One test's view of a backend: URLs of its nodes, the identity each node reports, and the
/// tag of this test's rows.
pub struct Bed {
    pub primary: String,
    pub replica: String,
    pub primary_id: String,
    pub replica_id: String,
    pub tag: String,
    pub dir: Option<std::path::PathBuf>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Replaces the port of `url` (`scheme://userinfo@host:PORT/...`).
pub fn with_port(url: &str, port: u16) -> String {
    let scheme_end = url.find("://").unwrap() + 3;
    let rest = &url[scheme_end..];
    let auth_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let host = host.split(':').next().unwrap();
    format!(
        "{}{userinfo}{host}:{port}{}",
        &url[..scheme_end],
        &rest[auth_end..]
    )
}

/// The address of `url`'s host and port.
pub fn addr_of(url: &str) -> std::net::SocketAddr {
    let rest = &url[url.find("://").unwrap() + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host = authority.rsplit('@').next().unwrap();
    host.parse().expect("host:port")
}

/// Runs `f` and returns every tracing event (TRACE and up) the process emitted so far, as text.
/// The subscriber is the process-wide default, set once: a per-thread subscriber misses events
/// when tests run in parallel (callsite interest is cached process-wide).
pub fn capture_logs(f: impl FnOnce()) -> String {
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};
    static BUF: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    struct Buf(&'static Mutex<Vec<u8>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = *BUF.get_or_init(|| {
        let buf: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Buf(buf))
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        buf
    });
    f();
    let bytes = buf.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// A replica that a test can take down and bring back. On a server backend it is the real
/// replica behind a [`proxy::Proxy`]; on SQLite it is a replica file in a directory that is
/// renamed away (opening the file fails) and back.
pub struct Flaky {
    pub url: String,
    kind: FlakyKind,
}

enum FlakyKind {
    Proxy(proxy::Proxy),
    Dir {
        up: std::path::PathBuf,
        down: std::path::PathBuf,
    },
}

impl Flaky {
    /// The replica `url` (a server URL) behind a proxy.
    pub fn proxied(url: &str) -> Flaky {
        let proxy = proxy::Proxy::start(addr_of(url));
        Flaky {
            url: with_port(url, proxy.port()),
            kind: FlakyKind::Proxy(proxy),
        }
    }

    /// A copy of the SQLite file `replica` in a directory of its own under `dir`.
    pub fn sqlite_copy(replica: &str, dir: &std::path::Path) -> Flaky {
        let up = dir.join("flaky");
        let down = dir.join("flaky-down");
        std::fs::create_dir_all(&up).unwrap();
        let file = up.join("replica.db");
        std::fs::copy(replica, &file).unwrap();
        Flaky {
            url: file.to_str().unwrap().to_owned(),
            kind: FlakyKind::Dir { up, down },
        }
    }

    pub fn down(&self) {
        match &self.kind {
            FlakyKind::Proxy(p) => p.down(),
            FlakyKind::Dir { up, down } => std::fs::rename(up, down).unwrap(),
        }
    }

    /// The node stops answering (accepts, never replies), as under SIGSTOP; a proxied node
    /// only (a SQLite file cannot hang).
    pub fn hang(&self) {
        match &self.kind {
            FlakyKind::Proxy(p) => p.hang(),
            FlakyKind::Dir { .. } => panic!("a SQLite file cannot hang"),
        }
    }

    /// Every reply of the node comes `delay` late (a proxied node only).
    pub fn set_delay(&self, delay: std::time::Duration) {
        match &self.kind {
            FlakyKind::Proxy(p) => p.set_delay(delay),
            FlakyKind::Dir { .. } => panic!("a SQLite file cannot be slowed"),
        }
    }

    /// The next message containing `pattern` reaches the server; its reply is lost (the
    /// client's connection is cut). A proxied node only.
    pub fn lose_reply_to(&self, pattern: &[u8]) {
        match &self.kind {
            FlakyKind::Proxy(p) => p.lose_reply_to(pattern),
            FlakyKind::Dir { .. } => panic!("a SQLite file has no replies to lose"),
        }
    }

    /// The next message containing `pattern`, and all after it on that connection, never reach
    /// the server; the connection stays open. A proxied node only.
    pub fn swallow(&self, pattern: &[u8]) {
        match &self.kind {
            FlakyKind::Proxy(p) => p.swallow(pattern),
            FlakyKind::Dir { .. } => panic!("a SQLite file has no messages to swallow"),
        }
    }

    /// The next message containing `pattern` reaches the server; its reply (PostgreSQL) reaches
    /// the client up to its `row`-th row, then the connection is cut or hangs (see
    /// [`proxy::Proxy::before_row`]). A proxied node only.
    pub fn before_row(&self, pattern: &[u8], row: usize, then: proxy::AtRow) {
        match &self.kind {
            FlakyKind::Proxy(p) => p.before_row(pattern, row, then),
            FlakyKind::Dir { .. } => panic!("a SQLite file has no replies to stop"),
        }
    }

    /// How many of the traps set with `lose_reply_to` / `swallow` / `before_row` have been sprung.
    pub fn sprung(&self) -> u64 {
        match &self.kind {
            FlakyKind::Proxy(p) => p.sprung(),
            FlakyKind::Dir { .. } => 0,
        }
    }

    /// The node answers again.
    pub fn resume(&self) {
        if let FlakyKind::Proxy(p) = &self.kind {
            p.resume();
        }
    }

    pub fn up(&self) {
        match &self.kind {
            FlakyKind::Proxy(p) => p.up(),
            FlakyKind::Dir { up, down } => std::fs::rename(down, up).unwrap(),
        }
    }
}

/// Whether a database error says the session or server is read-only.
pub fn is_read_only_error(e: &diesel::result::Error) -> bool {
    let m = e.to_string().to_lowercase();
    m.contains("readonly") || m.contains("read-only") || m.contains("read only")
}

/// A fresh directory for one test's files.
pub fn test_dir(test: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "diesel-rw-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `name`, or its default when unset.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Runs `scripts/db <args>` (stop/start a node of the test bed).
pub fn testbed(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/db");
    let out = std::process::Command::new(script)
        .args(args)
        .output()
        .expect("run scripts/db");
    assert!(
        out.status.success(),
        "scripts/db {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Serializes the tests that change the shared test bed (lag, stopped nodes): within this
/// process (a mutex) and across processes (a file lock), so two test runs never inject lag into
/// or stop the same replica at once.
pub struct BedLock {
    _file: std::fs::File,
    _guard: std::sync::MutexGuard<'static, ()>,
}

pub fn bed_lock() -> BedLock {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("diesel-rw-bed-tests.lock"))
        .expect("open the bed lock file");
    file.lock().expect("lock the bed lock file");
    BedLock {
        _file: file,
        _guard: guard,
    }
}
