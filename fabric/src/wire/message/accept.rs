//! The queue-pair exchange: `Accept` (type 4, the replica's endpoint and
//! region with its rkey) and `Connect` (type 5, the writer's endpoint), and
//! the 32-byte QP endpoint both carry.
//!
//! ```text
//! QP endpoint (32 bytes)      Accept (104 bytes)           Connect (64 bytes)
//! offset size field           offset size field            offset size field
//!      0    4 qpn                  0   32 endpoint              0   32 endpoint
//!      4    2 lid                 32    8 region.addr          32   32 mac
//!      6    2 reserved            40    4 region.rkey
//!      8   16 gid                 44    4 reserved
//!     24    4 psn                 48    8 region.len
//!     28    4 reserved            56    8 durable_tail
//!                                 64    8 epoch
//!                                 72   32 mac (over bytes 0..72 and the transcript)
//! ```

pub use crate::verbs::{QpEndpoint, RemoteRegion};

use super::super::codec::Body;
use super::super::error::WireError;
use super::proof::MAC_LEN;
use crate::layout::{tiles, Field};

/// Queue-pair and packet sequence numbers are 24-bit quantities in verbs.
pub const MAX_24_BIT: u32 = (1 << 24) - 1;
/// Encoded [`QpEndpoint`] length.
pub const ENDPOINT_LEN: usize = 32;
/// `Accept` body length; the MAC covers the first [`ACCEPT_SIGNED_LEN`] bytes.
pub const ACCEPT_LEN: usize = ACCEPT_SIGNED_LEN + MAC_LEN;
/// Bytes of an `Accept` body covered by its MAC (everything before it).
pub const ACCEPT_SIGNED_LEN: usize = ACCEPT_MAC.offset;
/// `Connect` body length; the MAC covers the endpoint.
pub const CONNECT_LEN: usize = ENDPOINT_LEN + MAC_LEN;

const EP_QPN: Field<4> = Field::at(0);
const EP_LID: Field<2> = Field::at(4);
const EP_RESERVED_LID: Field<2> = Field::at(6);
const EP_GID: Field<16> = Field::at(8);
const EP_PSN: Field<4> = Field::at(24);
const EP_RESERVED_PSN: Field<4> = Field::at(28);
const _: () = assert!(tiles(
    &[
        EP_QPN.span(),
        EP_LID.span(),
        EP_RESERVED_LID.span(),
        EP_GID.span(),
        EP_PSN.span(),
        EP_RESERVED_PSN.span(),
    ],
    ENDPOINT_LEN
));

const ACCEPT_ENDPOINT: Field<ENDPOINT_LEN> = Field::at(0);
const ACCEPT_ADDR: Field<8> = Field::at(32);
const ACCEPT_RKEY: Field<4> = Field::at(40);
const ACCEPT_RESERVED: Field<4> = Field::at(44);
const ACCEPT_REGION_LEN: Field<8> = Field::at(48);
const ACCEPT_DURABLE_TAIL: Field<8> = Field::at(56);
const ACCEPT_EPOCH: Field<8> = Field::at(64);
const ACCEPT_MAC: Field<MAC_LEN> = Field::at(72);
const _: () = assert!(tiles(
    &[
        ACCEPT_ENDPOINT.span(),
        ACCEPT_ADDR.span(),
        ACCEPT_RKEY.span(),
        ACCEPT_RESERVED.span(),
        ACCEPT_REGION_LEN.span(),
        ACCEPT_DURABLE_TAIL.span(),
        ACCEPT_EPOCH.span(),
        ACCEPT_MAC.span(),
    ],
    ACCEPT_LEN
));

const CONNECT_ENDPOINT: Field<ENDPOINT_LEN> = Field::at(0);
const CONNECT_MAC: Field<MAC_LEN> = Field::at(32);
const _: () = assert!(tiles(
    &[CONNECT_ENDPOINT.span(), CONNECT_MAC.span()],
    CONNECT_LEN
));

// The lengths in docs/control-channel.md.
const _: () = assert!(ENDPOINT_LEN == 32 && ACCEPT_SIGNED_LEN == 72 && ACCEPT_LEN == 104);
const _: () = assert!(CONNECT_LEN == 64);

// Validation of the verbs layer's types as they arrive on the wire.
impl QpEndpoint {
    /// Checks the 24-bit bounds; on failure names the field and says why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.qpn < 2 || self.qpn > MAX_24_BIT {
            return Err(("qpn", format!("must be 2..={MAX_24_BIT}, got {}", self.qpn)));
        }
        if self.psn > MAX_24_BIT {
            return Err(("psn", format!("must be 0..={MAX_24_BIT}, got {}", self.psn)));
        }
        Ok(())
    }
}

impl RemoteRegion {
    /// Checks the bounds above; on failure names the field and says why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.len == 0 {
            return Err(("region_len", "must be non-zero".to_owned()));
        }
        if self.addr.checked_add(self.len).is_none() {
            return Err((
                "region_len",
                format!(
                    "addr {:#x} + len {} overflows the address space",
                    self.addr, self.len
                ),
            ));
        }
        Ok(())
    }
}

