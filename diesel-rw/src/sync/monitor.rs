//! The lag monitor: a background thread per pool that samples the primary's position and each
//! replica's replayed position every `health_interval`, so that routing decisions read cached
//! positions and cost no round trip. It also probes ejected replicas once their cooldown has
//! passed and re-admits them when the probe succeeds, and ejects a replica after
//! `eject_after` failed probes in a row. It stops when its pool is dropped. What it decides is
//! shared with the async monitor task ([`LagMonitor`]); this thread runs the queries and waits.

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::LoadConnection;
use diesel::r2d2::R2D2Connection;

use super::pool::Cluster;
use crate::backend::{PositionQueries, RwBackend};
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
    let mut monitor = Monitor::<C> {
        primary_url: cluster.primary.url().clone(),
        replica_urls: cluster.replicas.iter().map(|r| r.url().clone()).collect(),
        primary: None,
        replicas: cluster.replicas.iter().map(|_| None).collect(),
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

struct Monitor<C> {
    primary_url: NodeUrl,
    replica_urls: Vec<NodeUrl>,
    primary: Option<C>,
    replicas: Vec<Option<C>>,
    lag: LagMonitor,
}

impl<C> Monitor<C>
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    fn tick(&mut self, core: &RoutingCore) {
        let queries = <C::Backend as RwBackend>::POSITIONS;
        let primary = queries.and_then(|q| self.primary_position(&q));
        self.lag.primary_sampled(primary);
        for i in 0..self.replicas.len() {
            if !LagMonitor::due(core, i) {
                continue;
            }
            let probe = self.probe(i, queries.as_ref());
            if !self.lag.replica_probed(core, i, probe) {
                self.replicas[i] = None;
            }
        }
    }

    fn primary_position(&mut self, queries: &PositionQueries) -> Option<Position> {
        if self.primary.is_none() {
            self.primary = C::establish(self.primary_url.expose()).ok();
        }
        let conn = self.primary.as_mut()?;
        match <C::Backend as RwBackend>::query_text(conn, queries.primary) {
            Ok(text) => text.and_then(|t| (queries.parse)(&t)),
            Err(_) => {
                self.primary = None;
                None
            }
        }
    }

    /// Connects if needed and reads replica `i`'s replayed position (or just pings it, for a
    /// backend without positions).
    fn probe(
        &mut self,
        i: usize,
        queries: Option<&PositionQueries>,
    ) -> Result<Option<Position>, Error> {
        if self.replicas[i].is_none() {
            let url = &self.replica_urls[i];
            let mut conn = C::establish(url.expose()).map_err(|source| Error::Connect {
                role: crate::Role::Replica,
                node: url.redacted().to_owned(),
                source,
            })?;
            for sql in <C::Backend as RwBackend>::session_statements(crate::Role::Replica) {
                conn.batch_execute(sql)?;
            }
            self.replicas[i] = Some(conn);
        }
        let conn = self.replicas[i].as_mut().expect("connected above");
        match queries {
            Some(q) => Ok(<C::Backend as RwBackend>::query_text(conn, q.replayed)?
                .and_then(|t| (q.parse)(&t))),
            None => conn.ping().map(|()| None).map_err(Error::from),
        }
    }
}
