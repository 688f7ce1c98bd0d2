//! The link manager: everything about the replicas that is not the commit
//! itself, on one background thread (`tg-links`).
//!
//! - Connects replicas that are down (TCP, handshake, queue pair), with a
//!   bounded exponential back-off per replica, and installs their mirrors
//!   in their [`Shipper`]s. A connect blocks this thread up to the connect
//!   timeout; no committer ever waits for it.
//! - Asks every connected replica for its status: every
//!   [`STATUS_EVERY`] as a keep-alive (a replica that stopped answering is
//!   taken down and reconnected), and every [`STATUS_UNDER_PRESSURE`] while
//!   the ring is more than three-quarters full, to learn how far the ring
//!   may be reclaimed.
//! - Reclaims the ring behind what every replica holds and keeps.
//!
//! Committers and appenders wake it ([`Manager::wake`]) when a replica went
//! down under them or the ring is full.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::transport::{Clock, ControlSession, Transport};

use super::{ConnectOptions, Inner, LogIdentity, ReplicaError};

/// Status round trip to each connected replica when the ring has room (a
/// keep-alive).
pub const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Status round trip while the ring is more than three-quarters full.
pub const STATUS_UNDER_PRESSURE: Duration = Duration::from_millis(1);
/// Longest sleep of the manager between two passes.
const MAX_IDLE: Duration = Duration::from_millis(50);

/// Bounds of the reconnect back-off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

/// Wakes the manager before its next deadline.
#[derive(Debug, Default)]
pub(crate) struct Manager {
    poked: Mutex<bool>,
    cv: Condvar,
}

impl Manager {
    /// Asks for a pass now (a replica went down, the ring is full, stop).
    pub(crate) fn wake(&self) {
        *self.poked.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_one();
    }

    fn sleep(&self, bound: Duration) {
        let g = self.poked.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut g, _) = self
            .cv
            .wait_timeout_while(g, bound, |poked| !*poked)
            .unwrap_or_else(PoisonError::into_inner);
        *g = false;
    }
}

/// The manager's own state of one replica.
struct Link<S> {
    /// The admitted control channel while the replica is up.
    control: Option<S>,
    retry_at: Instant,
    backoff: Duration,
    next_status: Instant,
}

impl<T: Transport> Inner<T> {
    /// The manager thread's body: passes until the log is closed.
    pub(super) fn manage(&self, opts: &ConnectOptions) {
        let clock = self.transport.clock();
        let now = clock.now();
        let mut links: Vec<Link<T::Control>> = self
            .shippers
            .iter()
            .map(|_| Link {
                control: None,
                retry_at: now,
                backoff: Duration::ZERO,
                next_status: now,
            })
            .collect();
        while !self.stopping() {
            let pressure = self.ring_pressure();
            let mut next = clock.now() + MAX_IDLE;
            for (s, l) in self.shippers.iter().zip(&mut links) {
                if self.stopping() {
                    return;
                }
                let now = clock.now();
                if !s.is_up() {
                    if l.control.take().is_some() {
                        // A committer's ship failed: close the channel (the
                        // replica ends the session) and back off.
                        l.backoff = self.next_backoff(l.backoff);
                        l.retry_at = now + l.backoff;
                    }
                    if now >= l.retry_at {
                        match self.connect(s, opts) {
                            Ok(control) => {
                                l.control = Some(control);
                                l.backoff = Duration::ZERO;
                                l.next_status = clock.now();
                            }
                            Err(e) => {
                                l.backoff = self.next_backoff(l.backoff);
                                l.retry_at = clock.now() + l.backoff;
                                tracing::warn!(replica = %s.spec.name, error = %e,
                                    retry_in_ms = l.backoff.as_millis() as u64, "replica unreachable");
                                s.connect_failed(e);
                            }
                        }
                    }
                    next = next.min(l.retry_at);
                    continue;
                }
                let every = if pressure {
                    STATUS_UNDER_PRESSURE
                } else {
                    STATUS_EVERY
                };
                if now >= l.next_status {
                    if let Some(control) = l.control.as_mut() {
                        match control.status() {
                            Ok(st) => s
                                .status_head
                                .store(st.head, std::sync::atomic::Ordering::Release),
                            Err(source) => {
                                l.control = None;
                                s.take_down(ReplicaError::Status {
                                    replica: s.spec.name.clone(),
                                    source,
                                });
                                l.backoff = self.next_backoff(l.backoff);
                                l.retry_at = clock.now() + l.backoff;
                            }
                        }
                    }
                    l.next_status = clock.now() + every;
                    self.catch_up(s);
                }
                next = next.min(l.next_status);
            }
            if pressure {
                self.reclaim();
            }
            let now = clock.now();
            if next > now {
                self.manager.sleep(next - now);
            }
        }
    }

