//! The log: one writer process's open, recovered log.
//!
//! Split by operation: `create` and `recover` (open), `append`, `persist`
//! (group commit), `head` (reclaim), `epoch` (seal and new epochs).

mod append;
mod create;
mod epoch;
mod head;
mod persist;
mod recover;

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::LayoutError;
use crate::layout::{Control, Cursor, Geometry, LogState, Lsn, Superblock};
use crate::pmem::{Region, RegionKind};
use crate::scan::{Scan, ScanConfig, StopReason};

/// Options for [`Log::create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Region kind (default `Auto`).
    pub kind: RegionKind,
    /// Initial epoch (default 1).
    pub epoch: u32,
    /// Log UUID (default: 16 random bytes). Giving one (e.g. a replica that
    /// mirrors a primary) makes `create` zero the ring, so no record of an
    /// earlier log with that UUID can be mistaken for a new one.
    pub uuid: Option<[u8; 16]>,
    /// Destroy an existing log at the path (default false).
    pub overwrite: bool,
    /// Ring capacity in bytes (default: all of the region after the
    /// metadata page). A replica sets its primary's capacity so its ring is
    /// a byte-for-byte mirror.
    pub capacity: Option<u64>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            kind: RegionKind::Auto,
            epoch: 1,
            uuid: None,
            overwrite: false,
            capacity: None,
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// LSN of the (last) record.
    pub lsn: Lsn,
    /// Logical position of the first record written (padding included).
    pub pos: u64,
    /// Logical position just after the last record: ship `[pos, end)`.
    pub end: u64,
}

/// What recovery found when the log was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// State recorded by the previous writer.
    pub previous_state: LogState,
    /// Head at open.
    pub head: Cursor,
    /// Persisted tail recorded by the previous writer.
    pub recorded_tail: Cursor,
    /// Tail found by scanning (>= `recorded_tail`).
    pub tail: Cursor,
    /// Data and seal records between head and tail.
    pub records: u64,
    /// Why the scan ended (usually a zeroed, torn or stale record).
    pub stop: StopReason,
}

#[derive(Debug)]
struct AppendState {
    tail: Cursor,
    epoch: u32,
    sealed: bool,
}

/// An open, recovered log owned by this process (the writer).
///
/// Many threads may append and persist concurrently (`&self`); appends are
/// serialised by one short lock (reserve + copy), and `persist_to` groups
/// every record appended so far into one flush (group commit).
#[derive(Debug)]
pub struct Log {
    region: Region,
    sb: Superblock,
    salt: u32,
    max_payload: u64,
    incarnation: u16,
    pid: u32,
    append: Mutex<AppendState>,
    persist: Mutex<()>,
    persisted: Mutex<Cursor>,
    persisted_lsn: AtomicU64,
    head: Mutex<Cursor>,
    head_pos: AtomicU64,
    recovery: Recovery,
    /// Dropped by [`Log::abandon`]: not a clean shutdown.
    abandoned: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a log lock leaves only in-memory cursors, which
    // are updated last and are consistent at every await-free step.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Log {
    /// The mapped region (for RDMA registration of `[as_ptr(), len())`).
    #[must_use]
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The superblock.
    #[must_use]
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Ring placement and size.
    #[must_use]
    pub fn geometry(&self) -> Geometry {
        self.sb.geometry
    }

    /// Live control block (heartbeat, remote durable tail, ...).
    #[must_use]
    pub fn control(&self) -> Control<'_> {
        // Cannot fail: from_region checked the region holds a control block.
        Control::new(&self.region).unwrap_or_else(|_| unreachable!("checked at open"))
    }

    /// Closes the log without marking it cleanly shut down: its control
    /// block keeps the state this process left (running, under this pid),
    /// so the next open recovers it as after a crash. For a holder that
    /// failed mid-way and must not make the log look finished, such as a
    /// takeover that could not seal: a clean-shutdown mark would let a host
    /// open a log a hung host may still write, and tell a closure there is
    /// nothing to take over. Nothing is flushed beyond what was persisted.
    pub fn abandon(mut self) {
        self.abandoned = true;
    }

    /// What recovery found at open.
    #[must_use]
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Largest payload one record may carry.
    #[must_use]
    pub fn max_payload(&self) -> u64 {
        self.max_payload
    }

    /// This writer's incarnation (low 16 bits, as stamped in records).
    #[must_use]
    pub fn incarnation(&self) -> u16 {
        self.incarnation
    }

    /// Current epoch.
    #[must_use]
    pub fn epoch(&self) -> u32 {
        lock(&self.append).epoch
    }

    /// Appended tail: position after the last appended record and the next LSN.
    #[must_use]
    pub fn tail(&self) -> Cursor {
        lock(&self.append).tail
    }

    /// Locally persisted tail: everything before it is durable.
    #[must_use]
    pub fn persisted(&self) -> Cursor {
        *lock(&self.persisted)
    }

    /// Head: the oldest position (and LSN) not yet reclaimed.
    #[must_use]
    pub fn head(&self) -> Cursor {
        *lock(&self.head)
    }

    /// Whether the current epoch is sealed (no appends until
    /// [`Log::begin_epoch`]): true after a closure took the log over.
    pub fn is_sealed(&self) -> bool {
        lock(&self.append).sealed
    }

    /// Bumps the heartbeat counter the closure daemon watches.
    pub fn heartbeat(&self) -> u64 {
        self.control().beat()
    }

    /// A scan of the ring from the head, for replay. It copies each record
    /// out of the region (appenders may be writing past the persisted tail
    /// meanwhile).
    pub(crate) fn scan_persisted(&self) -> Result<(Scan<'_, Region>, Cursor), LayoutError> {
        let head = self.head();
        let persisted = self.persisted();
        let cfg = ScanConfig {
            geometry: self.sb.geometry,
            salt: self.salt,
            start: head,
            persisted_tail: persisted.pos,
            max_epoch: self.epoch(),
            incarnation: Some(self.incarnation),
        };
        Ok((Scan::over(&self.region, cfg)?, persisted))
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // Clean shutdown: make everything appended durable, then say so.
        // Failures here cannot be reported; recovery handles either outcome.
        if self.abandoned {
            return;
        }
        if self.persist_all().is_ok() && !lock(&self.append).sealed {
            let _ = self.control().set_state(LogState::CleanShutdown, self.pid);
        }
    }
}
