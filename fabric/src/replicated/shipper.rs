//! [`Shipper`]: one replica as the commit path sees it.
//!
//! A shipper owns the replica's [`Mirror`] (under a lock committers only
//! ever `try_lock`) and publishes exactly one durable position, an atomic
//! every committer reads without the lock. The link manager installs a
//! mirror once it has connected and takes it away when the replica stops
//! answering; a committer whose ship fails takes it away itself and gets
//! the error as a value. A committer never connects, never talks on the
//! control channel and never waits for a lock it did not get.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use crate::mirror::Mirror;
use crate::transport::Transport;

use super::{ReplicaError, ReplicaSpec};

type MirrorOf<T> = Mirror<<T as Transport>::Path, <T as Transport>::Clock>;

/// What one step toward a durable position found.
#[derive(Debug)]
pub(crate) enum Step {
    /// The replica is durable up to here (perhaps still short of the
    /// target: ships are in flight).
    Durable(u64),
    /// Another committer holds the mirror for an instant.
    Busy,
    /// The replica was down (why).
    Down,
    /// This step's ship failed and took the replica down: the error, as a
    /// value, for the committer that caused it.
    Failed(Arc<ReplicaError>),
}

/// One replica: its mirror, its published durable position, and what
/// committers waiting for it sleep on.
pub(crate) struct Shipper<T: Transport> {
    pub(crate) spec: ReplicaSpec,
    /// `None` while the replica is down.
    mirror: Mutex<Option<MirrorOf<T>>>,
    /// The published durable position: written only under the mirror lock
    /// (or by the manager installing a mirror), read by everyone.
    durable: AtomicU64,
    /// Whether a mirror is installed (readable without the lock).
    up: AtomicBool,
    /// Which replica region the installed mirror reaches (the link
    /// manager's: it refuses a second entry reaching the same one).
    region: Mutex<Option<crate::transport::RegionId>>,
    /// Why the replica is down (the last failure), for committers that
    /// find it down and for status.
    down: Mutex<Arc<ReplicaError>>,
    /// Committers waiting for a ship sleep here; whoever publishes wakes
    /// them.
    shipped: Condvar,
    shipped_lock: Mutex<()>,
    waiters: AtomicUsize,
    /// A committer keeps polling this replica's ships in flight (at most
    /// one does; the others sleep until a ship completes).
    polled: AtomicBool,
    /// The replica's head at its last status (the manager's): the ring may
    /// be reclaimed up to here.
    pub(crate) status_head: AtomicU64,
    pub(crate) ships: AtomicU64,
    /// Log bytes posted (the ranges of the ships).
    pub(crate) shipped_bytes: AtomicU64,
    pub(crate) connects: AtomicU64,
    /// Connection attempts that failed (the manager's).
    pub(crate) failed_connects: AtomicU64,
}

fn relock<G>(r: Result<G, PoisonError<G>>) -> G {
    // A panic while shipping leaves a mirror whose state is still
    // consistent (positions move only after completions).
    r.unwrap_or_else(PoisonError::into_inner)
}

impl<T: Transport> Shipper<T> {
    pub(crate) fn new(spec: ReplicaSpec) -> Self {
        let down = Arc::new(ReplicaError::NotConnected {
            replica: spec.name.clone(),
        });
        Shipper {
            spec,
            mirror: Mutex::new(None),
            durable: AtomicU64::new(0),
            up: AtomicBool::new(false),
            region: Mutex::new(None),
            down: Mutex::new(down),
            shipped: Condvar::new(),
            shipped_lock: Mutex::new(()),
            waiters: AtomicUsize::new(0),
            polled: AtomicBool::new(false),
            status_head: AtomicU64::new(0),
            ships: AtomicU64::new(0),
            shipped_bytes: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            failed_connects: AtomicU64::new(0),
        }
    }

    /// The published durable position.
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Why the replica is down (meaningful while it is).
    pub(crate) fn last_error(&self) -> Arc<ReplicaError> {
        Arc::clone(&*relock(self.down.lock()))
    }

    /// How far this replica lets the writer reclaim: below both what it
    /// holds durably and what it still keeps intact.
    pub(crate) fn reclaim_floor(&self) -> u64 {
        self.durable().min(self.status_head.load(Ordering::Acquire))
    }

