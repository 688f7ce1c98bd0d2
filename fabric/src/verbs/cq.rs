//! Completion queues.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use ibverbs_sys as ffi;

use super::{Context, Result, VerbsError};

pub(crate) struct CqInner {
    pub(crate) cq: NonNull<ffi::ibv_cq>,
    pub(crate) depth: u32,
    pub(crate) ctx: Context,
}

// SAFETY: verbs objects are thread-safe (libibverbs(7)); polling is
// serialised by the provider.
unsafe impl Send for CqInner {}
// SAFETY: as above.
unsafe impl Sync for CqInner {}

impl Drop for CqInner {
    fn drop(&mut self) {
        // SAFETY: every QP using this CQ holds an Arc to it, so none is left.
        unsafe { ffi::ibv_destroy_cq(self.cq.as_ptr()) };
    }
}

/// A completion queue, polled (never interrupt-driven: the committing
/// thread polls for its own completion).
#[derive(Clone)]
pub struct CompletionQueue {
    pub(crate) inner: Arc<CqInner>,
}

impl fmt::Debug for CompletionQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionQueue")
            .field("device", &self.inner.ctx.name())
            .field("depth", &self.inner.depth)
            .finish()
    }
}

impl CompletionQueue {
    /// Creates a CQ with room for at least `depth` completions.
    ///
    /// # Errors
    /// The failing verb (`EINVAL` when depth exceeds the device's limit).
    pub fn new(ctx: &Context, depth: u32) -> Result<Self> {
        let cqe = i32::try_from(depth).map_err(|_| VerbsError::InvalidRequest {
            reason: format!("CQ depth {depth} is too large"),
        })?;
        // SAFETY: the context is open; no completion channel, vector 0.
        let raw = unsafe {
            ffi::ibv_create_cq(
                ctx.inner.ctx.as_ptr(),
                cqe,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        let cq =
            tg_sys::non_null(raw).map_err(|e| VerbsError::verb("ibv_create_cq", ctx.name(), e))?;
        Ok(CompletionQueue {
            inner: Arc::new(CqInner {
                cq,
                depth,
                ctx: ctx.clone(),
            }),
        })
    }

    /// Polls up to `wcs.len()` completions without blocking; returns how
    /// many were written to the front of `wcs`.
    pub(crate) fn poll(&self, wcs: &mut [ffi::ibv_wc]) -> Result<usize> {
        let cq = self.inner.cq.as_ptr();
        let max = i32::try_from(wcs.len()).unwrap_or(i32::MAX);
        // SAFETY: cq is live; ibv_poll_cq is an inline dispatch through the
        // context's ops table, which the provider fills at open; wcs has
        // room for `max` entries.
        let n = unsafe {
            let ctx = (*cq).context;
            let poll = (*ctx).ops.poll_cq.expect("provider without poll_cq");
            poll(cq, max, wcs.as_mut_ptr())
        };
        tg_sys::count(n).map_err(|e| VerbsError::verb("ibv_poll_cq", self.inner.ctx.name(), e))
    }
}
