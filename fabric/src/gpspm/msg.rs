//! The `gpspm` SEND payload: one 24-byte message, a request from the writer
//! or the replica's reply. It travels as the payload of an RDMA SEND on the
//! queue pair that carried the WRITEs, never on the TCP control channel.
//!
//! Wire layout (24 bytes, every integer little-endian):
//!
//! | offset | size | field | value |
//! |---|---|---|---|
//! | 0 | 4 | `magic` | `0x5350_4754` (bytes `54 47 50 53`, "TGPS") |
//! | 4 | 2 | `kind` | 1 = request (writer → replica), 2 = reply (replica → writer) |
//! | 6 | 2 | `reserved` | 0 |
//! | 8 | 8 | `from` | first log position of the range |
//! | 16 | 8 | `to` | one past its last position, `>= from` |

use std::fmt;

use crate::layout::{tiles, Field};

/// Size of an encoded message.
pub const PERSIST_MSG_LEN: usize = 24;
/// First four bytes of every message (as a little-endian `u32`): "TGPS".
pub const PERSIST_MSG_MAGIC: u32 = 0x5350_4754;
const KIND_REQUEST: u16 = 1;
const KIND_REPLY: u16 = 2;

const MAGIC: Field<4> = Field::at(0);
const KIND: Field<2> = Field::at(4);
const RESERVED: Field<2> = Field::at(6);
const FROM: Field<8> = Field::at(8);
const TO: Field<8> = Field::at(16);
const _: () = assert!(tiles(
    &[
        MAGIC.span(),
        KIND.span(),
        RESERVED.span(),
        FROM.span(),
        TO.span()
    ],
    PERSIST_MSG_LEN
));
const _: () = assert!(PERSIST_MSG_LEN == 24);

/// Request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistKind {
    /// Writer → replica: make `[from, to)` persistent.
    Request,
    /// Replica → writer: `[from, to)` is persistent.
    Reply,
}

/// A gpspm message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistMsg {
    /// Request or reply.
    pub kind: PersistKind,
    /// First logical position.
    pub from: u64,
    /// One past the last.
    pub to: u64,
}

/// Why bytes are not a gpspm message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersistMsgError {
    /// Not 24 bytes.
    Length {
        /// Bytes received.
        got: usize,
    },
    /// Wrong magic.
    Magic {
        /// What was there.
        got: u32,
    },
    /// Unknown kind or non-zero reserved bytes.
    Kind {
        /// The kind field.
        got: u16,
    },
    /// `from > to`.
    Range {
        /// from.
        from: u64,
        /// to.
        to: u64,
    },
}

impl fmt::Display for PersistMsgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistMsgError::Length { got } => {
                write!(
                    f,
                    "gpspm message of {got} bytes, expected {PERSIST_MSG_LEN}"
                )
            }
            PersistMsgError::Magic { got } => {
                write!(
                    f,
                    "gpspm message with magic {got:#x}, expected {PERSIST_MSG_MAGIC:#x}"
                )
            }
            PersistMsgError::Kind { got } => write!(f, "gpspm message of unknown kind {got}"),
            PersistMsgError::Range { from, to } => {
                write!(f, "gpspm range [{from}, {to}) is reversed")
            }
        }
    }
}

impl std::error::Error for PersistMsgError {}

impl PersistMsg {
    /// Encodes into 24 bytes.
    pub fn encode(&self) -> [u8; PERSIST_MSG_LEN] {
        let mut b = [0u8; PERSIST_MSG_LEN];
        MAGIC.put_u32(&mut b, PERSIST_MSG_MAGIC);
        let kind = match self.kind {
            PersistKind::Request => KIND_REQUEST,
            PersistKind::Reply => KIND_REPLY,
        };
        KIND.put_u16(&mut b, kind);
        // RESERVED stays zero.
        FROM.put_u64(&mut b, self.from);
        TO.put_u64(&mut b, self.to);
        b
    }

    /// Decodes and validates.
    ///
    /// # Errors
    /// [`PersistMsgError`] naming what is wrong.
    pub fn decode(b: &[u8]) -> Result<Self, PersistMsgError> {
        if b.len() != PERSIST_MSG_LEN {
            return Err(PersistMsgError::Length { got: b.len() });
        }
        // `b` is PERSIST_MSG_LEN bytes, which the fields tile (asserted
        // above), so no read falls back to the default.
        let u16_at = |f: Field<2>| u16::from_le_bytes(f.get(b).unwrap_or_default());
        let u64_at = |f: Field<8>| u64::from_le_bytes(f.get(b).unwrap_or_default());
        let magic = u32::from_le_bytes(MAGIC.get(b).unwrap_or_default());
        if magic != PERSIST_MSG_MAGIC {
            return Err(PersistMsgError::Magic { got: magic });
        }
        let kind = u16_at(KIND);
        let kind = match (kind, u16_at(RESERVED)) {
            (KIND_REQUEST, 0) => PersistKind::Request,
            (KIND_REPLY, 0) => PersistKind::Reply,
            _ => return Err(PersistMsgError::Kind { got: kind }),
        };
        let (from, to) = (u64_at(FROM), u64_at(TO));
        if from > to {
            return Err(PersistMsgError::Range { from, to });
        }
        Ok(PersistMsg { kind, from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for kind in [PersistKind::Request, PersistKind::Reply] {
            let m = PersistMsg {
                kind,
                from: 4096,
                to: 1 << 40,
            };
            assert_eq!(PersistMsg::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn layout_is_the_documented_one() {
        let b = PersistMsg {
            kind: PersistKind::Reply,
            from: 0x0102_0304_0506_0708,
            to: 0x1112_1314_1516_1718,
        }
        .encode();
        assert_eq!(&b[0..4], b"TGPS", "magic");
        assert_eq!(&b[4..6], &[2, 0], "kind reply");
        assert_eq!(&b[6..8], &[0, 0], "reserved");
        assert_eq!(&b[8..16], &0x0102_0304_0506_0708u64.to_le_bytes(), "from");
        assert_eq!(&b[16..24], &0x1112_1314_1516_1718u64.to_le_bytes(), "to");
    }

    #[test]
    fn every_corruption_is_named() {
        let good = PersistMsg {
            kind: PersistKind::Request,
            from: 1,
            to: 2,
        }
        .encode();
        assert_eq!(
            PersistMsg::decode(&good[..23]),
            Err(PersistMsgError::Length { got: 23 })
        );
        let mut b = good;
        b[0] ^= 1;
        assert!(matches!(
            PersistMsg::decode(&b),
            Err(PersistMsgError::Magic { .. })
        ));
        let mut b = good;
        b[4] = 9;
        assert_eq!(
            PersistMsg::decode(&b),
            Err(PersistMsgError::Kind { got: 9 })
        );
        let mut b = good;
        b[7] = 1;
        assert!(matches!(
            PersistMsg::decode(&b),
            Err(PersistMsgError::Kind { .. })
        ));
        let b = PersistMsg {
            kind: PersistKind::Reply,
            from: 9,
            to: 2,
        }
        .encode();
        assert_eq!(
            PersistMsg::decode(&b),
            Err(PersistMsgError::Range { from: 9, to: 2 })
        );
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..64 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        (x >> 33) as u8
                    })
                    .collect();
                let _ = PersistMsg::decode(&bytes);
            }
        }
    }
}
