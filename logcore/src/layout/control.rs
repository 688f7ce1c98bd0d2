//! The control block: the log's mutable metadata, on its own cache lines,
//! read and written with atomics so another process mapping the same region
//! (the closure daemon) can follow it.
//!
//! ```text
//! off (from 256)  len  field
//!   0   8  state (low 32 bits) | host pid (high 32 bits)     line 0
//!   8   8  current epoch (low 32 bits)
//!  16   8  incarnation (bumped by every writer open; low 16 bits in records)
//!  64   8  heartbeat counter                                  line 1
//!  72   8  closure pid (0: no closure armed)
//!  80   8  closure heartbeat counter
//! 128  48  locally persisted tail: 2 slots {pos, lsn, check}  line 2
//! 192  48  remotely durable tail:  2 slots                    line 3
//! 256  48  head (reclaim point):   2 slots                    line 4
//! ```
//!
//! A (position, LSN) pair is two words, and an 8-byte store is the largest
//! one that is atomic both to other CPUs and to persistent media. So each
//! pair has two slots of `{pos, lsn, check}` where `check` mixes the other
//! two. A writer overwrites the older slot; a reader (or recovery after a
//! torn write) takes the valid slot with the larger position. Each pair has
//! exactly one writer at a time (the log's persist lock, head lock, or the
//! replication layer for the remote tail).

use std::sync::atomic::Ordering;

use super::field::{disjoint, tiles, within_line, Field, Span};
use super::{Cursor, Lsn};
use crate::error::LayoutError;
use crate::pmem::Region;

/// Region offset of the control block.
pub const CONTROL_OFFSET: usize = 256;
/// Length of the control block (five cache lines).
pub const CONTROL_LEN: usize = 320;

// The control block's fields, as in docs/log-format.md ("Control block"),
// offsets from CONTROL_OFFSET. Every word is accessed with 8-byte atomics.
const STATE_PID: Field<8> = Field::at(0);
const EPOCH: Field<8> = Field::at(8);
const INCARNATION: Field<8> = Field::at(16);
const HEARTBEAT: Field<8> = Field::at(64);
const CLOSURE_PID: Field<8> = Field::at(72);
const CLOSURE_BEAT: Field<8> = Field::at(80);
const PERSISTED: Field<PAIR_LEN> = Field::at(128);
const REMOTE: Field<PAIR_LEN> = Field::at(192);
const HEAD: Field<PAIR_LEN> = Field::at(256);
/// A (position, LSN) pair: two slots.
const PAIR_LEN: usize = 2 * SLOT_LEN;
/// One slot of a pair: `{pos, lsn, check}`.
const SLOT_LEN: usize = 24;
const SLOT_POS: Field<8> = Field::at(0);
const SLOT_LSN: Field<8> = Field::at(8);
const SLOT_CHECK: Field<8> = Field::at(16);
/// The writers' cache lines are kept apart.
const LINE: usize = 64;

