//! Reliable-connected queue pairs: creation, connection (RESET → INIT →
//! RTR → RTS), and posting linked lists of RDMA operations with one doorbell.

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use ibverbs_sys as ffi;

use std::collections::VecDeque;

use super::{
    Access, AlignedBuf, CompletionQueue, LinkLayer, LocalSlice, MemoryRegion, ProtectionDomain,
    RemoteSlice, Result, Spin, VerbsError,
};

/// Most operations [`QueuePair::execute`] posts in one list (one doorbell).
/// Two WRITEs (a range that wraps the ring) and a READ flush need three.
pub const MAX_OPS_PER_POST: usize = 4;

/// Completions polled per `ibv_poll_cq` call.
const POLL_BATCH: usize = 16;

/// How long to wait for flushed completions after moving a QP to error.
const DRAIN_BOUND: Duration = Duration::from_secs(2);

/// Path MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mtu {
    /// 256 bytes.
    Mtu256 = 1,
    /// 512 bytes.
    Mtu512 = 2,
    /// 1024 bytes.
    Mtu1024 = 3,
    /// 2048 bytes.
    Mtu2048 = 4,
    /// 4096 bytes.
    Mtu4096 = 5,
}

impl Mtu {
    /// The MTU for a byte count (256, 512, 1024, 2048, 4096).
    pub fn from_bytes(bytes: u32) -> Option<Mtu> {
        Some(match bytes {
            256 => Mtu::Mtu256,
            512 => Mtu::Mtu512,
            1024 => Mtu::Mtu1024,
            2048 => Mtu::Mtu2048,
            4096 => Mtu::Mtu4096,
            _ => return None,
        })
    }

    fn from_code(code: u32) -> Mtu {
        match code {
            1 => Mtu::Mtu256,
            2 => Mtu::Mtu512,
            3 => Mtu::Mtu1024,
            4 => Mtu::Mtu2048,
            _ => Mtu::Mtu4096,
        }
    }
}

/// Queue pair parameters (the `qp` section of a config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QpConfig {
    /// Upper bound on the path MTU; the port's active MTU caps it.
    pub path_mtu: Mtu,
    /// Local ACK timeout exponent: 4.096 µs × 2^timeout (14 ≈ 67 ms).
    pub timeout: u8,
    /// Transport retries before the QP errors (0..=7).
    pub retry_count: u8,
    /// RNR retries (0..=7, 7 = forever).
    pub rnr_retry: u8,
    /// RNR NAK timer code advertised to the peer.
    pub min_rnr_timer: u8,
    /// Outstanding RDMA READs this side may issue (capped by the device).
    pub max_rd_atomic: u8,
    /// Ships (WRITEs + READ flush) a mirror keeps in flight on this QP
    /// (1 = one at a time; see `qp.ships-in-flight`).
    pub ships_in_flight: u8,
    /// Send queue depth.
    pub max_send_wr: u32,
    /// Receive queue depth.
    pub max_recv_wr: u32,
    /// Largest WRITE sent inline (copied at post time, no DMA of the source).
    pub max_inline: u32,
    /// GID index to route with; `None` picks the default (RoCE v2
    /// IPv4-mapped on Ethernet, LID routing on InfiniBand).
    pub gid_index: Option<u32>,
    /// Traffic class of the GRH (RoCE: DSCP << 2 | ECN).
    pub traffic_class: u8,
    /// Service level.
    pub service_level: u8,
    /// GRH hop limit.
    pub hop_limit: u8,
}

impl Default for QpConfig {
    fn default() -> Self {
        QpConfig {
            path_mtu: Mtu::Mtu4096,
            timeout: 14,
            retry_count: 7,
            rnr_retry: 7,
            min_rnr_timer: 12,
            max_rd_atomic: 16,
            ships_in_flight: 1,
            max_send_wr: 256,
            max_recv_wr: 64,
            max_inline: 256,
            gid_index: None,
            traffic_class: 0,
            service_level: 0,
            hop_limit: 64,
        }
    }
}

