//! The superblock: identity and geometry, written once at create.
//!
//! ```text
//! off  len  field
//!   0    8  magic  "TGLOG\0\x01\x00"
//!   8    4  format version (1)
//!  12    4  flags (0)
//!  16   16  log UUID
//!  32    4  epoch at creation
//!  36    4  record alignment (64)
//!  40    8  region length in bytes
//!  48    8  control block offset (256)
//!  56    8  ring offset (4096)
//!  64    8  ring capacity in bytes
//!  72    8  creation time, ms since the Unix epoch
//!  80   44  reserved, zero
//! 124    4  CRC32C of bytes 0..124
//! ```
//!
//! The offsets are the `Field` constants below (checked at compile time to
//! tile the 128 bytes) and the table in `docs/log-format.md`.
//!
//! The superblock is never rewritten after create, so it cannot be torn by a
//! crash; everything that changes lives in the control block.

use super::control::{CONTROL_LEN, CONTROL_OFFSET};
use super::field::{tiles, Field};
use super::{Geometry, DEFAULT_RING_OFFSET, MIN_CAPACITY, RECORD_ALIGN};
use crate::error::LayoutError;

/// The 8 magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"TGLOG\0\x01\0";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the superblock.
pub const SUPERBLOCK_LEN: usize = 128;

// The superblock's fields, as in docs/log-format.md ("Superblock"): encode,
// decode and the checks below use these and nothing else.
const MAGIC_F: Field<8> = Field::at(0);
const VERSION: Field<4> = Field::at(8);
const FLAGS: Field<4> = Field::at(12);
const UUID: Field<16> = Field::at(16);
const EPOCH: Field<4> = Field::at(32);
const RECORD_ALIGN_F: Field<4> = Field::at(36);
const REGION_LEN: Field<8> = Field::at(40);
const CONTROL_OFFSET_F: Field<8> = Field::at(48);
const RING_OFFSET: Field<8> = Field::at(56);
const RING_CAPACITY: Field<8> = Field::at(64);
const CREATED_UNIX_MS: Field<8> = Field::at(72);
const RESERVED: Field<44> = Field::at(80);
const CRC: Field<4> = Field::at(124);
/// The CRC covers everything before it.
const CRC_COVERS: std::ops::Range<usize> = 0..CRC.off;

// The fields fill the superblock exactly, in order, the CRC last.
const _: () = assert!(tiles(
    &[
        MAGIC_F.span(),
        VERSION.span(),
        FLAGS.span(),
        UUID.span(),
        EPOCH.span(),
        RECORD_ALIGN_F.span(),
        REGION_LEN.span(),
        CONTROL_OFFSET_F.span(),
        RING_OFFSET.span(),
        RING_CAPACITY.span(),
        CREATED_UNIX_MS.span(),
        RESERVED.span(),
        CRC.span()
    ],
    SUPERBLOCK_LEN
));
const _: () = assert!(CRC.end() == SUPERBLOCK_LEN);

/// The decoded superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Log identity; also salts every record CRC.
    pub uuid: [u8; 16],
    /// Epoch when the log was created (the current epoch is in the control
    /// block).
    pub epoch: u32,
    /// Region length the log was created for.
    pub region_len: u64,
    /// Where the ring is.
    pub geometry: Geometry,
    /// Creation time, ms since the Unix epoch.
    pub created_unix_ms: u64,
}

impl Superblock {
    /// Geometry for a region of `region_len` bytes: ring at 4096, capacity
    /// the rest rounded down to 64.
    ///
    /// # Errors
    /// [`LayoutError::TooSmall`] when no ring of [`MIN_CAPACITY`] fits.
    pub fn for_region(
        region_len: u64,
        uuid: [u8; 16],
        epoch: u32,
        created_unix_ms: u64,
    ) -> Result<Self, LayoutError> {
        let min = DEFAULT_RING_OFFSET + MIN_CAPACITY;
        if region_len < min {
            return Err(LayoutError::TooSmall {
                len_bytes: region_len,
                min_bytes: min,
            });
        }
        let capacity = (region_len - DEFAULT_RING_OFFSET) / RECORD_ALIGN * RECORD_ALIGN;
        Ok(Self {
            uuid,
            epoch,
            region_len,
            geometry: Geometry {
                ring_offset: DEFAULT_RING_OFFSET,
                capacity,
            },
            created_unix_ms,
        })
    }

