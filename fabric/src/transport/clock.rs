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
