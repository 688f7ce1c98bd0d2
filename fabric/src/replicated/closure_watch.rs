//! The host's side of the closure contract: beat the log's heartbeat word
//! so `tg-closure` can tell a hung host from a busy one, and watch the
//! closure's own word so the host can say whether a takeover is armed.
//!
//! Both words live in the log's control block (`docs/log-format.md`): the
//! closure records its pid when it arms (0 when it stands down) and ticks
//! its counter on every pass of its watch loop. A closure whose counter has
//! not moved for `closure_timeout` is dead or hung, and a host failure now
//! would lose the unshipped tail: the host reports takeover *disarmed*
//! (a warning in its log and [`crate::replicated::ReplicatedLog::takeover`]).

use std::fmt;
use std::time::{Duration, Instant};

/// Heartbeat settings of a host that has a closure (`closure:` in config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// How often the host bumps its heartbeat word (and looks at the
    /// closure's).
    pub every: Duration,
    /// How long the closure's counter may stay still before the host calls
    /// takeover disarmed (the config's `closure.heartbeat-timeout-ms`: the
    /// same bound the closure applies to the host).
    pub closure_timeout: Duration,
}

/// How long after opening the log the host waits for a closure to arm
/// before calling takeover disarmed (at least the closure timeout): a
/// closure arms only once the host runs, and arming connects to every
/// replica.
pub const ARM_GRACE: Duration = Duration::from_secs(10);

/// Whether a takeover would happen if the host failed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeoverReadiness {
    /// No closure is configured for this log (no heartbeat).
    NotConfigured,
    /// Waiting for a closure to arm (only within [`ARM_GRACE`], or the
    /// closure timeout if longer, of opening the log).
    Pending,
    /// A closure is armed and beating.
    Armed {
        /// Its pid.
        closure_pid: u32,
    },
    /// No live closure: a host failure now would not be taken over.
    Disarmed {
        /// Why, with what to do.
        reason: String,
    },
}

impl TakeoverReadiness {
    /// Whether this is [`TakeoverReadiness::Armed`].
    #[must_use]
    pub fn is_armed(&self) -> bool {
        matches!(self, TakeoverReadiness::Armed { .. })
    }

    fn same_kind(&self, other: &TakeoverReadiness) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl fmt::Display for TakeoverReadiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TakeoverReadiness::NotConfigured => {
                f.write_str("not configured (no `closure:` section)")
            }
            TakeoverReadiness::Pending => f.write_str("pending (waiting for tg-closure to arm)"),
            TakeoverReadiness::Armed { closure_pid } => {
                write!(f, "armed (tg-closure pid {closure_pid})")
            }
            TakeoverReadiness::Disarmed { reason } => write!(f, "disarmed: {reason}"),
        }
    }
}

/// Judges the closure from successive readings of its two words.
#[derive(Debug)]
pub(crate) struct ClosureWatch {
    timeout: Duration,
    grace: Duration,
    started: Instant,
    last: (u32, u64),
    last_change: Instant,
    state: TakeoverReadiness,
    /// A closure has armed since the log was opened: the grace is over.
    seen_armed: bool,
}

impl ClosureWatch {
    pub(crate) fn new(
        timeout: Duration,
        grace: Duration,
        now: Instant,
        pid: u32,
        beat: u64,
    ) -> Self {
        ClosureWatch {
            timeout,
            grace: grace.max(timeout),
            started: now,
            last: (pid, beat),
            last_change: now,
            state: TakeoverReadiness::Pending,
            seen_armed: false,
        }
    }

    /// Takes one reading; returns the new state when it changed kind.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        pid: u32,
        beat: u64,
    ) -> Option<&TakeoverReadiness> {
        if (pid, beat) != self.last {
            self.last = (pid, beat);
            self.last_change = now;
        }
        let still = now.saturating_duration_since(self.last_change);
        let grace = !self.seen_armed && now.saturating_duration_since(self.started) <= self.grace;
        let next = if pid != 0 && still <= self.timeout {
            self.seen_armed = true;
            TakeoverReadiness::Armed { closure_pid: pid }
        } else if grace {
            TakeoverReadiness::Pending
        } else if pid == 0 {
            TakeoverReadiness::Disarmed {
                reason: "no tg-closure is armed on this log: a host failure now loses the \
                         unshipped tail; start tg-closure (configs/tg-closure@.service)"
                    .into(),
            }
        } else {
            TakeoverReadiness::Disarmed {
                reason: format!(
                    "tg-closure (pid {pid}) has not beaten for {} ms (dead or hung): a host \
                     failure now loses the unshipped tail; restart tg-closure",
                    still.as_millis()
                ),
            }
        };
        let changed = !next.same_kind(&self.state)
            || matches!((&next, &self.state), (TakeoverReadiness::Armed { closure_pid: a }, TakeoverReadiness::Armed { closure_pid: b }) if a != b);
        self.state = next;
        changed.then_some(&self.state)
    }

    #[cfg(test)]
    fn state(&self) -> &TakeoverReadiness {
        &self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(500);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn pending_until_the_bound_then_disarmed_without_a_closure() {
        let t0 = Instant::now();
        let mut w = ClosureWatch::new(T, ms(2000), t0, 0, 0);
        assert_eq!(w.observe(t0 + ms(100), 0, 0), None);
        assert_eq!(w.observe(t0 + ms(1900), 0, 0), None);
        assert_eq!(w.state(), &TakeoverReadiness::Pending);
        let s = w.observe(t0 + ms(2100), 0, 0).cloned().unwrap();
        let TakeoverReadiness::Disarmed { reason } = s else {
            panic!("{s:?}")
        };
        assert!(reason.contains("no tg-closure is armed"), "{reason}");
        assert!(reason.contains("start tg-closure"), "{reason}");
    }

    #[test]
    fn armed_while_beating_disarmed_when_the_beat_stops_rearmed_by_a_new_closure() {
        let t0 = Instant::now();
        // A long grace: it ends when a closure arms, not when it runs out.
        let mut w = ClosureWatch::new(T, ms(60_000), t0, 0, 0);
        assert_eq!(
            w.observe(t0 + ms(50), 42, 1),
            Some(&TakeoverReadiness::Armed { closure_pid: 42 })
        );
        for i in 2..20 {
            assert_eq!(w.observe(t0 + ms(50 * i), 42, i), None);
        }
        assert!(w.state().is_armed());
        // The closure dies: its pid stays recorded, its counter stops.
        let last = t0 + ms(50 * 19);
        assert_eq!(w.observe(last + ms(400), 42, 19), None);
        let s = w.observe(last + ms(501), 42, 19).cloned().unwrap();
        let TakeoverReadiness::Disarmed { reason } = s else {
            panic!("{s:?}")
        };
        assert!(
            reason.contains("pid 42") && reason.contains("dead or hung"),
            "{reason}"
        );
        // A restarted closure arms again.
        assert_eq!(
            w.observe(last + ms(900), 77, 1),
            Some(&TakeoverReadiness::Armed { closure_pid: 77 })
        );
    }

    #[test]
    fn a_closure_that_stands_down_disarms_at_once() {
        let t0 = Instant::now() - ms(10_000);
        let mut w = ClosureWatch::new(T, ms(100), t0, 42, 5);
        let now = Instant::now();
        assert!(w
            .observe(now, 42, 6)
            .is_some_and(TakeoverReadiness::is_armed));
        let s = w.observe(now + ms(10), 0, 6).cloned().unwrap();
        assert!(matches!(s, TakeoverReadiness::Disarmed { .. }), "{s:?}");
    }
}
