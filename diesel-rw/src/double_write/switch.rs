//! [`PatternSwitch`]: the current [`Pattern`], shared by every connection of a pool and switched
//! at run time.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::pattern::Pattern;
use crate::error::Error;

/// The current [`Pattern`] of a migration, shared by every connection that holds a clone.
///
/// Reading it is one atomic load, done by each connection at each statement (and at each
/// transaction's `BEGIN`), so a switch is seen by every connection at its next statement. An open
/// transaction keeps the pattern it began with until it ends.
///
/// A switch moves one step at a time along `SrcOnly <-> SrcFirst <-> DstFirst <-> DstOnly`;
/// skipping a phase is [`Error::InvalidTransition`] unless [`force`](Self::force)d. Every switch
/// is a `tracing` event at INFO level (target `diesel_rw::double_write`).
///
/// ```
/// use diesel_rw::double_write::{Pattern, PatternSwitch};
///
/// let switch = PatternSwitch::new(Pattern::SrcOnly);
/// let seen_by_a_connection = switch.clone();
/// assert_eq!(switch.advance().unwrap(), Pattern::SrcFirst);
/// assert_eq!(seen_by_a_connection.get(), Pattern::SrcFirst);
/// assert!(switch.set(Pattern::DstOnly).is_err()); // skips DstFirst
/// switch.retreat().unwrap();
/// assert_eq!(switch.get(), Pattern::SrcOnly);
/// ```
#[derive(Clone)]
pub struct PatternSwitch {
    current: Arc<AtomicU8>,
}

impl PatternSwitch {
    /// A switch starting at `pattern`.
    pub fn new(pattern: Pattern) -> Self {
        PatternSwitch {
            current: Arc::new(AtomicU8::new(pattern.to_u8())),
        }
    }

    /// The current pattern.
    #[inline]
    pub fn get(&self) -> Pattern {
        Pattern::from_u8(self.current.load(Ordering::Acquire))
    }

