//! [`Retry`]: retrying what provably did not apply, with exponential backoff and jitter.
//!
//! A double write must never apply a statement twice on a side, so a statement is retried only
//! when its failure proves that the side did not apply it ([`Transient`]):
//!
//! - **connect**: the side's connection could not be (re)established, so nothing was sent;
//! - **serialization failure** (PostgreSQL SQLSTATE 40001, MySQL/MariaDB error 1213, reported by
//!   diesel as [`DatabaseErrorKind::SerializationFailure`]): the server rolled the statement
//!   back;
//! - **deadlock** (PostgreSQL SQLSTATE 40P01, recognised by its message `deadlock detected`,
//!   since diesel does not expose the SQLSTATE; MySQL/MariaDB `Deadlock found ...`): the server
//!   rolled the statement back.
//!
//! Nothing else is retried: not a constraint violation, not a lost connection or an I/O error
//! after the statement was sent (it may have applied), and nothing inside a transaction (the
//! server rolled back the whole transaction, which only the caller can run again). Outside a
//! transaction each side's statement is retried on its own: a retry of the second side never
//! re-runs the first.
//!
//! A statement that arrives through `load` is moved into the cursor diesel returns, so its run
//! on the side whose cursor is returned can be retried only for a failed connect; its run on the
//! other side (which diesel-rw drains itself) is retried like any statement.

use std::time::{Duration, Instant};

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::error::Error;

/// How failed statements are retried. Off by default ([`Retry::off`]).
///
/// Attempt `n + 1` waits `min(max_backoff, initial_backoff * 2^(n-1))`, jittered to a random
/// point of its upper half, and is not made once the total time would exceed `max_elapsed`.
///
/// ```
/// use std::time::Duration;
/// use diesel_rw::double_write::Retry;
///
/// let retry = Retry::attempts(4)
///     .initial_backoff(Duration::from_millis(20))
///     .max_backoff(Duration::from_millis(500))
///     .max_elapsed(Duration::from_secs(2));
/// assert!(retry.is_enabled());
/// assert!(!Retry::off().is_enabled());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_elapsed: Duration,
}

impl Default for Retry {
    /// [`Retry::off`].
    fn default() -> Self {
        Retry::off()
    }
}

/// Why a failure may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transient {
    /// The side's connection could not be established: nothing was sent.
    Connect,
    /// The server reported a serialization failure and rolled the statement back.
    Serialization,
    /// The server chose the statement as a deadlock victim and rolled it back.
    Deadlock,
}

impl Retry {
    /// No retry: every statement is attempted once.
    pub const fn off() -> Self {
        Retry {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(5),
        }
    }

    /// Up to `max_attempts` attempts in all (the first included), with the default backoff:
    /// 10 ms doubling up to 1 s, at most 5 s in all.
    pub const fn attempts(max_attempts: u32) -> Self {
        let mut retry = Retry::off();
        retry.max_attempts = if max_attempts == 0 { 1 } else { max_attempts };
        retry
    }

    /// The wait before the first retry (it doubles for each later one).
    pub const fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest wait between two attempts.
    pub const fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The longest time from the first attempt to the start of the last one.
    pub const fn max_elapsed(mut self, elapsed: Duration) -> Self {
        self.max_elapsed = elapsed;
        self
    }

    /// Whether any retry happens.
    pub const fn is_enabled(&self) -> bool {
        self.max_attempts > 1
    }

    /// The maximum attempts, the first included.
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before attempt `retry + 1` (`retry` >= 1), jittered.
    fn delay(&self, retry: u32) -> Duration {
        let factor = 1_u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = base / 2;
        let jitter_us = u64::try_from((base - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(fastrand::u64(0..=jitter_us))
    }

    /// Whether a statement that failed with `error` after `retries` retries (since `start`) is
    /// tried again, and after how long. `allowed` is false inside a transaction.
    pub(crate) fn next_attempt(
        &self,
        allowed: bool,
        retries: u32,
        start: Instant,
        error: &DieselError,
    ) -> Option<(Transient, Duration)> {
        if !allowed || retries + 1 >= self.max_attempts {
            return None;
        }
        let class = transient(error)?;
        let delay = self.delay(retries + 1);
        if start.elapsed() + delay > self.max_elapsed {
            return None;
        }
        tracing::debug!(target: "diesel_rw::double_write", ?class, ?delay, error = %error, "retrying");
        Some((class, delay))
    }

    /// Runs `attempt` until it succeeds, fails with a non-transient error, or the attempts or
    /// time run out. `allowed` is false inside a transaction. `on_retry` is told of each retry
    /// before its wait.
    pub(crate) fn run<T>(
        &self,
        allowed: bool,
        mut attempt: impl FnMut() -> Result<T, DieselError>,
        mut on_retry: impl FnMut(Transient, &DieselError),
    ) -> Result<T, DieselError> {
        let start = Instant::now();
        let mut retries = 0;
        loop {
            let error = match attempt() {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let Some((class, delay)) = self.next_attempt(allowed, retries, start, &error) else {
                return Err(error);
            };
            retries += 1;
            on_retry(class, &error);
            std::thread::sleep(delay);
        }
    }
}

/// Whether `error` proves that the statement did not apply, and why.
pub fn transient(error: &DieselError) -> Option<Transient> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
            Some(Transient::Serialization)
        }
        DieselError::DatabaseError(_, info) if is_deadlock_message(info.message()) => {
            Some(Transient::Deadlock)
        }
        DieselError::QueryBuilderError(inner) => match inner.downcast_ref::<Error>() {
            Some(Error::SideUnavailable { .. }) => Some(Transient::Connect),
            _ => None,
        },
        _ => None,
    }
}

