//! A [`Mirror`] keeps one replica's copy of the log ring up to date: it ships
//! any logical byte range of the ring with one-sided RDMA WRITEs and makes it
//! durable with a flush on the same queue pair, all posted as one linked
//! list (one doorbell) with only the last request signaled.
//!
//! The replica's ring is a byte-for-byte mirror of the primary's: logical
//! position `p` lives at ring offset `p % capacity` on both sides, so a range
//! needs at most two WRITEs (it may wrap), plus more only when a piece is
//! longer than the device's largest message.
//!
//! The mirror is protocol logic over a [`ShipPath`] (the data path seam):
//! chunking, the flush, ships in flight and their order, timeouts. On
//! verbs the path is a [`crate::verbs::VerbsPath`].
//!
//! # What each persistence mode guarantees
//!
//! * [`PersistenceMode::Apm`] (appliance persistency method): an RDMA READ of the
//!   last written bytes after the WRITEs. RC executes in order and a READ
//!   response cannot overtake the WRITEs before it, so when the READ
//!   completes the WRITEs have been *placed* in the replica's memory domain.
//!   That is *persistence* only where the replica platform makes placed data
//!   persistent: eADR, or ADR with DDIO off for the NIC's port (otherwise
//!   the data may sit in the CPU cache and is only *visible*). The replica
//!   CPU does nothing.
//! * [`PersistenceMode::Gpspm`] (general purpose server persistency method): the
//!   WRITEs, then a SEND asking the replica's CPU to flush the range to pmem
//!   (clwb/clflushopt + sfence on devdax) and reply. Persistent on any
//!   platform with pmem, at the cost of the replica CPU in the loop.
//!
//! On Soft-RoCE (rxe) the "NIC" is the replica's kernel writing with the CPU,
//! so neither mode is stronger than a cached store there: rxe proves the
//! protocol, not the platform's persistence domain.

mod error;
#[cfg(feature = "bench-probes")]
mod probe;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

pub use error::MirrorError;
#[cfg(feature = "bench-probes")]
pub use probe::{Probe, MAX_PROBE_LEN};

use crate::gpspm::{PersistKind, PersistMsg, PERSIST_MSG_LEN};
use crate::transport::{Clock, FirstLook, OsClock, RingOp, ShipPath};
use crate::verbs::{Spin, VerbsError, MAX_OPS_PER_POST};
use crate::wire::PersistenceMode;

/// Bytes of the READ flush in `apm` mode (the tail of the last WRITE).
const FLUSH_READ_LEN: u64 = 8;

/// Most ships [`Mirror::post`] keeps in flight on one queue pair.
pub const MAX_IN_FLIGHT: usize = 8;

/// Empty polls between two looks at the clock while ships are in flight:
/// on some machines (emulated ones without a TSC clocksource) reading the
/// clock is a trap.
const POLLS_PER_CLOCK_READ: u32 = 16;

/// One list posted and not yet known complete.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// Ticket of its signaled (last) request.
    ticket: u64,
    /// Logical position durable once it completes.
    end: u64,
    /// When the ship was first seen still in flight by a timed reap (the
    /// clock is not read at post: most ships complete before anyone looks,
    /// and a clock read traps under emulation). Its age is counted from
    /// there, so a timeout fires at most [`POLLS_PER_CLOCK_READ`] polls late.
    seen_at: FirstLook,
}

/// One replica's mirror of the local ring.
pub struct Mirror<P: ShipPath, C: Clock = OsClock> {
    name: String,
    path: P,
    clock: C,
    capacity: u64,
    mode: PersistenceMode,
    durable: u64,
    /// Lists in flight, oldest first. Its capacity is reserved at
    /// construction, so posting never allocates.
    in_flight: VecDeque<InFlight>,
    max_in_flight: usize,
    /// Empty reaps since the oldest ship's age was last checked.
    reaps: u32,
    timeout: Duration,
}