/// What a peer needs to connect to a queue pair (exchanged over the control
/// channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QpEndpoint {
    /// Queue pair number.
    pub qpn: u32,
    /// Port LID (InfiniBand; 0 on Ethernet).
    pub lid: u16,
    /// GID (all zero when LID-routed).
    pub gid: [u8; 16],
    /// Initial packet sequence number of this side's send queue.
    pub psn: u32,
}

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

struct RawQp {
    qp: NonNull<ffi::ibv_qp>,
}

impl Drop for RawQp {
    fn drop(&mut self) {
        // SAFETY: created by ibv_create_qp and destroyed once; its PD and CQ
        // outlive it (fields after `raw` in PreparedQp/QueuePair).
        unsafe { ffi::ibv_destroy_qp(self.qp.as_ptr()) };
    }
}

/// A queue pair that exists but is not connected yet (RESET state).
pub struct PreparedQp {
    raw: RawQp,
    cq: CompletionQueue,
    pd: ProtectionDomain,
    config: QpConfig,
    gid_index: Option<u32>,
    psn: u32,
    max_inline: u32,
}

// SAFETY: the QP is only used through &mut self or immutable fields; verbs
// are thread-safe.
unsafe impl Send for PreparedQp {}

impl fmt::Debug for PreparedQp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedQp")
            .field("device", &self.pd.context().name())
            .field("qpn", &format_args!("{:#x}", self.qpn()))
            .finish_non_exhaustive()
    }
}

/// Bound on `getrandom` calls for one PSN: each retry follows an `EINTR` (a
/// signal arrived) or a short read, and neither repeats without end.
const GETRANDOM_ATTEMPTS: usize = 16;