/// Replica → writer, only after the writer's proof verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The replica's queue pair.
    pub endpoint: QpEndpoint,
    /// The replica's region (carries the rkey).
    pub region: RemoteRegion,
    /// The replica's durable tail, a log position; the writer catches up from here.
    pub durable_tail: u64,
    /// The epoch the replica admitted this writer at (equals the Hello's).
    pub epoch: u64,
    /// HMAC-SHA256 by the replica, see [`crate::wire::handshake`].
    pub mac: [u8; MAC_LEN],
}

/// Writer → replica: the writer's queue pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The writer's queue pair.
    pub endpoint: QpEndpoint,
    /// HMAC-SHA256 by the writer, see [`crate::wire::handshake`].
    pub mac: [u8; MAC_LEN],
}

fn encode_endpoint(e: &QpEndpoint) -> [u8; ENDPOINT_LEN] {
    let mut b = [0u8; ENDPOINT_LEN];
    EP_QPN.put_u32(&mut b, e.qpn);
    EP_LID.put_u16(&mut b, e.lid);
    EP_GID.put(&mut b, e.gid);
    EP_PSN.put_u32(&mut b, e.psn);
    // EP_RESERVED_LID and EP_RESERVED_PSN stay zero.
    b
}

/// The endpoint bytes, as covered by the `Connect` MAC.
pub(crate) fn endpoint_bytes(e: &QpEndpoint) -> Vec<u8> {
    encode_endpoint(e).to_vec()
}

/// Decodes an endpoint from `ep`, the endpoint field of its message.
fn decode_endpoint(ep: &Body<'_>) -> Result<QpEndpoint, WireError> {
    let qpn = ep.u32(EP_QPN)?;
    let lid = ep.u16(EP_LID)?;
    ep.reserved_u16(EP_RESERVED_LID, "endpoint.reserved")?;
    let gid = ep.array(EP_GID)?;
    let psn = ep.u32(EP_PSN)?;
    ep.reserved_u32(EP_RESERVED_PSN, "endpoint.reserved")?;
    let e = QpEndpoint { qpn, lid, gid, psn };
    e.validate().map_err(|(f, why)| {
        let field = if f == "qpn" {
            "endpoint.qpn"
        } else {
            "endpoint.psn"
        };
        ep.invalid(field, why)
    })?;
    Ok(e)
}

impl Accept {
    fn to_bytes(&self) -> [u8; ACCEPT_LEN] {
        let mut b = [0u8; ACCEPT_LEN];
        ACCEPT_ENDPOINT.put(&mut b, encode_endpoint(&self.endpoint));
        ACCEPT_ADDR.put_u64(&mut b, self.region.addr);
        ACCEPT_RKEY.put_u32(&mut b, self.region.rkey);
        // ACCEPT_RESERVED stays zero.
        ACCEPT_REGION_LEN.put_u64(&mut b, self.region.len);
        ACCEPT_DURABLE_TAIL.put_u64(&mut b, self.durable_tail);
        ACCEPT_EPOCH.put_u64(&mut b, self.epoch);
        ACCEPT_MAC.put(&mut b, self.mac);
        b
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    pub(super) fn decode(body: &Body<'_>) -> Result<Self, WireError> {
        body.exact_len(ACCEPT_LEN)?;
        let endpoint = decode_endpoint(&body.sub(ACCEPT_ENDPOINT)?)?;
        let addr = body.u64(ACCEPT_ADDR)?;
        let rkey = body.u32(ACCEPT_RKEY)?;
        body.reserved_u32(ACCEPT_RESERVED, "reserved")?;
        let len = body.u64(ACCEPT_REGION_LEN)?;
        let region = RemoteRegion { addr, rkey, len };
        region.validate().map_err(|(f, why)| body.invalid(f, why))?;
        Ok(Accept {
            endpoint,
            region,
            durable_tail: body.u64(ACCEPT_DURABLE_TAIL)?,
            epoch: body.u64(ACCEPT_EPOCH)?,
            mac: body.array(ACCEPT_MAC)?,
        })
    }
}

/// The `Accept` body bytes before its MAC, as covered by the MACs.
pub(crate) fn accept_signed_bytes(a: &Accept) -> Vec<u8> {
    a.to_bytes()[..ACCEPT_SIGNED_LEN].to_vec()
}

impl Connect {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; CONNECT_LEN];
        CONNECT_ENDPOINT.put(&mut b, encode_endpoint(&self.endpoint));
        CONNECT_MAC.put(&mut b, self.mac);
        out.extend_from_slice(&b);
    }

    pub(super) fn decode(body: &Body<'_>) -> Result<Self, WireError> {
        body.exact_len(CONNECT_LEN)?;
        Ok(Connect {
            endpoint: decode_endpoint(&body.sub(CONNECT_ENDPOINT)?)?,
            mac: body.array(CONNECT_MAC)?,
        })
    }
}
