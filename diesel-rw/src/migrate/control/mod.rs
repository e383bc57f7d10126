//! Migration control for a fleet: the phase of a migration kept in a control table on the
//! source database, followed by every instance of the service, and stepped by an operator
//! through a barrier and cutover gates.
//!
//! - **The phase** ([`store`]): one row per migration in [`CONTROL_TABLE`] (name
//!   configurable, [`ControlTables`]) with its [`Pattern`](crate::double_write::Pattern), an
//!   epoch that grows at every change, and who changed it and why; every step is also in a log.
//! - **Instances** ([`Control`]): each instance reads the phase at start (it starts in the
//!   stored phase), then in the background (default every second; on PostgreSQL it also
//!   `LISTEN`s, and a step is seen at once) and applies it to its
//!   [`PatternSwitch`](crate::double_write::PatternSwitch), whose hot path is one atomic load:
//!   no round trip per statement. It writes a heartbeat with the phase and epoch it applies.
//!   If the table cannot be read, it keeps the last phase it saw and says so
//!   ([`ControlStatus`], `tracing` at WARN); it never guesses.
//! - **Steps** ([`Fleet`]): `advance` and `retreat`, one phase at a time, taken only when every
//!   live instance applies the current phase (the barrier: no two live instances are ever more
//!   than one phase apart; an instance whose heartbeat is older than the limit counts as gone),
//!   and a step forward only when its [gates](CutoverGates) hold or it is forced with a recorded
//!   reason. The epoch is compared and set in one statement: of two operators stepping at once,
//!   one wins and the other gets [`Error::StepConflict`](crate::Error::StepConflict).
//!
//! The `diesel-rw` CLI (`migrate status|init|advance|retreat|...`) and the admin router
//! (feature `admin`) run these same calls.
//!
//! ```
//! # #[cfg(feature = "sqlite")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use diesel::prelude::*;
//! use diesel_rw::double_write::Pattern;
//! use diesel_rw::migrate::control::{Control, Direction, Fleet, NoGates, StepOptions};
//! use diesel_rw::Error;
//!
//! let path = std::env::temp_dir().join(format!("diesel-rw-control-doc-{}.db", std::process::id()));
//! let _ = std::fs::remove_file(&path);
//! let url = path.to_str().unwrap();
//! let mut ops = SqliteConnection::establish(url)?;
//! // SQLite: wait for the instance's heartbeats to the same file.
//! diesel::connection::SimpleConnection::batch_execute(&mut ops, "PRAGMA busy_timeout = 30000")?;
//!
//! // The operator starts the migration; an instance starts in its stored phase.
//! let fleet = Fleet::new("orders_move");
//! fleet.init(&mut ops, Pattern::SrcOnly)?;
//! let instance = Control::builder::<SqliteConnection>(url, "orders_move")
//!     .poll_interval(Duration::from_millis(50))
//!     .start()?;
//! let switch = instance.switch(); // what the double write follows
//! assert_eq!(switch.get(), Pattern::SrcOnly);
//! assert!(matches!(switch.advance(), Err(Error::PatternControlled { .. })));
//!
//! // A step is taken in the table; the instance applies it at its next poll.
//! let step = fleet.step(&mut ops, Direction::Advance, &mut NoGates, &StepOptions::new())?;
//! assert_eq!((step.from, step.to, step.epoch), (Pattern::SrcOnly, Pattern::SrcFirst, 2));
//! let deadline = std::time::Instant::now() + Duration::from_secs(30);
//! while switch.get() != Pattern::SrcFirst && std::time::Instant::now() < deadline {
//!     std::thread::sleep(Duration::from_millis(10));
//! }
//! assert_eq!(switch.get(), Pattern::SrcFirst);
//!
//! // The instance acknowledges it with its heartbeat; then the next step may go.
//! let status = fleet.status(&mut ops)?;
//! assert_eq!(status.instances.len(), 1);
//! # let deadline = std::time::Instant::now() + Duration::from_secs(30);
//! # while fleet.status(&mut ops)?.lagging().count() > 0 && std::time::Instant::now() < deadline {
//! #     std::thread::sleep(Duration::from_millis(10));
//! # }
//! let back = fleet.step(&mut ops, Direction::Retreat, &mut NoGates,
//!                       &StepOptions::new().wait(Duration::from_secs(30)))?;
//! assert_eq!(back.to, Pattern::SrcOnly);
//! # drop(instance);
//! # let _ = std::fs::remove_file(&path);
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
mod fleet;
mod gates;
mod instance;
pub mod store;

pub use fleet::{Direction, Fleet, FleetStatus, InstanceState, StepOptions, Stepped};
pub use gates::{CutoverGates, Gate, NoGates, Refusal};
pub(crate) use instance::ControlShared;
pub use instance::{Control, ControlBuilder, ControlStatus};
pub use store::{ControlTables, InstanceRecord, PhaseRecord, StepRecord, CONTROL_TABLE};
