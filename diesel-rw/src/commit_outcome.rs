//! What became of a transaction whose `COMMIT` reply was lost.
//!
//! When the connection breaks after `COMMIT` was sent, the client cannot know from the
//! connection whether the server committed. PostgreSQL can tell afterwards, from any session:
//! `txid_status(xid)` is `committed`, `aborted` or `in progress` for a recent transaction id. So
//! before the `COMMIT` of a transaction that wrote, a routing connection on a backend that has
//! [`CommitStatusQueries`] notes the transaction's id and its server process
//! ([`CommitStatusQueries::capture`]: one round trip, only for transactions that wrote); if the
//! reply is then lost, [`Resolution`] asks a fresh connection to the same node. A transaction
//! still `in progress` there belongs to a session whose client is gone (the server has not
//! noticed yet): that session is ended (only if it still holds that transaction), which makes the
//! server roll it back unless the commit was already under way, and the status is asked again
//! until it is final or the node's timeout has passed.
//!
//! The sync and async stacks drive the same [`Resolution`]; they differ only in how they run a
//! query and wait.

use std::time::{Duration, Instant};

use crate::backend::CommitStatusQueries;

/// A transaction that wrote, as the server names it: what is needed to ask for its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxRef {
    /// The transaction id (PostgreSQL: the 64-bit, epoch-extended id of `txid_current()`).
    pub(crate) xid: u64,
    /// The server process of the session that ran it.
    pub(crate) pid: i64,
}

impl TxRef {
    /// Parses the answer of [`CommitStatusQueries::capture`]: `"<xid>:<pid>"`.
    pub(crate) fn parse(text: &str) -> Option<TxRef> {
        let (xid, pid) = text.trim().split_once(':')?;
        Some(TxRef {
            xid: xid.trim().parse().ok()?,
            pid: pid.trim().parse().ok()?,
        })
    }
}

/// The outcome of a lost `COMMIT`, as far as it could be found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The server committed the transaction.
    Committed,
    /// The server rolled it back: none of its writes are committed.
    Aborted,
    /// Not known; why (for the error's detail).
    Unknown(String),
}

/// What the driver of a [`Resolution`] does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Run this query (one nullable text value) on a connection to the node, and pass its
    /// answer (or `None` when it failed) to [`Resolution::answer`].
    Query(String),
    /// Wait this long, then call [`Resolution::resume`].
    Sleep(Duration),
    /// Finished.
    Done(Outcome),
}

/// How often a transaction still `in progress` is asked about again.
const POLL: Duration = Duration::from_millis(20);

/// The steps that find a lost `COMMIT`'s outcome: status, end the orphaned session if the
/// transaction is still running, status again until final or `budget` has passed.
#[derive(Debug)]
pub(crate) struct Resolution {
    queries: CommitStatusQueries,
    tx: TxRef,
    started: Instant,
    budget: Duration,
    terminated: bool,
    /// The last step asked for a status (not a termination).
    asked_status: bool,
    failures: u32,
}

impl Resolution {
    /// Starts resolving `tx` within `budget`.
    pub(crate) fn new(queries: CommitStatusQueries, tx: TxRef, budget: Duration) -> Self {
        Resolution {
            queries,
            tx,
            started: Instant::now(),
            budget,
            terminated: false,
            asked_status: false,
            failures: 0,
        }
    }

    /// The first step.
    pub(crate) fn start(&mut self) -> Next {
        self.ask_status()
    }

    fn ask_status(&mut self) -> Next {
        self.asked_status = true;
        Next::Query((self.queries.status)(self.tx.xid))
    }

    fn out_of_time(&self) -> bool {
        self.started.elapsed() >= self.budget
    }

    /// After a [`Next::Sleep`].
    pub(crate) fn resume(&mut self) -> Next {
        self.ask_status()
    }

