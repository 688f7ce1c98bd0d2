//! The operations of a posted list, and posting one with one doorbell.

use ibverbs_sys as ffi;

use super::super::{LocalSlice, RemoteSlice, Result, VerbsError};
use super::QueuePair;

/// Most operations [`QueuePair::execute`] posts in one list (one doorbell).
/// Two WRITEs (a range that wraps the ring) and a READ flush need three.
pub const MAX_OPS_PER_POST: usize = 4;

/// One RDMA operation of a posted list.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// RDMA WRITE `src` to `dst`.
    Write {
        /// Local source.
        src: LocalSlice<'a>,
        /// Remote destination.
        dst: RemoteSlice,
    },
    /// RDMA READ `src` into `dst` (needs `LOCAL_WRITE` on `dst`'s region).
    Read {
        /// Local destination.
        dst: LocalSlice<'a>,
        /// Remote source.
        src: RemoteSlice,
    },
    /// SEND `src` to the peer's next posted receive (two-sided).
    Send {
        /// Local source.
        src: LocalSlice<'a>,
    },
}

impl QueuePair {
    /// Builds and posts `ops` as one linked list, only the last signaled;
    /// returns (first wr_id, count).
    ///
    /// # Safety
    /// The caller keeps every local buffer of `ops` allocated and
    /// registered until the device is done with it (see
    /// [`Self::post_unwaited`]).
    pub(super) unsafe fn post_list(&mut self, ops: &[Op<'_>]) -> Result<(u64, usize)> {
        if self.broken {
            return Err(VerbsError::QpBroken {
                device: self.device().to_owned(),
                qpn: self.qpn,
            });
        }
        if ops.is_empty() || ops.len() > MAX_OPS_PER_POST {
            return Err(VerbsError::InvalidRequest {
                reason: format!(
                    "post 1 to {MAX_OPS_PER_POST} operations at once, got {}",
                    ops.len()
                ),
            });
        }
        let n = ops.len();
        let mut sges = [ffi::ibv_sge::default(); MAX_OPS_PER_POST];
        let mut wrs = [ffi::ibv_send_wr::default(); MAX_OPS_PER_POST];
        let base = self.next_wr_id;
        self.next_wr_id += n as u64;
        for (i, op) in ops.iter().enumerate() {
            let (local, remote, opcode, inline) = match *op {
                Op::Write { src, dst } => {
                    if src.len != dst.len {
                        return Err(VerbsError::InvalidRequest {
                            reason: format!(
                                "WRITE of {} bytes into a {}-byte remote slice",
                                src.len, dst.len
                            ),
                        });
                    }
                    (
                        src,
                        dst,
                        ffi::ibv_wr_opcode::IBV_WR_RDMA_WRITE,
                        src.len <= self.max_inline,
                    )
                }
                Op::Read { dst, src } => {
                    if !dst.writable {
                        return Err(VerbsError::InvalidRequest {
                            reason: "READ into memory registered without LOCAL_WRITE".to_owned(),
                        });
                    }
                    if src.len != dst.len {
                        return Err(VerbsError::InvalidRequest {
                            reason: format!(
                                "READ of {} bytes into a {}-byte local slice",
                                src.len, dst.len
                            ),
                        });
                    }
                    (dst, src, ffi::ibv_wr_opcode::IBV_WR_RDMA_READ, false)
                }
                Op::Send { src } => {
                    let none = RemoteSlice {
                        addr: 0,
                        rkey: 0,
                        len: src.len,
                    };
                    (
                        src,
                        none,
                        ffi::ibv_wr_opcode::IBV_WR_SEND,
                        src.len <= self.max_inline,
                    )
                }
            };
            sges[i] = ffi::ibv_sge {
                addr: local.addr,
                length: local.len,
                lkey: local.lkey,
            };
            let wr = &mut wrs[i];
            wr.wr_id = base + i as u64;
            wr.num_sge = 1;
            wr.opcode = opcode;
            let mut flags = 0;
            if inline {
                flags |= ffi::ibv_send_flags::IBV_SEND_INLINE.0;
            }
            if i == n - 1 {
                flags |= ffi::ibv_send_flags::IBV_SEND_SIGNALED.0;
            }
            wr.send_flags = flags;
            wr.wr.rdma = ffi::ibv_send_wr__bindgen_ty_2__bindgen_ty_1 {
                remote_addr: remote.addr,
                rkey: remote.rkey,
            };
        }
        let sge_base = sges.as_mut_ptr();
        let wr_base = wrs.as_mut_ptr();
        for i in 0..n {
            // SAFETY: i and i + 1 are within the arrays (n <= MAX_OPS_PER_POST).
            unsafe {
                (*wr_base.add(i)).sg_list = sge_base.add(i);
                (*wr_base.add(i)).next = if i + 1 < n {
                    wr_base.add(i + 1)
                } else {
                    std::ptr::null_mut()
                };
            }
        }
        let qp = self.prepared.raw.qp.as_ptr();
        let mut bad: *mut ffi::ibv_send_wr = std::ptr::null_mut();
        // SAFETY: the QP is live and connected; wrs/sges are valid for the
        // call (the provider copies them); the local buffers outlive the
        // device's use of them by this function's contract.
        let rc = unsafe {
            let ctx = (*qp).context;
            let post = (*ctx).ops.post_send.expect("provider without post_send");
            post(qp, wr_base, &mut bad)
        };
        if let Err(e) = tg_sys::errno_result(rc) {
            let err = VerbsError::verb("ibv_post_send", self.device(), e);
            // Some requests before `bad` may be posted: stop them before
            // their buffers go out of scope.
            if bad != wr_base {
                self.abort(base + n as u64 - 1);
            }
            return Err(err);
        }
        Ok((base, n))
    }
}
