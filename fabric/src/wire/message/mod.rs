//! The typed messages and their byte layouts (see `docs/control-channel.md`),
//! one file per message or exchange:
//!
//! - `hello.rs`: `Hello`, with the writer name, geometry and persistence mode.
//! - `proof.rs`: `Challenge` and `Proof`, the nonce exchange.
//! - `accept.rs`: `Accept` and `Connect`, the queue-pair exchange.
//! - `reject.rs`: `Reject` and its codes.
//! - `status.rs`: `StatusRequest` and `Status`.
//! - `seal.rs`: `Seal` and `Sealed`.
//!
//! Every integer is little-endian. Each layout is a table of named field
//! offsets that its encoder and its decoder both use, with a compile-time
//! assertion that the fields tile the documented length. Layouts are fixed
//! except `Hello` (the writer's name at the end, its length in the fixed
//! part) and `Reject` (the human-readable reason at the end). A body must
//! have exactly the length its layout implies: trailing bytes are an error,
//! so there is one encoding per message and the bytes a MAC covers are the
//! bytes that were decoded.

mod accept;
mod hello;
mod proof;
mod reject;
mod seal;
mod status;

pub(crate) use accept::{accept_signed_bytes, endpoint_bytes};
pub use accept::{
    Accept, Connect, QpEndpoint, RemoteRegion, ACCEPT_LEN, ACCEPT_SIGNED_LEN, CONNECT_LEN,
    ENDPOINT_LEN, MAX_24_BIT,
};
pub(crate) use hello::hello_body;
pub use hello::{
    Geometry, Hello, PersistenceMode, WriterName, GEOMETRY_ALIGN, HELLO_FIXED_LEN, MAX_NAME_LEN,
};
pub use proof::{Challenge, Proof, CHALLENGE_LEN, MAC_LEN, NONCE_LEN, PROOF_LEN};
pub use reject::{Reject, RejectCode, MAX_REJECT_MESSAGE_LEN, REJECT_FIXED_LEN};
pub use seal::{SealPoint, SEAL_LEN};
pub use status::{Status, STATUS_LEN};

use super::codec::Body;
use super::error::WireError;
use super::frame::{FrameHeader, MessageType, HEADER_LEN, MAX_BODY_LEN};

// Every body fits a frame, so a reader's buffer has a fixed upper size.
const _: () = assert!(HELLO_FIXED_LEN + MAX_NAME_LEN <= MAX_BODY_LEN as usize);
const _: () = assert!(REJECT_FIXED_LEN + MAX_REJECT_MESSAGE_LEN <= MAX_BODY_LEN as usize);
const _: () = assert!(ACCEPT_LEN <= MAX_BODY_LEN as usize);

/// A control-channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`Challenge`].
    Challenge(Challenge),
    /// See [`Proof`].
    Proof(Proof),
    /// See [`Accept`].
    Accept(Accept),
    /// See [`Connect`].
    Connect(Connect),
    /// Replica → writer: the replica's QP is connected to the writer's.
    Ready,
    /// See [`Reject`].
    Reject(Reject),
    /// Ask for a [`Status`].
    StatusRequest,
    /// See [`Status`].
    Status(Status),
    /// Seal the stream.
    Seal(SealPoint),
    /// The stream is sealed.
    Sealed(SealPoint),
}

impl Message {
    /// The message's type code.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::Hello,
            Message::Challenge(_) => MessageType::Challenge,
            Message::Proof(_) => MessageType::Proof,
            Message::Accept(_) => MessageType::Accept,
            Message::Connect(_) => MessageType::Connect,
            Message::Ready => MessageType::Ready,
            Message::Reject(_) => MessageType::Reject,
            Message::StatusRequest => MessageType::StatusRequest,
            Message::Status(_) => MessageType::Status,
            Message::Seal(_) => MessageType::Seal,
            Message::Sealed(_) => MessageType::Sealed,
        }
    }

    /// Appends the message's body (no header) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(h) => h.encode(out),
            Message::Challenge(c) => c.encode(out),
            Message::Proof(p) => p.encode(out),
            Message::Accept(a) => a.encode(out),
            Message::Connect(c) => c.encode(out),
            Message::Ready | Message::StatusRequest => {}
            Message::Reject(r) => r.encode(out),
            Message::Status(s) => s.encode(out),
            Message::Seal(s) | Message::Sealed(s) => s.encode(out),
        }
    }

    /// Appends the whole frame (header and body) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; HEADER_LEN]);
        self.encode_body(out);
        let body_len = out.len() - start - HEADER_LEN;
        // Every layout is bounded far below MAX_BODY_LEN (asserted at compile
        // time above), so this conversion cannot fail for a well-formed value.
        let body_len = u32::try_from(body_len).expect("message body within MAX_BODY_LEN");
        debug_assert!(body_len <= MAX_BODY_LEN);
        let header = FrameHeader {
            message: self.message_type(),
            body_len,
        }
        .encode();
        out[start..start + HEADER_LEN].copy_from_slice(&header);
    }

    /// The whole frame as a new vector.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN + 128);
        self.encode(&mut v);
        v
    }

    /// Decodes and validates a body of the given type. Never panics.
    pub fn decode_body(message: MessageType, body: &[u8]) -> Result<Message, WireError> {
        let b = Body::new(message, body);
        Ok(match message {
            MessageType::Hello => Message::Hello(Hello::decode(&b)?),
            MessageType::Challenge => Message::Challenge(Challenge::decode(&b)?),
            MessageType::Proof => Message::Proof(Proof::decode(&b)?),
            MessageType::Accept => Message::Accept(Accept::decode(&b)?),
            MessageType::Connect => Message::Connect(Connect::decode(&b)?),
            MessageType::Ready => {
                b.exact_len(0)?;
                Message::Ready
            }
            MessageType::StatusRequest => {
                b.exact_len(0)?;
                Message::StatusRequest
            }
            MessageType::Reject => Message::Reject(Reject::decode(&b)?),
            MessageType::Status => Message::Status(Status::decode(&b)?),
            MessageType::Seal => Message::Seal(SealPoint::decode(&b)?),
            MessageType::Sealed => Message::Sealed(SealPoint::decode(&b)?),
        })
    }

    /// Decodes one frame from the start of `bytes`, returning the message and
    /// the number of bytes it occupied. Never panics.
    pub fn decode_frame(bytes: &[u8]) -> Result<(Message, usize), WireError> {
        let header = FrameHeader::decode(bytes)?;
        let body_len = header.body_len as usize;
        let rest = &bytes[HEADER_LEN..];
        let Some(body) = rest.get(..body_len) else {
            return Err(WireError::Truncated {
                message: header.message,
                needed: body_len,
                got: rest.len(),
            });
        };
        Ok((
            Message::decode_body(header.message, body)?,
            HEADER_LEN + body_len,
        ))
    }
}
