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

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::gpspm::{PersistKind, PersistMsg, PERSIST_MSG_LEN};
use crate::verbs::{
    Access, AlignedBuf, MemoryRegion, Op, QueuePair, RdmaMemory, RemoteRegion, VerbsError,
    MAX_OPS_PER_POST,
};
use crate::wire::PersistenceMode;

/// Where the ring sits in the local and the remote region, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingGeometry {
    /// Offset of the ring in the local (primary) region.
    pub local_offset: u64,
    /// Offset of the ring in the replica's region.
    pub remote_offset: u64,
    /// Ring capacity; the same on both sides.
    pub capacity: u64,
}

impl RingGeometry {
    /// Splits the logical range `[from, to)` into at most two
    /// `(ring_offset, len)` pieces.
    ///
    /// # Panics
    /// If `to - from` exceeds the capacity (that range no longer exists in
    /// the ring) or `from > to`.
    pub fn pieces(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, u64)> {
        assert!(
            from <= to && to - from <= self.capacity,
            "range [{from}, {to}) does not fit the ring"
        );
        let start = from % self.capacity;
        let len = to - from;
        let first = len.min(self.capacity - start);
        [(start, first), (0, len - first)]
            .into_iter()
            .filter(|&(_, l)| l > 0)
    }
}

/// An error of one mirror, naming its replica.
#[derive(Debug)]
#[non_exhaustive]
pub enum MirrorError {
    /// The verbs layer failed (QP error, timeout, ...): the mirror must be
    /// reconnected.
    Verbs {
        /// Replica name.
        replica: String,
        /// What failed.
        source: VerbsError,
    },
    /// The range to ship is longer than the ring: data the replica lacks was
    /// already overwritten locally (a reclamation bug, or a replica that was
    /// counted durable when it was not).
    RangeTooLarge {
        /// Replica name.
        replica: String,
        /// Range start.
        from: u64,
        /// Range end.
        to: u64,
        /// Ring capacity.
        capacity: u64,
    },
    /// The replica answered a gpspm request with something else.
    BadReply {
        /// Replica name.
        replica: String,
        /// What we expected and got.
        reason: String,
    },
}

impl fmt::Display for MirrorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorError::Verbs { replica, source } => write!(f, "replica {replica}: {source}"),
            MirrorError::RangeTooLarge { replica, from, to, capacity } => write!(
                f,
                "replica {replica}: range [{from}, {to}) is longer than the ring ({capacity} bytes); \
                 the replica must be re-seeded from a full copy"
            ),
            MirrorError::BadReply { replica, reason } => write!(f, "replica {replica}: bad gpspm reply: {reason}"),
        }
    }
}

impl std::error::Error for MirrorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MirrorError::Verbs { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What a replica told the writer at the handshake: where to write, and how
/// much it already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaTarget {
    /// The replica's registered region.
    pub remote: RemoteRegion,
    /// Where the ring is on both sides.
    pub ring: RingGeometry,
    /// Logical position the replica already holds durably (catch-up starts there).
    pub durable: u64,
}

/// Bytes of the READ flush in `apm` mode (the tail of the last WRITE).
const FLUSH_READ_LEN: u64 = 8;
/// Scratch layout: READ flush target at 0, gpspm request at 64; from
/// [`PROBE_OFF`], zeros the WRITE probes send, then the READ probes' target
/// (so probes never send back bytes they read).
const SCRATCH_LEN: usize = PROBE_OFF + 2 * MAX_PROBE_LEN as usize;
const SCRATCH_REQ: usize = 64;
const PROBE_OFF: usize = 4096;
/// Largest raw-baseline probe ([`Mirror::probe`]).
pub const MAX_PROBE_LEN: u32 = 128 << 10;

/// A raw-verbs round trip on a mirror's own queue pair, for baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// WRITE `len` bytes, then READ the last 8 (what an `apm` commit posts,
    /// without the log).
    WriteRead,
    /// READ `len` bytes (what `ib_read_lat` measures).
    Read,
}

/// Most ships [`Mirror::post`] keeps in flight on one queue pair.
pub const MAX_IN_FLIGHT: usize = 8;

/// One ship posted and not yet known complete.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// wr_id of its signaled READ.
    wr_id: u64,
    /// Logical end of its range: durable once it completes.
    end: u64,
    posted_at: Instant,
}

