//! [`Fleet`]: the operator's side of the control table: status, and the steps with their
//! barrier and gates.

use std::time::{Duration, Instant};

use super::gates::{Gate, Refusal};
use super::store::{self, ControlTables, InstanceRecord, PhaseRecord, StepRecord};
use crate::double_write::Pattern;
use crate::error::{Error, Result};
use crate::migrate::MigrateConnection;

/// An instance as the barrier sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceState {
    /// Its row.
    pub record: InstanceRecord,
    /// Whether its heartbeat is younger than the limit (an older one counts as gone).
    pub live: bool,
    /// Whether it applies the current phase (its epoch is the control table's).
    pub acknowledged: bool,
}

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.record;
        write!(
            f,
            "`{}` (host {}, pid {}) applies {} (epoch {}), heartbeat {:.1} s ago{}",
            r.instance_id,
            r.host,
            r.pid,
            r.pattern,
            r.epoch,
            r.heartbeat_age.as_secs_f64(),
            if self.live { "" } else { ", gone" }
        )
    }
}

/// A migration's phase and instances ([`Fleet::status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetStatus {
    /// The stored phase.
    pub phase: PhaseRecord,
    /// Every instance in the table (live or gone), by id.
    pub instances: Vec<InstanceState>,
    /// The heartbeat age past which an instance counts as gone.
    pub heartbeat_limit: Duration,
}

impl FleetStatus {
    /// The live instances that have not applied the current phase yet.
    pub fn lagging(&self) -> impl Iterator<Item = &InstanceState> + '_ {
        self.instances.iter().filter(|i| i.live && !i.acknowledged)
    }

    /// The live instances.
    pub fn live(&self) -> impl Iterator<Item = &InstanceState> + '_ {
        self.instances.iter().filter(|i| i.live)
    }
}

/// Which way a step goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `SrcOnly -> SrcFirst -> DstFirst -> DstOnly`, through the gates.
    Advance,
    /// One phase back (always allowed, past the barrier).
    Retreat,
}

/// How a step is taken ([`Fleet::step`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepOptions {
    wait: Option<Duration>,
    force: Option<String>,
    by: Option<String>,
}

impl StepOptions {
    /// Refuse at once when instances lag (the default: [`Error::InstancesLag`]).
    pub fn new() -> StepOptions {
        StepOptions::default()
    }

    /// Wait up to `timeout` for lagging instances to apply the current phase (or their
    /// heartbeat to expire) before refusing.
    pub fn wait(mut self, timeout: Duration) -> StepOptions {
        self.wait = Some(timeout);
        self
    }

    /// Take the step forward even if gates refuse it; `reason` (required, not empty) is
    /// recorded in the log with what the gates said. The barrier still holds.
    pub fn force(mut self, reason: impl Into<String>) -> StepOptions {
        self.force = Some(reason.into());
        self
    }

    /// Who takes the step, as recorded (default `$USER@host`).
    pub fn by(mut self, who: impl Into<String>) -> StepOptions {
        self.by = Some(who.into());
        self
    }
}

/// A step taken ([`Fleet::step`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stepped {
    /// The phase before.
    pub from: Pattern,
    /// The phase now.
    pub to: Pattern,
    /// The new epoch.
    pub epoch: i64,
    /// What the gates refused, taken past by force (empty when none refused).
    pub overridden: Vec<Refusal>,
}

/// The operator's side of the migration control: the phase of `migration` in the control
/// table, its instances, and the steps (see [the module](super)).
///
/// A step is taken only when every live instance applies the current phase (the barrier: no
/// two live instances are ever more than one phase apart), only when the gates of a step
/// forward hold (or it is forced, with a recorded reason), and in one statement that compares
/// the epoch and sets the new one: of two operators stepping at once, exactly one wins, the
/// other gets [`Error::StepConflict`].
#[derive(Clone, Debug)]
pub struct Fleet {
    migration: String,
    tables: ControlTables,
    heartbeat_limit: Duration,
}

impl Fleet {
    /// The migration `migration` in the default control tables; instances count as gone after
    /// 10 s without a heartbeat.
    pub fn new(migration: impl Into<String>) -> Fleet {
        Fleet {
            migration: migration.into(),
            tables: ControlTables::default(),
            heartbeat_limit: Duration::from_secs(10),
        }
    }

    /// Other control tables ([`ControlTables::named`]).
    pub fn tables(mut self, tables: ControlTables) -> Fleet {
        self.tables = tables;
        self
    }

    /// The heartbeat age past which an instance counts as gone (default 10 s; keep it well
    /// above the instances' poll interval).
    pub fn heartbeat_limit(mut self, limit: Duration) -> Fleet {
        self.heartbeat_limit = limit;
        self
    }

    /// The migration's name.
    pub fn migration(&self) -> &str {
        &self.migration
    }

    /// The control tables.
    pub fn control_tables(&self) -> &ControlTables {
        &self.tables
    }

    /// Adds the migration at `pattern` (creating the tables) unless it is there; returns its
    /// row either way.
    pub fn init<C: MigrateConnection>(
        &self,
        conn: &mut C,
        pattern: Pattern,
    ) -> Result<PhaseRecord> {
        store::init(conn, &self.tables, &self.migration, pattern, &operator())
    }

    /// The stored phase; [`Error::UnknownMigration`] if it is not there.
    pub fn phase<C: MigrateConnection>(&self, conn: &mut C) -> Result<PhaseRecord> {
        store::read_phase(conn, &self.tables, &self.migration)?.ok_or_else(|| self.unknown())
    }