impl<P: ShipPath, C: Clock> fmt::Debug for Mirror<P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mirror")
            .field("replica", &self.name)
            .field("mode", &self.mode)
            .field("durable", &self.durable)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<P: ShipPath, C: Clock> Mirror<P, C> {
    /// A mirror of a ring of `capacity` bytes over `path`, resuming from
    /// `durable` (the replica's durable tail: catch-up starts there).
    /// `timeout` bounds every ship.
    pub fn new(
        name: &str,
        path: P,
        clock: C,
        capacity: u64,
        durable: u64,
        mode: PersistenceMode,
        timeout: Duration,
    ) -> Self {
        assert!(capacity > 0, "a ring of 0 bytes");
        let max_in_flight = path.max_in_flight().clamp(1, MAX_IN_FLIGHT);
        Mirror {
            name: name.to_owned(),
            path,
            clock,
            capacity,
            mode,
            durable,
            in_flight: VecDeque::with_capacity(MAX_IN_FLIGHT),
            max_in_flight,
            reaps: 0,
            timeout,
        }
    }

    /// Replica name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Logical position up to which the replica is durable.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// The data path.
    pub fn path(&self) -> &P {
        &self.path
    }

    /// Restarts shipping from `durable`, the replica's durable tail as it
    /// reported it (status). For a mirror whose replica is also fed by
    /// another writer of the same log (the closure's standby mirror while
    /// the host ships): the next [`Mirror::ship`] covers `[durable, to)`,
    /// not what this mirror last shipped. Nothing is reported durable that
    /// the replica did not report.
    ///
    /// # Panics
    /// With ships in flight (a mirror fed by [`Mirror::post`] is not
    /// rebased).
    pub fn rebase(&mut self, durable: u64) {
        assert!(self.in_flight.is_empty(), "rebase with ships in flight");
        self.durable = durable;
    }

    /// End of the last range posted: what is durable once every ship in
    /// flight completes.
    pub fn posted(&self) -> u64 {
        self.in_flight.back().map_or(self.durable, |f| f.end)
    }

    /// Whether [`Mirror::post`] may post another ship now (`apm` only, and
    /// fewer than the in-flight bound outstanding).
    pub fn can_post(&self) -> bool {
        self.mode == PersistenceMode::Apm && self.in_flight.len() < self.max_in_flight
    }

    /// Ships in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Persistence mode.
    pub fn mode(&self) -> PersistenceMode {
        self.mode
    }

    /// Whether the data path failed (the mirror needs reconnecting).
    pub fn is_broken(&self) -> bool {
        self.path.is_broken()
    }

    fn verbs_err(&self, source: VerbsError) -> MirrorError {
        MirrorError::Verbs {
            replica: self.name.clone(),
            source,
        }
    }

    fn check_range(&self, to: u64) -> Result<(), MirrorError> {
        if to - self.durable > self.capacity {
            return Err(MirrorError::RangeTooLarge {
                replica: self.name.clone(),
                from: self.durable,
                to,
                capacity: self.capacity,
            });
        }
        Ok(())
    }

    /// Ships `[self.durable(), to)` and makes it durable on the replica;
    /// returns the new durable position (`to`). Returns at once when the
    /// replica already has `to`. Waits for ships in flight first.
    ///
    /// # Errors
    /// [`MirrorError`]; after an error the durable position is unchanged
    /// (nothing is reported durable that was not flushed).
    pub fn ship(&mut self, to: u64) -> Result<u64, MirrorError> {
        self.drain()?;
        let from = self.durable;
        if to <= from {
            return Ok(from);
        }
        self.check_range(to)?;
        let mut list = EMPTY_LIST;
        let mut chunks = chunks_of(self.capacity, self.path.max_chunk(), from, to).peekable();
        loop {
            let (n, last_end) = fill(&mut list, &mut chunks);
            if chunks.peek().is_some() {
                // A full list of WRITEs without a flush: nothing is durable
                // when it completes, so it does not move `durable`.
                self.post_list(&list[..n], from)?;
                self.drain()?;
                continue;
            }
            list[n] = self.flush_op(from, to, last_end);
            let end = if self.mode == PersistenceMode::Apm {
                to
            } else {
                from
            };
            self.post_list(&list[..=n], end)?;
            self.drain()?;
            break;
        }
        if self.mode == PersistenceMode::Gpspm {
            self.await_persisted(from, to)?;
            self.durable = to;
        }
        debug_assert_eq!(self.durable, to);
        Ok(to)
    }

    /// Posts the WRITEs of `[self.posted(), to)` and their READ flush as one
    /// list and returns without waiting (`apm` only): several ships can be
    /// in flight, and [`Mirror::reap`] moves the durable position as they
    /// complete, in order. RC executes them in order, so a completed READ
    /// flushes its own WRITEs and every earlier one.
    ///
    /// A range that needs more than one list (longer than the device's
    /// largest messages allow in one) is shipped synchronously instead.
    ///
    /// # Errors
    /// As [`Mirror::ship`]; `InvalidRequest` when [`Mirror::can_post`] is
    /// false. After an error nothing more is reported durable.
    pub fn post(&mut self, to: u64) -> Result<(), MirrorError> {
        let from = self.posted();
        if to <= from {
            return Ok(());
        }
        if !self.can_post() {
            return Err(self.verbs_err(VerbsError::InvalidRequest {
                reason: format!(
                    "post with {} ships in flight (at most {}) in {:?} mode",
                    self.in_flight.len(),
                    self.max_in_flight,
                    self.mode
                ),
            }));
        }
        self.check_range(to)?;
        let mut list = EMPTY_LIST;
        let mut chunks = chunks_of(self.capacity, self.path.max_chunk(), from, to).peekable();
        let (n, last_end) = fill(&mut list, &mut chunks);
        if chunks.peek().is_some() {
            // Too many pieces for one list: ship it the slow way.
            return self.ship(to).map(|_| ());
        }
        list[n] = self.flush_op(from, to, last_end);
        self.post_list(&list[..=n], to)
    }

    /// The request that ends a ship of `[from, to)` whose last WRITE ends
    /// at ring offset `last_end`.
    fn flush_op(&self, from: u64, to: u64, last_end: u64) -> RingOp {
        match self.mode {
            PersistenceMode::Apm => RingOp::FlushRead {
                end: last_end,
                len: FLUSH_READ_LEN.min(last_end),
            },
            PersistenceMode::Gpspm => RingOp::PersistRequest { from, to },
        }
    }

    /// Posts one list that makes `end` durable when it completes.
    fn post_list(&mut self, ops: &[RingOp], end: u64) -> Result<(), MirrorError> {
        let ticket = self.path.post(ops).map_err(|e| self.verbs_err(e))?;
        self.in_flight.push_back(InFlight {
            ticket,
            end,
            seen_at: FirstLook::new(),
        });
        Ok(())
    }

    /// Polls once for completed ships (never waits) and returns the durable
    /// position: the end of the last ship completed, in posting order.
    ///
    /// # Errors
    /// [`MirrorError::Verbs`] for a failed ship or when the oldest ship has
    /// been in flight longer than the op timeout (the path is then moved to
    /// the error state and drained: nothing in flight is reported durable,
    /// and the mirror must be reconnected).
    pub fn reap(&mut self) -> Result<u64, MirrorError> {
        if self.in_flight.is_empty() {
            return Ok(self.durable);
        }
        let done = match self.path.reap() {
            Ok(d) => d,
            Err(e) => {
                self.abort_in_flight();
                return Err(self.verbs_err(e));
            }
        };
        while let Some(f) = self.in_flight.front().filter(|f| f.ticket <= done) {
            self.durable = f.end;
            self.in_flight.pop_front();
        }
        self.reaps = self.reaps.wrapping_add(1);
        if !self.reaps.is_multiple_of(POLLS_PER_CLOCK_READ) {
            return Ok(self.durable);
        }
        if let Some(oldest) = self.in_flight.front_mut() {
            let waited = oldest.seen_at.since(self.clock.now());
            if waited > self.timeout {
                let e = self.path.timed_out(waited);
                self.abort_in_flight();
                return Err(self.verbs_err(e));
            }
        }
        Ok(self.durable)
    }

    /// Waits until every ship in flight has completed (bounded by the op
    /// timeout), spinning briefly and then yielding between polls.
    ///
    /// # Errors
    /// As [`Mirror::reap`].
    pub fn drain(&mut self) -> Result<u64, MirrorError> {
        let mut spin = Spin::new();
        while !self.in_flight.is_empty() {
            self.reap()?;
            if !self.in_flight.is_empty() {
                spin.wait_once();
            }
        }
        Ok(self.durable)
    }

    /// Fails every ship in flight: the path goes to the error state and is
    /// drained, so the device no longer uses their buffers.
    fn abort_in_flight(&mut self) {
        if let Some(last) = self.in_flight.back() {
            self.path.abort(last.ticket);
        }
        self.in_flight.clear();
    }

    fn await_persisted(&mut self, from: u64, to: u64) -> Result<(), MirrorError> {
        let mut reply = [0u8; PERSIST_MSG_LEN];
        let len = self
            .path
            .recv(&mut reply, self.timeout)
            .map_err(|e| self.verbs_err(e))?;
        match PersistMsg::decode(&reply[..len]) {
            Ok(PersistMsg {
                kind: PersistKind::Reply,
                from: f,
                to: t,
            }) if f == from && t == to => Ok(()),
            Ok(got) => Err(MirrorError::UnexpectedReply {
                replica: self.name.clone(),
                expected: (from, to),
                got,
            }),
            Err(source) => Err(MirrorError::MalformedReply {
                replica: self.name.clone(),
                source,
            }),
        }
    }
}

