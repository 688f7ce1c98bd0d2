//! A connected queue pair (RTS): its state, and running posted lists to
//! completion (waiting, reaping, aborting).

use std::fmt;
use std::time::{Duration, Instant};

use ibverbs_sys as ffi;

use super::super::{Result, Spin, VerbsError};
use super::recv::RecvRing;
use super::{Op, PreparedQp, QpConfig, QpEndpoint, POLL_BATCH};

/// How long to wait for flushed completions after moving a QP to error.
const DRAIN_BOUND: Duration = Duration::from_secs(2);

/// A connected RC queue pair (RTS).
pub struct QueuePair {
    pub(super) qpn: u32,
    remote: QpEndpoint,
    pub(super) next_wr_id: u64,
    pub(super) broken: bool,
    pub(super) max_inline: u32,
    // Declared before `recv`: the QP is destroyed before its receive buffers
    // are deregistered.
    pub(super) prepared: PreparedQp,
    pub(super) recv: Option<RecvRing>,
}

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
    /// The queue pair `prepared` became once connected to `remote`.
    pub(super) fn new(prepared: PreparedQp, remote: QpEndpoint) -> Self {
        QueuePair {
            qpn: prepared.qpn(),
            remote,
            next_wr_id: 1,
            broken: false,
            max_inline: prepared.max_inline,
            recv: None,
            prepared,
        }
    }

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
    pub(super) fn pause(&self, spin: &mut Spin, timeout: Duration) -> Result<()> {
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

    /// The error for a failed completion of `wr_id` in the list from `base`.
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
