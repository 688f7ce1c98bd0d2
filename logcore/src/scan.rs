//! The recovery scanner: walks records from a known cursor and stops at the
//! first one that does not validate.
//!
//! It works on any byte image: a live region (via `Region::bytes`), a
//! replica's mirror, a file copied off a dead machine. It never panics and
//! never indexes out of bounds (every access is `get`), whatever the bytes.
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

use crate::error::{LayoutError, RecordFault, ScanError};
use crate::layout::{
    crc_salt, ControlSnapshot, Cursor, Geometry, Lsn, Record, RecordHeader, RecordKind, Superblock,
    HEADER_LEN, RECORD_ALIGN,
};

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
}

/// An iterator over validated records; see the module docs.
#[derive(Debug)]
pub struct Scan<'a> {
    image: &'a [u8],
    cfg: ScanConfig,
    cursor: Cursor,
    prev_epoch: u32,
    sealed_epoch: Option<u32>,
    prev_incarnation: Option<u16>,
    stop: Option<Stop>,
    done: bool,
}

impl<'a> Scan<'a> {
    /// A scan of `image` with `cfg`.
    ///
    /// # Errors
    /// [`LayoutError`] when the ring does not lie inside the image or the
    /// geometry is unusable.
    pub fn new(image: &'a [u8], cfg: ScanConfig) -> Result<Self, LayoutError> {
        let g = cfg.geometry;
        if g.capacity == 0 || !g.capacity.is_multiple_of(RECORD_ALIGN) {
            return Err(LayoutError::BadGeometry {
                field: "ring_capacity",
                value: g.capacity,
                rule: "must be a non-zero multiple of 64",
            });
        }
        if g.ring_offset
            .checked_add(g.capacity)
            .is_none_or(|e| e > image.len() as u64)
        {
            return Err(LayoutError::GeometryMismatch {
                field: "ring_capacity",
                expected: (image.len() as u64).saturating_sub(g.ring_offset),
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
            image,
            cfg,
            cursor: cfg.start,
            prev_epoch: 0,
            sealed_epoch: None,
            prev_incarnation: None,
            stop: None,
            done: false,
        })
    }

    /// Position and LSN of the next record to read (after the end: the tail).
    #[must_use]
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Why the scan stopped (after the iterator returned `None`).
    #[must_use]
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// Runs the scan to its end, counting.
    ///
    /// # Errors
    /// [`ScanError`] on corruption before the persisted tail.
    pub fn finish(mut self) -> Result<ScanSummary, ScanError> {
        let start = self.cfg.start;
        let mut records = 0u64;
        for r in self.by_ref() {
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
        })
    }

    fn validate(&self, c: Cursor) -> Result<Record<'a>, RecordFault> {
        let g = self.cfg.geometry;
        let off = g.ring_offset(c.pos);
        let room = g.capacity - off;
        let used = c.pos - self.cfg.start.pos;
        let base = usize::try_from(g.ring_offset + off).unwrap_or(usize::MAX);
        let hb: &[u8; HEADER_LEN] = self
            .image
            .get(base..base.saturating_add(HEADER_LEN))
            .and_then(|s| s.try_into().ok())
            .ok_or(RecordFault::OutsideImage {
                offset: base as u64,
            })?;
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
        let min_epoch = match self.sealed_epoch {
            Some(s) => s.saturating_add(1).max(self.prev_epoch),
            None => self.prev_epoch,
        };
        if h.epoch < min_epoch || h.epoch > self.cfg.max_epoch {
            return Err(RecordFault::BadEpoch {
                found: h.epoch,
                min: min_epoch,
                max: self.cfg.max_epoch,
            });
        }
        // Serial-number comparison (RFC 1982) so 16-bit incarnations wrap.
        if let Some(prev) = self.prev_incarnation {
            if h.incarnation.wrapping_sub(prev) >= 0x8000 {
                return Err(RecordFault::StaleIncarnation {
                    found: h.incarnation,
                    previous: prev,
                });
            }
        }
        if let Some(cur) = self.cfg.incarnation {
            if cur.wrapping_sub(h.incarnation) >= 0x8000 {
                return Err(RecordFault::StaleIncarnation {
                    found: h.incarnation,
                    previous: cur,
                });
            }
        }
        let payload: &'a [u8] = if kind == RecordKind::Padding {
            &[]
        } else {
            let p0 = base + HEADER_LEN;
            self.image
                .get(p0..p0.saturating_add(h.len as usize))
                .ok_or(RecordFault::OutsideImage { offset: p0 as u64 })?
        };
        let payload_crc = crc32c::crc32c_append(self.cfg.salt, payload);
        let computed = h.checksum(payload_crc);
        if computed != h.crc {
            return Err(RecordFault::ChecksumMismatch {
                stored: h.crc,
                computed,
            });
        }
        Ok(Record {
            lsn: c.lsn,
            pos: c.pos,
            epoch: h.epoch,
            incarnation: h.incarnation,
            kind,
            crc: h.crc,
            payload,
            total_len: total,
        })
    }
}