    /// The answer to the last [`Next::Query`]: `Ok(value)`, or `Err(reason)` when the query
    /// (or getting a connection for it) failed.
    pub(crate) fn answer(&mut self, answer: Result<Option<String>, String>) -> Next {
        let was_status = std::mem::replace(&mut self.asked_status, false);
        if !was_status {
            // The termination's answer does not matter: ask again.
            return self.ask_status();
        }
        let status = match answer {
            Ok(status) => status,
            Err(reason) => {
                self.failures += 1;
                if self.failures >= 3 || self.out_of_time() {
                    return Next::Done(Outcome::Unknown(format!(
                        "its status could not be read: {reason}"
                    )));
                }
                return Next::Sleep(POLL);
            }
        };
        match status.as_deref().map(str::trim) {
            Some("committed") => Next::Done(Outcome::Committed),
            Some("aborted") => Next::Done(Outcome::Aborted),
            Some("in progress") if !self.terminated => {
                self.terminated = true;
                Next::Query((self.queries.terminate)(self.tx.xid, self.tx.pid))
            }
            Some("in progress") if self.out_of_time() => Next::Done(Outcome::Unknown(format!(
                "still in progress after {:?}",
                self.started.elapsed()
            ))),
            Some("in progress") => Next::Sleep(POLL),
            Some(other) => Next::Done(Outcome::Unknown(format!("status `{other}`"))),
            None => Next::Done(Outcome::Unknown(
                "the server no longer knows the transaction id".into(),
            )),
        }
    }

    /// How an operator checks by hand (for the error's detail).
    pub(crate) fn how_to_check(&self) -> String {
        format!(
            "transaction {}: `{}` on the primary tells",
            self.tx.xid,
            (self.queries.status)(self.tx.xid)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queries() -> CommitStatusQueries {
        CommitStatusQueries {
            capture: "capture",
            status: |xid| format!("status {xid}"),
            terminate: |xid, pid| format!("terminate {xid} {pid}"),
        }
    }

    fn tx() -> TxRef {
        TxRef { xid: 7, pid: 42 }
    }

    #[test]
    fn parses_the_captured_reference() {
        assert_eq!(TxRef::parse(" 7:42 "), Some(tx()));
        assert_eq!(TxRef::parse("7"), None);
        assert_eq!(TxRef::parse("x:42"), None);
    }

    #[test]
    fn a_final_status_ends_at_once() {
        let mut r = Resolution::new(queries(), tx(), Duration::from_secs(5));
        assert_eq!(r.start(), Next::Query("status 7".into()));
        assert_eq!(
            r.answer(Ok(Some("committed".into()))),
            Next::Done(Outcome::Committed)
        );
        let mut r = Resolution::new(queries(), tx(), Duration::from_secs(5));
        r.start();
        assert_eq!(
            r.answer(Ok(Some("aborted".into()))),
            Next::Done(Outcome::Aborted)
        );
    }

    #[test]
    fn a_running_transaction_has_its_session_ended_once_then_is_polled() {
        let mut r = Resolution::new(queries(), tx(), Duration::from_secs(5));
        r.start();
        assert_eq!(
            r.answer(Ok(Some("in progress".into()))),
            Next::Query("terminate 7 42".into())
        );
        assert_eq!(
            r.answer(Ok(Some("t".into()))),
            Next::Query("status 7".into())
        );
        assert_eq!(r.answer(Ok(Some("in progress".into()))), Next::Sleep(POLL));
        assert_eq!(r.resume(), Next::Query("status 7".into()));
        assert_eq!(
            r.answer(Ok(Some("aborted".into()))),
            Next::Done(Outcome::Aborted)
        );
    }

    #[test]
    fn running_past_the_budget_or_unreadable_is_unknown() {
        let mut r = Resolution::new(queries(), tx(), Duration::ZERO);
        r.start();
        r.answer(Ok(Some("in progress".into())));
        r.answer(Ok(None));
        assert!(matches!(
            r.answer(Ok(Some("in progress".into()))),
            Next::Done(Outcome::Unknown(_))
        ));
        let mut r = Resolution::new(queries(), tx(), Duration::from_secs(5));
        r.start();
        assert!(matches!(
            r.answer(Ok(None)),
            Next::Done(Outcome::Unknown(_))
        ));
        let mut r = Resolution::new(queries(), tx(), Duration::from_secs(5));
        r.start();
        for _ in 0..2 {
            assert_eq!(r.answer(Err("down".into())), Next::Sleep(POLL));
            assert_eq!(r.resume(), Next::Query("status 7".into()));
        }
        assert!(matches!(
            r.answer(Err("down".into())),
            Next::Done(Outcome::Unknown(_))
        ));
    }
}