// Fields in order, none overlapping, all inside the block...
const _: () = assert!(disjoint(
    &[
        STATE_PID.span(),
        EPOCH.span(),
        INCARNATION.span(),
        HEARTBEAT.span(),
        CLOSURE_PID.span(),
        CLOSURE_BEAT.span(),
        PERSISTED.span(),
        REMOTE.span(),
        HEAD.span()
    ],
    CONTROL_LEN
));
// ...a slot is exactly its three words...
const _: () = assert!(tiles(
    &[SLOT_POS.span(), SLOT_LSN.span(), SLOT_CHECK.span()],
    SLOT_LEN
));
// ...every word is 8-byte aligned (atomics)...
const _: () = assert!(
    STATE_PID.off.is_multiple_of(8)
        && EPOCH.off.is_multiple_of(8)
        && INCARNATION.off.is_multiple_of(8)
        && HEARTBEAT.off.is_multiple_of(8)
        && CLOSURE_PID.off.is_multiple_of(8)
        && CLOSURE_BEAT.off.is_multiple_of(8)
        && SLOT_LEN.is_multiple_of(8)
);
// ...and each writer has its own cache line: line 0 the log's lifecycle
// words, line 1 the heartbeats, lines 2..5 one pair each, pairs starting on
// their line (so persisting a pair flushes one line).
const _: () = assert!(
    within_line(
        Span {
            off: STATE_PID.off,
            len: INCARNATION.end() - STATE_PID.off
        },
        LINE
    ) && STATE_PID.off / LINE == 0
);
const _: () = assert!(
    within_line(
        Span {
            off: HEARTBEAT.off,
            len: CLOSURE_BEAT.end() - HEARTBEAT.off
        },
        LINE
    ) && HEARTBEAT.off / LINE == 1
);
const _: () = assert!(
    within_line(PERSISTED.span(), LINE)
        && within_line(REMOTE.span(), LINE)
        && within_line(HEAD.span(), LINE)
        && PERSISTED.off / LINE == 2
        && REMOTE.off / LINE == 3
        && HEAD.off / LINE == 4
        && PERSISTED.off.is_multiple_of(LINE)
        && REMOTE.off.is_multiple_of(LINE)
        && HEAD.off.is_multiple_of(LINE)
        && CONTROL_LEN == 5 * LINE
);
/// Bounded retries when both slots of a pair change under a reader.
const READ_RETRIES: u32 = 64;

/// Lifecycle state recorded in the control block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogState {
    /// Created, never opened for writing.
    Formatted,
    /// A writer process (host pid) has it open.
    Running,
    /// The writer closed it cleanly.
    CleanShutdown,
    /// Sealed: the current epoch accepts no more appends.
    Sealed,
    /// A value this build does not know.
    Unknown(u32),
}

impl LogState {
    fn from_raw(v: u32) -> Self {
        match v {
            0 => Self::Formatted,
            1 => Self::Running,
            2 => Self::CleanShutdown,
            3 => Self::Sealed,
            x => Self::Unknown(x),
        }
    }

    fn raw(self) -> u32 {
        match self {
            Self::Formatted => 0,
            Self::Running => 1,
            Self::CleanShutdown => 2,
            Self::Sealed => 3,
            Self::Unknown(x) => x,
        }
    }

    /// Lower-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Formatted => "formatted",
            Self::Running => "running",
            Self::CleanShutdown => "clean-shutdown",
            Self::Sealed => "sealed",
            Self::Unknown(_) => "unknown",
        }
    }
}

fn mix(pos: u64, lsn: u64) -> u64 {
    // splitmix64-style finaliser; the constant xor makes an all-zero slot
    // invalid.
    let mut h = pos ^ 0x9E37_79B9_7F4A_7C15;
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= lsn;
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31) ^ 0x5447_4C4F_4743_5442
}

fn pick(a: (u64, u64, u64), b: (u64, u64, u64)) -> Option<Cursor> {
    let va = (a.2 == mix(a.0, a.1)).then_some(Cursor {
        pos: a.0,
        lsn: Lsn(a.1),
    });
    let vb = (b.2 == mix(b.0, b.1)).then_some(Cursor {
        pos: b.0,
        lsn: Lsn(b.1),
    });
    match (va, vb) {
        (Some(x), Some(y)) => Some(if y.pos > x.pos { y } else { x }),
        (x, y) => x.or(y),
    }
}

/// What a replica holds of a mirrored log ([`Control::record_mirror`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorProgress {
    /// Oldest position the replica still needs (its replay position).
    pub head: Cursor,
    /// End of the last valid record it holds.
    pub durable: Cursor,
    /// Highest epoch among its records (and admitted).
    pub epoch: u32,
    /// Highest writer incarnation among its records.
    pub incarnation: u64,
}