    /// Ships everything persisted to `s` if it lags. Committers return
    /// once `acks` replicas hold their record and never visit the others,
    /// so under `sync` with `acks` below the replica count a replica that
    /// fell behind (restarted, or back from a stall) was caught up only
    /// if the quorum came to need it, and held the ring's reclaim back
    /// meanwhile. Here, once per status period and off the commit path, it
    /// is; a mirror a committer holds is left to that committer.
    fn catch_up(&self, s: &super::shipper::Shipper<T>) {
        let persisted = self.log.persisted().pos;
        if !s.is_up() || s.durable() >= persisted {
            return;
        }
        if let super::shipper::Step::Failed(e) = s.step(persisted, persisted, self.pipelined) {
            tracing::warn!(replica = %s.spec.name, error = %e, "catching the replica up failed; reconnecting");
        }
    }

    fn next_backoff(&self, b: Duration) -> Duration {
        (b * 2).clamp(self.backoff.min, self.backoff.max)
    }

    /// Connects one replica and installs its mirror; returns its control
    /// channel.
    fn connect(
        &self,
        s: &super::shipper::Shipper<T>,
        opts: &ConnectOptions,
    ) -> Result<T::Control, ReplicaError> {
        let identity = LogIdentity::of(&self.log);
        let c = self.transport.connect(&s.spec, opts, &identity)?;
        let name = &s.spec.name;
        let persisted = self.log.persisted().pos;
        let head = self.log.head().pos;
        if c.durable > persisted {
            return Err(ReplicaError::Diverged {
                replica: name.clone(),
                replica_durable: c.durable,
                local_persisted: persisted,
            });
        }
        if c.durable < head {
            return Err(ReplicaError::TooFarBehind {
                replica: name.clone(),
                replica_durable: c.durable,
                local_head: head,
            });
        }
        // Two entries reaching one tg-replica would count its ack twice.
        if let Some(o) = self
            .shippers
            .iter()
            .find(|o| !std::ptr::eq(*o, s) && o.is_up() && o.region() == Some(c.region))
        {
            return Err(ReplicaError::SameReplica {
                replica: name.clone(),
                other: o.spec.name.clone(),
            });
        }
        tracing::info!(replica = %name, durable = c.durable, epoch = identity.epoch, "replica connected");
        s.install(c.mirror, c.region);
        Ok(c.control)
    }

    /// Whether less than a quarter of the ring is free.
    pub(super) fn ring_pressure(&self) -> bool {
        let used = self.log.persisted().pos - self.log.head().pos;
        used >= self.log.geometry().capacity / 4 * 3
    }

    /// Reclaims the ring up to what every replica allows (durable there and
    /// behind its reported head). A replica that is down holds the head
    /// where it was, so it can catch up from the ring when it returns.
    pub(super) fn reclaim(&self) {
        let head = self.log.head().pos;
        let floor = self
            .shippers
            .iter()
            .map(super::shipper::Shipper::reclaim_floor)
            .min()
            .unwrap_or(0);
        if floor > head {
            // Both bounds are record boundaries: durable positions are whole
            // persisted tails, replica heads are scan cursors.
            match self.log.advance_head(floor) {
                Ok(c) => tracing::debug!(head = c.pos, "reclaimed"),
                Err(e) => tracing::warn!(error = %e, floor, "could not advance the reclaim head"),
            }
        }
    }
}
