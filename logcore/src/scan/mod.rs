//! The recovery scanner: walks records from a known cursor and stops at the
//! first one that does not validate.
//!
//! It reads any [`Source`]: a byte image (a file copied off a dead machine,
//! a mirror buffer) borrowed as `[u8]`, or a mapped [`crate::Region`] that
//! another writer may be changing while it is read (the NIC writing a
//! replica's ring, a live host appending to the log `tg-log` inspects). A
//! region is only ever copied out of ([`crate::Region::read_at`]), never
//! borrowed as `&[u8]`: the header and payload are copied into the scan's
//! own buffer, checked there, and handed out from there, so the bytes the
//! CRC covered are the bytes the caller gets. It never panics and never
//! reads out of bounds, whatever the bytes.
//!
//! A record at logical position `p` is accepted only if its header says
//! `pos == p`, its LSN continues the chain, its kind, length, epoch and
//! incarnation are allowed there, and its CRC32C (seeded with the log's
//! UUID-derived salt) matches. Stale bytes from an earlier lap of the ring
//! name a position one or more capacities lower, so they fail the position
//! check even when their CRC is intact; bytes of another log fail the CRC
//! because of the salt; a record appended but never persisted before an
//! earlier crash, which a later incarnation's shorter record happened to line
//! up with, fails the incarnation check. What remains is a torn write whose
//! random bytes pass CRC32C: probability 2^-32 per torn record.

mod image;
mod source;

pub use image::Image;
pub use source::Source;

use crate::error::{LayoutError, RecordFault, ScanError};
use crate::layout::{
    crc_salt, ControlSnapshot, Cursor, Geometry, Lsn, Record, RecordHeader, RecordKind, Superblock,
    HEADER_LEN, RECORD_ALIGN,
};

/// What the records before a scan's position require of the next one: its
/// epoch may not be lower than the last record's, nor equal a sealed epoch,
/// and its incarnation not older than the last record's. A scan starts with
/// nothing before it unless it is told ([`Scan::continuing`]); a reader
/// that scans a growing log in rounds carries it from one round to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Continuity {
    /// Epoch of the last record (0: none yet).
    pub epoch: u32,
    /// Epoch of the last seal record, if any.
    pub sealed: Option<u32>,
    /// Incarnation (low 16 bits) of the last record, if any.
    pub incarnation: Option<u16>,
}

/// What the scanner needs besides the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanConfig {
    /// Ring placement within the image (`ring_offset` 0 for a ring-only
    /// image such as a mirror buffer).
    pub geometry: Geometry,
    /// [`crc_salt`] of the log UUID.
    pub salt: u32,
    /// Where to start: the head (or any record boundary with its LSN).
    pub start: Cursor,
    /// Records before this position were acknowledged durable: a fault there
    /// is corruption ([`ScanError`]), after it just the end of the log.
    pub persisted_tail: u64,
    /// Largest epoch a record may carry.
    pub max_epoch: u32,
    /// Current incarnation (low 16 bits), if known: no record may be newer.
    pub incarnation: Option<u16>,
}

impl ScanConfig {
    /// Configuration for scanning a whole-region image from its head.
    #[must_use]
    pub fn for_image(sb: &Superblock, control: &ControlSnapshot) -> Self {
        Self {
            geometry: sb.geometry,
            salt: crc_salt(&sb.uuid),
            start: control.head,
            persisted_tail: control.persisted.pos,
            max_epoch: control.epoch.max(sb.epoch),
            incarnation: Some(control.incarnation as u16),
        }
    }
}

/// Why a scan ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The record at the stop cursor does not validate (torn, stale, never
    /// written): the normal end of a log.
    Fault(RecordFault),
    /// A whole ring capacity of records was read.
    RingFull,
}

/// Where and why a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// The tail: position after the last valid record and the next LSN.
    pub at: Cursor,
    /// Why it stopped there.
    pub reason: StopReason,
}

/// Totals of a finished scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanSummary {
    /// Where the scan started.
    pub start: Cursor,
    /// Where and why it ended.
    pub stop: Stop,
    /// Data and seal records read (padding not counted).
    pub records: u64,
    /// Ring bytes covered.
    pub bytes: u64,
    /// What the records read require of the next one (the last record's
    /// epoch, the last seal's).
    pub after: Continuity,
}

