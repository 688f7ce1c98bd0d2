//! At most one log line per interval for what a peer can repeat at will
//! (a refused or broken connection), so that no peer can fill the journal.
//! The line that is let through says how many were held back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate limit for one kind of log line.
#[derive(Debug)]
pub(super) struct Throttle {
    every: Duration,
    /// When the last line went out, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// At most one line per `every`.
    pub(super) const fn new(every: Duration) -> Self {
        Throttle {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held back since the last line)` if a line may go out at
    /// `now`; `None` (and one more held back) if not.
    pub(super) fn pass(&self, now: Instant) -> Option<u64> {
        let mut s = super::lock(&self.state);
        let (last, held) = &mut *s;
        if last.is_some_and(|l| now.saturating_duration_since(l) < self.every) {
            *held += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_logs_once_per_interval_and_counts_the_rest() {
        let t = Throttle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(t.pass(t0), Some(0));
        for i in 1..=20_000u64 {
            assert_eq!(t.pass(t0 + Duration::from_micros(i * 40)), None);
        }
        // 0.8 s of burst held back; the next second lets one through.
        assert_eq!(t.pass(t0 + Duration::from_millis(1000)), Some(20_000));
        assert_eq!(t.pass(t0 + Duration::from_millis(1500)), None);
        assert_eq!(t.pass(t0 + Duration::from_millis(2100)), Some(1));
    }
}
