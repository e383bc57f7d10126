//! A TCP forwarder on 127.0.0.1 that a test can take down and bring back: a replica "goes down"
//! (its port refuses connections, open connections are cut) without stopping the real server
//! that other tests share.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Proxy {
    port: u16,
    target: SocketAddr,
    running: Mutex<Option<Running>>,
    /// While set, nothing is forwarded either way: the node "hangs" (accepts, never answers),
    /// as a server stopped with SIGSTOP does.
    hung: Arc<AtomicBool>,
    /// Milliseconds each reply from the node is held before it is forwarded: a slow node.
    delay_ms: Arc<AtomicU64>,
    /// An armed trap for the next client message that contains a pattern.
    trap: ArmedTrap,
    /// How many traps have been sprung.
    sprung: Arc<AtomicU64>,
}

/// The pattern and what to do with the message that contains it, while armed.
type ArmedTrap = Arc<Mutex<Option<(Vec<u8>, Trap)>>>;

/// What happens to the first client message containing a pattern (see [`Proxy::lose_reply_to`],
/// [`Proxy::swallow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trap {
    /// Forwarded; the reply is not: the client's connection is cut when it comes.
    LoseReply,
    /// Not forwarded, nor anything after it on that connection; the connection stays open.
    Swallow,
    /// Forwarded; its reply (PostgreSQL's protocol) is forwarded up to the start of its
    /// `row`-th `DataRow` message (0: the first), and then the connection is cut, or nothing
    /// more is forwarded (the connection stays open: the node hangs mid-result).
    BeforeRow { row: usize, then: AtRow },
}

/// What happens to a reply at the row of a [`Trap::BeforeRow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtRow {
    /// The client's connection is cut.
    Cut,
    /// Nothing more is forwarded to the client.
    Hang,
}

/// Finds the start of the n-th `DataRow` (type `D`) in a PostgreSQL reply read in chunks: each
/// message is a type byte, a 4-byte big-endian length (counting itself) and its body.
#[derive(Debug, Default)]
struct PgScan {
    header: Vec<u8>,
    /// Bytes of the current message's body still to skip.
    left: usize,
    rows: usize,
}

impl PgScan {
    /// The offset in `chunk` at which the `row`-th `DataRow` of the reply starts, if it does
    /// in this chunk.
    fn find(&mut self, chunk: &[u8], row: usize) -> Option<usize> {
        let mut i = 0;
        while i < chunk.len() {
            if self.left > 0 {
                let skip = self.left.min(chunk.len() - i);
                i += skip;
                self.left -= skip;
                continue;
            }
            if self.header.is_empty() && chunk[i] == b'D' {
                if self.rows == row {
                    return Some(i);
                }
                self.rows += 1;
            }
            self.header.push(chunk[i]);
            i += 1;
            if self.header.len() == 5 {
                let len = u32::from_be_bytes(self.header[1..5].try_into().unwrap()) as usize;
                self.left = len.saturating_sub(4);
                self.header.clear();
            }
        }
        None
    }
}

/// A reply being scanned for the row at which its trap acts.
type RowWatch = Arc<Mutex<Option<(usize, AtRow, PgScan)>>>;

