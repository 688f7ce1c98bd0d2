//! The log's mappings as RDMA memory: the writer's own log, and a
//! replica's (or the closure's) region. Re-exported by
//! [`crate::replicated`], which registers them.

use std::sync::Arc;

use logcore::Log;

use super::RdmaMemory;

/// A log's region, kept alive (and so mapped) by the `Arc`, as memory the
/// device may read. It is registered without `LOCAL_WRITE`: the device can
/// read the log to send it, never write into it.
#[derive(Debug, Clone)]
pub struct LogMemory(pub Arc<Log>);

// SAFETY: the region is one mapping owned by the Log, fixed for the Log's
// lifetime, which the Arc extends past the registration's. LogMemory hands
// out no references; the Log's own writers use raw pointers into the region.
unsafe impl RdmaMemory for LogMemory {
    fn as_ptr(&self) -> *mut u8 {
        self.0.region().as_ptr()
    }
    fn len(&self) -> usize {
        self.0.region().len()
    }
}

/// The first `len` bytes of a region (a replica registers exactly the
/// primary's region length, whatever its device's size), as memory peers
/// may write into.
#[derive(Debug)]
pub struct RegionMemory {
    region: logcore::Region,
    len: usize,
}

impl RegionMemory {
    /// Wraps `region`, exposing its first `len` bytes; `None` if the region
    /// is shorter.
    pub fn new(region: logcore::Region, len: usize) -> Option<Self> {
        (len > 0 && len <= region.len()).then_some(RegionMemory { region, len })
    }

    /// The region (to persist ranges the device wrote).
    pub fn region(&self) -> &logcore::Region {
        &self.region
    }
}

// SAFETY: the mapping is owned by `region`, fixed for its lifetime (and so
// for this value's); `len` never exceeds it. No references to the bytes are
// handed out: the device writes them, the replica reads them through its own
// separate mapping.
unsafe impl RdmaMemory for RegionMemory {
    fn as_ptr(&self) -> *mut u8 {
        self.region.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}