/// A decoded copy of the control block (from an image or a live region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlSnapshot {
    /// Lifecycle state.
    pub state: LogState,
    /// Pid of the last writer.
    pub host_pid: u32,
    /// Current epoch.
    pub epoch: u32,
    /// Incarnation of the last writer.
    pub incarnation: u64,
    /// Heartbeat counter.
    pub heartbeat: u64,
    /// Pid of the armed closure daemon (0: none).
    pub closure_pid: u32,
    /// The closure's heartbeat counter.
    pub closure_beat: u64,
    /// Locally persisted tail.
    pub persisted: Cursor,
    /// Remotely durable tail.
    pub remote_durable: Cursor,
    /// Head: oldest position still in the log.
    pub head: Cursor,
}

impl ControlSnapshot {
    /// Decodes the control block from a whole-region image.
    ///
    /// # Errors
    /// [`LayoutError::TooSmall`] or [`LayoutError::ControlTorn`].
    pub fn decode(image: &[u8]) -> Result<Self, LayoutError> {
        let cb = image
            .get(CONTROL_OFFSET..CONTROL_OFFSET + CONTROL_LEN)
            .ok_or(LayoutError::TooSmall {
                len_bytes: image.len() as u64,
                min_bytes: (CONTROL_OFFSET + CONTROL_LEN) as u64,
            })?;
        let w = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&cb[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let pair = |o: usize, name: &'static str| {
            let slot = |s: usize| {
                (
                    w(s + SLOT_POS.off),
                    w(s + SLOT_LSN.off),
                    w(s + SLOT_CHECK.off),
                )
            };
            pick(slot(o), slot(o + SLOT_LEN)).ok_or(LayoutError::ControlTorn {
                pair: name,
                offset: (CONTROL_OFFSET + o) as u64,
            })
        };
        let sp = w(STATE_PID.off);
        Ok(Self {
            state: LogState::from_raw(sp as u32),
            host_pid: (sp >> 32) as u32,
            epoch: w(EPOCH.off) as u32,
            incarnation: w(INCARNATION.off),
            heartbeat: w(HEARTBEAT.off),
            closure_pid: w(CLOSURE_PID.off) as u32,
            closure_beat: w(CLOSURE_BEAT.off),
            persisted: pair(PERSISTED.off, "persisted tail")?,
            remote_durable: pair(REMOTE.off, "remote durable tail")?,
            head: pair(HEAD.off, "head")?,
        })
    }
}

/// Live access to the control block of a mapped region (any process).
#[derive(Debug, Clone, Copy)]
pub struct Control<'r> {
    region: &'r Region,
}

impl<'r> Control<'r> {
    /// The control block of `region`.
    ///
    /// # Errors
    /// [`LayoutError::TooSmall`] if the region cannot hold it.
    pub fn new(region: &'r Region) -> Result<Self, LayoutError> {
        if region.len() < CONTROL_OFFSET + CONTROL_LEN {
            return Err(LayoutError::TooSmall {
                len_bytes: region.len() as u64,
                min_bytes: (CONTROL_OFFSET + CONTROL_LEN) as u64,
            });
        }
        Ok(Self { region })
    }

