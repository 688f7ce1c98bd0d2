//! `StatusRequest` (type 8, empty) and `Status` (type 9): the replica's
//! progress, which a writer reads to reclaim its ring and to notice it was
//! fenced.
//!
//! ```text
//! offset size field
//!      0    8 durable_tail  log position
//!      8    8 applied_lsn
//!     16    8 epoch         the replica's admitted epoch
//!     24    1 sealed        0 or 1
//!     25    7 reserved      0
//!     32    8 head          <= durable_tail
//! ```

use super::super::codec::Body;
use super::super::error::WireError;
use crate::layout::{tiles, Field};

/// `Status` body length.
pub const STATUS_LEN: usize = 40;

const DURABLE_TAIL: Field<8> = Field::at(0);
const APPLIED_LSN: Field<8> = Field::at(8);
const EPOCH: Field<8> = Field::at(16);
const SEALED: Field<1> = Field::at(24);
const RESERVED: Field<7> = Field::at(25);
const HEAD: Field<8> = Field::at(32);
const _: () = assert!(tiles(
    &[
        DURABLE_TAIL.span(),
        APPLIED_LSN.span(),
        EPOCH.span(),
        SEALED.span(),
        RESERVED.span(),
        HEAD.span(),
    ],
    STATUS_LEN
));
const _: () = assert!(STATUS_LEN == 40);

/// Replica → writer: the replica's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Durable tail, a log position.
    pub durable_tail: u64,
    /// Last LSN replayed into the replica's state copy.
    pub applied_lsn: u64,
    /// The replica's admitted epoch.
    pub epoch: u64,
    /// Whether the stream is sealed at that epoch.
    pub sealed: bool,
    /// Oldest log position the replica still needs intact (its image's
    /// head): a writer reclaims its ring only up to the lowest such head.
    pub head: u64,
}

impl Status {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; STATUS_LEN];
        DURABLE_TAIL.put_u64(&mut b, self.durable_tail);
        APPLIED_LSN.put_u64(&mut b, self.applied_lsn);
        EPOCH.put_u64(&mut b, self.epoch);
        SEALED.put(&mut b, [u8::from(self.sealed)]);
        // RESERVED stays zero.
        HEAD.put_u64(&mut b, self.head);
        out.extend_from_slice(&b);
    }

    pub(super) fn decode(body: &Body<'_>) -> Result<Self, WireError> {
        body.exact_len(STATUS_LEN)?;
        let durable_tail = body.u64(DURABLE_TAIL)?;
        let applied_lsn = body.u64(APPLIED_LSN)?;
        let epoch = body.u64(EPOCH)?;
        let sealed = match body.u8(SEALED)? {
            0 => false,
            1 => true,
            v => return Err(body.invalid("sealed", format!("must be 0 or 1, got {v}"))),
        };
        if body.array(RESERVED)? != [0; 7] {
            return Err(body.invalid("reserved", "must be zero"));
        }
        let head = body.u64(HEAD)?;
        if head > durable_tail {
            return Err(body.invalid(
                "head",
                format!("must not pass durable_tail {durable_tail}, got {head}"),
            ));
        }
        Ok(Status {
            durable_tail,
            applied_lsn,
            epoch,
            sealed,
            head,
        })
    }
}
