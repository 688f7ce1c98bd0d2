//! A queue pair before it is connected, and its connection (RESET → INIT →
//! RTR → RTS) to a peer's endpoint.

use std::fmt;
use std::io;
use std::ptr::NonNull;

use ibverbs_sys as ffi;

use super::super::{Access, CompletionQueue, LinkLayer, ProtectionDomain, Result, VerbsError};
use super::{Mtu, QpConfig, QueuePair};

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

/// The `ibv_qp`, destroyed on drop.
pub(super) struct RawQp {
    pub(super) qp: NonNull<ffi::ibv_qp>,
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
    pub(super) raw: RawQp,
    pub(super) cq: CompletionQueue,
    pub(super) pd: ProtectionDomain,
    pub(super) config: QpConfig,
    pub(super) gid_index: Option<u32>,
    pub(super) psn: u32,
    pub(super) max_inline: u32,
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

    /// `ibv_modify_qp` with `attr` and `mask`; `op` names the transition in
    /// the error.
    pub(super) fn modify(
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

        Ok(QueuePair::new(self, remote))
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