struct Running {
    stop: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Starts forwarding 127.0.0.1:<free port> to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            target,
            running: Mutex::new(None),
            hung: Arc::new(AtomicBool::new(false)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            trap: Arc::new(Mutex::new(None)),
            sprung: Arc::new(AtomicU64::new(0)),
        };
        proxy.run(listener);
        proxy
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn run(&self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let target = self.target;
        let hung = self.hung.clone();
        let delay = self.delay_ms.clone();
        let trap = self.trap.clone();
        let sprung = self.sprung.clone();
        let acceptor = {
            let stop = stop.clone();
            let streams = streams.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            client.set_nonblocking(false).unwrap();
                            let Ok(server) = TcpStream::connect(target) else {
                                continue;
                            };
                            let mut s = streams.lock().unwrap();
                            s.push(client.try_clone().unwrap());
                            s.push(server.try_clone().unwrap());
                            let no_delay = Arc::new(AtomicU64::new(0));
                            let cut = Arc::new(AtomicBool::new(false));
                            let at_row = RowWatch::default();
                            pipe(
                                client.try_clone().unwrap(),
                                server.try_clone().unwrap(),
                                Link {
                                    hung: hung.clone(),
                                    delay_ms: no_delay,
                                    trap: Some((trap.clone(), sprung.clone())),
                                    cut: cut.clone(),
                                    at_row: at_row.clone(),
                                },
                            );
                            pipe(
                                server,
                                client,
                                Link {
                                    hung: hung.clone(),
                                    delay_ms: delay.clone(),
                                    trap: None,
                                    cut,
                                    at_row,
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        *self.running.lock().unwrap() = Some(Running {
            stop,
            acceptor,
            streams,
        });
    }

    /// Closes the port and cuts every forwarded connection.
    pub fn down(&self) {
        if let Some(r) = self.running.lock().unwrap().take() {
            r.stop.store(true, Ordering::SeqCst);
            r.acceptor.join().unwrap();
            for s in r.streams.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Opens the same port again.
    pub fn up(&self) {
        if self.running.lock().unwrap().is_some() {
            return;
        }
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        self.run(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

impl Proxy {
    /// The node stops answering: what it is sent is held, not forwarded (until [`Self::resume`]).
    pub fn hang(&self) {
        self.hung.store(true, Ordering::SeqCst);
    }

    /// Every reply of the node is held `delay` before it is forwarded (zero: none).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The node answers again: what was held is forwarded.
    pub fn resume(&self) {
        self.hung.store(false, Ordering::SeqCst);
    }
}

impl Proxy {
    /// The next client message containing `pattern` (e.g. `b"COMMIT"`) reaches the server, but
    /// its reply does not: the client's connection is cut when the reply comes (the server did
    /// the work; the client cannot know).
    pub fn lose_reply_to(&self, pattern: &[u8]) {
        *self.trap.lock().unwrap() = Some((pattern.to_vec(), Trap::LoseReply));
    }

    /// How many armed traps have been sprung so far.
    pub fn sprung(&self) -> u64 {
        self.sprung.load(Ordering::SeqCst)
    }

    /// The next client message containing `pattern` never reaches the server, nor anything
    /// after it on that connection, which stays open: the client waits for a reply that never
    /// comes, and the server's session waits for a message that never comes.
    pub fn swallow(&self, pattern: &[u8]) {
        *self.trap.lock().unwrap() = Some((pattern.to_vec(), Trap::Swallow));
    }

    /// The next client message containing `pattern` reaches the server; its reply (PostgreSQL
    /// only) reaches the client up to the start of its `row`-th row (0: the first), and then
    /// `then` happens: the connection is cut, or nothing more is forwarded. The statement's
    /// first reply messages (PostgreSQL's `BindComplete`) arrive, so the driver has begun
    /// handing out the result when the node fails.
    pub fn before_row(&self, pattern: &[u8], row: usize, then: AtRow) {
        *self.trap.lock().unwrap() = Some((pattern.to_vec(), Trap::BeforeRow { row, then }));
    }
}

/// One direction of a forwarded connection.
struct Link {
    hung: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    /// Client to server only: the proxy's trap.
    trap: Option<(ArmedTrap, Arc<AtomicU64>)>,
    /// Set (client to server) when the next reply is to be lost; read server to client.
    cut: Arc<AtomicBool>,
    /// Set (client to server) when the next reply is to be stopped at a row; read server to
    /// client.
    at_row: RowWatch,
}

fn pipe(mut from: TcpStream, mut to: TcpStream, link: Link) {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut swallowing = false;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while link.hung.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if swallowing {
                continue;
            }
            if let Some((trap, sprung)) = &link.trap {
                let mut armed = trap.lock().unwrap();
                let hit = armed.as_ref().and_then(|(pattern, kind)| {
                    let found = buf[..n].windows(pattern.len()).any(|w| w == &pattern[..]);
                    found.then_some(*kind)
                });
                if hit.is_some() {
                    sprung.fetch_add(1, Ordering::SeqCst);
                }
                match hit {
                    Some(Trap::LoseReply) => {
                        *armed = None;
                        // Before the message goes out, so that its reply cannot slip through.
                        link.cut.store(true, Ordering::SeqCst);
                    }
                    Some(Trap::Swallow) => {
                        *armed = None;
                        swallowing = true;
                        continue;
                    }
                    Some(Trap::BeforeRow { row, then }) => {
                        *armed = None;
                        // Before the message goes out, so that its reply is scanned from its
                        // start.
                        *link.at_row.lock().unwrap() = Some((row, then, PgScan::default()));
                    }
                    None => {}
                }
            } else if link.cut.load(Ordering::SeqCst) {
                // The reply is lost: the client's connection is cut instead.
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                break;
            } else {
                let mut at_row = link.at_row.lock().unwrap();
                let stop = at_row.as_mut().and_then(|(row, then, scan)| {
                    scan.find(&buf[..n], *row).map(|offset| (offset, *then))
                });
                if let Some((offset, then)) = stop {
                    *at_row = None;
                    drop(at_row);
                    if to.write_all(&buf[..offset]).is_err() {
                        break;
                    }
                    match then {
                        AtRow::Cut => {
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            break;
                        }
                        AtRow::Hang => {
                            swallowing = true;
                            continue;
                        }
                    }
                }
            }
            let delay = link.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
