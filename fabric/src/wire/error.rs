//! Decode errors of the control-channel format.

use std::fmt;

use super::frame::{MessageType, RESERVED_CODES};

/// Why a byte sequence is not a valid control-channel frame.
///
/// Every variant names what was wrong (the field, the length, the value) so a
/// person reading a replica's log can tell a garbled peer from a version skew
/// from an attack. Decoding returns this and never panics, whatever the input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The first four bytes are not [`MAGIC`](super::MAGIC): the peer does not
    /// speak this protocol (or the stream is out of sync).
    BadMagic {
        /// The four bytes received.
        got: [u8; 4],
    },
    /// The frame's protocol version is one this build does not speak.
    UnsupportedVersion {
        /// Version in the frame.
        got: u16,
        /// The only version this build speaks.
        supported: u16,
    },
    /// The frame's message type is not one of [`MessageType`] (this includes
    /// the reserved codes [`RESERVED_CODES`](super::frame::RESERVED_CODES)).
    UnknownMessageType {
        /// Type code in the frame.
        got: u16,
    },
    /// The header announces a body longer than any message may be; the body is
    /// not read (so a hostile length cannot make us allocate).
    BodyTooLong {
        /// Announced body length in bytes.
        len: u32,
        /// Largest body length accepted ([`MAX_BODY_LEN`](super::MAX_BODY_LEN)).
        max: u32,
    },
    /// Fewer bytes than the fixed frame header.
    TruncatedHeader {
        /// Header size in bytes.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// A message body shorter than its layout needs.
    Truncated {
        /// The message being decoded.
        message: MessageType,
        /// Bytes the layout needs (so far).
        needed: usize,
        /// Bytes the body has.
        got: usize,
    },
    /// A message body longer than its layout: bytes after the last field.
    TrailingBytes {
        /// The message being decoded.
        message: MessageType,
        /// Body length the layout implies.
        expected: usize,
        /// Body length received.
        got: usize,
    },
    /// A field whose value is outside its bounds (or a reserved field that is
    /// not zero).
    InvalidField {
        /// The message being decoded (`None` for the frame header).
        message: Option<MessageType>,
        /// The field, as named in `docs/control-channel.md`.
        field: &'static str,
        /// What is wrong with it, with the value received.
        reason: String,
    },
}

impl WireError {
    pub(crate) fn invalid(
        message: MessageType,
        field: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        WireError::InvalidField {
            message: Some(message),
            field,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadMagic { got } => write!(
                f,
                "bad frame magic {got:02x?} (expected {:02x?}): the peer does not speak the \
                 tailguard control protocol, or the stream lost sync",
                super::MAGIC
            ),
            WireError::UnsupportedVersion { got, supported } => write!(
                f,
                "unsupported control-protocol version {got} (this build speaks version \
                 {supported}): upgrade the older side"
            ),
            WireError::UnknownMessageType { got } if RESERVED_CODES.contains(got) => write!(
                f,
                "unknown message type {got}: types 10 and 11 were the TCP Persist/Persisted \
                 messages, retired (gpspm persists with an RDMA SEND on the queue pair); \
                 upgrade the peer to this tailguard release"
            ),
            WireError::UnknownMessageType { got } => write!(
                f,
                "unknown message type {got}: the peer speaks another revision of the control \
                 protocol; run the same tailguard release on both sides"
            ),
            WireError::BodyTooLong { len, max } => {
                write!(
                    f,
                    "message body of {len} bytes exceeds the limit of {max} bytes"
                )
            }
            WireError::TruncatedHeader { needed, got } => {
                write!(
                    f,
                    "truncated frame header: needed {needed} bytes, got {got}"
                )
            }
            WireError::Truncated {
                message,
                needed,
                got,
            } => {
                write!(
                    f,
                    "truncated {message} message: needed {needed} bytes, got {got}"
                )
            }
            WireError::TrailingBytes {
                message,
                expected,
                got,
            } => write!(
                f,
                "{message} message has {got} bytes, its layout has {expected}: trailing bytes"
            ),
            WireError::InvalidField {
                message: Some(m),
                field,
                reason,
            } => {
                write!(f, "invalid {m}.{field}: {reason}")
            }
            WireError::InvalidField {
                message: None,
                field,
                reason,
            } => {
                write!(f, "invalid frame header field {field}: {reason}")
            }
        }
    }
}

impl std::error::Error for WireError {}