impl<'a> Iterator for Scan<'a> {
    type Item = Result<Record<'a>, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
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
        let fault = if c.pos.is_multiple_of(RECORD_ALIGN) {
            match self.validate(c) {
                Ok(rec) => {
                    // Postcondition pairs with the append-side assertion: the
                    // record ends inside this lap and on an aligned boundary.
                    debug_assert!(rec.end() % RECORD_ALIGN == 0);
                    self.cursor = Cursor {
                        pos: rec.end(),
                        lsn: if rec.kind == RecordKind::Padding {
                            c.lsn
                        } else {
                            c.lsn.next()
                        },
                    };
                    self.prev_epoch = rec.epoch;
                    if rec.kind == RecordKind::Seal {
                        self.sealed_epoch = Some(rec.epoch);
                    }
                    self.prev_incarnation = Some(rec.incarnation);
                    return Some(Ok(rec));
                }
                Err(f) => f,
            }
        } else {
            RecordFault::PositionMismatch {
                expected: c.pos - c.pos % RECORD_ALIGN,
                found: c.pos,
            }
        };
        self.done = true;
        if c.pos < self.cfg.persisted_tail {
            return Some(Err(ScanError::CorruptBeforeTail {
                pos: c.pos,
                offset: self.cfg.geometry.region_offset(c.pos),
                lsn: c.lsn,
                persisted_tail: self.cfg.persisted_tail,
                fault,
            }));
        }
        self.stop = Some(Stop {
            at: c,
            reason: StopReason::Fault(fault),
        });
        None
    }
}

/// A whole-region image: superblock and control block decoded, ready to scan.
#[derive(Debug, Clone)]
pub struct Image<'a> {
    bytes: &'a [u8],
    superblock: Superblock,
    control: ControlSnapshot,
}

impl<'a> Image<'a> {
    /// Decodes the metadata of a whole-region image.
    ///
    /// # Errors
    /// [`LayoutError`] for a foreign, corrupt or mis-sized image.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LayoutError> {
        let superblock = Superblock::decode(bytes, bytes.len() as u64)?;
        let control = ControlSnapshot::decode(bytes)?;
        let cap = superblock.geometry.capacity;
        if control.head.pos > control.persisted.pos
            || control.persisted.pos - control.head.pos > cap
            || control.head.lsn > control.persisted.lsn
        {
            return Err(LayoutError::ControlInconsistent {
                head: control.head.pos,
                persisted_tail: control.persisted.pos,
                capacity_bytes: cap,
            });
        }
        Ok(Self {
            bytes,
            superblock,
            control,
        })
    }

    /// The superblock.
    #[must_use]
    pub fn superblock(&self) -> &Superblock {
        &self.superblock
    }

    /// The control block as stored.
    #[must_use]
    pub fn control(&self) -> &ControlSnapshot {
        &self.control
    }

    /// Scan from the head.
    ///
    /// # Errors
    /// [`LayoutError`] if the geometry does not fit the image.
    pub fn scan(&self) -> Result<Scan<'a>, LayoutError> {
        Scan::new(
            self.bytes,
            ScanConfig::for_image(&self.superblock, &self.control),
        )
    }

    /// Scan from `start` instead of the head: a record boundary between
    /// the head and the persisted tail (the takeover scans from the
    /// recorded persisted tail).
    ///
    /// # Errors
    /// [`LayoutError`] if the geometry does not fit the image.
    pub fn scan_from(&self, start: Cursor) -> Result<Scan<'a>, LayoutError> {
        debug_assert!(
            self.control.head.pos <= start.pos && start.pos <= self.control.persisted.pos,
            "scan start {start:?} outside [head, persisted tail]"
        );
        let mut cfg = ScanConfig::for_image(&self.superblock, &self.control);
        cfg.start = start;
        Scan::new(self.bytes, cfg)
    }

    /// Scans everything and checks that every acknowledged record is intact.
    ///
    /// # Errors
    /// [`ScanError`] on corruption before the persisted tail.
    pub fn verify(&self) -> Result<ScanSummary, ScanError> {
        match self.scan() {
            Ok(s) => s.finish(),
            // Unreachable after parse() (it checked the same things), but a
            // scanner must not panic: report it as corruption at the head.
            Err(_) => Err(ScanError::CorruptBeforeTail {
                pos: self.control.head.pos,
                offset: self
                    .superblock
                    .geometry
                    .region_offset(self.control.head.pos),
                lsn: self.control.head.lsn,
                persisted_tail: self.control.persisted.pos,
                fault: RecordFault::OutsideImage {
                    offset: self.superblock.geometry.ring_offset,
                },
            }),
        }
    }
}
