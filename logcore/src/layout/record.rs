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
//! The offsets are the `Field` constants below (checked at compile time to
//! tile the header) and the table in `docs/log-format.md`.
//!
//! The payload is summed before the header so that appenders can compute its
//! CRC outside the append lock. Padding records sum the header only: their
//! body is whatever was in the ring.

use super::field::{tiles, Field};
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

/// The decoded record header (the on-media fields, little-endian; their
/// offsets are the constants below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

// The header's fields, as in docs/log-format.md ("Records"): encode, decode
// and the checks below use these and nothing else.
const CRC: Field<4> = Field::at(0);
const KIND: Field<2> = Field::at(4);
const INCARNATION: Field<2> = Field::at(6);
const LEN: Field<4> = Field::at(8);
const EPOCH: Field<4> = Field::at(12);
const LSN: Field<8> = Field::at(16);
const POS: Field<8> = Field::at(24);
/// The CRC covers the header after its own field.
const CRC_COVERS: std::ops::Range<usize> = CRC.end()..HEADER_LEN;

// The fields fill the header exactly, in order, with no gap or overlap...
const _: () = assert!(tiles(
    &[
        CRC.span(),
        KIND.span(),
        INCARNATION.span(),
        LEN.span(),
        EPOCH.span(),
        LSN.span(),
        POS.span()
    ],
    HEADER_LEN
));
// ...the CRC is first (it covers everything after it)...
const _: () = assert!(CRC.off == 0 && CRC_COVERS.end == HEADER_LEN);
// ...and a header fits in the first cache line of its record.
const _: () = assert!(HEADER_LEN as u64 <= RECORD_ALIGN);

impl RecordHeader {
    /// Encodes to the 32 on-media bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        CRC.put(&mut b, self.crc.to_le_bytes());
        KIND.put(&mut b, self.kind.to_le_bytes());
        INCARNATION.put(&mut b, self.incarnation.to_le_bytes());
        LEN.put(&mut b, self.len.to_le_bytes());
        EPOCH.put(&mut b, self.epoch.to_le_bytes());
        LSN.put(&mut b, self.lsn.to_le_bytes());
        POS.put(&mut b, self.pos.to_le_bytes());
        b
    }

    /// Decodes 32 on-media bytes (no validation).
    #[must_use]
    pub fn decode(b: &[u8; HEADER_LEN]) -> Self {
        Self {
            crc: u32::from_le_bytes(CRC.get(b)),
            kind: u16::from_le_bytes(KIND.get(b)),
            incarnation: u16::from_le_bytes(INCARNATION.get(b)),
            len: u32::from_le_bytes(LEN.get(b)),
            epoch: u32::from_le_bytes(EPOCH.get(b)),
            lsn: u64::from_le_bytes(LSN.get(b)),
            pos: u64::from_le_bytes(POS.get(b)),
        }
    }

    /// CRC of this header (bytes 4..32) continued from `payload_crc`, which
    /// is `crc32c_append(salt, payload)` (or `salt` for padding).
    #[must_use]
    pub fn checksum(&self, payload_crc: u32) -> u32 {
        let b = self.encode();
        crc32c::crc32c_append(payload_crc, &b[CRC_COVERS])
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
