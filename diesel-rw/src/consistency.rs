//! Read-your-writes: how long reads stick to the primary after a write.
//!
//! A replica lags behind the primary. After a connection writes, a read on a replica may not
//! see the write yet. [`Consistency`] says for how long reads of that connection stay on the
//! primary:
//!
//! | mode | reads after a write go to | guarantees | costs |
//! |---|---|---|---|
//! | [`Off`](Consistency::Off) | replicas at once | nothing: a read may miss the write | nothing |
//! | [`UnitOfWork`](Consistency::UnitOfWork) (default) | the primary, for the rest of the connection's checkout | read-your-writes within one checkout | reads after the first write load the primary |
//! | [`Window(d)`](Consistency::Window) | the primary for `d` after the last write, then replicas | read-your-writes only if replication lag < `d` | as `UnitOfWork` for `d` |

use std::time::{Duration, Instant};

/// How long reads stick to the primary after a write on the same connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// No stickiness: reads go to replicas right after a write and may miss it.
    Off,
    /// After a write, every read of this connection (one checkout from the pool) goes to the
    /// primary. The default: correct whatever the replication lag.
    #[default]
    UnitOfWork,
    /// After a write, reads go to the primary for this long, then to replicas again. Correct
    /// only while replication lag stays below the window.
    Window(Duration),
}

/// The writes a connection has made, as far as stickiness needs to know.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sticky {
    last_write: Option<Instant>,
}

impl Sticky {
    /// Records a write now.
    pub(crate) fn record_write(&mut self) {
        self.last_write = Some(Instant::now());
    }

    /// Whether this connection has written.
    pub(crate) fn has_written(&self) -> bool {
        self.last_write.is_some()
    }

    /// Whether reads must stay on the primary now. Reads the clock only in `Window` mode after
    /// a write.
    pub(crate) fn is_sticky(&self, consistency: Consistency) -> bool {
        match (consistency, self.last_write) {
            (_, None) | (Consistency::Off, _) => false,
            (Consistency::UnitOfWork, Some(_)) => true,
            (Consistency::Window(window), Some(at)) => at.elapsed() < window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_expires() {
        let mut s = Sticky::default();
        assert!(!s.is_sticky(Consistency::Window(Duration::from_millis(20))));
        s.record_write();
        assert!(s.is_sticky(Consistency::Window(Duration::from_millis(20))));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!s.is_sticky(Consistency::Window(Duration::from_millis(20))));
        assert!(s.is_sticky(Consistency::UnitOfWork));
        assert!(!s.is_sticky(Consistency::Off));
    }
}
