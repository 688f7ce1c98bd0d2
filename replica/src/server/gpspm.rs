//! The `gpspm` loop: one thread per admitted `gpspm` writer serves its
//! persist requests (RDMA SENDs on its queue pair, see [`fabric::gpspm`]) by
//! flushing the named ring range of the registered region.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use fabric::replicated::RegionMemory;
use fabric::verbs::MemoryRegion;
use fabric::wire::Geometry;

use super::admission::WriterQp;
use super::lock;

/// Flushes `[from, to)` of the ring in the registered region.
fn persist(mr: &MemoryRegion<RegionMemory>, g: Geometry, from: u64, to: u64) -> Result<(), String> {
    if to < from || to - from > g.ring_capacity_bytes {
        return Err(format!("range [{from}, {to}) does not fit the ring"));
    }
    let lg = logcore::Geometry {
        ring_offset: g.ring_offset_bytes,
        capacity: g.ring_capacity_bytes,
    };
    crate::replay::flush_ring(lg, from, to, |off, len| {
        mr.memory().region().persist(off, len)
    })
    .map_err(|e| e.to_string())
}

/// Serves the persist requests on `wqp` until `stop` is set or its queue pair
/// fails; a request that cannot be persisted gets no reply (the writer times
/// out rather than believe the range durable).
pub(super) fn gpspm_loop(
    wqp: &Mutex<WriterQp>,
    stop: &AtomicBool,
    mr: &MemoryRegion<RegionMemory>,
    g: Geometry,
) {
    while !stop.load(Ordering::Relaxed) {
        let mut q = lock(wqp);
        let WriterQp::Gpspm(r) = &mut *q else { return };
        match r.serve_one(Duration::from_millis(20), |from, to| {
            persist(mr, g, from, to)
        }) {
            Ok(_) => {}
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    tracing::warn!(error = %e, "gpspm responder stopped");
                }
                return;
            }
        }
    }
}
