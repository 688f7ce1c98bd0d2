//! Protection domains.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use ibverbs_sys as ffi;

use super::{Context, Result, VerbsError};

pub(crate) struct PdInner {
    pub(crate) pd: NonNull<ffi::ibv_pd>,
    pub(crate) ctx: Context,
}

// SAFETY: verbs objects are thread-safe (libibverbs(7)); the pointer is
// immutable after creation.
unsafe impl Send for PdInner {}
// SAFETY: as above.
unsafe impl Sync for PdInner {}

impl Drop for PdInner {
    fn drop(&mut self) {
        // SAFETY: every MR and QP of this PD holds an Arc to it, so none is
        // left; the PD is deallocated once.
        unsafe { ffi::ibv_dealloc_pd(self.pd.as_ptr()) };
    }
}

/// A protection domain: groups the memory regions and queue pairs that may
/// be used together.
#[derive(Clone)]
pub struct ProtectionDomain {
    pub(crate) inner: Arc<PdInner>,
}

impl fmt::Debug for ProtectionDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectionDomain")
            .field("device", &self.inner.ctx.name())
            .finish_non_exhaustive()
    }
}

impl ProtectionDomain {
    /// Allocates a protection domain on `ctx`.
    ///
    /// # Errors
    /// The failing verb.
    pub fn new(ctx: &Context) -> Result<Self> {
        // SAFETY: the context is open for as long as ctx (cloned below) lives.
        let raw = unsafe { ffi::ibv_alloc_pd(ctx.inner.ctx.as_ptr()) };
        let pd =
            tg_sys::non_null(raw).map_err(|e| VerbsError::verb("ibv_alloc_pd", ctx.name(), e))?;
        Ok(ProtectionDomain {
            inner: Arc::new(PdInner {
                pd,
                ctx: ctx.clone(),
            }),
        })
    }

    /// The device context.
    pub fn context(&self) -> &Context {
        &self.inner.ctx
    }
}
