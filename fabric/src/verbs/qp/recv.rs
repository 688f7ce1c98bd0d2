//! Two-sided receives: the queue pair's ring of receive buffers, and
//! waiting for the peer's next SEND.

use std::collections::VecDeque;
use std::time::Duration;

use ibverbs_sys as ffi;

use super::super::{Access, AlignedBuf, MemoryRegion, Result, Spin, VerbsError};
use super::{QueuePair, POLL_BATCH};

/// Receive buffers owned by the queue pair: posted once, reposted after each
/// message is copied out, so a posted receive never outlives its buffer.
pub(super) struct RecvRing {
    mr: MemoryRegion<AlignedBuf>,
    slot_len: usize,
    /// Completed receives not yet taken: (slot, byte length). Bounded by the
    /// number of slots (each slot completes at most once before reposting).
    ready: VecDeque<(usize, usize)>,
}

/// wr_ids of receives carry this bit, so send and receive completions never
/// collide on one CQ.
const RECV_WR_BIT: u64 = 1 << 63;

impl QueuePair {
    /// Gives the QP `slots` receive buffers of `slot_len` bytes each and posts
    /// them, so the peer may SEND up to `slots` messages ahead of
    /// [`Self::recv`]. Call once, before the peer sends anything.
    ///
    /// # Errors
    /// [`VerbsError::InvalidRequest`] if already enabled or `slots` exceeds
    /// the receive queue; the failing verb.
    pub fn enable_recv(&mut self, slots: usize, slot_len: usize) -> Result<()> {
        if self.recv.is_some() || slots == 0 || slots > self.prepared.config.max_recv_wr as usize {
            return Err(VerbsError::InvalidRequest {
                reason: format!(
                    "enable_recv once, with 1..={} slots (got {slots})",
                    self.prepared.config.max_recv_wr
                ),
            });
        }
        let mr = MemoryRegion::register(
            &self.prepared.pd,
            AlignedBuf::new(slots * slot_len),
            Access::LOCAL_WRITE,
        )?;
        self.recv = Some(RecvRing {
            mr,
            slot_len,
            ready: VecDeque::with_capacity(slots),
        });
        for slot in 0..slots {
            self.post_recv_slot(slot)?;
        }
        Ok(())
    }

    fn post_recv_slot(&mut self, slot: usize) -> Result<()> {
        let ring = self.recv.as_ref().expect("receive ring enabled");
        let s = ring.mr.slice(slot * ring.slot_len, ring.slot_len)?;
        let mut sge = ffi::ibv_sge {
            addr: s.addr,
            length: s.len,
            lkey: s.lkey,
        };
        let mut wr = ffi::ibv_recv_wr {
            wr_id: RECV_WR_BIT | slot as u64,
            next: std::ptr::null_mut(),
            sg_list: &mut sge,
            num_sge: 1,
        };
        let qp = self.prepared.raw.qp.as_ptr();
        let mut bad: *mut ffi::ibv_recv_wr = std::ptr::null_mut();
        // SAFETY: the QP is live; wr/sge are valid for the call (copied by
        // the provider); the buffer belongs to `self.recv`, which is dropped
        // only after the QP is destroyed (field order), so it outlives the
        // posted receive.
        let rc = unsafe {
            let ctx = (*qp).context;
            let post = (*ctx).ops.post_recv.expect("provider without post_recv");
            post(qp, &mut wr, &mut bad)
        };
        tg_sys::errno_result(rc).map_err(|e| VerbsError::verb("ibv_post_recv", self.device(), e))
    }

    /// Records a receive completion; false if `wc` is not one.
    pub(super) fn stash_recv(&mut self, wc: &ffi::ibv_wc) -> bool {
        if wc.wr_id() & RECV_WR_BIT == 0 {
            return false;
        }
        if wc.error().is_some() {
            // Flushed on QP error; the QP is unusable from here.
            self.broken = true;
        } else if let Some(ring) = self.recv.as_mut() {
            let slot = usize::try_from(wc.wr_id() & !RECV_WR_BIT).unwrap_or(usize::MAX);
            ring.ready.push_back((slot, wc.len()));
        }
        true
    }

    /// Waits for the next message the peer SENT and copies it into `out`;
    /// returns its length. Longer messages than `out` are an error.
    ///
    /// # Errors
    /// [`VerbsError::Timeout`] (the QP stays usable), [`VerbsError::QpBroken`],
    /// [`VerbsError::InvalidRequest`] without [`Self::enable_recv`].
    pub fn recv(&mut self, out: &mut [u8], timeout: Duration) -> Result<usize> {
        if self.recv.is_none() {
            return Err(VerbsError::InvalidRequest {
                reason: "recv before enable_recv".to_owned(),
            });
        }
        let mut spin = Spin::new();
        let mut wcs = [ffi::ibv_wc::default(); POLL_BATCH];
        loop {
            if let Some((slot, len)) = self.recv.as_mut().and_then(|r| r.ready.pop_front()) {
                let ring = self.recv.as_ref().expect("enabled");
                if len > out.len() {
                    self.post_recv_slot(slot)?;
                    return Err(VerbsError::InvalidRequest {
                        reason: format!("received {len} bytes into a {}-byte buffer", out.len()),
                    });
                }
                ring.mr.read_at(slot * ring.slot_len, &mut out[..len])?;
                self.post_recv_slot(slot)?;
                return Ok(len);
            }
            if self.broken {
                return Err(VerbsError::QpBroken {
                    device: self.device().to_owned(),
                    qpn: self.qpn,
                });
            }
            let got = self.prepared.cq.poll(&mut wcs)?;
            for wc in &wcs[..got] {
                if !self.stash_recv(wc) && wc.error().is_some() {
                    self.broken = true;
                }
            }
            if got == 0 {
                self.pause(&mut spin, timeout)?;
            }
        }
    }
}
