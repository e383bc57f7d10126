//! The lag monitor: a background thread per pool that samples the primary's position and each
//! replica's replayed position every `health_interval`, so that routing decisions read cached
//! positions and cost no round trip. It also probes ejected replicas once their cooldown has
//! passed and re-admits them when the probe succeeds, and ejects a replica after
//! `eject_after` failed probes in a row, or at once when a probe gets no answer within its
//! deadline (the node's checkout timeout): each node is probed from a thread of its own, so a
//! hung node holds that thread and never the monitor. It stops when its pool is dropped. What
//! it decides is shared with the async monitor task ([`LagMonitor`]); this thread waits.

use std::sync::{mpsc, Arc, Weak};
use std::time::Duration;

use diesel::connection::LoadConnection;
use diesel::r2d2::R2D2Connection;

use super::pool::Cluster;
use crate::backend::RwBackend;
use crate::consistency::Position;
use crate::error::Error;
use crate::health::LagMonitor;
use crate::route::RoutingCore;
use crate::url::NodeUrl;

/// Starts the monitor thread of `cluster`.
pub(crate) fn spawn<C>(cluster: &Arc<Cluster<C>>, interval: Duration)
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    let weak: Weak<Cluster<C>> = Arc::downgrade(cluster);
    let queries = <C::Backend as RwBackend>::POSITIONS;
    let mut monitor = Monitor {
        primary: queries.map(|q| {
            Prober::spawn::<C>(
                cluster.primary.url().clone(),
                crate::Role::Primary,
                Ask::Position(q.primary, q.parse),
                cluster.primary.timeout(),
            )
        }),
        replicas: cluster
            .replicas
            .iter()
            .map(|r| {
                let ask = match queries {
                    Some(q) => Ask::Position(q.replayed, q.parse),
                    None => Ask::Ping,
                };
                Prober::spawn::<C>(r.url().clone(), crate::Role::Replica, ask, r.timeout())
            })
            .collect(),
        lag: LagMonitor::default(),
    };
    let spawned = std::thread::Builder::new()
        .name("diesel-rw-monitor".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            let Some(cluster) = weak.upgrade() else {
                return;
            };
            monitor.tick(&cluster.core);
        });
    if let Err(e) = spawned {
        tracing::error!(target: "diesel_rw", error = %e, "could not start the lag monitor");
    }
}

struct Monitor {
    primary: Option<Prober>,
    replicas: Vec<Prober>,
    lag: LagMonitor,
}

impl Monitor {
    fn tick(&mut self, core: &RoutingCore) {
        let primary = self.primary.as_mut().and_then(|p| p.ask().ok().flatten());
        self.lag.primary_sampled(primary);
        for i in 0..self.replicas.len() {
            if !LagMonitor::due(core, i) {
                continue;
            }
            let probe = self.replicas[i].ask();
            if let Err(e @ Error::Timeout { .. }) = &probe {
                // No answer within the deadline: the replica may be hung. Out of rotation at
                // once, so new reads avoid it while old ones run out.
                core.replica_failed(i, e);
            }
            if !self.lag.replica_probed(core, i, probe) {
                self.replicas[i].reconnect();
            }
        }
    }
}

/// What a probe asks its node.
#[derive(Clone, Copy)]
enum Ask {
    /// A replication position: the query, and how to parse its answer.
    Position(&'static str, fn(&str) -> Option<Position>),
    /// Only whether it answers.
    Ping,
}

/// What the monitor thread asks of a node's probe thread.
enum Request {
    Probe,
    /// Drop the connection; connect anew at the next probe.
    Reconnect,
}

/// One node's probe: a thread of its own with its own connection, so that a node that never
/// answers holds that thread, not the monitor. Each probe is waited for up to its deadline
/// (the node's checkout timeout); a probe still unanswered counts as failed until it answers.
struct Prober {
    node: NodeUrl,
    deadline: Duration,
    requests: mpsc::Sender<Request>,
    results: mpsc::Receiver<Result<Option<Position>, Error>>,
    /// A probe was sent and not answered yet.
    outstanding: bool,
}

impl Prober {
    fn spawn<C>(node: NodeUrl, role: crate::Role, ask: Ask, deadline: Duration) -> Prober
    where
        C: R2D2Connection + LoadConnection + 'static,
        C::Backend: RwBackend,
    {
        let (requests, incoming) = mpsc::channel::<Request>();
        let (answers, results) = mpsc::channel();
        let url = node.clone();
        let spawned = std::thread::Builder::new()
            .name("diesel-rw-probe".into())
            .spawn(move || {
                let mut conn: Option<C> = None;
                // Ends when the monitor (and its pool) is gone.
                for request in incoming {
                    match request {
                        Request::Reconnect => conn = None,
                        Request::Probe => {
                            let result = probe(&url, role, ask, &mut conn);
                            if result.is_err() {
                                conn = None;
                            }
                            if answers.send(result).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(target: "diesel_rw", error = %e, "could not start a lag monitor probe");
        }
        Prober {
            node,
            deadline,
            requests,
            results,
            outstanding: false,
        }
    }

    /// Probes the node, waiting up to the deadline.
    fn ask(&mut self) -> Result<Option<Position>, Error> {
        let timed_out = || Error::Timeout {
            node: self.node.redacted().to_owned(),
            after: self.deadline,
            maybe_applied: false,
        };
        if self.outstanding {
            // The last probe is still without an answer: the node is still hung, unless that
            // answer has come meanwhile (it is stale: ask again).
            match self.results.try_recv() {
                Ok(_) => self.outstanding = false,
                Err(mpsc::TryRecvError::Empty) => return Err(timed_out()),
                Err(mpsc::TryRecvError::Disconnected) => return Err(gone(&self.node)),
            }
        }
        if self.requests.send(Request::Probe).is_err() {
            return Err(gone(&self.node));
        }
        self.outstanding = true;
        match self.results.recv_timeout(self.deadline) {
            Ok(result) => {
                self.outstanding = false;
                result
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(timed_out()),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone(&self.node)),
        }
    }

    fn reconnect(&mut self) {
        let _ = self.requests.send(Request::Reconnect);
    }
}

fn gone(node: &NodeUrl) -> Error {
    Error::InvalidState(format!(
        "the lag monitor's probe of `{}` stopped",
        node.redacted()
    ))
}

/// Connects if needed and asks the node.
fn probe<C>(
    url: &NodeUrl,
    role: crate::Role,
    ask: Ask,
    slot: &mut Option<C>,
) -> Result<Option<Position>, Error>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    if slot.is_none() {
        let mut conn = C::establish(url.expose()).map_err(|source| Error::Connect {
            role,
            node: url.redacted().to_owned(),
            source,
        })?;
        for sql in <C::Backend as RwBackend>::session_statements(role) {
            conn.batch_execute(sql)?;
        }
        *slot = Some(conn);
    }
    let conn = slot.as_mut().expect("connected above");
    match ask {
        Ask::Position(sql, parse) => {
            Ok(<C::Backend as RwBackend>::query_text(conn, sql)?.and_then(|t| parse(&t)))
        }
        Ask::Ping => conn.ping().map(|()| None).map_err(Error::from),
    }
}