/// PostgreSQL's message for SQLSTATE 40P01, MySQL/MariaDB's for error 1213.
fn is_deadlock_message(message: &str) -> bool {
    message.starts_with("deadlock detected") || message.starts_with("Deadlock found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn db_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    fn fast(attempts: u32) -> Retry {
        Retry::attempts(attempts)
            .initial_backoff(Duration::from_micros(10))
            .max_backoff(Duration::from_micros(100))
    }

    #[test]
    fn classifies_only_what_did_not_apply() {
        assert_eq!(
            transient(&db_error(DatabaseErrorKind::SerializationFailure, "x")),
            Some(Transient::Serialization)
        );
        assert_eq!(
            transient(&db_error(DatabaseErrorKind::Unknown, "deadlock detected")),
            Some(Transient::Deadlock)
        );
        assert_eq!(
            transient(&db_error(
                DatabaseErrorKind::Unknown,
                "Deadlock found when trying to get lock; try restarting transaction"
            )),
            Some(Transient::Deadlock)
        );
        for kind in [
            DatabaseErrorKind::UniqueViolation,
            DatabaseErrorKind::ClosedConnection,
            DatabaseErrorKind::UnableToSendCommand,
            DatabaseErrorKind::Unknown,
        ] {
            assert_eq!(transient(&db_error(kind, "boom")), None);
        }
        assert_eq!(transient(&DieselError::NotFound), None);
        let connect: DieselError = Error::SideUnavailable {
            side: crate::double_write::Side::Destination,
            node: "db".into(),
            source: diesel::ConnectionError::BadConnection("refused".into()),
        }
        .into();
        assert_eq!(transient(&connect), Some(Transient::Connect));
    }

    #[test]
    fn retries_transient_failures_up_to_the_limit() {
        let calls = Cell::new(0);
        let retries = Cell::new(0);
        let result: Result<(), _> = fast(3).run(
            true,
            || {
                calls.set(calls.get() + 1);
                Err(db_error(DatabaseErrorKind::SerializationFailure, "x"))
            },
            |_, _| retries.set(retries.get() + 1),
        );
        assert!(result.is_err());
        assert_eq!(calls.get(), 3);
        assert_eq!(retries.get(), 2);

        calls.set(0);
        let result = fast(5).run(
            true,
            || {
                calls.set(calls.get() + 1);
                if calls.get() < 3 {
                    Err(db_error(DatabaseErrorKind::Unknown, "deadlock detected"))
                } else {
                    Ok(7)
                }
            },
            |_, _| {},
        );
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn never_retries_other_errors_or_when_not_allowed() {
        for (allowed, error) in [
            (true, db_error(DatabaseErrorKind::UniqueViolation, "dup")),
            (
                false,
                db_error(DatabaseErrorKind::SerializationFailure, "x"),
            ),
        ] {
            let calls = Cell::new(0);
            let mut error = Some(error);
            let result: Result<(), _> = fast(5).run(
                allowed,
                || {
                    calls.set(calls.get() + 1);
                    Err(error.take().unwrap_or(DieselError::NotFound))
                },
                |_, _| {},
            );
            assert!(result.is_err());
            assert_eq!(calls.get(), 1);
        }
        let calls = Cell::new(0);
        let _: Result<(), _> = Retry::off().run(
            true,
            || {
                calls.set(calls.get() + 1);
                Err(db_error(DatabaseErrorKind::SerializationFailure, "x"))
            },
            |_, _| {},
        );
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn backoff_doubles_within_bounds_and_respects_total_time() {
        let retry = Retry::attempts(10)
            .initial_backoff(Duration::from_millis(10))
            .max_backoff(Duration::from_millis(50));
        for _ in 0..100 {
            let first = retry.delay(1);
            assert!(first >= Duration::from_millis(5) && first <= Duration::from_millis(10));
            let third = retry.delay(3);
            assert!(third >= Duration::from_millis(20) && third <= Duration::from_millis(40));
            assert!(retry.delay(30) <= Duration::from_millis(50));
        }
        let calls = Cell::new(0);
        let bounded = Retry::attempts(100)
            .initial_backoff(Duration::from_millis(20))
            .max_elapsed(Duration::from_millis(30));
        let _: Result<(), _> = bounded.run(
            true,
            || {
                calls.set(calls.get() + 1);
                Err(db_error(DatabaseErrorKind::SerializationFailure, "x"))
            },
            |_, _| {},
        );
        assert!(calls.get() <= 3, "{} attempts within 30 ms", calls.get());
    }
}
