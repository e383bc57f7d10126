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
//! | [`Causal`](Consistency::Causal) | a replica that has replayed the write, else the primary | read-your-writes whatever the lag | one query per write for the primary's position; reads cost nothing extra while the lag monitor runs |
//!
//! `Causal` records the primary's replication position after each write (PostgreSQL: the WAL
//! insert LSN; MariaDB: the session's last GTID) in a [`WriteToken`], and a later read goes to a
//! replica only once that replica's replayed position has reached it. The token can be carried
//! to another connection, request or job ([`RwConnection::write_token`](crate::RwConnection::write_token),
//! [`RwPool::get_after`](crate::RwPool::get_after)). On a backend without positions (SQLite),
//! `Causal` behaves as `UnitOfWork`.

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
    /// After a write, reads go to a replica only once it has replayed the write (by replication
    /// position), else to the primary (or wait, see
    /// [`RwPoolBuilder::causal_wait`](crate::RwPoolBuilder::causal_wait)).
    Causal,
}

/// A position in the primary's replication stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Position {
    /// A PostgreSQL WAL location (`pg_lsn`), as a byte offset.
    Lsn(u64),
    /// A MariaDB GTID set: per replication domain, the highest sequence number.
    Gtid(Vec<GtidPosition>),
}

/// One replication domain's position in a MariaDB GTID set (`domain-server-sequence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GtidPosition {
    /// The replication domain.
    pub domain: u32,
    /// The server that wrote the transaction.
    pub server: u32,
    /// The sequence number within the domain.
    pub sequence: u64,
}

impl Position {
    /// Parses a PostgreSQL `pg_lsn` text such as `16/B374D848`.
    pub fn parse_lsn(text: &str) -> Option<Position> {
        let (hi, lo) = text.trim().split_once('/')?;
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        (hi <= u64::from(u32::MAX) && lo <= u64::from(u32::MAX))
            .then_some(Position::Lsn((hi << 32) | lo))
    }

    /// Parses a MariaDB GTID list such as `0-1-42,1-2-7` (empty: no transaction yet).
    pub fn parse_gtid(text: &str) -> Option<Position> {
        let mut set = Vec::new();
        for gtid in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let mut parts = gtid.splitn(3, '-');
            let domain = parts.next()?.parse().ok()?;
            let server = parts.next()?.parse().ok()?;
            let sequence = parts.next()?.parse().ok()?;
            set.push(GtidPosition {
                domain,
                server,
                sequence,
            });
        }
        Some(Position::Gtid(set))
    }

    /// Whether a replica at `self` has replayed everything up to `target`.
    pub fn has_reached(&self, target: &Position) -> bool {
        match (self, target) {
            (Position::Lsn(a), Position::Lsn(b)) => a >= b,
            (Position::Gtid(have), Position::Gtid(want)) => want.iter().all(|w| {
                have.iter()
                    .any(|h| h.domain == w.domain && h.sequence >= w.sequence)
            }),
            _ => false,
        }
    }

    /// How far `self` is behind `newer`: bytes of WAL, or transactions summed over GTID domains.
    pub fn distance_to(&self, newer: &Position) -> u64 {
        match (self, newer) {
            (Position::Lsn(a), Position::Lsn(b)) => b.saturating_sub(*a),
            (Position::Gtid(have), Position::Gtid(want)) => want
                .iter()
                .map(|w| {
                    let h = have
                        .iter()
                        .find(|h| h.domain == w.domain)
                        .map_or(0, |h| h.sequence);
                    w.sequence.saturating_sub(h)
                })
                .sum(),
            _ => u64::MAX,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Lsn(lsn) => write!(f, "{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF),
            Position::Gtid(set) => {
                for (i, g) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}-{}-{}", g.domain, g.server, g.sequence)?;
                }
                Ok(())
            }
        }
    }
}

/// Proof of a write, for reading it back elsewhere: the primary's replication position right
/// after the write committed.
///
/// Get one with [`RwConnection::write_token`](crate::RwConnection::write_token) after a write;
/// hand it to [`RwPool::get_after`](crate::RwPool::get_after) in another request or job (with the
/// `serde` feature it serializes, e.g. into a session cookie or a job payload): that connection
/// reads from a replica only once the replica has replayed the write.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WriteToken {
    position: Position,
}

impl WriteToken {
    /// A token for a write at `position`.
    pub fn new(position: Position) -> Self {
        WriteToken { position }
    }

    /// The primary's position right after the write.
    pub fn position(&self) -> &Position {
        &self.position
    }
}

