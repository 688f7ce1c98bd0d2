//! The control channel: a versioned, length-prefixed, little-endian message
//! format hand-encoded over TCP, and the admission handshake built on it.
//!
//! It carries only the handshake and control messages (status, seal), never
//! log data; `gpspm`'s persist requests travel as RDMA SENDs on the queue
//! pair ([`crate::gpspm`]), not here. Byte layouts are in
//! `docs/control-channel.md`; this module contains no `unsafe`.
//!
//! - [`frame`]: the 16-byte header and message type codes.
//! - [`message`]: the typed messages, encode and validating decode, one
//!   file per message; `codec` holds the decoder's bounds-checked reads.
//! - [`channel`]: framed send/receive over any `Read + Write`.
//! - [`handshake`]: writer and replica state machines.
//! - [`session`]: request/response helpers after the handshake.
#![forbid(unsafe_code)]

pub mod channel;
mod codec;
mod error;
pub mod frame;
pub mod handshake;
pub mod message;
pub mod session;

pub use channel::{Channel, ChannelError};
pub use error::WireError;
pub use frame::{
    FrameHeader, MessageType, HEADER_LEN, MAGIC, MAX_BODY_LEN, PROTOCOL_VERSION, RESERVED_CODES,
};
pub use handshake::HandshakeError;
pub use message::{
    Accept, Challenge, Connect, Geometry, Hello, Message, PersistenceMode, Proof, QpEndpoint,
    Reject, RejectCode, RemoteRegion, SealPoint, Status, WriterName, MAC_LEN, NONCE_LEN,
};
pub use session::SessionError;
