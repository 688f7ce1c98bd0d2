//! A record that does not validate, and damage a scan finds before the persisted tail.

use std::fmt;

use crate::layout::Lsn;

/// Why one record failed validation. At the tail this just ends the log (a
/// torn or never-written record); before the persisted tail it is corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordFault {
    /// The header is all zero: never written.
    Zeroed,
    /// Unknown record kind.
    BadKind {
        /// Kind value found.
        kind: u16,
    },
    /// The header names another position: stale data from an earlier lap of
    /// the ring (or a foreign log).
    PositionMismatch {
        /// Position expected.
        expected: u64,
        /// Position in the header.
        found: u64,
    },
    /// LSN continuity broken.
    LsnMismatch {
        /// LSN expected.
        expected: Lsn,
        /// LSN in the header.
        found: Lsn,
    },
    /// Length does not fit the ring (or padding does not end at the ring end).
    BadLength {
        /// Payload length in the header.
        len: u32,
        /// Bytes left until the ring end.
        room_bytes: u64,
    },
    /// The record's epoch is older than its predecessor's or newer than the
    /// log's current epoch.
    BadEpoch {
        /// Epoch in the header.
        found: u32,
        /// Lowest epoch allowed here.
        min: u32,
        /// Highest epoch allowed here.
        max: u32,
    },
    /// The record comes from an older incarnation than its predecessor (a
    /// record appended but never persisted before an earlier crash).
    StaleIncarnation {
        /// Incarnation in the header.
        found: u16,
        /// Incarnation of the predecessor.
        previous: u16,
    },
    /// The record carries an incarnation newer than the log's current one
    /// (no writer of this log has opened it that often: stale bytes, or a
    /// replica that lost count of its writer's opens).
    FutureIncarnation {
        /// Incarnation in the header.
        found: u16,
        /// The log's current incarnation (low 16 bits).
        current: u16,
    },
    /// The record's bytes lie outside the image. Defensive: `Scan::new`
    /// already refuses a ring that does not fit its image, so a scan reports
    /// this only if that check is ever weakened; it exists so the scanner
    /// never has to index unchecked.
    OutsideImage {
        /// Image offset that could not be read.
        offset: u64,
    },
    /// CRC32C mismatch: a torn or corrupted record.
    ChecksumMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed.
        computed: u32,
    },
}

impl fmt::Display for RecordFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zeroed => write!(f, "header is all zero (never written)"),
            Self::BadKind { kind } => write!(f, "unknown record kind {kind}"),
            Self::PositionMismatch { expected, found } => write!(
                f,
                "header names position {found}, expected {expected} (stale data from an earlier lap)"
            ),
            Self::LsnMismatch { expected, found } => {
                write!(f, "LSN {found} where {expected} was expected")
            }
            Self::BadLength { len, room_bytes } => {
                write!(f, "payload length {len} does not fit the {room_bytes} bytes to the ring end")
            }
            Self::BadEpoch { found, min, max } => {
                write!(f, "epoch {found} outside the allowed {min}..={max}")
            }
            Self::StaleIncarnation { found, previous } => write!(
                f,
                "incarnation {found} older than its predecessor's {previous} (never-persisted \
                 record from before an earlier crash)"
            ),
            Self::FutureIncarnation { found, current } => write!(
                f,
                "incarnation {found} newer than the log's current {current} (bytes no writer of \
                 this log wrote since it was last opened)"
            ),
            Self::OutsideImage { offset } => {
                write!(f, "record bytes at image offset {offset} lie outside the image (truncated?)")
            }
            Self::ChecksumMismatch { stored, computed } => {
                write!(f, "CRC32C mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
        }
    }
}

/// Scanning found damage the log cannot have by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanError {
    /// A record before the persisted tail is invalid: those records were
    /// reported durable, so this is corruption, not a torn tail.
    CorruptBeforeTail {
        /// Logical position of the bad record.
        pos: u64,
        /// Region offset of the bad record.
        offset: u64,
        /// LSN expected there.
        lsn: Lsn,
        /// Persisted tail recorded in the control block.
        persisted_tail: u64,
        /// What is wrong with it.
        fault: RecordFault,
    },
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CorruptBeforeTail {
                pos,
                offset,
                lsn,
                persisted_tail,
                fault,
            } => write!(
                f,
                "corrupt record at position {pos} (region offset {offset}, expected LSN {lsn}) \
                 before the persisted tail {persisted_tail}: {fault}; records up to the persisted \
                 tail were acknowledged as durable, so restore this log from a replica"
            ),
        }
    }
}

impl std::error::Error for ScanError {}
