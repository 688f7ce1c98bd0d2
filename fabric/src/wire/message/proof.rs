//! `Challenge` (type 2) and `Proof` (type 3): the nonce exchange that
//! proves the writer holds its pre-shared key (the MACs are computed in
//! [`crate::wire::handshake`]).
//!
//! ```text
//! Challenge                       Proof
//! offset size field               offset size field
//!      0   32 nonce                    0   32 client_nonce
//!                                     32   32 mac
//! ```

use super::super::codec::Body;
use super::super::error::WireError;
use crate::layout::{tiles, Field};

/// Length of a nonce in bytes.
pub const NONCE_LEN: usize = 32;
/// Length of an HMAC-SHA256 tag in bytes.
pub const MAC_LEN: usize = 32;
/// `Challenge` body length.
pub const CHALLENGE_LEN: usize = NONCE_LEN;
/// `Proof` body length.
pub const PROOF_LEN: usize = NONCE_LEN + MAC_LEN;

const CHALLENGE_NONCE: Field<NONCE_LEN> = Field::at(0);
const _: () = assert!(tiles(&[CHALLENGE_NONCE.span()], CHALLENGE_LEN));

const PROOF_CLIENT_NONCE: Field<NONCE_LEN> = Field::at(0);
const PROOF_MAC: Field<MAC_LEN> = Field::at(32);
const _: () = assert!(tiles(
    &[PROOF_CLIENT_NONCE.span(), PROOF_MAC.span()],
    PROOF_LEN
));
const _: () = assert!(CHALLENGE_LEN == 32 && PROOF_LEN == 64);

/// Replica → writer: the replica's nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// 32 random bytes, fresh per connection.
    pub nonce: [u8; NONCE_LEN],
}

/// Writer → replica: proof that the writer holds the pre-shared key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// 32 random bytes from the writer, fresh per connection.
    pub client_nonce: [u8; NONCE_LEN],
    /// HMAC-SHA256, see [`crate::wire::handshake`].
    pub mac: [u8; MAC_LEN],
}

impl Challenge {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; CHALLENGE_LEN];
        CHALLENGE_NONCE.put(&mut b, self.nonce);
        out.extend_from_slice(&b);
    }

    pub(super) fn decode(body: &Body<'_>) -> Result<Self, WireError> {
        body.exact_len(CHALLENGE_LEN)?;
        Ok(Challenge {
            nonce: body.array(CHALLENGE_NONCE)?,
        })
    }
}

impl Proof {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; PROOF_LEN];
        PROOF_CLIENT_NONCE.put(&mut b, self.client_nonce);
        PROOF_MAC.put(&mut b, self.mac);
        out.extend_from_slice(&b);
    }

    pub(super) fn decode(body: &Body<'_>) -> Result<Self, WireError> {
        body.exact_len(PROOF_LEN)?;
        Ok(Proof {
            client_nonce: body.array(PROOF_CLIENT_NONCE)?,
            mac: body.array(PROOF_MAC)?,
        })
    }
}