/// A scan over validated records of a [`Source`]; see the module docs.
///
/// Over a byte image (`Scan<'a>`, the default) it is an [`Iterator`] whose
/// records borrow the image. Over any source, [`Scan::next_record`] hands
/// out each record from the scan's own copy (lending: one at a time).
#[derive(Debug)]
pub struct Scan<'a, S: ?Sized + Source = [u8]> {
    src: &'a S,
    cfg: ScanConfig,
    cursor: Cursor,
    after: Continuity,
    stop: Option<Stop>,
    done: bool,
    /// The payload of the record [`Scan::next_record`] last returned, copied
    /// out of the source. Grows to the largest record read (at most half
    /// the ring), then is reused.
    payload: Vec<u8>,
}

/// A record's first cache line.
const LINE: usize = RECORD_ALIGN as usize;
const _: () = assert!(HEADER_LEN < LINE);

/// A header that passed every check but the CRC.
#[derive(Debug, Clone, Copy)]
struct Checked {
    /// The record's first line as copied out of the source.
    line: [u8; LINE],
    header: RecordHeader,
    kind: RecordKind,
    total_len: u64,
    /// Source offset of the payload.
    payload_offset: usize,
    /// Payload bytes covered by the CRC (0 for padding).
    payload_len: usize,
}

impl Checked {
    fn record<'p>(&self, at: Cursor, payload: &'p [u8]) -> Record<'p> {
        Record {
            lsn: at.lsn,
            pos: at.pos,
            epoch: self.header.epoch,
            incarnation: self.header.incarnation,
            kind: self.kind,
            crc: self.header.crc,
            payload,
            total_len: self.total_len,
        }
    }
}

impl<'a> Scan<'a> {
    /// A scan of the byte image `image` with `cfg`.
    ///
    /// # Errors
    /// [`LayoutError`] when the ring does not lie inside the image or the
    /// geometry is unusable.
    pub fn new(image: &'a [u8], cfg: ScanConfig) -> Result<Self, LayoutError> {
        Self::over(image, cfg)
    }
}

impl<'a, S: ?Sized + Source> Scan<'a, S> {
    /// A scan of `src` (a byte image or a mapped region) with `cfg`.
    ///
    /// # Errors
    /// [`LayoutError`] when the ring does not lie inside the source or the
    /// geometry is unusable.
    pub fn over(src: &'a S, cfg: ScanConfig) -> Result<Self, LayoutError> {
        let g = cfg.geometry;
        let len = src.len_bytes() as u64;
        if g.capacity == 0 || !g.capacity.is_multiple_of(RECORD_ALIGN) {
            return Err(LayoutError::BadGeometry {
                field: "ring_capacity",
                value: g.capacity,
                rule: "must be a non-zero multiple of 64",
            });
        }
        if g.ring_offset
            .checked_add(g.capacity)
            .is_none_or(|e| e > len)
        {
            return Err(LayoutError::GeometryMismatch {
                field: "ring_capacity",
                expected: len.saturating_sub(g.ring_offset),
                got: g.capacity,
            });
        }
        if cfg.start.pos > cfg.persisted_tail || cfg.persisted_tail - cfg.start.pos > g.capacity {
            return Err(LayoutError::ControlInconsistent {
                head: cfg.start.pos,
                persisted_tail: cfg.persisted_tail,
                capacity_bytes: g.capacity,
            });
        }
        Ok(Self {
            src,
            cfg,
            cursor: cfg.start,
            after: Continuity::default(),
            stop: None,
            done: false,
            payload: Vec::new(),
        })
    }

    /// Position and LSN of the next record to read (after the end: the tail).
    #[must_use]
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// What the records read so far require of the next one (see
    /// [`Continuity`]): carry it into the next scan that starts at this
    /// scan's [`cursor`](Self::cursor) with [`continuing`](Self::continuing).
    #[must_use]
    pub fn continuity(&self) -> Continuity {
        self.after
    }

    /// This scan continues one that ended at its start with `after`: the
    /// next record must not go back in epoch, continue a sealed epoch, or
    /// carry an older incarnation than the records before the start.
    /// Without it a scan judges its first record by the configuration
    /// alone.
    #[must_use]
    pub fn continuing(mut self, after: Continuity) -> Self {
        self.after = after;
        self
    }

