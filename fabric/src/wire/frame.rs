//! The fixed frame header and the message-type codes.
//!
//! ```text
//! offset size field
//!      0    4 magic        b"TGCC"
//!      4    2 version      u16 LE, = PROTOCOL_VERSION
//!      6    2 type         u16 LE, a MessageType code
//!      8    4 body_len     u32 LE, <= MAX_BODY_LEN
//!     12    4 reserved     must be zero
//!     16      body (body_len bytes)
//! ```
//!
//! The header has a fixed size so a reader always knows how much to read
//! next, and the body length is checked against [`MAX_BODY_LEN`] before any
//! body byte is read or any buffer sized, so a hostile length costs nothing.
//!
//! Type codes 10 and 11 are reserved: they were the TCP `Persist` /
//! `Persisted` messages, which no writer sent (`gpspm` persists with an RDMA
//! SEND on the queue pair, see [`crate::gpspm`]). They are never reused, so a
//! peer that still sends them gets a clean "unknown message type" refusal.

use std::fmt;

use super::error::WireError;
use crate::layout::{tiles, Field};

/// First four bytes of every frame: "TGCC", tailguard control channel.
pub const MAGIC: [u8; 4] = *b"TGCC";

/// The control-protocol version this build speaks (and the only one it accepts).
pub const PROTOCOL_VERSION: u16 = 1;

/// Size of the frame header in bytes.
pub const HEADER_LEN: usize = 16;

// The header layout (the table above and in docs/control-channel.md).
const H_MAGIC: Field<4> = Field::at(0);
const H_VERSION: Field<2> = Field::at(4);
const H_TYPE: Field<2> = Field::at(6);
const H_BODY_LEN: Field<4> = Field::at(8);
const H_RESERVED: Field<4> = Field::at(12);
const _: () = assert!(tiles(
    &[
        H_MAGIC.span(),
        H_VERSION.span(),
        H_TYPE.span(),
        H_BODY_LEN.span(),
        H_RESERVED.span()
    ],
    HEADER_LEN
));
const _: () = assert!(HEADER_LEN == 16);

/// Type codes that must never be assigned again: 10 and 11 were the retired
/// TCP `Persist` / `Persisted` messages. They decode as
/// [`WireError::UnknownMessageType`].
pub const RESERVED_CODES: [u16; 2] = [10, 11];

/// Largest body a frame may carry, in bytes (64 KiB). Every message defined
/// in version 1 is far smaller (the largest, a `Reject`, is at most 1028
/// bytes); the bound exists so a reader's buffer has a fixed upper size.
pub const MAX_BODY_LEN: u32 = 64 * 1024;

/// Type code of a message, the `type` field of the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum MessageType {
    /// Writer → replica: identity, log UUID, epoch, geometry, persistence mode.
    Hello = 1,
    /// Replica → writer: the replica's 32-byte nonce.
    Challenge = 2,
    /// Writer → replica: the writer's nonce and its HMAC proof of the key.
    Proof = 3,
    /// Replica → writer: the replica's QP endpoint, region (with rkey), durable
    /// tail and epoch, and its own HMAC proof of the key.
    Accept = 4,
    /// Writer → replica: the writer's QP endpoint, authenticated.
    Connect = 5,
    /// Replica → writer: the replica's QP is connected; the writer may post.
    Ready = 6,
    /// Either way: the handshake (or session) ends, with a code and a reason.
    Reject = 7,
    /// Writer → replica: ask for a [`Status`](MessageType::Status).
    StatusRequest = 8,
    /// Replica → writer: durable tail, applied LSN, epoch, sealed flag.
    Status = 9,
    // 10 and 11 are reserved (RESERVED_CODES): the retired TCP Persist and
    // Persisted. Never reuse them.
    /// Writer or closure → replica: seal the stream at this epoch and tail.
    Seal = 12,
    /// Replica → sealer: the stream is sealed.
    Sealed = 13,
}

impl MessageType {
    /// Every message type, in code order.
    pub const ALL: [MessageType; 11] = [
        MessageType::Hello,
        MessageType::Challenge,
        MessageType::Proof,
        MessageType::Accept,
        MessageType::Connect,
        MessageType::Ready,
        MessageType::Reject,
        MessageType::StatusRequest,
        MessageType::Status,
        MessageType::Seal,
        MessageType::Sealed,
    ];

    /// The wire code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The type for a wire code.
    pub fn from_code(code: u16) -> Result<Self, WireError> {
        MessageType::ALL
            .iter()
            .copied()
            .find(|t| t.code() == code)
            .ok_or(WireError::UnknownMessageType { got: code })
    }

    /// The message's name, as in `docs/control-channel.md`.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Hello => "Hello",
            MessageType::Challenge => "Challenge",
            MessageType::Proof => "Proof",
            MessageType::Accept => "Accept",
            MessageType::Connect => "Connect",
            MessageType::Ready => "Ready",
            MessageType::Reject => "Reject",
            MessageType::StatusRequest => "StatusRequest",
            MessageType::Status => "Status",
            MessageType::Seal => "Seal",
            MessageType::Sealed => "Sealed",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded, validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The message type.
    pub message: MessageType,
    /// Body length in bytes, at most [`MAX_BODY_LEN`].
    pub body_len: u32,
}

impl FrameHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        debug_assert!(self.body_len <= MAX_BODY_LEN);
        let mut h = [0u8; HEADER_LEN];
        H_MAGIC.put(&mut h, MAGIC);
        H_VERSION.put_u16(&mut h, PROTOCOL_VERSION);
        H_TYPE.put_u16(&mut h, self.message.code());
        H_BODY_LEN.put_u32(&mut h, self.body_len);
        // H_RESERVED stays zero.
        h
    }

    /// Decodes and validates a header: magic, version, type, body length and
    /// the reserved word, in that order (so a non-tailguard peer is reported
    /// as a bad magic, not as an unknown type).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let Some(h) = bytes.get(..HEADER_LEN) else {
            return Err(WireError::TruncatedHeader {
                needed: HEADER_LEN,
                got: bytes.len(),
            });
        };
        let field = |f: Field<2>| u16::from_le_bytes(f.get(h).unwrap_or_default());
        let word = |f: Field<4>| f.get(h).unwrap_or_default();
        // `h` is HEADER_LEN bytes, which the fields tile (asserted above), so
        // no read falls back to the default.
        let magic = word(H_MAGIC);
        if magic != MAGIC {
            return Err(WireError::BadMagic { got: magic });
        }
        let version = field(H_VERSION);
        if version != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion {
                got: version,
                supported: PROTOCOL_VERSION,
            });
        }
        let message = MessageType::from_code(field(H_TYPE))?;
        let body_len = u32::from_le_bytes(word(H_BODY_LEN));
        if body_len > MAX_BODY_LEN {
            return Err(WireError::BodyTooLong {
                len: body_len,
                max: MAX_BODY_LEN,
            });
        }
        let reserved = u32::from_le_bytes(word(H_RESERVED));
        if reserved != 0 {
            return Err(WireError::InvalidField {
                message: None,
                field: "reserved",
                reason: format!("must be zero, got {reserved:#x}"),
            });
        }
        Ok(FrameHeader { message, body_len })
    }
}
