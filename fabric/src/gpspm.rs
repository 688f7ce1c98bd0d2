//! The `gpspm` persistence handshake on the data path: after its WRITEs the
//! writer SENDs a [`PersistMsg`] request naming the byte range; the replica's
//! CPU makes that range persistent (cache-line flush + fence on pmem) and
//! SENDs back a reply with the same range.
//!
//! Wire layout (24 bytes, little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `0x5350_4754` ("TGPS") |
//! | 4 | 2 | kind: 1 = request, 2 = reply |
//! | 6 | 2 | reserved, 0 |
//! | 8 | 8 | from: first logical log position of the range |
//! | 16 | 8 | to: one past its last position |

use std::fmt;

/// Size of an encoded message.
pub const PERSIST_MSG_LEN: usize = 24;
const MAGIC: u32 = 0x5350_4754;

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
                write!(f, "gpspm message with magic {got:#x}, expected {MAGIC:#x}")
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
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        let kind: u16 = match self.kind {
            PersistKind::Request => 1,
            PersistKind::Reply => 2,
        };
        b[4..6].copy_from_slice(&kind.to_le_bytes());
        b[8..16].copy_from_slice(&self.from.to_le_bytes());
        b[16..24].copy_from_slice(&self.to.to_le_bytes());
        b
    }

    /// Decodes and validates.
    ///
    /// # Errors
    /// [`PersistMsgError`] naming what is wrong.
    pub fn decode(b: &[u8]) -> Result<Self, PersistMsgError> {
        let b: &[u8; PERSIST_MSG_LEN] = b
            .try_into()
            .map_err(|_| PersistMsgError::Length { got: b.len() })?;
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let magic = u32::from_le_bytes(b[0..4].try_into().expect("4 bytes"));
        if magic != MAGIC {
            return Err(PersistMsgError::Magic { got: magic });
        }
        let kind = u16::from_le_bytes([b[4], b[5]]);
        let kind = match (kind, b[6], b[7]) {
            (1, 0, 0) => PersistKind::Request,
            (2, 0, 0) => PersistKind::Reply,
            _ => return Err(PersistMsgError::Kind { got: kind }),
        };
        let (from, to) = (u64_at(8), u64_at(16));
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
