//! [`Spin`]: how a thread waits for a completion it expects soon.

use std::time::Instant;

use super::SPIN_BEFORE_YIELD;

/// Empty polls between two clock reads: on emulated machines without a
/// TSC clocksource reading the clock traps, so it is read sparingly.
const POLLS_PER_CLOCK_READ: u32 = 16;

/// Spin for about [`SPIN_BEFORE_YIELD`], then yield on every pause.
#[derive(Debug)]
pub struct Spin {
    start: Option<Instant>,
    pauses: u32,
    yielding: bool,
}

impl Default for Spin {
    fn default() -> Self {
        Self::new()
    }
}

impl Spin {
    /// A fresh waiter (the clock is first read at the first pause).
    #[must_use]
    pub fn new() -> Self {
        Spin {
            start: None,
            pauses: 0,
            yielding: false,
        }
    }

    /// Whether the next pauses still spin (the first round trip's time).
    #[must_use]
    pub fn is_spinning(&self) -> bool {
        !self.yielding
    }

    /// One pause between two polls.
    pub fn pause(&mut self) {
        if self.yielding {
            std::thread::yield_now();
            return;
        }
        self.pauses = self.pauses.wrapping_add(1);
        if self.pauses.is_multiple_of(POLLS_PER_CLOCK_READ) || self.start.is_none() {
            let now = Instant::now();
            let start = *self.start.get_or_insert(now);
            self.yielding = now - start >= SPIN_BEFORE_YIELD;
        }
        std::hint::spin_loop();
    }
}
