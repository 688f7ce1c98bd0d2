//! Waiting between two polls that found nothing: spin for about a hardware
//! round trip, then yield the CPU.

use std::time::{Duration, Instant};

use crate::transport::FirstLook;

/// Completion polling spins this long, then yields the CPU between polls.
/// On hardware a completion arrives well within it (a few µs); with more
/// pollers than cores, or a software device (rxe) that completes requests
/// on the same CPUs, yielding lets the work that completes them run.
pub const SPIN_BEFORE_YIELD: Duration = Duration::from_micros(20);

/// While spinning, the clock is read once every this many waits. A clock
/// read is a few nanoseconds on hardware but traps into the hypervisor under
/// emulation (QEMU TCG), where it costs more than the poll it paces; a poll
/// takes at least ~50 ns, so 16 of them overshoot [`SPIN_BEFORE_YIELD`] by
/// about 1 µs on hardware, and by a few polls under emulation.
const CLOCK_EVERY: u32 = 16;

/// The wait between two empty polls of one polling loop: [`Self::wait_once`]
/// spins (a `spin_loop` hint) until [`SPIN_BEFORE_YIELD`] has passed since
/// the first wait, then yields the thread on every call.
///
/// The clock is not read at all before the 16th wait (most completions on
/// hardware arrive sooner; clock reads trap under emulation), and then only
/// every 16th wait while spinning; the spin is timed from that first read,
/// so it lasts 16 spin hints longer than [`SPIN_BEFORE_YIELD`]. Once
/// yielding, the clock is read on every wait (a yield is a system call
/// anyway), so a deadline checked against [`Self::waited`] is seen within
/// one yield of passing.
///
/// ```no_run
/// # fn poll() -> bool { true }
/// let mut spin = fabric::verbs::Spin::new();
/// while !poll() {
///     spin.wait_once();
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Spin {
    /// The first clock read (at the 16th wait); not taken before it.
    start: FirstLook,
    /// Time since `start` at the latest clock read.
    waited: Duration,
    /// Waits so far.
    waits: u32,
    /// Whether [`SPIN_BEFORE_YIELD`] has passed (then every wait yields).
    yielding: bool,
}

impl Spin {
    /// A wait that has not started: no clock read until the 16th
    /// [`Self::wait_once`].
    #[must_use]
    pub const fn new() -> Self {
        Spin {
            start: FirstLook::new(),
            waited: Duration::ZERO,
            waits: 0,
            yielding: false,
        }
    }

    /// Waits once between two polls: a spin-loop hint during the first
    /// [`SPIN_BEFORE_YIELD`], a `yield_now` after it.
    pub fn wait_once(&mut self) {
        self.waits = self.waits.wrapping_add(1);
        if self.yielding || self.waits.is_multiple_of(CLOCK_EVERY) {
            self.waited = self.start.since(Instant::now());
            self.yielding = self.waited >= SPIN_BEFORE_YIELD;
        }
        if self.yielding {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }

    /// Whether the waits still spin (the first round trip's time).
    #[must_use]
    pub fn is_spinning(&self) -> bool {
        !self.yielding
    }

    /// How long this wait has lasted since its first clock read, as of the
    /// latest one (zero before the 16th [`Self::wait_once`]). It lags the
    /// true time by up to 32 spins while spinning and one yield after.
    #[must_use]
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_clock_read_before_the_sixteenth_wait() {
        let mut spin = Spin::new();
        for _ in 1..CLOCK_EVERY {
            spin.wait_once();
        }
        assert!(!spin.start.taken(), "a clock read before the 16th wait");
        assert_eq!(spin.waited(), Duration::ZERO);
        spin.wait_once();
        assert!(spin.start.taken(), "the 16th wait starts the clock");
    }

    #[test]
    fn spins_first_then_yields_and_tracks_the_time_waited() {
        let mut spin = Spin::new();
        spin.wait_once();
        assert!(!spin.yielding, "the first waits spin");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !spin.yielding {
            assert!(Instant::now() < deadline, "never started to yield");
            spin.wait_once();
        }
        assert!(spin.waited() >= SPIN_BEFORE_YIELD);
        // Once yielding, every wait reads the clock: `waited` moves on.
        let before = spin.waited();
        std::thread::sleep(Duration::from_millis(2));
        spin.wait_once();
        assert!(spin.waited() >= before + Duration::from_millis(2));
    }
}
