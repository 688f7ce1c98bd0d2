//! Raw-verbs baselines on a mirror's own queue pair, for `tg-bench` only
//! (the `bench-probes` feature): what a commit costs without the log.

use super::{Mirror, MirrorError};
use crate::transport::OsClock;
use crate::verbs::{RdmaMemory, VerbsError, VerbsPath};

pub use crate::verbs::{Probe, MAX_PROBE_LEN};

impl<M: RdmaMemory> Mirror<VerbsPath<M>, OsClock> {
    /// One raw round trip of `len` bytes on this mirror's queue pair and
    /// device, bypassing the log: the baseline tailguard's commit latency is
    /// compared with. It writes zeros just past the durable position (the
    /// replica reads zeros there as the end of the log, and real shipping
    /// overwrites them), so `len` must leave a quarter of the ring free.
    ///
    /// # Errors
    /// [`MirrorError`] as for [`Mirror::ship`]; `len` above
    /// [`MAX_PROBE_LEN`] or a quarter of the ring is refused.
    pub fn probe(&mut self, kind: Probe, len: u32) -> Result<(), MirrorError> {
        if len == 0 || len > MAX_PROBE_LEN || u64::from(len) > self.capacity / 4 {
            return Err(self.verbs_err(VerbsError::InvalidRequest {
                reason: format!(
                    "probe of {len} bytes: 1..={MAX_PROBE_LEN} and at most a quarter of the ring"
                ),
            }));
        }
        // Probes write past the durable position: nothing may be in flight
        // there.
        self.drain()?;
        // Where the next ship will write; a probe that would wrap starts at
        // the ring's beginning instead.
        let mut off = self.durable % self.capacity;
        if off + u64::from(len) > self.capacity {
            off = 0;
        }
        let timeout = self.timeout;
        self.path
            .probe(kind, off, len, timeout)
            .map_err(|e| self.verbs_err(e))
    }
}
