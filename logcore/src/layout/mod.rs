//! The on-media layout: superblock, control block, records, ring geometry.
//!
//! All multi-byte integers are little-endian. See `docs/log-format.md` for
//! the byte-by-byte layout and the reasoning behind it.
//!
//! ```text
//! region offset 0      superblock (128 B, immutable after create)
//!               256    control block (5 cache lines, atomics)
//!               4096   ring (capacity bytes, multiple of 64)
//! ```

mod control;
mod field;
mod geometry;
mod record;
mod superblock;

pub use control::{
    Control, ControlSnapshot, LogState, MirrorProgress, CONTROL_LEN, CONTROL_OFFSET,
};
pub use geometry::{Cursor, Geometry, RingPiece};
pub use record::{record_len, Record, RecordHeader, RecordKind, HEADER_LEN, RECORD_ALIGN};
pub use superblock::{Superblock, FORMAT_VERSION, MAGIC, SUPERBLOCK_LEN};

#[cfg(target_endian = "big")]
compile_error!("the control block is accessed with native atomics and is little-endian");

/// Log sequence number: 1 for the first record, +1 per data or seal record.
/// Padding records do not consume an LSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The LSN of the first record of a new log.
    pub const FIRST: Lsn = Lsn(1);

    /// The following LSN.
    #[must_use]
    pub fn next(self) -> Lsn {
        Lsn(self.0 + 1)
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Default region offset of the ring: one page, so the ring is page-aligned
/// (msync granularity) and the metadata pages are separate from it.
pub const DEFAULT_RING_OFFSET: u64 = 4096;

/// Smallest ring: 4 KiB.
pub const MIN_CAPACITY: u64 = 4096;

/// The per-log CRC salt: CRC32C of the log UUID. Seeding every record CRC
/// with it makes a record copied from another log (same geometry, same
/// position, same LSN) fail its checksum.
#[must_use]
pub fn crc_salt(uuid: &[u8; 16]) -> u32 {
    crc32c::crc32c(uuid)
}