    fn word(&self, o: usize) -> &'r std::sync::atomic::AtomicU64 {
        self.region.atomic_u64(CONTROL_OFFSET + o)
    }

    fn persist_line(&self, o: usize) -> std::io::Result<()> {
        self.region.persist(CONTROL_OFFSET + o - o % 64, 64)
    }

    /// Lifecycle state.
    #[must_use]
    pub fn state(&self) -> LogState {
        LogState::from_raw(self.word(STATE_PID.off).load(Ordering::Acquire) as u32)
    }

    /// Pid of the writer process.
    #[must_use]
    pub fn host_pid(&self) -> u32 {
        (self.word(STATE_PID.off).load(Ordering::Acquire) >> 32) as u32
    }

    /// Sets state and pid in one atomic store and persists them.
    ///
    /// # Errors
    /// msync failure on plain files.
    pub fn set_state(&self, state: LogState, pid: u32) -> std::io::Result<()> {
        let v = u64::from(state.raw()) | (u64::from(pid) << 32);
        self.word(STATE_PID.off).store(v, Ordering::Release);
        self.persist_line(STATE_PID.off)
    }

    /// Current epoch.
    #[must_use]
    pub fn epoch(&self) -> u32 {
        self.word(EPOCH.off).load(Ordering::Acquire) as u32
    }

    /// Sets and persists the current epoch.
    ///
    /// # Errors
    /// msync failure on plain files.
    pub(crate) fn set_epoch(&self, epoch: u32) -> std::io::Result<()> {
        self.word(EPOCH.off)
            .store(u64::from(epoch), Ordering::Release);
        self.persist_line(EPOCH.off)
    }

    /// Incarnation of the current (or last) writer.
    #[must_use]
    pub fn incarnation(&self) -> u64 {
        self.word(INCARNATION.off).load(Ordering::Acquire)
    }

    pub(crate) fn set_incarnation(&self, v: u64) -> std::io::Result<()> {
        self.word(INCARNATION.off).store(v, Ordering::Release);
        self.persist_line(INCARNATION.off)
    }

    /// Heartbeat counter (not persisted: liveness only).
    #[must_use]
    pub fn heartbeat(&self) -> u64 {
        self.word(HEARTBEAT.off).load(Ordering::Acquire)
    }

    /// Increments the heartbeat counter; returns the new value.
    pub fn beat(&self) -> u64 {
        self.word(HEARTBEAT.off).fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Pid of the closure daemon armed on this log (0: none). Liveness
    /// only, like the heartbeat: not persisted.
    #[must_use]
    pub fn closure_pid(&self) -> u32 {
        self.word(CLOSURE_PID.off).load(Ordering::Acquire) as u32
    }

    /// The closure daemon's heartbeat counter (the host reads it to report
    /// whether takeover is armed).
    #[must_use]
    pub fn closure_beat(&self) -> u64 {
        self.word(CLOSURE_BEAT.off).load(Ordering::Acquire)
    }

    /// Records the armed closure's pid (0 when it stands down).
    pub fn set_closure_pid(&self, pid: u32) {
        self.word(CLOSURE_PID.off)
            .store(u64::from(pid), Ordering::Release);
    }

    /// Increments the closure's heartbeat counter.
    pub fn closure_tick(&self) -> u64 {
        self.word(CLOSURE_BEAT.off).fetch_add(1, Ordering::AcqRel) + 1
    }

    fn read_pair(&self, o: usize, name: &'static str) -> Result<Cursor, LayoutError> {
        let slot = |s: usize| {
            let pos = self.word(s + SLOT_POS.off).load(Ordering::Acquire);
            let lsn = self.word(s + SLOT_LSN.off).load(Ordering::Acquire);
            let check = self.word(s + SLOT_CHECK.off).load(Ordering::Acquire);
            (pos, lsn, check)
        };
        for _ in 0..READ_RETRIES {
            if let Some(c) = pick(slot(o), slot(o + SLOT_LEN)) {
                return Ok(c);
            }
            std::hint::spin_loop();
        }
        Err(LayoutError::ControlTorn {
            pair: name,
            offset: (CONTROL_OFFSET + o) as u64,
        })
    }

    fn write_pair(&self, o: usize, c: Cursor) -> std::io::Result<()> {
        let slot = |s: usize| {
            let pos = self.word(s + SLOT_POS.off).load(Ordering::Acquire);
            let lsn = self.word(s + SLOT_LSN.off).load(Ordering::Acquire);
            (
                pos,
                lsn,
                self.word(s + SLOT_CHECK.off).load(Ordering::Acquire),
            )
        };
        let (a, b) = (slot(o), slot(o + SLOT_LEN));
        let a_ok = a.2 == mix(a.0, a.1);
        let b_ok = b.2 == mix(b.0, b.1);
        // Overwrite the invalid or older slot; the other stays readable.
        let target = match (a_ok, b_ok) {
            (true, true) if a.0 > b.0 => o + SLOT_LEN,
            (true, false) => o + SLOT_LEN,
            _ => o,
        };
        self.store_slot(target, c);
        self.persist_line(o)
    }

    /// Overwrites one slot (not persisted). The check word is cleared first
    /// so a reader never pairs a new pos with an old check.
    fn store_slot(&self, s: usize, c: Cursor) {
        self.word(s + SLOT_CHECK.off).store(0, Ordering::Release);
        self.word(s + SLOT_POS.off).store(c.pos, Ordering::Release);
        self.word(s + SLOT_LSN.off)
            .store(c.lsn.0, Ordering::Release);
        self.word(s + SLOT_CHECK.off)
            .store(mix(c.pos, c.lsn.0), Ordering::Release);
    }

    /// Sets a pair to `c` even below its current value, which
    /// [`Self::write_pair`] cannot do (a reader takes the slot with the
    /// larger position, and it replaces only the other one). The older slot
    /// takes `c` first and is persisted: readers still see the old value in
    /// the other slot. Then that slot takes `c`: from the moment its check
    /// word is cleared, a reader (or recovery after a crash) sees only `c`.
    fn lower_pair(&self, o: usize, c: Cursor) -> std::io::Result<()> {
        self.write_pair(o, c)?;
        let want = (c.pos, c.lsn.0, mix(c.pos, c.lsn.0));
        for s in [o, o + SLOT_LEN] {
            let held = (
                self.word(s + SLOT_POS.off).load(Ordering::Acquire),
                self.word(s + SLOT_LSN.off).load(Ordering::Acquire),
                self.word(s + SLOT_CHECK.off).load(Ordering::Acquire),
            );
            if held != want {
                self.store_slot(s, c);
            }
        }
        self.persist_line(o)
    }

    /// Locally persisted tail: every record before `pos` is durable here.
    ///
    /// # Errors
    /// [`LayoutError::ControlTorn`] when both slots are invalid.
    pub fn persisted_tail(&self) -> Result<Cursor, LayoutError> {
        self.read_pair(PERSISTED.off, "persisted tail")
    }

    pub(crate) fn set_persisted_tail(&self, c: Cursor) -> std::io::Result<()> {
        self.write_pair(PERSISTED.off, c)
    }

    /// Remotely durable tail, as last set by the replication layer.
    ///
    /// # Errors
    /// [`LayoutError::ControlTorn`] when both slots are invalid.
    pub fn remote_durable_tail(&self) -> Result<Cursor, LayoutError> {
        self.read_pair(REMOTE.off, "remote durable tail")
    }

    /// Records (and persists) the remotely durable tail. One writer at a
    /// time (the replication layer, or the closure after takeover).
    ///
    /// # Errors
    /// msync failure on plain files.
    pub fn set_remote_durable_tail(&self, c: Cursor) -> std::io::Result<()> {
        self.write_pair(REMOTE.off, c)
    }

    /// Head: the oldest position still in the log.
    ///
    /// # Errors
    /// [`LayoutError::ControlTorn`] when both slots are invalid.
    pub fn head(&self) -> Result<Cursor, LayoutError> {
        self.read_pair(HEAD.off, "head")
    }

    pub(crate) fn set_head(&self, c: Cursor) -> std::io::Result<()> {
        self.write_pair(HEAD.off, c)
    }

    /// Records, in a replica's own control block, what it holds of the log
    /// it mirrors, so that its image reads like the primary's (`tg-log
    /// dump`/`verify`, promotion): the epoch and incarnation first (a scan
    /// must not reject records newer than the block has heard of), then the
    /// durable tail, then the head (which never passes it). Each step is
    /// persisted before the next.
    ///
    /// # Errors
    /// [`std::io::Error`] of the persist (msync on plain files).
    ///
    /// # Panics
    /// If `head` is past `durable` (a replica bug).
    pub fn record_mirror(&self, m: &MirrorProgress) -> std::io::Result<()> {
        assert!(
            m.head.pos <= m.durable.pos,
            "mirror head {:?} past durable {:?}",
            m.head,
            m.durable
        );
        if self.epoch() < m.epoch {
            self.set_epoch(m.epoch)?;
        }
        if self.incarnation() < m.incarnation {
            self.set_incarnation(m.incarnation)?;
        }
        self.set_persisted_tail(m.durable)?;
        self.set_head(m.head)
    }

    /// Lowers, in a replica's own control block, the recorded durable tail
    /// to `durable`, which [`Self::record_mirror`] cannot do (it only moves
    /// forward). For a replica that finds at start that records before its
    /// recorded tail do not verify: the tail it reports, `tg-replica
    /// status`, `tg-log verify` and the next start then all agree on the
    /// last intact record. Crash-safe: a reader sees either the old tail or
    /// `durable`, never a torn mix. Never use it on a primary's log (its
    /// persisted tail belongs to [`crate::Log`]).
    ///
    /// # Errors
    /// [`std::io::Error`] of the persist (msync on plain files), or
    /// [`LayoutError::ControlTorn`] (as an `InvalidData` error) when the
    /// head cannot be read.
    ///
    /// # Panics
    /// If `durable` is behind the recorded head (the head never passes the
    /// durable tail; a replica bug).
    pub fn rewind_mirror_durable(&self, durable: Cursor) -> std::io::Result<()> {
        let head = self
            .head()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        assert!(
            head.pos <= durable.pos && head.lsn <= durable.lsn,
            "rewinding the durable tail to {durable:?}, behind the head {head:?}"
        );
        self.lower_pair(PERSISTED.off, durable)
    }

    /// Writes a fresh control block: every pair at `start`, epoch, state
    /// `Formatted`, and persists the whole block.
    pub(crate) fn format(&self, start: Cursor, epoch: u32) -> std::io::Result<()> {
        for o in (0..CONTROL_LEN).step_by(8) {
            self.word(o).store(0, Ordering::Release);
        }
        self.word(EPOCH.off)
            .store(u64::from(epoch), Ordering::Release);
        for p in [PERSISTED.off, REMOTE.off, HEAD.off] {
            for s in [p, p + SLOT_LEN] {
                self.word(s + SLOT_POS.off)
                    .store(start.pos, Ordering::Release);
                self.word(s + SLOT_LSN.off)
                    .store(start.lsn.0, Ordering::Release);
                self.word(s + SLOT_CHECK.off)
                    .store(mix(start.pos, start.lsn.0), Ordering::Release);
            }
        }
        self.region.persist(CONTROL_OFFSET, CONTROL_LEN)
    }

    /// A decoded copy of the whole block.
    ///
    /// # Errors
    /// [`LayoutError::ControlTorn`] when a pair has no valid slot.
    pub fn snapshot(&self) -> Result<ControlSnapshot, LayoutError> {
        let sp = self.word(STATE_PID.off).load(Ordering::Acquire);
        Ok(ControlSnapshot {
            state: LogState::from_raw(sp as u32),
            host_pid: (sp >> 32) as u32,
            epoch: self.epoch(),
            incarnation: self.incarnation(),
            heartbeat: self.heartbeat(),
            closure_pid: self.closure_pid(),
            closure_beat: self.closure_beat(),
            persisted: self.persisted_tail()?,
            remote_durable: self.remote_durable_tail()?,
            head: self.head()?,
        })
    }
}

const _: () = assert!(CONTROL_OFFSET.is_multiple_of(64) && CONTROL_LEN.is_multiple_of(64));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_slot_falls_back_to_the_other() {
        let a = (100, 5, mix(100, 5));
        let b = (200, 9, mix(200, 9));
        assert_eq!(pick(a, b).unwrap().pos, 200);
        let torn = (300, 9, mix(200, 9));
        assert_eq!(pick(a, torn).unwrap().pos, 100);
        assert_eq!(pick((0, 0, 0), (0, 0, 0)), None);
    }
}