/// A random 24-bit initial packet sequence number, from the kernel's CSPRNG.
///
/// A random PSN keeps late packets of an earlier queue pair whose number the
/// device reuses out of the new one's sequence window; a fixed PSN would let
/// them in. There is no weaker fallback: `getrandom` exists on every kernel
/// with RDMA support we run on (3.17+), so its failure means a sandbox
/// refuses it, which the error reports rather than hides.
fn random_psn() -> io::Result<u32> {
    let mut b = [0u8; 4];
    let mut filled = 0;
    let mut last = io::Error::from(io::ErrorKind::Interrupted);
    for _ in 0..GETRANDOM_ATTEMPTS {
        let rest = &mut b[filled..];
        // SAFETY: `rest` is a valid writable buffer of `rest.len()` bytes
        // for the call's duration.
        match tg_sys::syscall!(unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) })
        {
            Ok(n) => {
                // n <= rest.len() (getrandom(2)); a short read is retried.
                filled += usize::try_from(n).unwrap_or(0).min(rest.len());
                if filled == b.len() {
                    return Ok(u32::from_le_bytes(b) & 0x00ff_ffff);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

impl PreparedQp {
    /// Creates an RC queue pair on `pd` with a completion queue of its own
    /// (so that polling for this QP never consumes another QP's
    /// completions).
    ///
    /// # Errors
    /// [`VerbsError::NoGid`] on RoCE without a usable GID, or the failing
    /// verb (`getrandom` for the initial PSN included).
    pub fn new(pd: &ProtectionDomain, config: QpConfig) -> Result<Self> {
        let ctx = pd.context();
        let psn = random_psn().map_err(|e| VerbsError::verb("getrandom", ctx.name(), e))?;
        let gid_index = match config.gid_index {
            Some(i) => {
                ctx.gid(i)?;
                Some(i)
            }
            None => ctx.default_gid_index()?,
        };
        let cq = CompletionQueue::new(ctx, config.max_send_wr + config.max_recv_wr)?;
        let mut attr = ffi::ibv_qp_init_attr {
            qp_context: std::ptr::null_mut(),
            send_cq: cq.inner.cq.as_ptr(),
            recv_cq: cq.inner.cq.as_ptr(),
            srq: std::ptr::null_mut(),
            cap: ffi::ibv_qp_cap {
                max_send_wr: config.max_send_wr,
                max_recv_wr: config.max_recv_wr,
                max_send_sge: 1,
                max_recv_sge: 1,
                max_inline_data: config.max_inline,
            },
            qp_type: ffi::ibv_qp_type::IBV_QPT_RC,
            sq_sig_all: 0,
        };
        // SAFETY: pd and cq are live and kept in the returned value; attr is
        // a valid init struct that ibv_create_qp updates with the real caps.
        let raw = unsafe { ffi::ibv_create_qp(pd.inner.pd.as_ptr(), &mut attr) };
        let qp =
            tg_sys::non_null(raw).map_err(|e| VerbsError::verb("ibv_create_qp", ctx.name(), e))?;
        Ok(PreparedQp {
            raw: RawQp { qp },
            cq,
            pd: pd.clone(),
            config,
            gid_index,
            psn,
            max_inline: attr.cap.max_inline_data,
        })
    }

    /// Queue pair number.
    pub fn qpn(&self) -> u32 {
        // SAFETY: the QP is live.
        unsafe { self.raw.qp.as_ref() }.qp_num
    }

    /// This side's endpoint, to send to the peer.
    ///
    /// # Errors
    /// [`VerbsError::NoGid`] if the GID vanished (netdev address removed).
    pub fn endpoint(&self) -> Result<QpEndpoint> {
        let ctx = self.pd.context();
        let gid = match self.gid_index {
            Some(i) => ctx.gid(i)?,
            None => [0; 16],
        };
        Ok(QpEndpoint {
            qpn: self.qpn(),
            lid: ctx.lid(),
            gid,
            psn: self.psn,
        })
    }

    fn modify(
        &self,
        attr: &mut ffi::ibv_qp_attr,
        mask: ffi::ibv_qp_attr_mask,
        op: &'static str,
    ) -> Result<()> {
        let mask = i32::try_from(mask.0).expect("qp attr mask fits in i32");
        // SAFETY: the QP is live; attr is a valid attribute struct.
        let rc = unsafe { ffi::ibv_modify_qp(self.raw.qp.as_ptr(), attr, mask) };
        tg_sys::errno_result(rc).map_err(|e| VerbsError::verb(op, self.pd.context().name(), e))
    }

    /// Connects to `remote` (INIT → RTR → RTS) granting the peer `access` to
    /// this QP's memory (`Access::REPLICA` on a replica; none on a writer).
    ///
    /// # Errors
    /// The failing `ibv_modify_qp`, named by the target state.
    pub fn connect(self, remote: QpEndpoint, access: Access) -> Result<QueuePair> {
        use ffi::ibv_qp_attr_mask as m;
        let ctx = self.pd.context().clone();
        let cfg = self.config;

        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_INIT,
            pkey_index: 0,
            port_num: ctx.port(),
            qp_access_flags: access.bits(),
            ..Default::default()
        };
        self.modify(
            &mut attr,
            m::IBV_QP_STATE | m::IBV_QP_PKEY_INDEX | m::IBV_QP_PORT | m::IBV_QP_ACCESS_FLAGS,
            "ibv_modify_qp(INIT)",
        )?;

        let path_mtu = cfg.path_mtu.min(Mtu::from_code(ctx.active_mtu_code()));
        let rd_atomic = u8::try_from(ctx.max_qp_rd_atom().min(u32::from(cfg.max_rd_atomic)))
            .unwrap_or(1)
            .max(1);
        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_RTR,
            path_mtu: path_mtu as u32,
            dest_qp_num: remote.qpn,
            rq_psn: remote.psn,
            max_dest_rd_atomic: rd_atomic,
            min_rnr_timer: cfg.min_rnr_timer,
            ..Default::default()
        };
        attr.ah_attr.dlid = remote.lid;
        attr.ah_attr.sl = cfg.service_level;
        attr.ah_attr.port_num = ctx.port();
        let use_grh = ctx.link_layer() == LinkLayer::Ethernet || cfg.gid_index.is_some();
        if use_grh {
            let sgid = self.gid_index.ok_or_else(|| VerbsError::NoGid {
                device: ctx.name().to_owned(),
                port: ctx.port(),
                wanted: "source (GRH routing needs one)".to_owned(),
            })?;
            attr.ah_attr.is_global = 1;
            attr.ah_attr.grh.dgid.raw = remote.gid;
            attr.ah_attr.grh.sgid_index = u8::try_from(sgid).unwrap_or(0);
            attr.ah_attr.grh.hop_limit = cfg.hop_limit;
            attr.ah_attr.grh.traffic_class = cfg.traffic_class;
        }
        self.modify(
            &mut attr,
            m::IBV_QP_STATE
                | m::IBV_QP_AV
                | m::IBV_QP_PATH_MTU
                | m::IBV_QP_DEST_QPN
                | m::IBV_QP_RQ_PSN
                | m::IBV_QP_MAX_DEST_RD_ATOMIC
                | m::IBV_QP_MIN_RNR_TIMER,
            "ibv_modify_qp(RTR)",
        )?;

        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_RTS,
            sq_psn: self.psn,
            timeout: cfg.timeout,
            retry_cnt: cfg.retry_count,
            rnr_retry: cfg.rnr_retry,
            max_rd_atomic: rd_atomic,
            ..Default::default()
        };
        self.modify(
            &mut attr,
            m::IBV_QP_STATE
                | m::IBV_QP_SQ_PSN
                | m::IBV_QP_TIMEOUT
                | m::IBV_QP_RETRY_CNT
                | m::IBV_QP_RNR_RETRY
                | m::IBV_QP_MAX_QP_RD_ATOMIC,
            "ibv_modify_qp(RTS)",
        )?;

        let qpn = self.qpn();
        Ok(QueuePair {
            qpn,
            remote,
            next_wr_id: 1,
            broken: false,
            max_inline: self.max_inline,
            recv: None,
            prepared: self,
        })
    }
}

