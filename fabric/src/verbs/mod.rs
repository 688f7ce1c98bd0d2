//! Safe types over libibverbs.
//!
//! Every verbs object is owned by a reference-counted handle that keeps what it
//! was created from alive (a queue pair keeps its protection domain and CQ, a
//! protection domain keeps its device context), so destruction order is right
//! by construction. The protocol is carried by types: a [`PreparedQp`] becomes
//! a usable [`QueuePair`] only through [`PreparedQp::connect`], and memory is
//! reachable by the device only through a [`MemoryRegion`] that owns it.
//!
//! Posting is safe because [`QueuePair::execute`] borrows every local buffer it
//! posts and returns only after the signaled completion was polled (or after
//! the queue pair was moved to the error state and drained), so no buffer can
//! be freed while the device may still touch it.
//!
//! We use the raw bindings of the `ibverbs` project (`ibverbs-sys`) rather than
//! the high-level `ibverbs` crate because the latter cannot register memory it
//! did not allocate (a devdax mapping), cannot post RDMA WRITE or READ, and
//! fixes the port and PSNs. All FFI and raw pointers stay in this module
//! (the only one of the crate allowed `unsafe`), including the
//! [`RdmaMemory`] contracts of the log's own mappings ([`LogMemory`],
//! [`RegionMemory`]). Return values are checked with `tg_sys`, the
//! workspace's one way to call the OS; a verb the device does not support
//! (`EOPNOTSUPP`) is a [`VerbsError::Unsupported`].

mod cq;
mod device;
mod error;
mod log_memory;
mod memory;
mod mr;
mod pd;
mod qp;
mod ship;
mod spin;

pub use cq::CompletionQueue;
pub use device::{
    device_for_netdev, device_names, netdev_for_ip, Context, GidEntry, GidType, LinkLayer,
};
pub use error::VerbsError;
pub use log_memory::{LogMemory, RegionMemory};
pub use memory::{AlignedBuf, RdmaMemory};
pub use mr::{Access, LocalSlice, MemoryRegion, RemoteRegion, RemoteSlice};
pub use pd::ProtectionDomain;
pub use qp::{Mtu, Op, PreparedQp, QpConfig, QpEndpoint, QueuePair, MAX_OPS_PER_POST};
#[cfg(feature = "bench-probes")]
pub use ship::{Probe, MAX_PROBE_LEN};
pub use ship::{RingPlacement, VerbsPath};
pub use spin::{Spin, SPIN_BEFORE_YIELD};

/// Result of a verbs operation.
pub type Result<T, E = VerbsError> = std::result::Result<T, E>;
