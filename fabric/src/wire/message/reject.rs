//! `Reject` (type 7): either side ends the handshake or session, with a
//! machine-readable code and a human-readable reason.
//!
//! ```text
//! offset size field
//!      0    2 code         non-zero
//!      2    2 message_len  0..=1024
//!      4      message      message_len bytes of UTF-8, no control characters
//! ```

use std::fmt;

use super::super::codec::Body;
use super::super::error::WireError;
use crate::layout::{tiles, Field};

/// Longest `Reject` reason in bytes (longer reasons are cut at a character
/// boundary by [`Reject::new`]).
pub const MAX_REJECT_MESSAGE_LEN: usize = 1024;
/// Fixed part of a `Reject` body; the reason follows.
pub const REJECT_FIXED_LEN: usize = 4;

const CODE: Field<2> = Field::at(0);
const MESSAGE_LEN: Field<2> = Field::at(2);
/// The reason starts right after the fixed part.
const MESSAGE_OFFSET: usize = REJECT_FIXED_LEN;
const _: () = assert!(tiles(&[CODE.span(), MESSAGE_LEN.span()], REJECT_FIXED_LEN));
const _: () = assert!(REJECT_FIXED_LEN == 4 && MESSAGE_OFFSET == MESSAGE_LEN.end());
// message_len is a u16.
const _: () = assert!(MAX_REJECT_MESSAGE_LEN <= u16::MAX as usize);

/// Why a peer refused, the `code` of a [`Reject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectCode {
    /// A frame did not decode.
    Malformed,
    /// A message arrived that the protocol does not allow at that point.
    UnexpectedMessage,
    /// Unknown writer name or wrong key (deliberately not told apart).
    AuthFailed,
    /// The writer's log UUID is not the replica's.
    UuidMismatch,
    /// The writer's geometry is not the replica's.
    GeometryMismatch,
    /// The writer's persistence mode is not the replica's.
    PersistenceMismatch,
    /// The writer's epoch is older than one the replica admitted: fenced.
    StaleEpoch,
    /// The replica's stream is sealed at the writer's epoch.
    Sealed,
    /// The replica could not complete the admission (e.g. QP creation failed).
    Internal,
    /// The peer speaks another protocol version.
    UnsupportedVersion,
    /// A code this build does not know (sent by a newer peer).
    Other(u16),
}

impl RejectCode {
    /// The wire code (never 0).
    pub fn code(self) -> u16 {
        match self {
            RejectCode::Malformed => 1,
            RejectCode::UnexpectedMessage => 2,
            RejectCode::AuthFailed => 3,
            RejectCode::UuidMismatch => 4,
            RejectCode::GeometryMismatch => 5,
            RejectCode::PersistenceMismatch => 6,
            RejectCode::StaleEpoch => 7,
            RejectCode::Sealed => 8,
            RejectCode::Internal => 9,
            RejectCode::UnsupportedVersion => 10,
            RejectCode::Other(c) => c,
        }
    }

    /// The code for a wire value; `None` for 0, which is not a code.
    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            0 => return None,
            1 => RejectCode::Malformed,
            2 => RejectCode::UnexpectedMessage,
            3 => RejectCode::AuthFailed,
            4 => RejectCode::UuidMismatch,
            5 => RejectCode::GeometryMismatch,
            6 => RejectCode::PersistenceMismatch,
            7 => RejectCode::StaleEpoch,
            8 => RejectCode::Sealed,
            9 => RejectCode::Internal,
            10 => RejectCode::UnsupportedVersion,
            c => RejectCode::Other(c),
        })
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            RejectCode::Malformed => "malformed message",
            RejectCode::UnexpectedMessage => "unexpected message",
            RejectCode::AuthFailed => "authentication failed",
            RejectCode::UuidMismatch => "log UUID mismatch",
            RejectCode::GeometryMismatch => "geometry mismatch",
            RejectCode::PersistenceMismatch => "persistence mode mismatch",
            RejectCode::StaleEpoch => "stale epoch",
            RejectCode::Sealed => "stream sealed",
            RejectCode::Internal => "replica internal error",
            RejectCode::UnsupportedVersion => "unsupported protocol version",
            RejectCode::Other(c) => return write!(f, "reject code {c}"),
        };
        f.write_str(s)
    }
}

/// Either way: the handshake or session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Machine-readable reason.
    pub code: RejectCode,
    message: String,
}

impl Reject {
    /// A reject with a human-readable reason, cut to
    /// [`MAX_REJECT_MESSAGE_LEN`] bytes at a character boundary, with control
    /// characters (newlines included) replaced by spaces so the peer can log
    /// it verbatim.
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.chars().any(char::is_control) {
            message = message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
        }
        if message.len() > MAX_REJECT_MESSAGE_LEN {
            let mut cut = MAX_REJECT_MESSAGE_LEN;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        Reject { code, message }
    }

    /// The human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The refusal for a frame that did not decode: `UnsupportedVersion` for
    /// a version skew, `Malformed` for anything else, with the decode error
    /// (which names the field and what is wrong) as the reason.
    pub fn malformed(e: &WireError) -> Self {
        let code = match e {
            WireError::UnsupportedVersion { .. } => RejectCode::UnsupportedVersion,
            _ => RejectCode::Malformed,
        };
        Reject::new(code, e.to_string())
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; REJECT_FIXED_LEN];
        CODE.put_u16(&mut b, self.code.code());
        // Reject::new bounds the message to MAX_REJECT_MESSAGE_LEN < u16::MAX.
        let len = u16::try_from(self.message.len()).unwrap_or(u16::MAX);
        MESSAGE_LEN.put_u16(&mut b, len);
        out.extend_from_slice(&b);
        out.extend_from_slice(&self.message.as_bytes()[..usize::from(len)]);
    }

    pub(super) fn decode(body: &Body<'_>) -> Result<Self, WireError> {
        body.min_len(REJECT_FIXED_LEN)?;
        let code = RejectCode::from_code(body.u16(CODE)?)
            .ok_or_else(|| body.invalid("code", "must be non-zero, got 0"))?;
        let len = usize::from(body.u16(MESSAGE_LEN)?);
        if len > MAX_REJECT_MESSAGE_LEN {
            return Err(body.invalid(
                "message_len",
                format!("must be at most {MAX_REJECT_MESSAGE_LEN}, got {len}"),
            ));
        }
        body.exact_len(MESSAGE_OFFSET + len)?;
        let text = std::str::from_utf8(body.bytes_at(MESSAGE_OFFSET, len)?)
            .map_err(|e| body.invalid("message", format!("not UTF-8: {e}")))?;
        // The reason ends up in the other side's logs: no control characters.
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(body.invalid(
                "message",
                format!("contains control character {:#x}", u32::from(c)),
            ));
        }
        Ok(Reject {
            code,
            message: text.to_owned(),
        })
    }
}
