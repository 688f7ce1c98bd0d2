//! The clock seam: every timeout, back-off and age in the writer is read
//! from a [`Clock`], so a simulator can run time at its own pace.

use std::fmt;
use std::time::{Duration, Instant};

/// Now and sleep. `Instant`s keep their meaning: a simulated clock returns
/// a fixed base plus simulated time.
pub trait Clock: Clone + Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Instant;
    /// Blocks the calling thread for `d` (a simulated clock advances).
    fn sleep(&self, d: Duration);
}

/// The start of a wait, taken at its first look instead of when it began:
/// a wait that is over before anyone looks reads no clock (a clock read
/// traps under emulation). Its age counts from that first look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FirstLook(Option<Instant>);

impl FirstLook {
    /// Not looked at yet.
    pub(crate) const fn new() -> Self {
        Self(None)
    }

    /// Time since the first look, as of `now` (zero at the first).
    pub(crate) fn since(&mut self, now: Instant) -> Duration {
        now - *self.0.get_or_insert(now)
    }

    /// Whether a look has been taken (tests prove no clock was read).
    #[cfg(test)]
    pub(crate) const fn taken(&self) -> bool {
        self.0.is_some()
    }
}

/// The operating system's monotonic clock (zero-sized).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OsClock;

impl Clock for OsClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}