/// A connected RC queue pair (RTS).
pub struct QueuePair {
    qpn: u32,
    remote: QpEndpoint,
    next_wr_id: u64,
    broken: bool,
    max_inline: u32,
    // Declared before `recv`: the QP is destroyed before its receive buffers
    // are deregistered.
    prepared: PreparedQp,
    recv: Option<RecvRing>,
}

/// Receive buffers owned by the queue pair: posted once, reposted after each
/// message is copied out, so a posted receive never outlives its buffer.
struct RecvRing {
    mr: MemoryRegion<AlignedBuf>,
    slot_len: usize,
    /// Completed receives not yet taken: (slot, byte length). Bounded by the
    /// number of slots (each slot completes at most once before reposting).
    ready: VecDeque<(usize, usize)>,
}

/// wr_ids of receives carry this bit, so send and receive completions never
/// collide on one CQ.
const RECV_WR_BIT: u64 = 1 << 63;

impl fmt::Debug for QueuePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuePair")
            .field("device", &self.device())
            .field("qpn", &format_args!("{:#x}", self.qpn))
            .field("remote_qpn", &format_args!("{:#x}", self.remote.qpn))
            .field("broken", &self.broken)
            .finish()
    }
}

impl QueuePair {
    /// Local queue pair number.
    pub fn qpn(&self) -> u32 {
        self.qpn
    }

    /// The peer's endpoint.
    pub fn remote(&self) -> QpEndpoint {
        self.remote
    }

    /// Device name.
    pub fn device(&self) -> &str {
        self.prepared.pd.context().name()
    }

