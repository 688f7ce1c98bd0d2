//! [`VerbsPath`]: the RDMA data path of one mirror on real verbs, the
//! production instance of [`crate::transport::ShipPath`].
//!
//! It owns everything the device touches while a ship is in flight: the
//! queue pair, the registered log (`source`) and a small scratch buffer
//! (the READ flush target and the gpspm request). Because the buffers are
//! fields dropped after the queue pair, posting without waiting is safe
//! here, and the mirror above it needs no `unsafe`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Access, AlignedBuf, MemoryRegion, Op, QueuePair, RdmaMemory, RemoteRegion, Result, VerbsError,
    MAX_OPS_PER_POST,
};
use crate::gpspm::PERSIST_MSG_LEN;
use crate::transport::{RingOp, ShipPath};

/// Scratch layout: the READ flush target at 0, the gpspm request at
/// [`SCRATCH_REQ`].
const SCRATCH_REQ: usize = 64;
const SCRATCH_LEN: usize = 4096;
/// Receive slots for gpspm replies.
const GPSPM_RECV_SLOTS: usize = 4;

/// Where the ring is on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingPlacement {
    /// Offset of the ring in the local (registered) region.
    pub local_offset: u64,
    /// Offset of the ring in the replica's region.
    pub remote_offset: u64,
    /// Ring capacity, the same on both sides.
    pub capacity: u64,
}

/// One mirror's queue pair and the buffers its requests use.
pub struct VerbsPath<M: RdmaMemory> {
    // Declared before every buffer the device uses (`source`, `scratch`):
    // the QP is destroyed first, so a ship still in flight never outlives
    // its buffers.
    qp: QueuePair,
    source: Arc<MemoryRegion<M>>,
    scratch: MemoryRegion<AlignedBuf>,
    remote: RemoteRegion,
    ring: RingPlacement,
    max_chunk: u64,
    max_in_flight: usize,
    /// Zeros and READ target of the baseline probes (`bench-probes`; the
    /// zeros half is never written).
    #[cfg(feature = "bench-probes")]
    probe_buf: Option<MemoryRegion<AlignedBuf>>,
}

impl<M: RdmaMemory> fmt::Debug for VerbsPath<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerbsPath")
            .field("qp", &self.qp)
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl<M: RdmaMemory> VerbsPath<M> {
    /// The data path over a connected `qp`, shipping from `source` (the
    /// registered local region) into `remote`. `gpspm` posts the receive
    /// buffers its replies need.
    ///
    /// # Errors
    /// `InvalidRequest` if the ring does not fit either region; the
    /// failing verb registering the scratch buffer or posting receives.
    pub fn new(
        mut qp: QueuePair,
        source: Arc<MemoryRegion<M>>,
        remote: RemoteRegion,
        ring: RingPlacement,
        gpspm: bool,
    ) -> Result<Self> {
        let fits = |off: u64, len: u64| off.checked_add(ring.capacity).is_some_and(|e| e <= len);
        if ring.capacity == 0
            || !fits(ring.local_offset, source.len() as u64)
            || !fits(ring.remote_offset, remote.len)
        {
            return Err(VerbsError::InvalidRequest {
                reason: format!(
                    "ring {ring:?} does not fit the local region ({} bytes) or the replica's ({} bytes)",
                    source.len(),
                    remote.len
                ),
            });
        }
        let scratch = MemoryRegion::register(
            source.pd(),
            AlignedBuf::new(SCRATCH_LEN),
            Access::LOCAL_WRITE,
        )?;
        if gpspm {
            qp.enable_recv(GPSPM_RECV_SLOTS, PERSIST_MSG_LEN)?;
        }
        let max_chunk = u64::from(source.pd().context().max_msg_size().max(4096));
        // As configured, within what the send queue (each ship is at most
        // MAX_OPS_PER_POST requests) and the READ limit hold.
        let c = qp.config();
        let max_in_flight = usize::from(c.ships_in_flight)
            .min(c.max_send_wr as usize / MAX_OPS_PER_POST)
            .min(usize::from(c.max_rd_atomic))
            .max(1);
        Ok(VerbsPath {
            qp,
            source,
            scratch,
            remote,
            ring,
            max_chunk,
            max_in_flight,
            #[cfg(feature = "bench-probes")]
            probe_buf: None,
        })
    }

    /// The queue pair (its number and device, for messages).
    pub fn qp(&self) -> &QueuePair {
        &self.qp
    }

    /// The registered local region ships read from.
    pub fn source(&self) -> &Arc<MemoryRegion<M>> {
        &self.source
    }

    /// The replica's registered region.
    pub fn remote(&self) -> &RemoteRegion {
        &self.remote
    }

    /// Where the ring sits on both sides.
    pub fn placement(&self) -> RingPlacement {
        self.ring
    }

    /// Translates ring requests into verbs requests borrowing this path's
    /// buffers (on the stack: no allocation).
    fn build<'a>(
        source: &'a MemoryRegion<M>,
        scratch: &'a MemoryRegion<AlignedBuf>,
        remote: &RemoteRegion,
        ring: RingPlacement,
        ops: &[RingOp],
    ) -> Result<([Op<'a>; MAX_OPS_PER_POST], usize)> {
        if ops.is_empty() || ops.len() > MAX_OPS_PER_POST {
            return Err(VerbsError::InvalidRequest {
                reason: format!(
                    "a ship is 1 to {MAX_OPS_PER_POST} requests, got {}",
                    ops.len()
                ),
            });
        }
        let one = |op: &RingOp| -> Result<Op<'a>> {
            Ok(match *op {
                RingOp::Write { ring_off, len } => {
                    let len = u32::try_from(len).map_err(|_| VerbsError::InvalidRequest {
                        reason: format!("WRITE of {len} bytes exceeds one message"),
                    })?;
                    let local = usize::try_from(ring.local_offset + ring_off)
                        .expect("ring offset fits usize");
                    Op::Write {
                        src: source.slice(local, len as usize)?,
                        dst: remote.slice(ring.remote_offset + ring_off, len)?,
                    }
                }
                RingOp::FlushRead { end, len } => Op::Read {
                    dst: scratch.slice(0, len as usize)?,
                    src: remote.slice(ring.remote_offset + end - len, len as u32)?,
                },
                RingOp::PersistRequest { from, to } => {
                    let req = crate::gpspm::PersistMsg {
                        kind: crate::gpspm::PersistKind::Request,
                        from,
                        to,
                    }
                    .encode();
                    scratch.write_at(SCRATCH_REQ, &req)?;
                    Op::Send {
                        src: scratch.slice(SCRATCH_REQ, PERSIST_MSG_LEN)?,
                    }
                }
            })
        };
        let first = one(&ops[0])?;
        let mut list = [first; MAX_OPS_PER_POST];
        for (i, op) in ops.iter().enumerate().skip(1) {
            list[i] = one(op)?;
        }
        Ok((list, ops.len()))
    }
}

