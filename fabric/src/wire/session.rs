//! Request/response helpers for the control messages exchanged after the
//! handshake, on the writer's (or closure's) side of an established channel.
//!
//! Each helper sends one request and reads exactly one reply, so it is
//! bounded by the socket's timeouts like the handshake. The replica answers
//! requests in order; a `Reject` ends the session.

use std::fmt;
use std::io::{Read, Write};

use super::channel::{Channel, ChannelError};
use super::frame::MessageType;
use super::message::{Message, RejectCode, SealPoint, Status};

/// Why a control request failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// Sending or receiving failed.
    Channel(ChannelError),
    /// The replica ended the session with a `Reject`.
    Rejected {
        /// The replica's code.
        code: RejectCode,
        /// The replica's reason.
        message: String,
    },
    /// The reply is not the one the request calls for.
    Unexpected {
        /// The reply type expected.
        expected: MessageType,
        /// The reply type received.
        got: MessageType,
    },
    /// The reply answers a different request (e.g. another epoch).
    Mismatch {
        /// The reply's field.
        field: &'static str,
        /// The value requested.
        sent: u64,
        /// The value in the reply.
        got: u64,
    },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Channel(e) => write!(f, "{e}"),
            SessionError::Rejected { code, message } => {
                write!(f, "replica ended the session: {code}: {message}")
            }
            SessionError::Unexpected { expected, got } => {
                write!(f, "control protocol error: expected {expected}, got {got}")
            }
            SessionError::Mismatch { field, sent, got } => {
                write!(
                    f,
                    "reply does not match the request: {field} sent={sent} got={got}"
                )
            }
        }
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::Channel(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ChannelError> for SessionError {
    fn from(e: ChannelError) -> Self {
        SessionError::Channel(e)
    }
}

fn exchange<S: Read + Write>(
    ch: &mut Channel<S>,
    request: &Message,
    expected: MessageType,
) -> Result<Message, SessionError> {
    ch.send(request)?;
    match ch.recv()? {
        Message::Reject(r) => Err(SessionError::Rejected {
            code: r.code,
            message: r.message().to_owned(),
        }),
        m if m.message_type() == expected => Ok(m),
        m => Err(SessionError::Unexpected {
            expected,
            got: m.message_type(),
        }),
    }
}

/// Asks the replica for its durable tail, applied LSN, epoch and sealed flag.
pub fn request_status<S: Read + Write>(ch: &mut Channel<S>) -> Result<Status, SessionError> {
    match exchange(ch, &Message::StatusRequest, MessageType::Status)? {
        Message::Status(s) => Ok(s),
        m => Err(SessionError::Unexpected {
            expected: MessageType::Status,
            got: m.message_type(),
        }),
    }
}

/// Asks the replica to seal `point.epoch` at `point.tail`; returns the
/// replica's `Sealed` point, whose epoch must match (its tail is the
/// replica's final durable tail for that epoch).
pub fn request_seal<S: Read + Write>(
    ch: &mut Channel<S>,
    point: SealPoint,
) -> Result<SealPoint, SessionError> {
    match exchange(ch, &Message::Seal(point), MessageType::Sealed)? {
        Message::Sealed(p) if p.epoch == point.epoch => Ok(p),
        Message::Sealed(p) => Err(SessionError::Mismatch {
            field: "epoch",
            sent: point.epoch,
            got: p.epoch,
        }),
        m => Err(SessionError::Unexpected {
            expected: MessageType::Sealed,
            got: m.message_type(),
        }),
    }
}