    /// One step toward `target` durable, without ever blocking on the lock:
    /// reaps the ships that completed and, if `target` is not posted yet,
    /// posts everything up to `ship_to` (group commit). `pipelined`: post
    /// and return (several ships in flight, `apm`); otherwise ship and wait
    /// under the lock (the leader), while the others wait for the
    /// published position.
    pub(crate) fn step(&self, target: u64, ship_to: u64, pipelined: bool) -> Step {
        let d = self.durable();
        if d >= target {
            return Step::Durable(d);
        }
        let mut slot = match self.mirror.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Step::Busy,
        };
        let Some(mirror) = slot.as_mut() else {
            return Step::Down;
        };
        let r = if pipelined {
            mirror.reap().and_then(|d| {
                if d < target && mirror.posted() < target && mirror.can_post() {
                    self.ships.fetch_add(1, Ordering::Relaxed);
                    self.shipped_bytes
                        .fetch_add(ship_to.saturating_sub(mirror.posted()), Ordering::Relaxed);
                    mirror.post(ship_to)?;
                }
                Ok(mirror.durable())
            })
        } else {
            if ship_to > mirror.posted() {
                self.ships.fetch_add(1, Ordering::Relaxed);
                self.shipped_bytes
                    .fetch_add(ship_to - mirror.posted(), Ordering::Relaxed);
            }
            mirror.ship(ship_to)
        };
        match r {
            Ok(d) => {
                self.publish(d);
                Step::Durable(d)
            }
            Err(e) => Step::Failed(self.fail(&mut slot, ReplicaError::Mirror(e))),
        }
    }

    /// Takes the replica down with `error` (its mirror is dropped: the
    /// queue pair is destroyed). Returns the error as a value.
    fn fail(
        &self,
        slot: &mut MutexGuard<'_, Option<MirrorOf<T>>>,
        error: ReplicaError,
    ) -> Arc<ReplicaError> {
        tracing::warn!(replica = %self.spec.name, error = %error, "replica down");
        let error = Arc::new(error);
        **slot = None;
        *relock(self.down.lock()) = Arc::clone(&error);
        self.up.store(false, Ordering::Release);
        self.wake_all();
        error
    }

    /// The link manager connected: ship through `mirror` from now on.
    /// Which replica region the mirror installed last reaches.
    pub(crate) fn region(&self) -> Option<crate::transport::RegionId> {
        *relock(self.region.lock())
    }

    pub(crate) fn install(&self, mirror: MirrorOf<T>, region: crate::transport::RegionId) {
        *relock(self.region.lock()) = Some(region);
        let mut slot = relock(self.mirror.lock());
        self.durable.store(mirror.durable(), Ordering::SeqCst);
        *slot = Some(mirror);
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.up.store(true, Ordering::Release);
        drop(slot);
        self.wake_all();
    }

    /// The link manager found the replica unreachable: take it down (waits
    /// for a committer holding the mirror; the manager may).
    pub(crate) fn take_down(&self, error: ReplicaError) -> Arc<ReplicaError> {
        let mut slot = relock(self.mirror.lock());
        if slot.is_none() {
            let error = Arc::new(error);
            *relock(self.down.lock()) = Arc::clone(&error);
            return error;
        }
        self.fail(&mut slot, error)
    }

    /// Records why a connection attempt failed (the replica stays down).
    pub(crate) fn connect_failed(&self, error: ReplicaError) {
        *relock(self.down.lock()) = Arc::new(error);
        self.failed_connects.fetch_add(1, Ordering::Release);
        self.wake_all();
    }

    /// Runs `f` on the mirror, waiting for the lock (benchmarks' probes:
    /// never on the commit path). `None` while the replica is down.
    #[cfg(feature = "bench-probes")]
    pub(crate) fn with_mirror<R>(&self, f: impl FnOnce(&mut MirrorOf<T>) -> R) -> Option<R> {
        relock(self.mirror.lock()).as_mut().map(f)
    }

    /// Publishes a durable position (caller holds the mirror lock) and
    /// wakes the committers waiting for it.
    ///
    /// Takes the lock and wakes (a futex syscall) only when a committer is
    /// waiting: a lone committer's ship costs no syscall here. The store
    /// and the waiter count are SeqCst on both sides, so either the waiter
    /// sees the new position or this sees the waiter.
    fn publish(&self, d: u64) {
        let old = self.durable.swap(d, Ordering::SeqCst);
        if d != old && self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = relock(self.shipped_lock.lock());
            self.shipped.notify_all();
        }
    }

    fn wake_all(&self) {
        let _g = relock(self.shipped_lock.lock());
        self.shipped.notify_all();
    }

    /// Sleeps until a ship is published, the poller leaves, the replica
    /// goes down or `bound` passes, unless `target` is already durable or
    /// (`while_polled`) nobody polls: checked under the lock, so no wake-up
    /// is lost.
    pub(crate) fn await_ship(&self, target: u64, bound: Duration, while_polled: bool) {
        let g = relock(self.shipped_lock.lock());
        self.waiters.fetch_add(1, Ordering::SeqCst);
        if self.durable.load(Ordering::SeqCst) < target
            && self.is_up()
            && (!while_polled || self.polled.load(Ordering::SeqCst))
        {
            let _ = self.shipped.wait_timeout(g, bound);
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Claims the poller's role if nobody has it.
    pub(crate) fn claim_polling(&self) -> bool {
        self.polled
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Gives the poller's role up and wakes the sleepers, so one of them
    /// takes it over.
    pub(crate) fn release_polling(&self) {
        self.polled.store(false, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake_all();
        }
    }
}
