//! Memory regions: memory registered with a protection domain, and the
//! bounds-checked slices that work requests are built from.

use std::fmt;
use std::marker::PhantomData;
use std::ops::BitOr;
use std::ptr::NonNull;

use ibverbs_sys as ffi;

use super::{ProtectionDomain, RdmaMemory, Result, VerbsError};

/// Access rights of a memory region (local read is always granted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access(u32);

impl Access {
    /// Local read only (always granted): the device may send from it and
    /// nothing else.
    pub const LOCAL_READ: Access = Access(0);
    /// The device may write into it (READ targets, RECV buffers).
    pub const LOCAL_WRITE: Access = Access(ffi::ibv_access_flags::IBV_ACCESS_LOCAL_WRITE.0);
    /// Peers may RDMA WRITE into it (needs `LOCAL_WRITE`).
    pub const REMOTE_WRITE: Access = Access(ffi::ibv_access_flags::IBV_ACCESS_REMOTE_WRITE.0);
    /// Peers may RDMA READ from it.
    pub const REMOTE_READ: Access = Access(ffi::ibv_access_flags::IBV_ACCESS_REMOTE_READ.0);
    /// What a replica's mirror region needs.
    pub const REPLICA: Access =
        Access(Self::LOCAL_WRITE.0 | Self::REMOTE_WRITE.0 | Self::REMOTE_READ.0);

    /// Whether every right in `other` is granted.
    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for Access {
    type Output = Access;
    fn bitor(self, rhs: Access) -> Access {
        Access(self.0 | rhs.0)
    }
}

/// A registered memory region that owns its memory `M`.
///
/// The region is deregistered before the memory is released (field drop
/// order after `Drop::drop`), so the device never holds a key to freed
/// memory.
pub struct MemoryRegion<M: RdmaMemory> {
    mr: NonNull<ffi::ibv_mr>,
    access: Access,
    mem: M,
    pd: ProtectionDomain,
}

// SAFETY: the ibv_mr is immutable after registration; M is Send + Sync by
// the RdmaMemory contract.
unsafe impl<M: RdmaMemory> Send for MemoryRegion<M> {}
// SAFETY: as above; shared access only reads keys or copies bytes through
// raw pointers.
unsafe impl<M: RdmaMemory> Sync for MemoryRegion<M> {}

impl<M: RdmaMemory> fmt::Debug for MemoryRegion<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRegion")
            .field("device", &self.pd.context().name())
            .field("addr", &format_args!("{:#x}", self.addr()))
            .field("len", &self.len())
            .field("lkey", &format_args!("{:#x}", self.lkey()))
            .field("rkey", &format_args!("{:#x}", self.rkey()))
            .finish()
    }
}

impl<M: RdmaMemory> MemoryRegion<M> {
    /// Registers all of `mem` with `pd`.
    ///
    /// # Errors
    /// [`VerbsError::InvalidRequest`] for empty memory or `REMOTE_WRITE`
    /// without `LOCAL_WRITE`; otherwise the failing `ibv_reg_mr` (e.g.
    /// `EFAULT` for a file-backed fsdax mapping, which Linux refuses to pin
    /// long-term: use devdax).
    pub fn register(pd: &ProtectionDomain, mem: M, access: Access) -> Result<Self> {
        if mem.is_empty() {
            return Err(VerbsError::InvalidRequest {
                reason: "cannot register an empty memory region".to_owned(),
            });
        }
        if access.contains(Access::REMOTE_WRITE) && !access.contains(Access::LOCAL_WRITE) {
            return Err(VerbsError::InvalidRequest {
                reason: "REMOTE_WRITE requires LOCAL_WRITE (ibv_reg_mr(3))".to_owned(),
            });
        }
        let flags = i32::try_from(access.bits()).expect("access flags fit in i32");
        // SAFETY: the pd is live; mem's range is valid and fixed for as long
        // as `mem` lives (RdmaMemory contract), and we keep `mem` in the
        // returned value, which deregisters before dropping it.
        let raw =
            unsafe { ffi::ibv_reg_mr(pd.inner.pd.as_ptr(), mem.as_ptr().cast(), mem.len(), flags) };
        let mr = tg_sys::non_null(raw)
            .map_err(|e| VerbsError::verb("ibv_reg_mr", pd.context().name(), e))?;
        Ok(MemoryRegion {
            mr,
            access,
            mem,
            pd: pd.clone(),
        })
    }

    fn raw(&self) -> &ffi::ibv_mr {
        // SAFETY: mr is valid until Drop.
        unsafe { self.mr.as_ref() }
    }

    /// Local key.
    pub fn lkey(&self) -> u32 {
        self.raw().lkey
    }

    /// Remote key (give it only to authenticated peers).
    pub fn rkey(&self) -> u32 {
        self.raw().rkey
    }

    /// Start address as the device sees it.
    pub fn addr(&self) -> u64 {
        self.mem.as_ptr() as u64
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.mem.len()
    }