/// A list's storage before it is filled (on the stack: no allocation).
const EMPTY_LIST: [RingOp; MAX_OPS_PER_POST] = [RingOp::Write {
    ring_off: 0,
    len: 0,
}; MAX_OPS_PER_POST];

/// Fills `list` with WRITEs of the next chunks, leaving room for the flush;
/// returns how many and the ring offset where the last one ends.
fn fill(
    list: &mut [RingOp; MAX_OPS_PER_POST],
    chunks: &mut impl Iterator<Item = (u64, u64)>,
) -> (usize, u64) {
    let mut n = 0;
    let mut last_end = 0;
    for (ring_off, len) in chunks.take(MAX_OPS_PER_POST - 1) {
        list[n] = RingOp::Write { ring_off, len };
        last_end = ring_off + len;
        n += 1;
    }
    (n, last_end)
}

/// `[from, to)` as (ring offset, len) chunks in order: the ring's pieces
/// (one geometry type: `logcore`'s), each cut to at most `max_chunk` bytes.
fn chunks_of(
    capacity: u64,
    max_chunk: u64,
    from: u64,
    to: u64,
) -> impl Iterator<Item = (u64, u64)> {
    let ring = logcore::Geometry {
        ring_offset: 0,
        capacity,
    };
    ring.pieces(from, to).flat_map(move |p| {
        (0..p.len)
            .step_by(usize::try_from(max_chunk).unwrap_or(usize::MAX))
            .map(move |off| (p.ring_offset + off, (p.len - off).min(max_chunk)))
    })
}

#[cfg(test)]
mod tests;
