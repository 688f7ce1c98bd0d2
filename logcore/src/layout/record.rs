//! Records: a 32-byte header and the payload, padded to 64 bytes.
//!
//! ```text
//! off len field
//!   0   4 crc          CRC32C: seed = log salt, over payload, then header[4..32]
//!   4   2 kind         1 data, 2 padding, 3 seal
//!   6   2 incarnation  low 16 bits of the writer's incarnation
//!   8   4 len          payload bytes (padding: bytes after the header to the ring end)
//!  12   4 epoch
//!  16   8 lsn
//!  24   8 pos          logical position of this header
//! ```
//!
//! The payload is summed before the header so that appenders can compute its
//! CRC outside the append lock. Padding records sum the header only: their
//! body is whatever was in the ring.

use std::mem::{offset_of, size_of};

use super::Lsn;

/// Records start on 64-byte (cache line) boundaries.
pub const RECORD_ALIGN: u64 = 64;
/// Bytes of the record header.
pub const HEADER_LEN: usize = 32;

/// Record kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// Application payload.
    Data,
    /// Fills the ring's end when the next record would straddle it. Carries
    /// the LSN of the record after it and does not consume one.
    Padding,
    /// Ends an epoch: no record of this epoch may follow.
    Seal,
}

impl RecordKind {
    /// On-media value.
    #[must_use]
    pub fn raw(self) -> u16 {
        match self {
            Self::Data => 1,
            Self::Padding => 2,
            Self::Seal => 3,
        }
    }

    /// Decodes an on-media value.
    #[must_use]
    pub fn from_raw(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::Data,
            2 => Self::Padding,
            3 => Self::Seal,
            _ => return None,
        })
    }

    /// Lower-case name (`data`, `padding`, `seal`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Padding => "padding",
            Self::Seal => "seal",
        }
    }
}

/// The record header, as laid out on media (little-endian fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct RecordHeader {
    /// CRC32C (see module docs).
    pub crc: u32,
    /// [`RecordKind::raw`].
    pub kind: u16,
    /// Low 16 bits of the writer's incarnation.
    pub incarnation: u16,
    /// Payload length in bytes.
    pub len: u32,
    /// Epoch of the writer.
    pub epoch: u32,
    /// LSN.
    pub lsn: u64,
    /// Logical position of this header.
    pub pos: u64,
}

const _: () = assert!(size_of::<RecordHeader>() == HEADER_LEN);
const _: () = assert!(offset_of!(RecordHeader, crc) == 0);
const _: () = assert!(offset_of!(RecordHeader, kind) == 4);
const _: () = assert!(offset_of!(RecordHeader, incarnation) == 6);
const _: () = assert!(offset_of!(RecordHeader, len) == 8);
const _: () = assert!(offset_of!(RecordHeader, epoch) == 12);
const _: () = assert!(offset_of!(RecordHeader, lsn) == 16);
const _: () = assert!(offset_of!(RecordHeader, pos) == 24);
const _: () = assert!(HEADER_LEN as u64 <= RECORD_ALIGN);

impl RecordHeader {
    /// Encodes to the 32 on-media bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.crc.to_le_bytes());
        b[4..6].copy_from_slice(&self.kind.to_le_bytes());
        b[6..8].copy_from_slice(&self.incarnation.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..16].copy_from_slice(&self.epoch.to_le_bytes());
        b[16..24].copy_from_slice(&self.lsn.to_le_bytes());
        b[24..32].copy_from_slice(&self.pos.to_le_bytes());
        b
    }

    /// Decodes 32 on-media bytes (no validation).
    #[must_use]
    pub fn decode(b: &[u8; HEADER_LEN]) -> Self {
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        Self {
            crc: u32_at(0),
            kind: u16_at(4),
            incarnation: u16_at(6),
            len: u32_at(8),
            epoch: u32_at(12),
            lsn: u64_at(16),
            pos: u64_at(24),
        }
    }

    /// CRC of this header (bytes 4..32) continued from `payload_crc`, which
    /// is `crc32c_append(salt, payload)` (or `salt` for padding).
    #[must_use]
    pub fn checksum(&self, payload_crc: u32) -> u32 {
        let b = self.encode();
        crc32c::crc32c_append(payload_crc, &b[4..])
    }

    /// Bytes this record occupies in the ring (header + payload, padded).
    #[must_use]
    pub fn total_len(&self) -> u64 {
        record_len(u64::from(self.len))
    }
}

/// Ring bytes taken by a record with `payload_len` payload bytes.
#[must_use]
pub fn record_len(payload_len: u64) -> u64 {
    (HEADER_LEN as u64 + payload_len).div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// A validated record borrowed from an image or ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// LSN (padding: the LSN of the next record).
    pub lsn: Lsn,
    /// Logical position of the header.
    pub pos: u64,
    /// Epoch of the writer.
    pub epoch: u32,
    /// Low 16 bits of the writer's incarnation.
    pub incarnation: u16,
    /// Kind.
    pub kind: RecordKind,
    /// Stored CRC32C.
    pub crc: u32,
    /// Payload (empty for padding).
    pub payload: &'a [u8],
    /// Ring bytes taken (header + payload + alignment).
    pub total_len: u64,
}

impl Record<'_> {
    /// Logical position just after this record.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.pos + self.total_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_lengths() {
        let h = RecordHeader {
            crc: 1,
            kind: 2,
            incarnation: 3,
            len: 4,
            epoch: 5,
            lsn: 6,
            pos: 7,
        };
        assert_eq!(RecordHeader::decode(&h.encode()), h);
        assert_eq!(record_len(0), 64);
        assert_eq!(record_len(32), 64);
        assert_eq!(record_len(33), 128);
        assert_eq!(record_len(4096), 4160);
    }
}
