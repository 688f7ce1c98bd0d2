//! Opening an existing log: recovery, and the closure's takeover.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use super::{AppendState, Log, Recovery};
use crate::error::{LayoutError, OpenError, ScanError};
use crate::layout::{crc_salt, Control, LogState};
use crate::pmem::{Access, Region, RegionKind};
use crate::scan::Image;

impl Log {
    /// Opens and recovers the log at `path`.
    ///
    /// # Errors
    /// See [`Log::from_region`].
    pub fn open(path: impl AsRef<Path>, kind: RegionKind) -> Result<Self, OpenError> {
        Self::from_region(Region::open(path, kind)?)
    }

    /// Recovers the log in a mapped region and takes ownership as writer:
    /// scans from the head, checks every record up to the recorded persisted
    /// tail, finds the real tail (first torn/stale/unwritten record), makes
    /// it durable, bumps the incarnation and marks the log running.
    ///
    /// # Errors
    /// [`OpenError::Layout`] (foreign or corrupt metadata),
    /// [`OpenError::Corrupt`] (a record before the persisted tail is bad),
    /// [`OpenError::InUse`] (another live process is the writer).
    pub fn from_region(region: Region) -> Result<Self, OpenError> {
        Self::recover(region, false)
    }

    /// Takes over the log of a writer that is known to be gone: recovers it
    /// exactly as [`Log::from_region`] does, but without refusing a log whose
    /// recorded writer pid is still alive. This is the closure daemon's
    /// entry point after it has judged the host dead (pidfd) or hung
    /// (heartbeat): a hung host's pid still exists.
    ///
    /// The caller guarantees the previous writer appends no more: it is
    /// dead, or stopped and about to be fenced. A stopped writer that
    /// resumes still believes it owns the log; the replica's epoch fencing,
    /// not this call, keeps its later records off the replicas. Typical use
    /// is `take_over` then [`Log::seal`], which leaves the log `sealed` for
    /// the restarted host to [`Log::begin_epoch`].
    ///
    /// Unlike [`Log::from_region`], the scan starts at the recorded
    /// persisted tail, not the head: it confirms that tail (or extends it
    /// over records persisted but not yet recorded) in time proportional to
    /// the unrecorded tail, so [`Recovery::records`] counts only the
    /// records found past the recorded tail.
    ///
    /// # Errors
    /// As [`Log::from_region`], except [`OpenError::InUse`].
    pub fn take_over(region: Region) -> Result<Self, OpenError> {
        Self::recover(region, true)
    }

    fn recover(region: Region, take_over: bool) -> Result<Self, OpenError> {
        let path = region.path().to_owned();
        if region.access() != Access::ReadWrite {
            return Err(crate::error::RegionError::ReadOnly { path }.into());
        }
        let layout = |source: LayoutError| OpenError::Layout {
            path: path.clone(),
            source,
        };
        let pid = std::process::id();
        let (sb, control, scanned) = {
            let image = Image::read(&region).map_err(layout)?;
            let c = *image.control();
            if !take_over
                && c.state == LogState::Running
                && c.host_pid != pid
                && crate::pmem::pid_alive(c.host_pid)
            {
                return Err(OpenError::InUse {
                    path,
                    pid: c.host_pid,
                });
            }
            // A takeover trusts the records before the recorded persisted
            // tail (the writer persisted and recorded them, and the replicas
            // already hold most of them) and scans only from there: its
            // cost is the unrecorded tail, not the whole log.
            let scan = if take_over {
                image.scan_from(c.persisted)
            } else {
                image.scan()
            }
            .map_err(layout)?;
            let summary = scan
                .finish()
                .map_err(|source: ScanError| OpenError::Corrupt {
                    path: path.clone(),
                    source,
                })?;
            (image.superblock().clone(), c, summary)
        };
        let ctl = Control::new(&region).map_err(layout)?;
        let persist = |source| OpenError::Persist {
            path: path.clone(),
            source,
        };
        let g = sb.geometry;
        let tail = scanned.stop.at;
        // Valid bytes past the recorded tail may still sit in CPU caches
        // (the writer died before flushing): flush before declaring them
        // persisted.
        for piece in g.pieces(control.persisted.pos, tail.pos) {
            region
                .persist(piece.region_offset as usize, piece.len as usize)
                .map_err(persist)?;
        }
        let incarnation = control.incarnation.wrapping_add(1);
        // Persisted before the first append: records of this incarnation
        // must be distinguishable from never-persisted ones of the last.
        ctl.set_incarnation(incarnation).map_err(persist)?;
        ctl.set_persisted_tail(tail).map_err(persist)?;
        let epoch = control.epoch.max(sb.epoch);
        // A seal record of the current epoch ends the log even if the
        // Sealed state never reached the control block (a crash between
        // the two): appending at that epoch after it would make every
        // later scan stop there (BadEpoch before the persisted tail).
        let sealed = control.state == LogState::Sealed || scanned.after.sealed == Some(epoch);
        let state = if sealed {
            LogState::Sealed
        } else {
            LogState::Running
        };
        ctl.set_state(state, pid).map_err(persist)?;
        let recovery = Recovery {
            previous_state: control.state,
            head: control.head,
            recorded_tail: control.persisted,
            tail,
            records: scanned.records,
            stop: scanned.stop.reason,
        };
        Ok(Self {
            salt: crc_salt(&sb.uuid),
            max_payload: sb.max_payload(),
            incarnation: incarnation as u16,
            pid,
            append: Mutex::new(AppendState {
                tail,
                epoch,
                sealed,
            }),
            persist: Mutex::new(()),
            persisted: Mutex::new(tail),
            persisted_lsn: AtomicU64::new(tail.lsn.0),
            head: Mutex::new(control.head),
            head_pos: AtomicU64::new(control.head.pos),
            recovery,
            abandoned: false,
            sb,
            region,
        })
    }
}