impl<M: RdmaMemory> ShipPath for VerbsPath<M> {
    fn post(&mut self, ops: &[RingOp]) -> Result<u64> {
        let VerbsPath {
            qp,
            source,
            scratch,
            remote,
            ring,
            ..
        } = self;
        let (list, n) = Self::build(source, scratch, remote, *ring, ops)?;
        // SAFETY: every local buffer of the list is in `self.source` or
        // `self.scratch`, fields dropped only after `self.qp` is destroyed
        // (declaration order) and never deregistered while this path
        // lives. The source bytes of a shipped range are not reused before
        // it is durable: the log reclaims only behind what its mirrors
        // report durable. The READ target is scratch nobody reads; the
        // gpspm request is rewritten only for the next ship, after this
        // one's completion (one gpspm ship in flight at a time).
        unsafe { qp.post_unwaited(&list[..n]) }
    }

    fn reap(&mut self) -> Result<u64> {
        self.qp.reap()
    }

    fn abort(&mut self, last: u64) {
        self.qp.abort(last);
    }

    fn recv(&mut self, out: &mut [u8], timeout: Duration) -> Result<usize> {
        self.qp.recv(out, timeout)
    }

    fn max_chunk(&self) -> u64 {
        self.max_chunk
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    fn is_broken(&self) -> bool {
        self.qp.is_broken()
    }

    fn timed_out(&self, waited: Duration) -> VerbsError {
        VerbsError::Timeout {
            device: self.qp.device().to_owned(),
            qpn: self.qp.qpn(),
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Largest raw-baseline probe (`bench-probes`).
#[cfg(feature = "bench-probes")]
pub const MAX_PROBE_LEN: u32 = 128 << 10;

/// A raw-verbs round trip on a mirror's own queue pair, for baselines
/// (`bench-probes`).
#[cfg(feature = "bench-probes")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// WRITE `len` bytes, then READ the last 8 (what an `apm` commit posts,
    /// without the log).
    WriteRead,
    /// READ `len` bytes (what `ib_read_lat` measures).
    Read,
}

#[cfg(feature = "bench-probes")]
impl<M: RdmaMemory> VerbsPath<M> {
    /// Runs one probe at ring offset `ring_off` and waits for it: zeros
    /// from a probe buffer (registered on first use: production mirrors
    /// never pay for it), or a READ into it.
    pub(crate) fn probe(
        &mut self,
        kind: Probe,
        ring_off: u64,
        len: u32,
        timeout: Duration,
    ) -> Result<()> {
        if self.probe_buf.is_none() {
            self.probe_buf = Some(MemoryRegion::register(
                self.source.pd(),
                AlignedBuf::new(2 * MAX_PROBE_LEN as usize),
                Access::LOCAL_WRITE,
            )?);
        }
        let VerbsPath {
            qp,
            remote,
            ring,
            probe_buf,
            ..
        } = self;
        let buf = probe_buf.as_ref().expect("registered above");
        let dst = remote.slice(ring.remote_offset + ring_off, len)?;
        match kind {
            Probe::WriteRead => {
                let tail = 8.min(len);
                let flush =
                    remote.slice(ring.remote_offset + ring_off + u64::from(len - tail), tail)?;
                let zeros = buf.slice(0, len as usize)?;
                let flush_dst = buf.slice(MAX_PROBE_LEN as usize, tail as usize)?;
                qp.execute(
                    &[
                        Op::Write { src: zeros, dst },
                        Op::Read {
                            dst: flush_dst,
                            src: flush,
                        },
                    ],
                    timeout,
                )
            }
            Probe::Read => {
                let target = buf.slice(MAX_PROBE_LEN as usize, len as usize)?;
                qp.execute(
                    &[Op::Read {
                        dst: target,
                        src: dst,
                    }],
                    timeout,
                )
            }
        }
    }
}
