//! Memory the device may be given: the [`RdmaMemory`] contract and a
//! page-aligned heap buffer.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;

/// Memory that can be registered with an RDMA device.
///
/// # Safety
///
/// Implementors guarantee that `as_ptr()..as_ptr()+len()` is one allocation
/// (or mapping), readable and writable, that stays valid and at the same
/// address for as long as the value lives, whatever happens to the value
/// (moves included), and that the implementor never hands out references to
/// it that assume no one else writes (the device writes at any time).
pub unsafe trait RdmaMemory: Send + Sync {
    /// Start of the memory.
    fn as_ptr(&self) -> *mut u8;
    /// Its length in bytes.
    fn len(&self) -> usize;
    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A zeroed, page-aligned heap buffer for staging and READ targets.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the buffer is plain bytes owned by this value; all access goes
// through raw pointers by its owner (a MemoryRegion), never through shared
// references.
unsafe impl Send for AlignedBuf {}
// SAFETY: as above.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes aligned to 4096.
    ///
    /// # Panics
    /// If `len` is 0 or the allocation fails.
    pub fn new(len: usize) -> Self {
        assert!(len > 0, "AlignedBuf of 0 bytes");
        let layout = Layout::from_size_align(len, 4096).expect("buffer too large");
        // SAFETY: layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, layout }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.layout.size())
            .finish()
    }
}

// SAFETY: the heap allocation does not move when the AlignedBuf moves and
// lives until drop; AlignedBuf exposes no references to its bytes.
unsafe impl RdmaMemory for AlignedBuf {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.layout.size()
    }
}

// SAFETY: a MAP_SHARED mapping stays at its address until munmap on drop;
// MmapRaw hands out only raw pointers.
unsafe impl RdmaMemory for memmap2::MmapRaw {
    fn as_ptr(&self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn len(&self) -> usize {
        memmap2::MmapRaw::len(self)
    }
}