/// The writes a connection has made, as far as stickiness needs to know.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sticky {
    /// Whether this connection has written (or adopted a write).
    written: bool,
    /// When, if the consistency is `Window` (the only one that needs the clock).
    last_write: Option<Instant>,
    token: Option<WriteToken>,
    /// A write whose position is not known yet (recorded when the write is routed; its position
    /// is read after it commits).
    pending: bool,
}

impl Sticky {
    /// Records a write now. Reads the clock only for `Window`.
    pub(crate) fn record_write(&mut self, consistency: Consistency) {
        self.written = true;
        if let Consistency::Window(_) = consistency {
            self.last_write = Some(Instant::now());
        }
        self.pending = true;
    }

    /// Records the primary's position after the pending writes committed.
    pub(crate) fn record_position(&mut self, position: Option<Position>) {
        self.pending = false;
        match (position, &mut self.token) {
            (Some(p), Some(t)) if !t.position.has_reached(&p) => t.position = p,
            (Some(p), None) => self.token = Some(WriteToken::new(p)),
            (Some(_), Some(_)) => {}
            // Unknown position: reads stay on the primary (`is_sticky` sees no token).
            (None, _) => self.token = None,
        }
    }

    /// Starts from another connection's write.
    pub(crate) fn adopt(&mut self, token: WriteToken) {
        self.written = true;
        self.last_write = Some(Instant::now());
        self.pending = false;
        self.token = Some(token);
    }

    /// Whether a write's position still has to be read.
    pub(crate) fn pending(&self) -> bool {
        self.pending
    }

    /// The position reads must see, in `Causal` mode.
    pub(crate) fn token(&self) -> Option<&WriteToken> {
        self.token.as_ref()
    }

    /// Whether this connection has written.
    pub(crate) fn has_written(&self) -> bool {
        self.written
    }

    /// Whether reads must stay on the primary now. Reads the clock only in `Window` mode after
    /// a write.
    pub(crate) fn is_sticky(&self, consistency: Consistency) -> bool {
        if !self.written {
            return false;
        }
        match consistency {
            Consistency::Off => false,
            Consistency::UnitOfWork => true,
            Consistency::Window(window) => self.last_write.is_some_and(|at| at.elapsed() < window),
            // With a token, reads may go to a replica that has reached it (decided by the
            // caller); without one (position unknown), they stay on the primary.
            Consistency::Causal => self.token.is_none() || self.pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_compare_and_print() {
        let a = Position::parse_lsn("0/3001E10").unwrap();
        let b = Position::parse_lsn("0/3001EB8").unwrap();
        assert!(b.has_reached(&a) && !a.has_reached(&b));
        assert_eq!(a.distance_to(&b), 0xA8);
        assert_eq!(b.to_string(), "0/3001EB8");
        assert_eq!(
            Position::parse_lsn("16/B374D848").unwrap().to_string(),
            "16/B374D848"
        );
        assert!(Position::parse_lsn("nope").is_none());
        let g = Position::parse_gtid("0-1-42,1-2-7").unwrap();
        let h = Position::parse_gtid("0-1-40").unwrap();
        assert!(g.has_reached(&h) && !h.has_reached(&g));
        assert_eq!(h.distance_to(&g), 2 + 7);
        assert_eq!(g.to_string(), "0-1-42,1-2-7");
        assert_eq!(Position::parse_gtid("").unwrap(), Position::Gtid(vec![]));
        assert!(
            !a.has_reached(&g),
            "different kinds never compare as reached"
        );
    }

    #[test]
    fn causal_sticks_until_the_position_is_known() {
        let mut s = Sticky::default();
        assert!(!s.is_sticky(Consistency::Causal));
        s.record_write(Consistency::Causal);
        assert!(s.is_sticky(Consistency::Causal), "position not read yet");
        s.record_position(Some(Position::Lsn(10)));
        assert!(!s.is_sticky(Consistency::Causal));
        assert_eq!(s.token().unwrap().position(), &Position::Lsn(10));
        s.record_write(Consistency::Causal);
        s.record_position(None);
        assert!(
            s.is_sticky(Consistency::Causal),
            "unknown position: primary"
        );
    }

    #[test]
    fn window_expires() {
        let mut s = Sticky::default();
        assert!(!s.is_sticky(Consistency::Window(Duration::from_millis(20))));
        s.record_write(Consistency::Window(Duration::from_millis(20)));
        assert!(s.is_sticky(Consistency::Window(Duration::from_millis(20))));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!s.is_sticky(Consistency::Window(Duration::from_millis(20))));
        assert!(s.is_sticky(Consistency::UnitOfWork));
        assert!(!s.is_sticky(Consistency::Off));
    }
}
