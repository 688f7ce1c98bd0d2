//! The log: create/open (with recovery), append, persist, reclaim, seal.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::{
    AppendError, EpochError, HeadError, LayoutError, OpenError, PersistError, ScanError,
};
use crate::layout::{
    crc_salt, record_len, Control, Cursor, Geometry, LogState, Lsn, RecordHeader, RecordKind,
    Superblock, HEADER_LEN, MAGIC, RECORD_ALIGN,
};
use crate::pmem::{Access, Region, RegionKind};
use crate::scan::{Image, Scan, ScanConfig, StopReason};

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
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a log lock leaves only in-memory cursors, which
    // are updated last and are consistent at every await-free step.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// 16 random bytes (RFC 4122 version 4 layout).
fn new_uuid() -> [u8; 16] {
    use std::io::Read;
    let mut u = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut u))
        .is_ok();
    if !ok {
        // No urandom: time and pid still make collisions unlikely on one host.
        let t = now_unix_ms() ^ u64::from(std::process::id()).rotate_left(32);
        u[..8].copy_from_slice(&t.to_le_bytes());
        u[8..].copy_from_slice(&crc32c::crc32c(&t.to_le_bytes()).to_le_bytes().repeat(2));
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

impl Log {
    /// Formats a new log at `path` (`size_bytes` for files; a devdax device
    /// uses its whole size) and opens it.
    ///
    /// # Errors
    /// [`OpenError::AlreadyFormatted`] if a log is there and
    /// `opts.overwrite` is false; region and layout errors otherwise.
    pub fn create(
        path: impl AsRef<Path>,
        size_bytes: u64,
        opts: &CreateOptions,
    ) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let region = Region::create(path, opts.kind, size_bytes)?;
        let layout = |source| OpenError::Layout {
            path: path.to_owned(),
            source,
        };
        let persist = |source| OpenError::Persist {
            path: path.to_owned(),
            source,
        };
        let mut magic = [0u8; 8];
        region.read(0, &mut magic);
        if magic == MAGIC && !opts.overwrite {
            return Err(OpenError::AlreadyFormatted {
                path: path.to_owned(),
            });
        }
        let sb = Superblock::for_region(
            region.len() as u64,
            opts.uuid.unwrap_or_else(new_uuid),
            opts.epoch,
            now_unix_ms(),
        )
        .map_err(layout)?;
        let sb = match opts.capacity {
            Some(c) => sb.with_capacity(c).map_err(layout)?,
            None => sb,
        };
        // Invalidate the old superblock first: a crash mid-create leaves a
        // region that is plainly "not a log", never a half-new one.
        region.write(0, &[0u8; 8]);
        region.persist(0, 8).map_err(persist)?;
        if opts.uuid.is_some() {
            let zero = vec![0u8; 1 << 20];
            let g = sb.geometry;
            let mut off = 0u64;
            while off < g.capacity {
                let n = (g.capacity - off).min(zero.len() as u64) as usize;
                region.write((g.ring_offset + off) as usize, &zero[..n]);
                off += n as u64;
            }
            region
                .persist(g.ring_offset as usize, g.capacity as usize)
                .map_err(persist)?;
        }
        let control = Control::new(&region).map_err(layout)?;
        control
            .format(
                Cursor {
                    pos: 0,
                    lsn: Lsn::FIRST,
                },
                opts.epoch,
            )
            .map_err(persist)?;
        region.write(0, &sb.encode());
        region.persist(0, sb.encode().len()).map_err(persist)?;
        Self::from_region(region)
    }

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

    fn recover(mut region: Region, take_over: bool) -> Result<Self, OpenError> {
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
            let image = Image::parse(region.bytes()).map_err(layout)?;
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
        let sealed = control.state == LogState::Sealed;
        let state = if sealed {
            LogState::Sealed
        } else {
            LogState::Running
        };
        ctl.set_state(state, pid).map_err(persist)?;
        let epoch = control.epoch.max(sb.epoch);
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
            sb,
            region,
        })
    }

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

    /// Appends one data record; returns its LSN. Not yet durable: call
    /// [`Log::persist_to`].
    ///
    /// # Errors
    /// [`AppendError::Full`] (back-pressure), [`AppendError::RecordTooLarge`],
    /// [`AppendError::Sealed`]. Nothing is written on error.
    pub fn append(&self, payload: &[u8]) -> Result<Lsn, AppendError> {
        self.append_record(payload).map(|a| a.lsn)
    }

    /// Like [`Log::append`], also returning the record's ring position.
    ///
    /// # Errors
    /// As [`Log::append`].
    pub fn append_record(&self, payload: &[u8]) -> Result<Appended, AppendError> {
        self.check_len(payload)?;
        // The payload CRC needs no LSN: compute it outside the lock.
        let payload_crc = crc32c::crc32c_append(self.salt, payload);
        let mut st = lock(&self.append);
        self.append_locked(&mut st, &[(payload, payload_crc)], RecordKind::Data)
    }

    /// Appends several records atomically with respect to other appenders
    /// (consecutive LSNs, all or nothing on `Full`); returns the last LSN.
    ///
    /// # Errors
    /// As [`Log::append`], plus [`AppendError::EmptyBatch`].
    pub fn append_batch(&self, payloads: &[&[u8]]) -> Result<Appended, AppendError> {
        if payloads.is_empty() {
            return Err(AppendError::EmptyBatch);
        }
        for p in payloads {
            self.check_len(p)?;
        }
        let mut st = lock(&self.append);
        let mut first = None;
        // Space for the whole batch is checked before anything is written.
        self.reserve(&st, payloads.iter().map(|p| p.len() as u64))?;
        let mut last = None;
        for p in payloads {
            let crc = crc32c::crc32c_append(self.salt, p);
            let a = self.append_locked(&mut st, &[(p, crc)], RecordKind::Data)?;
            first.get_or_insert(a.pos);
            last = Some(a);
        }
        let last = last.unwrap_or_else(|| unreachable!("non-empty batch"));
        Ok(Appended {
            lsn: last.lsn,
            pos: first.unwrap_or(last.pos),
            end: last.end,
        })
    }

    fn check_len(&self, payload: &[u8]) -> Result<(), AppendError> {
        if payload.len() as u64 > self.max_payload {
            return Err(AppendError::RecordTooLarge {
                len_bytes: payload.len() as u64,
                max_bytes: self.max_payload,
            });
        }
        Ok(())
    }

    /// Checks that records of these payload lengths fit; returns the bytes
    /// they need including padding.
    fn reserve(
        &self,
        st: &AppendState,
        lens: impl Iterator<Item = u64>,
    ) -> Result<u64, AppendError> {
        if st.sealed {
            return Err(AppendError::Sealed { epoch: st.epoch });
        }
        let cap = self.sb.geometry.capacity;
        let mut pos = st.tail.pos;
        for len in lens {
            let total = record_len(len);
            let room = cap - pos % cap;
            if total > room {
                pos += room;
            }
            pos += total;
        }
        let needed = pos - st.tail.pos;
        let head = self.head_pos.load(Ordering::Acquire);
        let free = cap - (st.tail.pos - head);
        if needed > free {
            return Err(AppendError::Full {
                needed_bytes: needed,
                free_bytes: free,
                head,
                tail: st.tail.pos,
            });
        }
        Ok(needed)
    }

    fn append_locked(
        &self,
        st: &mut AppendState,
        records: &[(&[u8], u32)],
        kind: RecordKind,
    ) -> Result<Appended, AppendError> {
        self.reserve(st, records.iter().map(|(p, _)| p.len() as u64))?;
        let cap = self.sb.geometry.capacity;
        let start = st.tail.pos;
        let mut lsn = st.tail.lsn;
        for (payload, payload_crc) in records {
            let total = record_len(payload.len() as u64);
            let room = cap - st.tail.pos % cap;
            if total > room {
                // Records never straddle the ring end: fill it with padding,
                // which carries the next LSN and does not consume it.
                let h = RecordHeader {
                    crc: 0,
                    kind: RecordKind::Padding.raw(),
                    incarnation: self.incarnation,
                    len: (room - HEADER_LEN as u64) as u32,
                    epoch: st.epoch,
                    lsn: st.tail.lsn.0,
                    pos: st.tail.pos,
                };
                self.write_record(h, &[], self.salt);
                st.tail.pos += room;
            }
            lsn = st.tail.lsn;
            let h = RecordHeader {
                crc: 0,
                kind: kind.raw(),
                incarnation: self.incarnation,
                len: payload.len() as u32,
                epoch: st.epoch,
                lsn: lsn.0,
                pos: st.tail.pos,
            };
            self.write_record(h, payload, *payload_crc);
            st.tail = Cursor {
                pos: st.tail.pos + total,
                lsn: lsn.next(),
            };
        }
        // Invariant: the appended tail never laps the head.
        debug_assert!(st.tail.pos - self.head_pos.load(Ordering::Acquire) <= cap);
        Ok(Appended {
            lsn,
            pos: start,
            end: st.tail.pos,
        })
    }

    fn write_record(&self, mut h: RecordHeader, payload: &[u8], payload_crc: u32) {
        let g = self.sb.geometry;
        // Precondition: aligned, and the whole record lies in this lap.
        debug_assert!(h.pos.is_multiple_of(RECORD_ALIGN));
        debug_assert!(g.ring_offset(h.pos) + h.total_len() <= g.capacity);
        h.crc = h.checksum(payload_crc);
        let off = g.region_offset(h.pos) as usize;
        self.region.write(off, &h.encode());
        self.region.write(off + HEADER_LEN, payload);
    }

    /// Makes every record up to and including `lsn` durable (and every other
    /// record appended so far: group commit), then the persisted tail in the
    /// control block. Returns the persisted tail: its `pos` is where the
    /// replication layer may ship up to.
    ///
    /// # Errors
    /// [`PersistError::NotAppended`] for a future LSN; [`PersistError::Io`]
    /// when msync fails.
    pub fn persist_to(&self, lsn: Lsn) -> Result<Cursor, PersistError> {
        if lsn.0 < self.persisted_lsn.load(Ordering::Acquire) {
            return Ok(self.persisted());
        }
        let _g = lock(&self.persist);
        if lsn.0 < self.persisted_lsn.load(Ordering::Acquire) {
            return Ok(self.persisted());
        }
        let tail = self.tail();
        if lsn >= tail.lsn {
            return Err(PersistError::NotAppended {
                lsn,
                next_lsn: tail.lsn,
            });
        }
        self.persist_range_to(tail)?;
        Ok(tail)
    }

    /// Persists everything appended so far.
    ///
    /// # Errors
    /// [`PersistError::Io`] when msync fails.
    pub fn persist_all(&self) -> Result<Cursor, PersistError> {
        let _g = lock(&self.persist);
        let tail = self.tail();
        self.persist_range_to(tail)?;
        Ok(tail)
    }

    /// Caller holds the persist lock.
    fn persist_range_to(&self, tail: Cursor) -> Result<(), PersistError> {
        let from = self.persisted().pos;
        if tail.pos == from {
            return Ok(());
        }
        let io = |offset: u64, len: u64| {
            move |source: io::Error| PersistError::Io {
                offset,
                len_bytes: len,
                source,
            }
        };
        for p in self.sb.geometry.pieces(from, tail.pos) {
            self.region
                .persist(p.region_offset as usize, p.len as usize)
                .map_err(io(p.region_offset, p.len))?;
        }
        // Data first, then the tail that covers it (write-ahead on media).
        self.control()
            .set_persisted_tail(tail)
            .map_err(io(crate::layout::CONTROL_OFFSET as u64, 64))?;
        *lock(&self.persisted) = tail;
        self.persisted_lsn.store(tail.lsn.0, Ordering::Release);
        Ok(())
    }

    /// Reclaims the ring up to `pos` (a record boundary at or before the
    /// persisted tail, typically what every replica has made durable and
    /// applied). The new head is persisted before the space is reused.
    /// Returns the new head.
    ///
    /// # Errors
    /// [`HeadError`] variants; the head does not move on error.
    pub fn advance_head(&self, pos: u64) -> Result<Cursor, HeadError> {
        let mut head = lock(&self.head);
        if pos < head.pos {
            return Err(HeadError::Backwards {
                pos,
                head: head.pos,
            });
        }
        if pos == head.pos {
            return Ok(*head);
        }
        let persisted = self.persisted();
        if pos > persisted.pos {
            return Err(HeadError::BeyondPersisted {
                pos,
                persisted_tail: persisted.pos,
            });
        }
        let lsn = if pos == persisted.pos {
            persisted.lsn
        } else {
            if !pos.is_multiple_of(RECORD_ALIGN) {
                return Err(HeadError::NotRecordBoundary { pos });
            }
            // Bytes in [head, persisted) are immutable while we hold the head
            // lock (appenders never write there), so reading is race-free.
            let mut b = [0u8; HEADER_LEN];
            self.region
                .read(self.sb.geometry.region_offset(pos) as usize, &mut b);
            let h = RecordHeader::decode(&b);
            let lsn = Lsn(h.lsn);
            if h.pos != pos
                || RecordKind::from_raw(h.kind).is_none()
                || lsn < head.lsn
                || lsn > persisted.lsn
            {
                return Err(HeadError::NotRecordBoundary { pos });
            }
            lsn
        };
        let new = Cursor { pos, lsn };
        self.control().set_head(new).map_err(|source| {
            HeadError::Persist(PersistError::Io {
                offset: crate::layout::CONTROL_OFFSET as u64,
                len_bytes: 64,
                source,
            })
        })?;
        self.head_pos.store(pos, Ordering::Release);
        *head = new;
        Ok(new)
    }

    /// Appends and persists a seal record for the current epoch and marks
    /// the log sealed: no more appends until [`Log::begin_epoch`].
    ///
    /// # Errors
    /// Append or persist failure.
    pub fn seal(&self) -> Result<Lsn, SealError> {
        let lsn = {
            let mut st = lock(&self.append);
            let a = self.append_locked(&mut st, &[(&[], self.salt)], RecordKind::Seal)?;
            st.sealed = true;
            a.lsn
        };
        self.persist_to(lsn)?;
        self.control()
            .set_state(LogState::Sealed, self.pid)
            .map_err(|source| PersistError::Io {
                offset: crate::layout::CONTROL_OFFSET as u64,
                len_bytes: 64,
                source,
            })?;
        Ok(lsn)
    }

    /// Moves to a newer epoch (after fencing by the replication layer) and
    /// re-opens a sealed log for appends.
    ///
    /// # Errors
    /// [`EpochError::NotNewer`] unless `epoch` is greater than the current.
    pub fn begin_epoch(&self, epoch: u32) -> Result<(), EpochError> {
        let mut st = lock(&self.append);
        if epoch <= st.epoch {
            return Err(EpochError::NotNewer {
                current: st.epoch,
                asked: epoch,
            });
        }
        let io = |source| {
            EpochError::Persist(PersistError::Io {
                offset: crate::layout::CONTROL_OFFSET as u64,
                len_bytes: 64,
                source,
            })
        };
        self.control().set_epoch(epoch).map_err(io)?;
        self.control()
            .set_state(LogState::Running, self.pid)
            .map_err(io)?;
        st.epoch = epoch;
        st.sealed = false;
        Ok(())
    }

    /// Read access to the ring for replay (exclusive: `&mut self`).
    pub(crate) fn scan_persisted(&mut self) -> Result<(Scan<'_>, Cursor), LayoutError> {
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
        Ok((Scan::new(self.region.bytes(), cfg)?, persisted))
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // Clean shutdown: make everything appended durable, then say so.
        // Failures here cannot be reported; recovery handles either outcome.
        if self.persist_all().is_ok() && !lock(&self.append).sealed {
            let _ = self.control().set_state(LogState::CleanShutdown, self.pid);
        }
    }
}

/// Sealing failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SealError {
    /// The seal record could not be appended.
    Append(AppendError),
    /// It could not be persisted.
    Persist(PersistError),
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Append(e) => write!(f, "sealing: {e}"),
            Self::Persist(e) => write!(f, "sealing: {e}"),
        }
    }
}

impl std::error::Error for SealError {}

impl From<AppendError> for SealError {
    fn from(e: AppendError) -> Self {
        Self::Append(e)
    }
}

impl From<PersistError> for SealError {
    fn from(e: PersistError) -> Self {
        Self::Persist(e)
    }
}
