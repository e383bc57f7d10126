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
}

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
                            pipe(
                                client.try_clone().unwrap(),
                                server.try_clone().unwrap(),
                                Link {
                                    hung: hung.clone(),
                                    delay_ms: no_delay,
                                    trap: Some((trap.clone(), sprung.clone())),
                                    cut: cut.clone(),
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
}

/// One direction of a forwarded connection.
struct Link {
    hung: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    /// Client to server only: the proxy's trap.
    trap: Option<(ArmedTrap, Arc<AtomicU64>)>,
    /// Set (client to server) when the next reply is to be lost; read server to client.
    cut: Arc<AtomicBool>,
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
                    None => {}
                }
            } else if link.cut.load(Ordering::SeqCst) {
                // The reply is lost: the client's connection is cut instead.
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                break;
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