    /// The same superblock with an explicit ring capacity (a replica must
    /// match its primary's geometry even when its device is larger).
    ///
    /// # Errors
    /// [`LayoutError::BadGeometry`] unless a multiple of 64 and at least
    /// [`MIN_CAPACITY`]; [`LayoutError::GeometryMismatch`] if it does not fit.
    pub fn with_capacity(mut self, capacity: u64) -> Result<Self, LayoutError> {
        if capacity < MIN_CAPACITY || !capacity.is_multiple_of(RECORD_ALIGN) {
            return Err(LayoutError::BadGeometry {
                field: "ring_capacity",
                value: capacity,
                rule: "must be a multiple of 64 and at least 4096",
            });
        }
        let room = self.region_len - self.geometry.ring_offset;
        if capacity > room {
            return Err(LayoutError::GeometryMismatch {
                field: "ring_capacity",
                expected: room / RECORD_ALIGN * RECORD_ALIGN,
                got: capacity,
            });
        }
        self.geometry.capacity = capacity;
        Ok(self)
    }

    /// Encodes to the 128 on-media bytes, checksum included.
    #[must_use]
    pub fn encode(&self) -> [u8; SUPERBLOCK_LEN] {
        let mut b = [0u8; SUPERBLOCK_LEN];
        MAGIC_F.put(&mut b, MAGIC);
        VERSION.put(&mut b, FORMAT_VERSION.to_le_bytes());
        // FLAGS and RESERVED stay zero.
        UUID.put(&mut b, self.uuid);
        EPOCH.put(&mut b, self.epoch.to_le_bytes());
        RECORD_ALIGN_F.put(&mut b, (RECORD_ALIGN as u32).to_le_bytes());
        REGION_LEN.put(&mut b, self.region_len.to_le_bytes());
        CONTROL_OFFSET_F.put(&mut b, (CONTROL_OFFSET as u64).to_le_bytes());
        RING_OFFSET.put(&mut b, self.geometry.ring_offset.to_le_bytes());
        RING_CAPACITY.put(&mut b, self.geometry.capacity.to_le_bytes());
        CREATED_UNIX_MS.put(&mut b, self.created_unix_ms.to_le_bytes());
        let crc = crc32c::crc32c(&b[CRC_COVERS]);
        CRC.put(&mut b, crc.to_le_bytes());
        b
    }