    /// Why the scan stopped (after the last record was returned).
    #[must_use]
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// The next valid record, copied out of the source into the scan's own
    /// buffer (so a concurrent writer cannot change it between the CRC and
    /// the caller); `None` at the end of the log ([`Scan::stop`] says why).
    /// Works for every source; byte images can also be iterated without
    /// copying.
    ///
    /// # Errors
    /// [`ScanError`] on corruption before the persisted tail (then `None`).
    pub fn next_record(&mut self) -> Option<Result<Record<'_>, ScanError>> {
        let (at, checked) = match self.next_header()? {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        let n = checked.payload_len;
        if self.payload.len() < n {
            self.payload.resize(n, 0);
        }
        if let Some(inline) = checked.line[HEADER_LEN..].get(..n) {
            // A small payload came with the header, in the same copy.
            self.payload[..n].copy_from_slice(inline);
        } else if !self
            .src
            .read_at(checked.payload_offset, &mut self.payload[..n])
        {
            let offset = checked.payload_offset as u64;
            return self.reject(RecordFault::OutsideImage { offset }).map(Err);
        }
        if let Err(fault) = self.check_crc(&checked, &self.payload[..n]) {
            return self.reject(fault).map(Err);
        }
        self.accept(at, &checked);
        Some(Ok(checked.record(at, &self.payload[..n])))
    }

    /// Runs the scan to its end, counting.
    ///
    /// # Errors
    /// [`ScanError`] on corruption before the persisted tail.
    pub fn finish(mut self) -> Result<ScanSummary, ScanError> {
        let start = self.cfg.start;
        let mut records = 0u64;
        while let Some(r) = self.next_record() {
            if r?.kind != RecordKind::Padding {
                records += 1;
            }
        }
        let stop = self.stop.unwrap_or(Stop {
            at: self.cursor,
            reason: StopReason::RingFull,
        });
        Ok(ScanSummary {
            start,
            stop,
            records,
            bytes: stop.at.pos - start.pos,
            after: self.after,
        })
    }

    /// The cursor of the next record to check, `None` once the scan ended
    /// (a whole ring read ends it here), or the fault of a misaligned cursor.
    fn begin(&mut self) -> Option<Result<Cursor, RecordFault>> {
        if self.done {
            return None;
        }
        let c = self.cursor;
        if c.pos - self.cfg.start.pos >= self.cfg.geometry.capacity {
            self.done = true;
            self.stop = Some(Stop {
                at: c,
                reason: StopReason::RingFull,
            });
            return None;
        }
        if !c.pos.is_multiple_of(RECORD_ALIGN) {
            return Some(Err(RecordFault::PositionMismatch {
                expected: c.pos - c.pos % RECORD_ALIGN,
                found: c.pos,
            }));
        }
        Some(Ok(c))
    }

    /// Every check of the record at `c` but its CRC (docs/log-format.md,
    /// checks 1 to 8).
    /// The next record's checked header, for both ways of reading
    /// (`None` at the end; a fault before the persisted tail is rejected).
    fn next_header(&mut self) -> Option<Result<(Cursor, Checked), ScanError>> {
        let at = match self.begin()? {
            Ok(at) => at,
            Err(fault) => return self.reject(fault).map(Err),
        };
        match self.check_header(at) {
            Ok(c) => Some(Ok((at, c))),
            Err(fault) => self.reject(fault).map(Err),
        }
    }

