//! The decoder's view of one message body: length checks and
//! bounds-checked little-endian reads of [`Field`]s, each failure a
//! [`WireError`] naming the message (and field).
//!
//! Every decoder first checks the body's length against its layout
//! ([`Body::exact_len`], or [`Body::min_len`] then `exact_len` for the two
//! layouts with a variable tail), so the field reads after it cannot fail;
//! they are still checked, so no input can make a decoder panic.

use crate::layout::Field;

use super::error::WireError;
use super::frame::MessageType;

/// A received message body of a known type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Body<'a> {
    message: MessageType,
    bytes: &'a [u8],
}

impl<'a> Body<'a> {
    pub(crate) fn new(message: MessageType, bytes: &'a [u8]) -> Self {
        Body { message, bytes }
    }

    /// A field that is itself a layout (a QP endpoint inside `Accept`), to be
    /// read with that layout's own offsets.
    pub(crate) fn sub<const N: usize>(&self, f: Field<N>) -> Result<Body<'a>, WireError> {
        Ok(Body {
            message: self.message,
            bytes: self.bytes_at(f.offset, N)?,
        })
    }

    /// An error for `field`, naming this message.
    pub(crate) fn invalid(&self, field: &'static str, reason: impl Into<String>) -> WireError {
        WireError::invalid(self.message, field, reason)
    }

    /// The body has at least `needed` bytes.
    pub(crate) fn min_len(&self, needed: usize) -> Result<(), WireError> {
        if self.bytes.len() < needed {
            return Err(WireError::Truncated {
                message: self.message,
                needed,
                got: self.bytes.len(),
            });
        }
        Ok(())
    }

    /// The body has exactly `expected` bytes: fewer is truncated, more is
    /// trailing bytes (one encoding per message).
    pub(crate) fn exact_len(&self, expected: usize) -> Result<(), WireError> {
        self.min_len(expected)?;
        if self.bytes.len() > expected {
            return Err(WireError::TrailingBytes {
                message: self.message,
                expected,
                got: self.bytes.len(),
            });
        }
        Ok(())
    }

    /// `len` bytes at `offset` (a variable-length tail: a name, a reason).
    pub(crate) fn bytes_at(&self, offset: usize, len: usize) -> Result<&'a [u8], WireError> {
        let end = offset.checked_add(len);
        end.and_then(|end| self.bytes.get(offset..end))
            .ok_or(WireError::Truncated {
                message: self.message,
                needed: end.unwrap_or(usize::MAX),
                got: self.bytes.len(),
            })
    }

    pub(crate) fn array<const N: usize>(&self, f: Field<N>) -> Result<[u8; N], WireError> {
        f.get(self.bytes).ok_or(WireError::Truncated {
            message: self.message,
            needed: f.end(),
            got: self.bytes.len(),
        })
    }

    pub(crate) fn u8(&self, f: Field<1>) -> Result<u8, WireError> {
        Ok(self.array(f)?[0])
    }

    pub(crate) fn u16(&self, f: Field<2>) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array(f)?))
    }

    pub(crate) fn u32(&self, f: Field<4>) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array(f)?))
    }

    pub(crate) fn u64(&self, f: Field<8>) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array(f)?))
    }

    /// A reserved `u16`, which must be zero.
    pub(crate) fn reserved_u16(&self, f: Field<2>, field: &'static str) -> Result<(), WireError> {
        match self.u16(f)? {
            0 => Ok(()),
            v => Err(self.invalid(field, format!("must be zero, got {v:#x}"))),
        }
    }

    /// A reserved `u32`, which must be zero.
    pub(crate) fn reserved_u32(&self, f: Field<4>, field: &'static str) -> Result<(), WireError> {
        match self.u32(f)? {
            0 => Ok(()),
            v => Err(self.invalid(field, format!("must be zero, got {v:#x}"))),
        }
    }
}