    /// Decodes and validates the superblock at the start of an image of
    /// `image_len` bytes.
    ///
    /// # Errors
    /// Every [`LayoutError`] superblock variant; never panics on any input.
    pub fn decode(bytes: &[u8], image_len: u64) -> Result<Self, LayoutError> {
        let min = DEFAULT_RING_OFFSET + MIN_CAPACITY;
        if image_len < min || bytes.len() < SUPERBLOCK_LEN {
            return Err(LayoutError::TooSmall {
                len_bytes: image_len,
                min_bytes: min,
            });
        }
        let u32_at = |f: Field<4>| u32::from_le_bytes(f.get(bytes));
        let u64_at = |f: Field<8>| u64::from_le_bytes(f.get(bytes));
        let magic = MAGIC_F.get(bytes);
        if magic != MAGIC {
            return Err(LayoutError::ForeignMagic { found: magic });
        }
        let stored = u32_at(CRC);
        let computed = crc32c::crc32c(&bytes[CRC_COVERS]);
        if stored != computed {
            return Err(LayoutError::SuperblockChecksum { stored, computed });
        }
        let version = u32_at(VERSION);
        if version != FORMAT_VERSION {
            return Err(LayoutError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let sb = Self {
            uuid: UUID.get(bytes),
            epoch: u32_at(EPOCH),
            region_len: u64_at(REGION_LEN),
            geometry: Geometry {
                ring_offset: u64_at(RING_OFFSET),
                capacity: u64_at(RING_CAPACITY),
            },
            created_unix_ms: u64_at(CREATED_UNIX_MS),
        };
        let align = u64::from(u32_at(RECORD_ALIGN_F));
        if align != RECORD_ALIGN {
            return Err(LayoutError::GeometryMismatch {
                field: "record_align",
                expected: RECORD_ALIGN,
                got: align,
            });
        }
        let control = u64_at(CONTROL_OFFSET_F);
        if control != CONTROL_OFFSET as u64 {
            return Err(LayoutError::GeometryMismatch {
                field: "control_offset",
                expected: CONTROL_OFFSET as u64,
                got: control,
            });
        }
        if sb.region_len > image_len {
            return Err(LayoutError::GeometryMismatch {
                field: "region_len",
                expected: image_len,
                got: sb.region_len,
            });
        }
        let g = sb.geometry;
        if g.ring_offset < (CONTROL_OFFSET + CONTROL_LEN) as u64
            || !g.ring_offset.is_multiple_of(RECORD_ALIGN)
        {
            return Err(LayoutError::BadGeometry {
                field: "ring_offset",
                value: g.ring_offset,
                rule: "must be a multiple of 64 after the control block",
            });
        }
        if g.capacity < MIN_CAPACITY || !g.capacity.is_multiple_of(RECORD_ALIGN) {
            return Err(LayoutError::BadGeometry {
                field: "ring_capacity",
                value: g.capacity,
                rule: "must be a multiple of 64 and at least 4096",
            });
        }
        if g.ring_offset
            .checked_add(g.capacity)
            .is_none_or(|end| end > sb.region_len)
        {
            return Err(LayoutError::GeometryMismatch {
                field: "ring_capacity",
                expected: sb.region_len.saturating_sub(g.ring_offset),
                got: g.capacity,
            });
        }
        Ok(sb)
    }

    /// Largest payload accepted: half the ring minus the header, so that a
    /// record plus end-of-ring padding always fits an empty ring.
    #[must_use]
    pub fn max_payload(&self) -> u64 {
        (self.geometry.capacity / 2 - super::HEADER_LEN as u64).min(u64::from(u32::MAX))
    }

    /// UUID in the usual 8-4-4-4-12 hex form.
    #[must_use]
    pub fn uuid_string(&self) -> String {
        let h: String = self.uuid.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

const _: () = assert!(SUPERBLOCK_LEN <= CONTROL_OFFSET);
const _: () = assert!(CONTROL_OFFSET + CONTROL_LEN <= DEFAULT_RING_OFFSET as usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_each_field_is_checked() {
        let sb = Superblock::for_region(1 << 20, [7; 16], 3, 42).unwrap();
        let b = sb.encode();
        assert_eq!(Superblock::decode(&b, 1 << 20).unwrap(), sb);
        let mut bad = b;
        bad[0] ^= 1;
        assert!(matches!(
            Superblock::decode(&bad, 1 << 20),
            Err(LayoutError::ForeignMagic { .. })
        ));
        let mut bad = b;
        bad[70] ^= 1;
        assert!(matches!(
            Superblock::decode(&bad, 1 << 20),
            Err(LayoutError::SuperblockChecksum { .. })
        ));
        assert!(matches!(
            Superblock::decode(&b, 1 << 19),
            Err(LayoutError::GeometryMismatch {
                field: "region_len",
                ..
            })
        ));
        assert!(matches!(
            Superblock::decode(&b[..10], 10),
            Err(LayoutError::TooSmall { .. })
        ));
        assert_eq!(sb.uuid_string().len(), 36);
    }

    #[test]
    fn other_version_is_refused() {
        let sb = Superblock::for_region(1 << 20, [7; 16], 3, 42).unwrap();
        let mut b = sb.encode();
        b[8] = 9;
        let crc = crc32c::crc32c(&b[..124]);
        b[124..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Superblock::decode(&b, 1 << 20),
            Err(LayoutError::UnsupportedVersion { found: 9, .. })
        ));
    }
}