    fn check_header(&self, c: Cursor) -> Result<Checked, RecordFault> {
        let g = self.cfg.geometry;
        let off = g.ring_offset(c.pos);
        let room = g.capacity - off;
        let used = c.pos - self.cfg.start.pos;
        let base = usize::try_from(g.ring_offset + off).unwrap_or(usize::MAX);
        // The record's first cache line, in one copy: its header, and all
        // of a payload of up to 32 bytes. Inside the ring, which `over`
        // checked lies in the source: records start 64-aligned in a ring of
        // 64-byte multiples.
        let mut line = [0u8; LINE];
        if !self.src.read_at(base, &mut line) {
            return Err(RecordFault::OutsideImage {
                offset: base as u64,
            });
        }
        let hb: &[u8; HEADER_LEN] = line[..HEADER_LEN]
            .try_into()
            .unwrap_or_else(|_| unreachable!("a line holds a header"));
        if hb.iter().all(|&b| b == 0) {
            return Err(RecordFault::Zeroed);
        }
        let h = RecordHeader::decode(hb);
        let kind = RecordKind::from_raw(h.kind).ok_or(RecordFault::BadKind { kind: h.kind })?;
        if h.pos != c.pos {
            return Err(RecordFault::PositionMismatch {
                expected: c.pos,
                found: h.pos,
            });
        }
        if h.lsn != c.lsn.0 {
            return Err(RecordFault::LsnMismatch {
                expected: c.lsn,
                found: Lsn(h.lsn),
            });
        }
        let total = h.total_len();
        let len_ok = match kind {
            // Padding fills exactly to the ring end.
            RecordKind::Padding => u64::from(h.len) + HEADER_LEN as u64 == room,
            _ => total <= room && total <= g.capacity / 2,
        };
        // A record may not run into the start of the scan (a full lap).
        if !len_ok || used + total > g.capacity {
            return Err(RecordFault::BadLength {
                len: h.len,
                room_bytes: room,
            });
        }
        let min_epoch = match self.after.sealed {
            Some(s) => s.saturating_add(1).max(self.after.epoch),
            None => self.after.epoch,
        };
        if h.epoch < min_epoch || h.epoch > self.cfg.max_epoch {
            return Err(RecordFault::BadEpoch {
                found: h.epoch,
                min: min_epoch,
                max: self.cfg.max_epoch,
            });
        }
        // Serial-number comparison (RFC 1982) so 16-bit incarnations wrap.
        if let Some(prev) = self.after.incarnation {
            if h.incarnation.wrapping_sub(prev) >= 0x8000 {
                return Err(RecordFault::StaleIncarnation {
                    found: h.incarnation,
                    previous: prev,
                });
            }
        }
        if let Some(cur) = self.cfg.incarnation {
            if cur.wrapping_sub(h.incarnation) >= 0x8000 {
                return Err(RecordFault::FutureIncarnation {
                    found: h.incarnation,
                    current: cur,
                });
            }
        }
        Ok(Checked {
            line,
            header: h,
            kind,
            total_len: total,
            payload_offset: base + HEADER_LEN,
            // Padding's CRC covers its header only; its body is whatever
            // was in the ring.
            payload_len: if kind == RecordKind::Padding {
                0
            } else {
                h.len as usize
            },
        })
    }

    /// Check 9: the CRC over `payload` (exactly the checked length) and the
    /// header.
    fn check_crc(&self, c: &Checked, payload: &[u8]) -> Result<(), RecordFault> {
        debug_assert_eq!(payload.len(), c.payload_len);
        let payload_crc = crc32c::crc32c_append(self.cfg.salt, payload);
        let computed = c.header.checksum(payload_crc);
        if computed != c.header.crc {
            return Err(RecordFault::ChecksumMismatch {
                stored: c.header.crc,
                computed,
            });
        }
        Ok(())
    }

    /// Moves past the valid record `c` at `at`.
    fn accept(&mut self, at: Cursor, c: &Checked) {
        let end = at.pos + c.total_len;
        // Postcondition pairs with the append-side assertion: the record
        // ends inside this lap and on an aligned boundary.
        debug_assert!(end.is_multiple_of(RECORD_ALIGN));
        self.cursor = Cursor {
            pos: end,
            lsn: if c.kind == RecordKind::Padding {
                at.lsn
            } else {
                at.lsn.next()
            },
        };
        self.after.epoch = c.header.epoch;
        if c.kind == RecordKind::Seal {
            self.after.sealed = Some(c.header.epoch);
        }
        self.after.incarnation = Some(c.header.incarnation);
    }

    /// Ends the scan at the cursor on `fault`: corruption before the
    /// persisted tail, otherwise the end of the log.
    fn reject(&mut self, fault: RecordFault) -> Option<ScanError> {
        let c = self.cursor;
        self.done = true;
        if c.pos < self.cfg.persisted_tail {
            return Some(ScanError::CorruptBeforeTail {
                pos: c.pos,
                offset: self.cfg.geometry.region_offset(c.pos),
                lsn: c.lsn,
                persisted_tail: self.cfg.persisted_tail,
                fault,
            });
        }
        self.stop = Some(Stop {
            at: c,
            reason: StopReason::Fault(fault),
        });
        None
    }
}

/// A byte image is read in place: its records borrow the image.
impl<'a> Iterator for Scan<'a> {
    type Item = Result<Record<'a>, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (at, checked) = match self.next_header()? {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        let image: &'a [u8] = self.src;
        let p0 = checked.payload_offset;
        let Some(payload) = image.get(p0..p0.saturating_add(checked.payload_len)) else {
            let offset = p0 as u64;
            return self.reject(RecordFault::OutsideImage { offset }).map(Err);
        };
        if let Err(fault) = self.check_crc(&checked, payload) {
            return self.reject(fault).map(Err);
        }
        self.accept(at, &checked);
        Some(Ok(checked.record(at, payload)))
    }
}
