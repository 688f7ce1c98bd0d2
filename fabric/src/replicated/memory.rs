//! The local log's mapping as RDMA memory.

use std::sync::Arc;

use logcore::Log;

use crate::verbs::RdmaMemory;

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