    /// Whether the region is empty (never, registration refuses it).
    pub fn is_empty(&self) -> bool {
        self.mem.is_empty()
    }

    /// The access rights it was registered with.
    pub fn access(&self) -> Access {
        self.access
    }

    /// What a peer needs to address this region.
    pub fn remote(&self) -> RemoteRegion {
        RemoteRegion {
            addr: self.addr(),
            rkey: self.rkey(),
            len: self.len() as u64,
        }
    }

    /// The memory it owns.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// The protection domain it belongs to.
    pub fn pd(&self) -> &ProtectionDomain {
        &self.pd
    }

    fn check(&self, what: &'static str, offset: usize, len: usize) -> Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.len()) {
            return Err(VerbsError::OutOfBounds {
                what,
                offset: offset as u64,
                len: len as u64,
                region_len: self.len() as u64,
            });
        }
        Ok(())
    }

    /// A slice to post work requests on; borrows the region so it cannot be
    /// deregistered while a request using it may be in flight.
    ///
    /// # Errors
    /// [`VerbsError::OutOfBounds`], or [`VerbsError::InvalidRequest`] for an
    /// empty or over-4-GiB slice.
    pub fn slice(&self, offset: usize, len: usize) -> Result<LocalSlice<'_>> {
        self.check("local MR", offset, len)?;
        let len = u32::try_from(len).ok().filter(|&l| l > 0).ok_or_else(|| {
            VerbsError::InvalidRequest {
                reason: format!("a work request moves 1 byte to 4 GiB, got {len}"),
            }
        })?;
        Ok(LocalSlice {
            addr: self.addr() + offset as u64,
            len,
            lkey: self.lkey(),
            writable: self.access.contains(Access::LOCAL_WRITE),
            _mr: PhantomData,
        })
    }

    /// Copies bytes out of the region (e.g. what a peer wrote).
    ///
    /// # Errors
    /// [`VerbsError::OutOfBounds`].
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check("local MR", offset, buf.len())?;
        // SAFETY: bounds checked above; the memory is valid (RdmaMemory
        // contract) and buf is a distinct Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.mem.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
        Ok(())
    }

    /// Copies bytes into the region.
    ///
    /// # Errors
    /// [`VerbsError::OutOfBounds`].
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.check("local MR", offset, data.len())?;
        // SAFETY: bounds checked above; the memory is valid and writable
        // (RdmaMemory contract) and data is a distinct Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.mem.as_ptr().add(offset), data.len());
        }
        Ok(())
    }
}

impl<M: RdmaMemory> Drop for MemoryRegion<M> {
    fn drop(&mut self) {
        // SAFETY: registered in `register`, deregistered once, before `mem`
        // is dropped. Work requests borrow the region (LocalSlice), so none
        // is in flight.
        unsafe { ffi::ibv_dereg_mr(self.mr.as_ptr()) };
    }
}

/// A bounds-checked piece of a local memory region, borrowed for as long as
/// a work request may use it.
#[derive(Debug, Clone, Copy)]
pub struct LocalSlice<'a> {
    pub(crate) addr: u64,
    pub(crate) len: u32,
    pub(crate) lkey: u32,
    pub(crate) writable: bool,
    _mr: PhantomData<&'a ()>,
}

impl LocalSlice<'_> {
    /// Length in bytes.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Always false: slices are never empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A peer's registered region, as learned at the handshake.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoteRegion {
    /// Start address in the peer's address space.
    pub addr: u64,
    /// Remote key.
    pub rkey: u32,
    /// Length in bytes.
    pub len: u64,
}

impl fmt::Debug for RemoteRegion {
    // The rkey is a capability: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteRegion")
            .field("addr", &format_args!("{:#x}", self.addr))
            .field("rkey", &"<redacted>")
            .field("len", &self.len)
            .finish()
    }
}

impl RemoteRegion {
    /// A bounds-checked piece of the peer's region.
    ///
    /// # Errors
    /// [`VerbsError::OutOfBounds`], or [`VerbsError::InvalidRequest`] for an
    /// empty slice.
    pub fn slice(&self, offset: u64, len: u32) -> Result<RemoteSlice> {
        if len == 0 {
            return Err(VerbsError::InvalidRequest {
                reason: "empty remote slice".to_owned(),
            });
        }
        if offset
            .checked_add(u64::from(len))
            .is_none_or(|end| end > self.len)
        {
            return Err(VerbsError::OutOfBounds {
                what: "remote region",
                offset,
                len: u64::from(len),
                region_len: self.len,
            });
        }
        Ok(RemoteSlice {
            addr: self.addr + offset,
            rkey: self.rkey,
            len,
        })
    }
}

/// A bounds-checked piece of a peer's region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteSlice {
    pub(crate) addr: u64,
    pub(crate) rkey: u32,
    pub(crate) len: u32,
}
