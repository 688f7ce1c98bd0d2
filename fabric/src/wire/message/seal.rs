//! `Seal` (type 12) and `Sealed` (type 13): the writer or the closure seals
//! the stream at an epoch and tail; the replica answers with the same epoch
//! and its final tail.
//!
//! ```text
//! offset size field
//!      0    8 epoch  the epoch being sealed
//!      8    8 tail   its final tail, a log position
//! ```

use super::super::codec::Body;
use super::super::error::WireError;
use crate::layout::{tiles, Field};

/// `Seal` / `Sealed` body length.
pub const SEAL_LEN: usize = 16;

const EPOCH: Field<8> = Field::at(0);
const TAIL: Field<8> = Field::at(8);
const _: () = assert!(tiles(&[EPOCH.span(), TAIL.span()], SEAL_LEN));
const _: () = assert!(SEAL_LEN == 16);

/// An epoch and the tail it is sealed at (`Seal` and `Sealed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealPoint {
    /// The epoch being sealed.
    pub epoch: u64,
    /// The final tail of that epoch, a log position.
    pub tail: u64,
}

impl SealPoint {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; SEAL_LEN];
        EPOCH.put_u64(&mut b, self.epoch);
        TAIL.put_u64(&mut b, self.tail);
        out.extend_from_slice(&b);
    }

    pub(super) fn decode(body: &Body<'_>) -> Result<Self, WireError> {
        body.exact_len(SEAL_LEN)?;
        Ok(SealPoint {
            epoch: body.u64(EPOCH)?,
            tail: body.u64(TAIL)?,
        })
    }
}
