//! The seam under the replication protocol: what the writer needs from the
//! RDMA data path, the control channel and the clock, as traits.
//!
//! Production instantiates them statically ([`Rdma`]: verbs queue pairs,
//! TCP control channels, the OS clock), so nothing is dispatched
//! dynamically or allocated on the commit path. The seam exists so the
//! protocol logic (the [`crate::mirror::Mirror`], the shippers and the link
//! manager of [`crate::replicated::ReplicatedLog`]) can run in one process
//! over a simulated transport and clock under a seeded simulator; the RDMA
//! tests stay on real verbs.
//!
//! What each trait promises is what real verbs give: requests of one
//! [`ShipPath::post`] execute in order, their completions are reported in
//! posting order, and a path moved to error ([`ShipPath::abort`]) completes
//! nothing more.

mod clock;
mod rdma;

use std::time::Duration;

pub(crate) use clock::FirstLook;
pub use clock::{Clock, OsClock};
pub use rdma::{connect, Rdma, RdmaConnected};

use crate::mirror::Mirror;
use crate::replicated::{ConnectOptions, LogIdentity, ReplicaError, ReplicaSpec};
use crate::verbs::VerbsError;
use crate::wire::session::SessionError;
use crate::wire::{SealPoint, Status};

/// One request of a ship, in ring terms: offsets are within the ring, the
/// same on both sides (the replica's ring is a byte mirror), and the path
/// knows where each ring sits in its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingOp {
    /// RDMA WRITE of ring bytes `[ring_off, ring_off + len)` of the local
    /// ring to the same place in the replica's.
    Write {
        /// Offset in the ring.
        ring_off: u64,
        /// Bytes (at most [`ShipPath::max_chunk`]).
        len: u64,
    },
    /// RDMA READ of the `len` bytes of the replica's ring ending at ring
    /// offset `end`: once it completes, every WRITE before it on the path
    /// has been placed (the `apm` flush).
    FlushRead {
        /// End offset in the ring.
        end: u64,
        /// Bytes read (1..=8).
        len: u64,
    },
    /// SEND of a gpspm persist request for the logical range `[from, to)`:
    /// the replica's CPU flushes it and replies ([`ShipPath::recv`]).
    PersistRequest {
        /// Range start.
        from: u64,
        /// Range end.
        to: u64,
    },
}

/// The RDMA data path of one mirror: post a list of ring requests with one
/// doorbell (only the last signaled), poll completions, fail everything.
pub trait ShipPath: Send {
    /// Posts `ops` (1..=[`crate::verbs::MAX_OPS_PER_POST`]) as one list
    /// without waiting; returns the ticket of its last request. Tickets
    /// grow with every post.
    ///
    /// # Errors
    /// The failing post (nothing of the list is then in flight).
    fn post(&mut self, ops: &[RingOp]) -> Result<u64, VerbsError>;
    /// Polls once, never waits: the highest ticket completed so far by this
    /// poll (0 if none). Lists complete in posting order.
    ///
    /// # Errors
    /// A failed request (the path is then broken).
    fn reap(&mut self) -> Result<u64, VerbsError>;
    /// Moves the path to the error state and waits (bounded) until the list
    /// ending at ticket `last` is flushed: nothing posted up to it is in
    /// flight afterwards, and nothing of it is reported complete.
    fn abort(&mut self, last: u64);
    /// Waits up to `timeout` for the next message the replica sent (a
    /// gpspm reply), copied into `out`; its length.
    ///
    /// # Errors
    /// `Timeout`, a broken path, or a message longer than `out`.
    fn recv(&mut self, out: &mut [u8], timeout: Duration) -> Result<usize, VerbsError>;
    /// Largest single WRITE.
    fn max_chunk(&self) -> u64;
    /// Most ships this path may have in flight (1 or more).
    fn max_in_flight(&self) -> usize;
    /// Whether an earlier failure broke the path.
    fn is_broken(&self) -> bool;
    /// The error for a request that has not completed after `waited`,
    /// naming the path (device, queue pair).
    fn timed_out(&self, waited: Duration) -> VerbsError;
}

/// The writer's side of an admitted control channel, as the link manager
/// and the closure use it (status requests double as keep-alives).
pub trait ControlSession: Send {
    /// One status round trip.
    ///
    /// # Errors
    /// The session's error (the link is then taken down).
    fn status(&mut self) -> Result<Status, SessionError>;
    /// Asks the replica to seal `point.epoch` at `point.tail`; returns once
    /// it answers that its copy reaches the tail and the seal is recorded.
    ///
    /// # Errors
    /// The session's error, or the replica's refusal.
    fn seal(&mut self, point: SealPoint) -> Result<SealPoint, SessionError>;
}

/// Which replica region a connection reaches, as the replica's `Accept`
/// (whose MAC the writer verified) gives it: the port of the replica's
/// queue pair (GID, LID) and the region's registration (rkey, address). An
/// rkey names one registration on one device, so two connections with the
/// same identity reach one `tg-replica`, however they were addressed (two
/// names, two IP addresses of one host): its acknowledgement counts once.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegionId {
    /// GID of the replica's port (all zero when LID-routed).
    pub gid: [u8; 16],
    /// LID of the replica's port (0 on Ethernet).
    pub lid: u16,
    /// The region's rkey.
    pub rkey: u32,
    /// The region's start address in the replica's address space.
    pub addr: u64,
}

impl std::fmt::Debug for RegionId {
    // The rkey is a capability: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionId")
            .field("gid", &self.gid)
            .field("lid", &self.lid)
            .finish_non_exhaustive()
    }
}

/// A replica connected over some transport: its mirror, its control
/// session, and the durable tail it reported at admission.
pub struct Connected<P: ShipPath, S: ControlSession, C: Clock> {
    /// Ships ring ranges to the replica.
    pub mirror: Mirror<P, C>,
    /// The admitted control channel (kept open: status and seal; closing
    /// it tells the replica this writer is gone).
    pub control: S,
    /// The replica's durable tail when it admitted us.
    pub durable: u64,
    /// Which replica region this reaches.
    pub region: RegionId,
}

impl<P: ShipPath, S: ControlSession, C: Clock> std::fmt::Debug for Connected<P, S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("replica", &self.mirror.name())
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

/// Everything a writer needs from the world outside its process.
pub trait Transport: Send + Sync + 'static {
    /// A mirror's data path.
    type Path: ShipPath;
    /// A control session.
    type Control: ControlSession;
    /// The clock.
    type Clock: Clock;
    /// The clock every timeout and back-off is measured on.
    fn clock(&self) -> Self::Clock;
    /// Connects to one replica: control channel, authenticated handshake,
    /// data path, and a mirror starting at the replica's durable tail.
    /// Blocks up to the connect timeout (the link manager calls it, never a
    /// committer).
    ///
    /// # Errors
    /// [`ReplicaError`] naming the replica.
    #[allow(clippy::type_complexity)]
    fn connect(
        &self,
        spec: &ReplicaSpec,
        opts: &ConnectOptions,
        log: &LogIdentity,
    ) -> Result<Connected<Self::Path, Self::Control, Self::Clock>, ReplicaError>;
}