    /// The phase and the instances.
    pub fn status<C: MigrateConnection>(&self, conn: &mut C) -> Result<FleetStatus> {
        let phase = self.phase(conn)?;
        let instances = store::instances(conn, &self.tables, &self.migration)?
            .into_iter()
            .map(|record| InstanceState {
                live: record.heartbeat_age <= self.heartbeat_limit,
                acknowledged: record.epoch == phase.epoch,
                record,
            })
            .collect();
        Ok(FleetStatus {
            phase,
            instances,
            heartbeat_limit: self.heartbeat_limit,
        })
    }

    /// The last `limit` steps, newest first.
    pub fn log<C: MigrateConnection>(&self, conn: &mut C, limit: u32) -> Result<Vec<StepRecord>> {
        store::log(conn, &self.tables, &self.migration, limit)
    }

    /// One step forward (through `gates`) or back, on the control table at `conn`.
    ///
    /// In order: the current phase is read; the barrier waits (up to
    /// [`StepOptions::wait`]) for every live instance to apply it, else
    /// [`Error::InstancesLag`] naming them; a step forward asks `gates`, and any refusal is
    /// [`Error::GateRefused`] unless forced; then the epoch is compared and set in one
    /// statement ([`Error::StepConflict`] if another step came first). Nothing is changed by a
    /// step that fails.
    pub fn step<C: MigrateConnection>(
        &self,
        conn: &mut C,
        direction: Direction,
        gates: &mut dyn Gate,
        options: &StepOptions,
    ) -> Result<Stepped> {
        let forced = match &options.force {
            Some(reason) if reason.trim().is_empty() => {
                return Err(Error::Config(
                    "a forced step needs a reason (it is recorded in the control log)".into(),
                ))
            }
            Some(reason) => Some(reason.trim().to_owned()),
            None => None,
        };
        let phase = self.phase(conn)?;
        let from = phase.pattern;
        let to = match direction {
            Direction::Advance => from.next(),
            Direction::Retreat => from.previous(),
        }
        .ok_or(Error::InvalidTransition { from, to: from })?;
        self.barrier(conn, phase.epoch, options.wait)?;
        let refusals = match direction {
            Direction::Advance => gates.check(from, to)?,
            Direction::Retreat => Vec::new(),
        };
        if !refusals.is_empty() && forced.is_none() {
            let first = &refusals[0];
            tracing::warn!(target: "diesel_rw::control", migration = %self.migration, %from, %to, gate = %first.gate, reason = %first.reason, refused = refusals.len(), "step refused by a gate");
            return Err(Error::GateRefused {
                migration: self.migration.clone(),
                from,
                to,
                gate: first.gate.clone(),
                reason: refusals
                    .iter()
                    .map(|r| {
                        if r.gate == first.gate {
                            r.reason.clone()
                        } else {
                            format!("{}: {}", r.gate, r.reason)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        let by = options.by.clone().unwrap_or_else(operator);
        let reason = match (&forced, refusals.is_empty()) {
            (Some(reason), true) => format!("{reason} (forced; no gate refused)"),
            (Some(reason), false) => format!(
                "{reason} (forced past: {})",
                refusals
                    .iter()
                    .map(|r| format!("{}: {}", r.gate, r.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            (None, _) => match direction {
                Direction::Advance => "advanced: every gate held".to_owned(),
                Direction::Retreat => "retreated".to_owned(),
            },
        };
        let was_forced = forced.is_some() && !refusals.is_empty();
        let won = store::compare_and_step(
            conn,
            &self.tables,
            &self.migration,
            from,
            phase.epoch,
            to,
            &by,
            &reason,
            was_forced,
        )?;
        if !won {
            let now = self.phase(conn)?;
            return Err(Error::StepConflict {
                migration: self.migration.clone(),
                expected_epoch: phase.epoch,
                found_epoch: now.epoch,
                found: now.pattern,
            });
        }
        if was_forced {
            tracing::warn!(target: "diesel_rw::control", migration = %self.migration, %from, %to, epoch = phase.epoch + 1, %by, %reason, "phase stepped by force past its gates");
        } else {
            tracing::info!(target: "diesel_rw::control", migration = %self.migration, %from, %to, epoch = phase.epoch + 1, %by, "phase stepped");
        }
        Ok(Stepped {
            from,
            to,
            epoch: phase.epoch + 1,
            overridden: if was_forced { refusals } else { Vec::new() },
        })
    }

    /// Waits until no live instance lags behind `epoch`, up to `wait` (none: refuse at once).
    fn barrier<C: MigrateConnection>(
        &self,
        conn: &mut C,
        epoch: i64,
        wait: Option<Duration>,
    ) -> Result<()> {
        let deadline = Instant::now() + wait.unwrap_or_default();
        loop {
            let status = self.status(conn)?;
            if status.phase.epoch != epoch {
                return Err(Error::StepConflict {
                    migration: self.migration.clone(),
                    expected_epoch: epoch,
                    found_epoch: status.phase.epoch,
                    found: status.phase.pattern,
                });
            }
            let lagging: Vec<String> = status.lagging().map(|i| i.to_string()).collect();
            if lagging.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::InstancesLag {
                    migration: self.migration.clone(),
                    epoch,
                    lagging,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn unknown(&self) -> Error {
        Error::UnknownMigration {
            migration: self.migration.clone(),
            table: self.tables.control().to_owned(),
        }
    }
}

/// Who is stepping: `$USER@host`.
fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}
