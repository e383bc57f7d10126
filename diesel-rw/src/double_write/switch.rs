//! [`PatternSwitch`]: the current [`Pattern`], shared by every connection of a pool and switched
//! at run time.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use super::pattern::Pattern;
use crate::error::Error;
use crate::migrate::control::{ControlShared, ControlStatus};

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
///
/// **A switch kept in the database.** The switch of a [`Control`](crate::migrate::control::Control)
/// follows the phase stored in the control table, which every instance of the service reads:
/// it is stepped there ([`Fleet`](crate::migrate::control::Fleet), the `diesel-rw` CLI), and its
/// own `set`, `advance` and `retreat` are [`Error::PatternControlled`] (a local switch would
/// take this instance away from the fleet). [`control_status`](Self::control_status) says what
/// it last read.
#[derive(Clone)]
pub struct PatternSwitch {
    inner: Arc<Inner>,
}

struct Inner {
    current: AtomicU8,
    /// Set once when the switch is a [`Control`](crate::migrate::control::Control)'s.
    control: OnceLock<Arc<ControlShared>>,
}

impl PatternSwitch {
    /// A switch starting at `pattern`.
    pub fn new(pattern: Pattern) -> Self {
        PatternSwitch {
            inner: Arc::new(Inner {
                current: AtomicU8::new(pattern.to_u8()),
                control: OnceLock::new(),
            }),
        }
    }

    /// A switch at `pattern` that follows the control table through `control`.
    pub(crate) fn controlled(pattern: Pattern, control: Arc<ControlShared>) -> Self {
        let switch = PatternSwitch::new(pattern);
        let _ = switch.inner.control.set(control);
        switch
    }

    /// The current pattern.
    #[inline]
    pub fn get(&self) -> Pattern {
        Pattern::from_u8(self.inner.current.load(Ordering::Acquire))
    }

    /// Whether this switch follows a control table (see the type's docs).
    pub fn is_controlled(&self) -> bool {
        self.inner.control.get().is_some()
    }

    /// What the [`Control`](crate::migrate::control::Control) behind this switch last read
    /// from the control table; `None` for a switch of this process alone.
    pub fn control_status(&self) -> Option<ControlStatus> {
        self.inner.control.get().map(|c| c.status(self.get()))
    }

    /// `Ok` for a switch of this process alone; [`Error::PatternControlled`] for one that
    /// follows a control table.
    pub(crate) fn check_local(&self) -> Result<(), Error> {
        match self.inner.control.get() {
            None => Ok(()),
            Some(c) => Err(c.controlled_error()),
        }
    }

    /// Applies the phase read from the control table (any pattern: an instance that missed
    /// steps catches up at once).
    pub(crate) fn apply(&self, to: Pattern) -> Pattern {
        let from = Pattern::from_u8(self.inner.current.swap(to.to_u8(), Ordering::AcqRel));
        trace_switch(from, to, !from.can_switch_to(to));
        from
    }

    /// Switches to `to`, which must be the current pattern or one step away from it; returns the
    /// pattern it replaced. A skip is [`Error::InvalidTransition`] and changes nothing; on a
    /// switch that follows a control table, [`Error::PatternControlled`].
    pub fn set(&self, to: Pattern) -> Result<Pattern, Error> {
        self.check_local()?;
        let mut current = self.inner.current.load(Ordering::Acquire);
        loop {
            let from = Pattern::from_u8(current);
            if !from.can_switch_to(to) {
                return Err(Error::InvalidTransition { from, to });
            }
            match self.inner.current.compare_exchange_weak(
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
    /// pattern. At `DstOnly` this is [`Error::InvalidTransition`]; on a switch that follows a
    /// control table, [`Error::PatternControlled`].
    pub fn advance(&self) -> Result<Pattern, Error> {
        self.step(Pattern::next)
    }

    /// Moves one phase back; returns the new pattern. At `SrcOnly` this is
    /// [`Error::InvalidTransition`]; on a switch that follows a control table,
    /// [`Error::PatternControlled`].
    pub fn retreat(&self) -> Result<Pattern, Error> {
        self.step(Pattern::previous)
    }

    fn step(&self, direction: fn(Pattern) -> Option<Pattern>) -> Result<Pattern, Error> {
        self.check_local()?;
        let mut current = self.inner.current.load(Ordering::Acquire);
        loop {
            let from = Pattern::from_u8(current);
            let Some(to) = direction(from) else {
                return Err(Error::InvalidTransition { from, to: from });
            };
            match self.inner.current.compare_exchange_weak(
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
    /// current pattern (a gate), so that the check and the step see the same pattern. The
    /// caller checks [`check_local`](Self::check_local) first.
    pub(crate) fn replace(&self, from: Pattern, to: Pattern) -> bool {
        debug_assert!(from.can_switch_to(to), "{from} -> {to} skips a phase");
        let replaced = self
            .inner
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
    ///
    /// On a switch that follows a control table this changes nothing (the stored phase is the
    /// fleet's; force a step there: `Fleet` with a reason, `diesel-rw migrate advance --force`),
    /// is logged at ERROR level, and returns the current pattern.
    pub fn force(&self, to: Pattern) -> Pattern {
        if let Err(e) = self.check_local() {
            tracing::error!(target: "diesel_rw::double_write", %to, error = %e, "PatternSwitch::force on a switch that follows a control table: nothing switched");
            return self.get();
        }
        self.apply(to)
    }

    /// Whether `other` is a clone of this switch (the same shared state).
    pub fn same_as(&self, other: &PatternSwitch) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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
        let mut d = f.debug_struct("PatternSwitch");
        d.field("pattern", &self.get());
        if let Some(status) = self.control_status() {
            d.field("control", &status);
        }
        d.finish()
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