    /// Largest WRITE this QP sends inline.
    pub fn max_inline(&self) -> u32 {
        self.max_inline
    }

    /// Whether an earlier failure moved the QP to the error state.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Moves the QP to the error state: outstanding and future requests
    /// fail, and the peer can no longer use it. Used for fencing.
    ///
    /// # Errors
    /// The failing `ibv_modify_qp`.
    pub fn set_error(&mut self) -> Result<()> {
        self.broken = true;
        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_ERR,
            ..Default::default()
        };
        self.prepared.modify(
            &mut attr,
            ffi::ibv_qp_attr_mask::IBV_QP_STATE,
            "ibv_modify_qp(ERR)",
        )
    }

    /// Posts `ops` as one linked list (one doorbell), with only the last
    /// signaled, and polls this QP's CQ until it completes.
    ///
    /// On an RC QP requests execute in order, so the last one's completion
    /// means all have completed. WRITEs no longer than [`Self::max_inline`]
    /// go inline. Returns only when the device no longer uses any buffer of
    /// `ops`: after the signaled completion, or after moving the QP to the
    /// error state and draining (then the QP is broken).
    ///
    /// # Errors
    /// [`VerbsError::Completion`] naming the failed op,
    /// [`VerbsError::Timeout`], [`VerbsError::QpBroken`],
    /// [`VerbsError::InvalidRequest`], or the failing `ibv_post_send`.
    pub fn execute(&mut self, ops: &[Op<'_>], timeout: Duration) -> Result<()> {
        // SAFETY: `wait` below does not return before the device is done
        // with every buffer of `ops` (signaled completion, or error state
        // and drain), and `ops` borrows them for this whole call.
        let (base, n) = unsafe { self.post_list(ops)? };
        self.wait(base, n, timeout)
    }

    /// Posts `ops` like [`Self::execute`] but returns without waiting:
    /// the last op's wr_id, to be found by [`Self::reap`]. At most one list
    /// may be outstanding per signaled completion the CQ can hold; the
    /// caller bounds that.
    ///
    /// # Safety
    /// The device reads from and writes into the local buffers of `ops`
    /// after this returns: each must stay allocated and registered until
    /// [`Self::reap`] reports the returned wr_id (or a later one) done, or
    /// the QP is destroyed (an owner that holds the buffers in fields
    /// dropped after the QP satisfies this).
    ///
    /// # Errors
    /// As [`Self::execute`], for the post itself.
    pub unsafe fn post_unwaited(&mut self, ops: &[Op<'_>]) -> Result<u64> {
        // SAFETY: forwarded to our caller.
        let (base, n) = unsafe { self.post_list(ops)? };
        Ok(base + n as u64 - 1)
    }

    /// Polls the CQ once, without waiting: returns the highest wr_id among
    /// the successful signaled send completions found (0 if none). On an RC
    /// QP they complete in posting order, so every list posted up to that
    /// one has completed.
    ///
    /// # Errors
    /// [`VerbsError::Completion`] for a failed request (the QP is then
    /// broken); the failing `ibv_poll_cq`.
    pub fn reap(&mut self) -> Result<u64> {
        if self.broken {
            return Err(VerbsError::QpBroken {
                device: self.device().to_owned(),
                qpn: self.qpn,
            });
        }
        let mut wcs = [ffi::ibv_wc::default(); POLL_BATCH];
        let got = self.prepared.cq.poll(&mut wcs)?;
        let mut done = 0;
        for wc in &wcs[..got] {
            if self.stash_recv(wc) {
                continue;
            }
            if let Some((status, vendor_err)) = wc.error() {
                self.broken = true;
                return Err(self.completion_error(wc.wr_id(), 0, status, vendor_err));
            }
            done = done.max(wc.wr_id());
        }
        Ok(done)
    }

    /// The parameters the QP was created with (before device caps).
    pub fn config(&self) -> &QpConfig {
        &self.prepared.config
    }

    /// Builds and posts `ops` as one linked list, only the last signaled;
    /// returns (first wr_id, count).
    ///
    /// # Safety
    /// The caller keeps every local buffer of `ops` allocated and
    /// registered until the device is done with it (see
    /// [`Self::post_unwaited`]).
    unsafe fn post_list(&mut self, ops: &[Op<'_>]) -> Result<(u64, usize)> {
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

    /// Polls until the list of `n` requests from wr_id `base` completes, or
    /// `timeout` passes (then the QP is aborted).
    fn wait(&mut self, base: u64, n: usize, timeout: Duration) -> Result<()> {
        let last = base + n as u64 - 1;
        let mut spin = Spin::new();
        let mut wcs = [ffi::ibv_wc::default(); POLL_BATCH];
        let mut first_err: Option<VerbsError> = None;
        loop {
            let got = self.prepared.cq.poll(&mut wcs)?;
            let mut done = false;
            for wc in &wcs[..got] {
                if self.stash_recv(wc) {
                    continue;
                }
                if let Some((status, vendor_err)) = wc.error() {
                    if first_err.is_none() {
                        first_err =
                            Some(self.completion_error(wc.wr_id(), base, status, vendor_err));
                    }
                    self.broken = true;
                }
                done |= wc.wr_id() == last;
            }
            if done {
                return first_err.map_or(Ok(()), Err);
            }
            if let Err(timed_out) = self.pause(&mut spin, timeout) {
                self.abort(last);
                return Err(first_err.unwrap_or(timed_out));
            }
        }
    }

    /// Between two empty polls: [`Spin::wait_once`] (spin briefly, then
    /// yield); a [`VerbsError::Timeout`] instead once `spin` has waited
    /// longer than `timeout`.
    fn pause(&self, spin: &mut Spin, timeout: Duration) -> Result<()> {
        let waited = spin.waited();
        if waited > timeout {
            return Err(VerbsError::Timeout {
                device: self.device().to_owned(),
                qpn: self.qpn,
                waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            });
        }
        spin.wait_once();
        Ok(())
    }

    fn completion_error(&self, wr_id: u64, base: u64, status: u32, vendor_err: u32) -> VerbsError {
        // SAFETY: ibv_wc_status_str returns a static NUL-terminated string.
        let s = unsafe { std::ffi::CStr::from_ptr(ffi::ibv_wc_status_str(status)) };
        VerbsError::Completion {
            device: self.device().to_owned(),
            qpn: self.qpn,
            op_index: usize::try_from(wr_id.saturating_sub(base)).unwrap_or(usize::MAX),
            status,
            status_str: s.to_string_lossy().into_owned(),
            vendor_err,
        }
    }

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
    fn stash_recv(&mut self, wc: &ffi::ibv_wc) -> bool {
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

    /// Moves the QP to the error state and waits (bounded) until the list
    /// ending at wr_id `last` is flushed: after it, the device uses no
    /// buffer of any list posted up to `last`.
    pub fn abort(&mut self, last: u64) {
        let _ = self.set_error();
        let start = Instant::now();
        let mut wcs = [ffi::ibv_wc::default(); POLL_BATCH];
        while start.elapsed() < DRAIN_BOUND {
            let Ok(got) = self.prepared.cq.poll(&mut wcs) else {
                return;
            };
            if wcs[..got].iter().any(|wc| wc.wr_id() == last) {
                return;
            }
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::random_psn;

    #[test]
    fn psns_are_24_bits_and_random() {
        let psns: Vec<u32> = (0..8).map(|_| random_psn().expect("getrandom")).collect();
        assert!(psns.iter().all(|&p| p < 1 << 24), "{psns:?}");
        // Eight equal 24-bit draws would happen once in 2^168 runs.
        assert!(psns.windows(2).any(|w| w[0] != w[1]), "{psns:?}");
    }
}