/// One replica's mirror of the local ring.
pub struct Mirror<M: RdmaMemory> {
    name: String,
    // Declared before every buffer the device uses (`source`, `scratch`):
    // the QP is destroyed first, so ships still in flight (see
    // [`Mirror::post`]) never outlive their buffers.
    qp: QueuePair,
    source: Arc<MemoryRegion<M>>,
    remote: RemoteRegion,
    ring: RingGeometry,
    scratch: MemoryRegion<AlignedBuf>,
    mode: PersistenceMode,
    durable: u64,
    /// Ships in flight, oldest first. Its capacity is reserved at
    /// construction, so posting never allocates.
    in_flight: VecDeque<InFlight>,
    /// How many ships may be in flight (bounded by the send queue).
    max_in_flight: usize,
    /// Empty reaps since the oldest ship's age was last checked.
    reaps: u32,
    max_chunk: u64,
    timeout: Duration,
}

impl<M: RdmaMemory> fmt::Debug for Mirror<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mirror")
            .field("replica", &self.name)
            .field("qp", &self.qp)
            .field("mode", &self.mode)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl<M: RdmaMemory> Mirror<M> {
    /// A mirror over a connected `qp`, shipping from the registered local
    /// region `source` into the replica's region described by `target`.
    /// Shipping resumes from `target.durable` (catch-up).
    ///
    /// # Errors
    /// [`MirrorError::Verbs`] if the scratch buffer cannot be registered or
    /// the gpspm receive buffers cannot be posted; `InvalidRequest` if the
    /// ring does not fit either region.
    pub fn new(
        name: &str,
        mut qp: QueuePair,
        source: Arc<MemoryRegion<M>>,
        target: ReplicaTarget,
        mode: PersistenceMode,
        timeout: Duration,
    ) -> Result<Self, MirrorError> {
        let ReplicaTarget {
            remote,
            ring,
            durable,
        } = target;
        let verbs = |source| MirrorError::Verbs {
            replica: name.to_owned(),
            source,
        };
        let fits = |off: u64, len: u64| off.checked_add(ring.capacity).is_some_and(|e| e <= len);
        if ring.capacity == 0
            || !fits(ring.local_offset, source.len() as u64)
            || !fits(ring.remote_offset, remote.len)
        {
            return Err(verbs(VerbsError::InvalidRequest {
                reason: format!(
                    "ring {ring:?} does not fit the local region ({} bytes) or the replica's ({} bytes)",
                    source.len(),
                    remote.len
                ),
            }));
        }
        let scratch = MemoryRegion::register(
            source.pd(),
            AlignedBuf::new(SCRATCH_LEN),
            Access::LOCAL_WRITE,
        )
        .map_err(verbs)?;
        if mode == PersistenceMode::Gpspm {
            qp.enable_recv(4, PERSIST_MSG_LEN).map_err(verbs)?;
        }
        let max_chunk = u64::from(source.pd().context().max_msg_size().max(4096));
        // As configured, within what the send queue (each ship is at most
        // MAX_OPS_PER_POST requests) and the READ limit hold.
        let c = qp.config();
        let max_in_flight = usize::from(c.ships_in_flight)
            .min(c.max_send_wr as usize / MAX_OPS_PER_POST)
            .min(usize::from(c.max_rd_atomic))
            .clamp(1, MAX_IN_FLIGHT);
        Ok(Mirror {
            name: name.to_owned(),
            qp,
            source,
            remote,
            ring,
            scratch,
            mode,
            durable,
            in_flight: VecDeque::with_capacity(max_in_flight),
            max_in_flight,
            reaps: 0,
            max_chunk,
            timeout,
        })
    }

    /// Replica name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Logical position up to which the replica is durable.
    pub fn durable(&self) -> u64 {
        self.durable
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

    /// One raw round trip of `len` bytes on this mirror's queue pair and
    /// device, bypassing the log: the baseline tailguard's commit latency is
    /// compared with. It writes zeros just past the durable position (the
    /// replica reads zeros there as the end of the log, and real shipping
    /// overwrites them), so `len` must leave a quarter of the ring free.
    ///
    /// # Errors
    /// [`MirrorError`] as for [`Mirror::ship`]; `len` above
    /// [`MAX_PROBE_LEN`] or a quarter of the ring is refused.
    pub fn probe(&mut self, kind: Probe, len: u32) -> Result<(), MirrorError> {
        if len == 0 || len > MAX_PROBE_LEN || u64::from(len) > self.ring.capacity / 4 {
            return Err(self.verbs_err(VerbsError::InvalidRequest {
                reason: format!(
                    "probe of {len} bytes: 1..={MAX_PROBE_LEN} and at most a quarter of the ring"
                ),
            }));
        }
        // Probes write past the durable position: nothing may be in flight
        // there.
        self.drain()?;
        let Mirror {
            name,
            qp,
            remote,
            ring,
            scratch,
            timeout,
            durable,
            ..
        } = self;
        let err = |e| MirrorError::Verbs {
            replica: name.clone(),
            source: e,
        };
        // Where the next ship will write; a probe that would wrap starts at
        // the ring's beginning instead.
        let mut off = *durable % ring.capacity;
        if off + u64::from(len) > ring.capacity {
            off = 0;
        }
        let dst = remote.slice(ring.remote_offset + off, len).map_err(err)?;
        let zeros = scratch.slice(PROBE_OFF, len as usize).map_err(err)?;
        let flush = remote
            .slice(
                ring.remote_offset + off + u64::from(len) - 8.min(u64::from(len)),
                8.min(len),
            )
            .map_err(err)?;
        let flush_dst = scratch.slice(0, 8.min(len) as usize).map_err(err)?;
        match kind {
            Probe::WriteRead => qp
                .execute(
                    &[
                        Op::Write { src: zeros, dst },
                        Op::Read {
                            dst: flush_dst,
                            src: flush,
                        },
                    ],
                    *timeout,
                )
                .map_err(err),
            Probe::Read => {
                let target = scratch
                    .slice(PROBE_OFF + MAX_PROBE_LEN as usize, len as usize)
                    .map_err(err)?;
                qp.execute(
                    &[Op::Read {
                        dst: target,
                        src: dst,
                    }],
                    *timeout,
                )
                .map_err(err)
            }
        }
    }

    /// Whether the queue pair failed (the mirror needs reconnecting).
    pub fn is_broken(&self) -> bool {
        self.qp.is_broken()
    }

    fn verbs_err(&self, source: VerbsError) -> MirrorError {
        MirrorError::Verbs {
            replica: self.name.clone(),
            source,
        }
    }

    /// Ships `[self.durable(), to)` and makes it durable on the replica;
    /// returns the new durable position (`to`). Returns at once when the
    /// replica already has `to`.
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
        if to - from > self.ring.capacity {
            return Err(MirrorError::RangeTooLarge {
                replica: self.name.clone(),
                from,
                to,
                capacity: self.ring.capacity,
            });
        }
        let mut chunks = [(0u64, 0u64); MAX_OPS_PER_POST];
        let mut n = 0;
        for c in chunks_of(self.ring, self.max_chunk, from, to) {
            if n == MAX_OPS_PER_POST - 1 {
                self.execute(&chunks[..n], Flush::None)?;
                n = 0;
            }
            chunks[n] = c;
            n += 1;
        }
        let flush = match self.mode {
            PersistenceMode::Apm => Flush::Read {
                last_end: chunks[n - 1].0 + chunks[n - 1].1,
            },
            PersistenceMode::Gpspm => Flush::Send { from, to },
        };
        self.execute(&chunks[..n], flush)?;
        if let PersistenceMode::Gpspm = self.mode {
            self.await_persisted(from, to)?;
        }
        self.durable = to;
        Ok(to)
    }

    /// Posts the WRITEs of `[self.posted(), to)` and their READ flush as one
    /// list and returns without waiting (`apm` only): several ships can be
    /// in flight on the queue pair, and [`Mirror::reap`] moves the durable
    /// position as they complete, in order. RC executes them in order, so a
    /// completed READ flushes its own WRITEs and every earlier one.
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
        if to - self.durable > self.ring.capacity {
            return Err(MirrorError::RangeTooLarge {
                replica: self.name.clone(),
                from: self.durable,
                to,
                capacity: self.ring.capacity,
            });
        }
        let mut chunks = [(0u64, 0u64); MAX_OPS_PER_POST];
        let mut n = 0;
        for c in chunks_of(self.ring, self.max_chunk, from, to) {
            if n == MAX_OPS_PER_POST - 1 {
                // Too many pieces for one list: ship it the slow way.
                return self.ship(to).map(|_| ());
            }
            chunks[n] = c;
            n += 1;
        }
        let flush = Flush::Read {
            last_end: chunks[n - 1].0 + chunks[n - 1].1,
        };
        // SAFETY: every local buffer of the list is in `self.source` or
        // `self.scratch`, both dropped only after `self.qp` is destroyed
        // (field order), and neither is deregistered while the mirror
        // lives. The source bytes of `[from, to)` are not reused before the
        // range is durable: the log reclaims only behind what its mirrors
        // report durable. The READ's target is scratch bytes nobody reads.
        let wr_id = self.with_list(&chunks[..n], flush, |qp, ops, _| unsafe {
            qp.post_unwaited(ops)
        })?;
        self.in_flight.push_back(InFlight {
            wr_id,
            end: to,
            posted_at: Instant::now(),
        });
        Ok(())
    }

    /// Polls once for completed ships (never waits) and returns the durable
    /// position: the end of the last ship completed, in posting order.
    ///
    /// # Errors
    /// [`MirrorError::Verbs`] for a failed ship or when the oldest ship has
    /// been in flight longer than the op timeout (the queue pair is then
    /// moved to the error state and drained: nothing in flight is reported
    /// durable, and the mirror must be reconnected).
    pub fn reap(&mut self) -> Result<u64, MirrorError> {
        if self.in_flight.is_empty() {
            return Ok(self.durable);
        }
        let done = match self.qp.reap() {
            Ok(d) => d,
            Err(e) => {
                self.abort_in_flight();
                return Err(self.verbs_err(e));
            }
        };
        while let Some(f) = self.in_flight.front().filter(|f| f.wr_id <= done) {
            self.durable = f.end;
            self.in_flight.pop_front();
        }
        // The clock is read every few empty polls only: on some machines
        // (emulated ones without a TSC clocksource) reading it is a trap.
        self.reaps = self.reaps.wrapping_add(1);
        if let Some(oldest) = self
            .in_flight
            .front()
            .filter(|_| self.reaps.is_multiple_of(16))
        {
            let waited = oldest.posted_at.elapsed();
            if waited > self.timeout {
                let qpn = self.qp.qpn();
                let device = self.qp.device().to_owned();
                self.abort_in_flight();
                return Err(self.verbs_err(VerbsError::Timeout {
                    device,
                    qpn,
                    waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                }));
            }
        }
        Ok(self.durable)
    }

    /// Waits until every ship in flight has completed (bounded by the op
    /// timeout), polling like [`QueuePair::execute`].
    ///
    /// # Errors
    /// As [`Mirror::reap`].
    pub fn drain(&mut self) -> Result<u64, MirrorError> {
        if self.in_flight.is_empty() {
            // The one-at-a-time path: no clock read (a trap on some VMs).
            return Ok(self.durable);
        }
        let start = Instant::now();
        while !self.in_flight.is_empty() {
            self.reap()?;
            if !self.in_flight.is_empty() {
                if start.elapsed() < crate::verbs::SPIN_BEFORE_YIELD {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
        Ok(self.durable)
    }

    /// Fails every ship in flight: the QP goes to the error state and is
    /// drained, so the device no longer uses their buffers.
    fn abort_in_flight(&mut self) {
        if let Some(last) = self.in_flight.back() {
            self.qp.abort(last.wr_id);
        }
        self.in_flight.clear();
    }

    /// Posts WRITEs of `chunks` (ring offset, len) and the `flush` as one
    /// list, and waits for its completion. No allocation: the list lives on
    /// the stack.
    fn execute(&mut self, chunks: &[(u64, u64)], flush: Flush) -> Result<(), MirrorError> {
        self.with_list(chunks, flush, |qp, ops, timeout| qp.execute(ops, timeout))
    }

    /// Builds the list for `chunks` and `flush` and hands it to `post`
    /// with the queue pair and the op timeout.
    fn with_list<T>(
        &mut self,
        chunks: &[(u64, u64)],
        flush: Flush,
        post: impl FnOnce(&mut QueuePair, &[Op<'_>], Duration) -> Result<T, VerbsError>,
    ) -> Result<T, MirrorError> {
        let Mirror {
            name,
            qp,
            source,
            remote,
            ring,
            scratch,
            timeout,
            ..
        } = self;
        let err = |e| MirrorError::Verbs {
            replica: name.clone(),
            source: e,
        };
        let list = build_list(chunks, flush, source, remote, ring, scratch).map_err(err)?;
        post(qp, list.ops(), *timeout).map_err(err)
    }

    fn await_persisted(&mut self, from: u64, to: u64) -> Result<(), MirrorError> {
        let mut reply = [0u8; PERSIST_MSG_LEN];
        let len = self
            .qp
            .recv(&mut reply, self.timeout)
            .map_err(|e| self.verbs_err(e))?;
        match PersistMsg::decode(&reply[..len]) {
            Ok(PersistMsg {
                kind: PersistKind::Reply,
                from: f,
                to: t,
            }) if f == from && t == to => Ok(()),
            Ok(other) => Err(MirrorError::BadReply {
                replica: self.name.clone(),
                reason: format!("expected reply for [{from}, {to}), got {other:?}"),
            }),
            Err(e) => Err(MirrorError::BadReply {
                replica: self.name.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

/// `[from, to)` as (ring offset, len) chunks in order: the ring's pieces,
/// each cut to at most `max_chunk` bytes (one message).
fn chunks_of(
    ring: RingGeometry,
    max_chunk: u64,
    from: u64,
    to: u64,
) -> impl Iterator<Item = (u64, u64)> {
    ring.pieces(from, to).flat_map(move |(start, len)| {
        (0..len)
            .step_by(usize::try_from(max_chunk).unwrap_or(usize::MAX))
            .map(move |off| (start + off, (len - off).min(max_chunk)))
    })
}

/// A list of requests built on the stack (no allocation).
struct List<'a> {
    ops: [Op<'a>; MAX_OPS_PER_POST],
    n: usize,
}

impl<'a> List<'a> {
    fn ops(&self) -> &[Op<'a>] {
        &self.ops[..self.n]
    }
}

/// The WRITEs of `chunks` (ring offset, len) and the `flush` after them.
fn build_list<'a, M: RdmaMemory>(
    chunks: &[(u64, u64)],
    flush: Flush,
    source: &'a MemoryRegion<M>,
    remote: &RemoteRegion,
    ring: &RingGeometry,
    scratch: &'a MemoryRegion<AlignedBuf>,
) -> Result<List<'a>, VerbsError> {
    let write = |(off, len): (u64, u64)| -> Result<Op<'a>, VerbsError> {
        let len32 = u32::try_from(len).expect("chunks are at most max_msg_sz");
        let local = usize::try_from(ring.local_offset + off).expect("ring offset fits usize");
        Ok(Op::Write {
            src: source.slice(local, len32 as usize)?,
            dst: remote.slice(ring.remote_offset + off, len32)?,
        })
    };
    debug_assert!(!chunks.is_empty() && chunks.len() < MAX_OPS_PER_POST);
    let mut ops = [write(chunks[0])?; MAX_OPS_PER_POST];
    for (i, &c) in chunks.iter().enumerate().skip(1) {
        ops[i] = write(c)?;
    }
    let mut n = chunks.len();
    match flush {
        Flush::None => {}
        Flush::Read { last_end } => {
            let len = FLUSH_READ_LEN.min(last_end);
            let src = remote.slice(ring.remote_offset + last_end - len, len as u32)?;
            let dst = scratch.slice(0, len as usize)?;
            ops[n] = Op::Read { dst, src };
            n += 1;
        }
        Flush::Send { from, to } => {
            let req = PersistMsg {
                kind: PersistKind::Request,
                from,
                to,
            }
            .encode();
            scratch.write_at(SCRATCH_REQ, &req)?;
            ops[n] = Op::Send {
                src: scratch.slice(SCRATCH_REQ, PERSIST_MSG_LEN)?,
            };
            n += 1;
        }
    }
    Ok(List { ops, n })
}

/// What ends a posted list.
#[derive(Debug, Clone, Copy)]
enum Flush {
    /// Nothing: an intermediate batch of WRITEs (the last one is signaled).
    None,
    /// apm: READ the last bytes up to ring offset `last_end`.
    Read { last_end: u64 },
    /// gpspm: SEND a persist request for `[from, to)`.
    Send { from: u64, to: u64 },
}

#[cfg(test)]
mod tests {
    use super::RingGeometry;

    #[test]
    fn pieces_split_at_the_ring_end() {
        let g = RingGeometry {
            local_offset: 4096,
            remote_offset: 8192,
            capacity: 1000,
        };
        assert_eq!(g.pieces(0, 10).collect::<Vec<_>>(), vec![(0, 10)]);
        assert_eq!(
            g.pieces(990, 1010).collect::<Vec<_>>(),
            vec![(990, 10), (0, 10)]
        );
        assert_eq!(g.pieces(2000, 3000).collect::<Vec<_>>(), vec![(0, 1000)]);
        assert_eq!(
            g.pieces(2500, 3500).collect::<Vec<_>>(),
            vec![(500, 500), (0, 500)]
        );
        assert_eq!(g.pieces(7, 7).count(), 0);
    }

    #[test]
    #[should_panic(expected = "does not fit the ring")]
    fn a_range_longer_than_the_ring_is_a_bug() {
        let g = RingGeometry {
            local_offset: 0,
            remote_offset: 0,
            capacity: 1000,
        };
        let _ = g.pieces(0, 1001).count();
    }
}