    /// Switches to `to`, which must be the current pattern or one step away from it; returns the
    /// pattern it replaced. A skip is [`Error::InvalidTransition`] and changes nothing.
    pub fn set(&self, to: Pattern) -> Result<Pattern, Error> {
        let mut current = self.current.load(Ordering::Acquire);
        loop {
            let from = Pattern::from_u8(current);
            if !from.can_switch_to(to) {
                return Err(Error::InvalidTransition { from, to });
            }
            match self.current.compare_exchange_weak(
                current,
                to.to_u8(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    trace_switch(from, to, false);
                    return Ok(from);
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Moves one phase forward (`SrcOnly -> SrcFirst -> DstFirst -> DstOnly`); returns the new
    /// pattern. At `DstOnly` this is [`Error::InvalidTransition`].
    pub fn advance(&self) -> Result<Pattern, Error> {
        self.step(Pattern::next)
    }

    /// Moves one phase back; returns the new pattern. At `SrcOnly` this is
    /// [`Error::InvalidTransition`].
    pub fn retreat(&self) -> Result<Pattern, Error> {
        self.step(Pattern::previous)
    }

    fn step(&self, direction: fn(Pattern) -> Option<Pattern>) -> Result<Pattern, Error> {
        let mut current = self.current.load(Ordering::Acquire);
        loop {
            let from = Pattern::from_u8(current);
            let Some(to) = direction(from) else {
                return Err(Error::InvalidTransition { from, to: from });
            };
            match self.current.compare_exchange_weak(
                current,
                to.to_u8(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    trace_switch(from, to, false);
                    return Ok(to);
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Switches from `from` to `to` only if the current pattern is still `from`: `false`, and
    /// nothing switched, if another switch came first. For a step taken after a check of the
    /// current pattern (a gate), so that the check and the step see the same pattern.
    pub(crate) fn replace(&self, from: Pattern, to: Pattern) -> bool {
        debug_assert!(from.can_switch_to(to), "{from} -> {to} skips a phase");
        let replaced = self
            .current
            .compare_exchange(
                from.to_u8(),
                to.to_u8(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if replaced {
            trace_switch(from, to, false);
        }
        replaced
    }

    /// Switches to `to` whatever the current pattern is (for recovery by an operator who knows
    /// why a phase may be skipped); returns the pattern it replaced. Logged at WARN level when
    /// it skips a phase.
    pub fn force(&self, to: Pattern) -> Pattern {
        let from = Pattern::from_u8(self.current.swap(to.to_u8(), Ordering::AcqRel));
        trace_switch(from, to, !from.can_switch_to(to));
        from
    }

    /// Whether `other` is a clone of this switch (the same shared state).
    pub fn same_as(&self, other: &PatternSwitch) -> bool {
        Arc::ptr_eq(&self.current, &other.current)
    }
}

impl Default for PatternSwitch {
    /// A switch at [`Pattern::SrcOnly`].
    fn default() -> Self {
        PatternSwitch::new(Pattern::SrcOnly)
    }
}

impl From<Pattern> for PatternSwitch {
    fn from(pattern: Pattern) -> Self {
        PatternSwitch::new(pattern)
    }
}

impl fmt::Debug for PatternSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PatternSwitch").field(&self.get()).finish()
    }
}

fn trace_switch(from: Pattern, to: Pattern, skipped: bool) {
    if from == to {
        return;
    }
    if skipped {
        tracing::warn!(target: "diesel_rw::double_write", %from, %to, "double-write pattern forced, skipping a phase");
    } else {
        tracing::info!(target: "diesel_rw::double_write", %from, %to, "double-write pattern switched");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_all_phases_and_back() {
        let switch = PatternSwitch::new(Pattern::SrcOnly);
        assert_eq!(switch.advance().unwrap(), Pattern::SrcFirst);
        assert_eq!(switch.advance().unwrap(), Pattern::DstFirst);
        assert_eq!(switch.advance().unwrap(), Pattern::DstOnly);
        assert!(matches!(
            switch.advance(),
            Err(Error::InvalidTransition {
                from: Pattern::DstOnly,
                ..
            })
        ));
        assert_eq!(switch.retreat().unwrap(), Pattern::DstFirst);
        assert_eq!(switch.retreat().unwrap(), Pattern::SrcFirst);
        assert_eq!(switch.retreat().unwrap(), Pattern::SrcOnly);
        assert!(switch.retreat().is_err());
        assert_eq!(switch.get(), Pattern::SrcOnly);
    }

    #[test]
    fn skips_are_rejected_unless_forced() {
        let switch = PatternSwitch::new(Pattern::SrcOnly);
        let err = switch.set(Pattern::DstFirst).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidTransition {
                from: Pattern::SrcOnly,
                to: Pattern::DstFirst
            }
        ));
        assert_eq!(switch.get(), Pattern::SrcOnly);
        assert_eq!(switch.set(Pattern::SrcOnly).unwrap(), Pattern::SrcOnly);
        assert_eq!(switch.force(Pattern::DstOnly), Pattern::SrcOnly);
        assert_eq!(switch.get(), Pattern::DstOnly);
    }

    #[test]
    fn replace_switches_only_from_the_pattern_it_names() {
        let switch = PatternSwitch::new(Pattern::SrcFirst);
        assert!(!switch.replace(Pattern::SrcOnly, Pattern::SrcFirst));
        assert_eq!(switch.get(), Pattern::SrcFirst);
        assert!(switch.replace(Pattern::SrcFirst, Pattern::DstFirst));
        assert_eq!(switch.get(), Pattern::DstFirst);
        assert!(!switch.replace(Pattern::SrcFirst, Pattern::DstFirst));
        assert_eq!(switch.get(), Pattern::DstFirst);
    }

    #[test]
    fn clones_share_the_pattern() {
        let a = PatternSwitch::new(Pattern::SrcFirst);
        let b = a.clone();
        assert!(a.same_as(&b));
        assert!(!a.same_as(&PatternSwitch::default()));
        b.advance().unwrap();
        assert_eq!(a.get(), Pattern::DstFirst);
    }
}
