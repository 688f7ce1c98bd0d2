//! The commit path's wait: a position durable on `k` replicas.

use std::sync::Arc;
use std::time::Duration;

use crate::transport::{Clock, FirstLook, Transport};

use super::shipper::{Shipper, Step};
use super::{CommitError, Inner, ReplicaError};

/// How long a waiting committer sleeps at most before it looks again (a
/// ship's completion or a replica's return wakes it sooner).
const WAIT_SLICE: Duration = Duration::from_millis(1);
/// Passes of a waiting committer between two looks at the clock.
const CLOCK_EVERY_PASSES: u32 = 16;

/// The shipper a committer keeps polling (see [`Inner::replicate`]); gives
/// the role up when dropped.
struct Polling<'a, T: Transport>(Option<&'a Shipper<T>>);

impl<'a, T: Transport> Polling<'a, T> {
    /// Whether this committer polls `s`: it already does, or nobody does
    /// and it takes the role.
    fn claim(&mut self, s: &'a Shipper<T>) -> bool {
        match self.0 {
            Some(p) => std::ptr::eq(p, s),
            None => {
                let taken = s.claim_polling();
                if taken {
                    self.0 = Some(s);
                }
                taken
            }
        }
    }
}

impl<T: Transport> Drop for Polling<'_, T> {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.release_polling();
        }
    }
}

impl<T: Transport> Inner<T> {
    /// Makes `target` durable on `needed` replicas, waiting up to the
    /// commit timeout for replicas that are down to come back (the link
    /// manager reconnects them; a committer never does).
    ///
    /// Group commit: a replica whose published durable position covers
    /// `target` counts at once, lock-free. Otherwise the committer takes
    /// the replica's mirror for an instant ([`Shipper::step`]): it reaps
    /// the ships that completed and, if its record is not posted yet,
    /// posts everything persisted by then (covering every record appended
    /// before it). Under `apm` with several ships in flight, one waiting
    /// committer keeps polling (spinning for a hardware round trip's time,
    /// then yielding between polls) while the others sleep until a ship
    /// completes. Once `needed` replicas hold `target` the committer
    /// returns: the replicas the quorum does not need are not visited.
    /// Nothing is allocated unless the commit fails.
    pub(super) fn replicate(&self, target: u64, needed: usize) -> Result<(), CommitError> {
        let clock = self.transport.clock();
        // Looked at first by the first pass that falls short, not on entry:
        // a commit that its first pass makes durable reads no clock.
        let mut start = FirstLook::new();
        let mut spin = crate::verbs::Spin::new();
        let mut polling: Polling<'_, T> = Polling(None);
        // The last failure this committer's own ship caused (a value, not
        // read back from the shipper).
        let mut caused: Option<Arc<ReplicaError>> = None;
        let mut passes: u32 = 0;
        loop {
            // Lock-free first: what is already published.
            let mut acked = self
                .shippers
                .iter()
                .filter(|s| s.durable() >= target)
                .count();
            let mut wait_on = None;
            let mut down = 0;
            if acked < needed {
                let ship_to = self.log.persisted().pos.max(target);
                for s in self.shippers.iter().filter(|s| s.durable() < target) {
                    match s.step(target, ship_to, self.pipelined) {
                        Step::Durable(d) if d >= target => acked += 1,
                        Step::Durable(_) | Step::Busy => wait_on = wait_on.or(Some(s)),
                        Step::Down => down += 1,
                        Step::Failed(e) => {
                            // This committer's ship took the replica down:
                            // the manager reconnects it now.
                            self.manager.wake();
                            down += 1;
                            caused = Some(e);
                        }
                    }
                    if acked >= needed {
                        break;
                    }
                }
            }
            if acked >= needed {
                return Ok(());
            }
            // The clock is read every few passes only while ships are in
            // flight: under emulation without a TSC reading it traps.
            passes = passes.wrapping_add(1);
            let mut waited = Duration::ZERO;
            if wait_on.is_none() || passes.is_multiple_of(CLOCK_EVERY_PASSES) {
                waited = start.since(clock.now());
                if waited >= self.commit_timeout || self.hopeless(needed) {
                    drop(polling);
                    return Err(self.not_enough(target, needed, waited, caused));
                }
            }
            match wait_on {
                // Our record is in flight (ours or another committer's
                // ship) or the mirror is busy for an instant.
                Some(s) if self.pipelined && polling.claim(s) => spin.wait_once(),
                Some(s) if self.pipelined => s.await_ship(target, WAIT_SLICE, true),
                // The leader ships under the lock: poll the published
                // position for a round trip's time, then sleep until it
                // publishes.
                Some(_) if spin.is_spinning() => spin.wait_once(),
                Some(s) => s.await_ship(target, WAIT_SLICE, false),
                // Too few replicas up: the manager is reconnecting.
                None if down > 0 => clock.sleep(WAIT_SLICE.min(self.commit_timeout - waited)),
                None => spin.wait_once(),
            }
        }
    }

    /// Whether so many replicas refused this writer for good that `needed`
    /// can never be reached.
    fn hopeless(&self, needed: usize) -> bool {
        let permanent = self
            .shippers
            .iter()
            .filter(|s| !s.is_up() && s.last_error().is_permanent())
            .count();
        self.shippers.len() - permanent < needed
    }

    fn not_enough(
        &self,
        target: u64,
        needed: usize,
        waited: Duration,
        caused: Option<Arc<ReplicaError>>,
    ) -> CommitError {
        let behind = self.shippers.iter().filter(|s| s.durable() < target);
        let mut failures: Vec<Arc<ReplicaError>> = behind
            .map(|s| {
                if s.is_up() {
                    Arc::new(ReplicaError::Slow {
                        replica: s.spec.name.clone(),
                        durable: s.durable(),
                        target,
                    })
                } else {
                    s.last_error()
                }
            })
            .collect();
        let acked = self.shippers.len() - failures.len();
        if let Some(e) = caused.filter(|e| !failures.iter().any(|f| Arc::ptr_eq(f, e))) {
            // The replica failed under this commit and failed again since.
            failures.push(e);
        }
        CommitError::NotEnoughAcks {
            needed,
            acked,
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            failures,
        }
    }
}
