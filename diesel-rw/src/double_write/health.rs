//! [`HealthReport`]: the result of pinging both sides.

use std::fmt;
use std::time::Duration;

use super::pattern::Side;

/// Whether each side answered a ping, from
/// [`DoubleWriteConnection::health_check`](super::DoubleWriteConnection::health_check) or
/// [`DoubleWrite::health_check`](super::DoubleWrite::health_check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// The source's answer.
    pub source: SideHealth,
    /// The destination's answer (`None` if no destination is configured).
    pub destination: Option<SideHealth>,
}

/// One side's answer to a ping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SideHealth {
    /// The side.
    pub side: Side,
    /// Its URL, password redacted.
    pub node: String,
    /// How long the ping took (connecting included, if it had to connect), or why it failed.
    pub result: Result<Duration, String>,
}

impl HealthReport {
    /// Whether every configured side answered.
    pub fn is_healthy(&self) -> bool {
        self.failed().is_empty()
    }

    /// The sides that did not answer.
    pub fn failed(&self) -> Vec<Side> {
        self.sides()
            .filter(|s| s.result.is_err())
            .map(|s| s.side)
            .collect()
    }

    /// One side's answer.
    pub fn side(&self, side: Side) -> Option<&SideHealth> {
        self.sides().find(|s| s.side == side)
    }

    fn sides(&self) -> impl Iterator<Item = &SideHealth> {
        std::iter::once(&self.source).chain(self.destination.as_ref())
    }
}

impl fmt::Display for SideHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(took) => write!(f, "{} `{}`: up ({took:?})", self.side, self.node),
            Err(error) => write!(f, "{} `{}`: DOWN: {error}", self.side, self.node),
        }
    }
}

impl fmt::Display for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        match &self.destination {
            Some(destination) => write!(f, "; {destination}"),
            None => f.write_str("; no destination configured"),
        }
    }
}
