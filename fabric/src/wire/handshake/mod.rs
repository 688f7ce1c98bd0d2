//! The admission handshake, as type-state over a [`Channel`].
//!
//! ```text
//! writer                                   replica
//!   Hello ───────────────────────────────────▶  (name on allow-list?)
//!         ◀─────────────────────────── Challenge(server nonce)
//!   Proof(client nonce, writer MAC) ─────────▶  verify MAC (constant time);
//!                                               check UUID, geometry, mode, epoch
//!                                               → Authenticated: caller fences older
//!                                                 epochs, creates its QP
//!         ◀──────── Accept(QP, region+rkey, durable tail, epoch, replica MAC)
//!   verify replica MAC, create/connect QP
//!   Connect(QP, writer MAC) ─────────────────▶  verify MAC → Connecting: caller
//!                                               connects its QP to the writer's
//!         ◀─────────────────────────────────── Ready
//! ```
//!
//! Any failure ends the handshake with a `Reject` from the side that found
//! it (best effort) and a typed [`HandshakeError`] for the caller.
//!
//! **MACs** (HMAC-SHA256 with the writer's pre-shared key; `‖` is
//! concatenation, every part has a fixed length or carries its own, so the
//! concatenation is unambiguous):
//!
//! - writer proof: `MAC(LABEL_PROOF ‖ server_nonce ‖ hello_body ‖ client_nonce)`
//! - replica accept: `MAC(LABEL_ACCEPT ‖ server_nonce ‖ client_nonce ‖ hello_body ‖ accept_body[0..72])`
//! - writer connect: `MAC(LABEL_CONNECT ‖ server_nonce ‖ client_nonce ‖ hello_body ‖ accept_body[0..72] ‖ endpoint)`
//!
//! The labels keep one MAC from being replayed as another; both nonces make
//! every MAC fresh for this connection on both sides. The writer learns the
//! replica holds the key too (so it never connects its QP to an impostor),
//! and the replica connects its QP only to the endpoint the writer signed.
//!
//! **Timeouts**: the handshake reads with whatever timeout the caller set on
//! the stream (see [`Channel`]); it performs a fixed number of reads (three
//! on the writer side, two on the replica side), so the whole handshake is
//! bounded by that many timeouts.

use std::fmt;
use std::io;

use super::channel::{Channel, ChannelError};
use super::frame::MessageType;
use super::message::{Message, Reject, RejectCode};

mod replica;
mod writer;

pub use replica::{authenticate, Admitted, Authenticated, Connecting, Refusal, ReplicaExpectation};
pub use writer::{begin, Accepted, Established};

/// Domain-separation label of the writer's proof MAC.
pub const LABEL_PROOF: &[u8] = b"tailguard-control-v1 writer-proof\0";
/// Domain-separation label of the replica's accept MAC.
pub const LABEL_ACCEPT: &[u8] = b"tailguard-control-v1 replica-accept\0";
/// Domain-separation label of the writer's connect MAC.
pub const LABEL_CONNECT: &[u8] = b"tailguard-control-v1 writer-connect\0";

/// Why a handshake did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Sending or receiving failed (closed, timed out, malformed frame...).
    Channel {
        /// The handshake step, e.g. "waiting for Challenge".
        step: &'static str,
        /// What went wrong.
        source: ChannelError,
    },
    /// The peer sent a message the protocol does not allow at this step.
    Unexpected {
        /// What was expected.
        expected: MessageType,
        /// What arrived.
        got: MessageType,
    },
    /// The peer refused us with a `Reject` (writer side, or a writer that
    /// gave up on the replica's `Accept`).
    Rejected {
        /// The peer's code.
        code: RejectCode,
        /// The peer's reason.
        message: String,
    },
    /// We refused the peer (a `Reject` was sent, best effort).
    Refused(Refusal),
    /// Writer side: the `Accept` MAC does not verify, so the replica does not
    /// hold this writer's key (or the message was tampered with).
    ReplicaNotAuthenticated,
    /// Writer side: the `Accept` contradicts the `Hello`.
    AcceptMismatch {
        /// The field of the `Accept`.
        field: &'static str,
        /// What the writer sent or expected.
        writer: u64,
        /// What the replica sent.
        replica: u64,
    },
    /// A value the caller passed is out of bounds (nothing was sent).
    InvalidArgument {
        /// The argument's field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No nonce could be drawn from `/dev/urandom`.
    Nonce(io::Error),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Channel { step, source } => write!(f, "handshake {step}: {source}"),
            HandshakeError::Unexpected { expected, got } => {
                write!(
                    f,
                    "handshake protocol error: expected {expected}, got {got}"
                )
            }
            HandshakeError::Rejected { code, message } => {
                // Refusal texts usually start with what the code says.
                let code = code.to_string();
                if message.starts_with(&code) {
                    write!(f, "peer rejected the handshake: {message}")
                } else {
                    write!(f, "peer rejected the handshake: {code}: {message}")
                }
            }
            HandshakeError::Refused(r) => write!(f, "refused the peer: {r}"),
            HandshakeError::ReplicaNotAuthenticated => f.write_str(
                "the replica's Accept does not carry a valid MAC: it does not hold this \
                 writer's key (check the replica's allow-list key file), or the connection \
                 was tampered with",
            ),
            HandshakeError::AcceptMismatch {
                field,
                writer,
                replica,
            } => write!(
                f,
                "replica's Accept contradicts the Hello: {field} writer={writer} replica={replica}"
            ),
            HandshakeError::InvalidArgument { field, reason } => {
                write!(f, "invalid handshake argument {field}: {reason}")
            }
            HandshakeError::Nonce(e) => write!(f, "cannot read a nonce from /dev/urandom: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Channel { source, .. } => Some(source),
            HandshakeError::Nonce(e) => Some(e),
            _ => None,
        }
    }
}

/// Sends `message`, mapping failures to the named step.
fn send<S: io::Read + io::Write>(
    ch: &mut Channel<S>,
    step: &'static str,
    message: &Message,
) -> Result<(), HandshakeError> {
    ch.send(message)
        .map_err(|source| HandshakeError::Channel { step, source })
}

/// Receives the next message and extracts the expected one with `extract`;
/// a peer's `Reject` becomes [`HandshakeError::Rejected`] and any other
/// message [`HandshakeError::Unexpected`] (after telling the peer, best effort).
fn recv<S: io::Read + io::Write, T>(
    ch: &mut Channel<S>,
    step: &'static str,
    expected: MessageType,
    extract: impl FnOnce(Message) -> Option<T>,
) -> Result<T, HandshakeError> {
    let m = match ch.recv() {
        Ok(m) => m,
        Err(source) => {
            if let ChannelError::Wire(e) = &source {
                // The peer (or whatever is on the other end) may be listening
                // for a reason; the stream is out of sync, so this is best effort.
                let _ = ch.send_unpoisoned(&Message::Reject(Reject::malformed(e)));
            }
            return Err(HandshakeError::Channel { step, source });
        }
    };
    if let Message::Reject(r) = m {
        return Err(HandshakeError::Rejected {
            code: r.code,
            message: r.message().to_owned(),
        });
    }
    let got = m.message_type();
    extract(m).ok_or_else(|| {
        let _ = ch.send(&Message::Reject(Reject::new(
            RejectCode::UnexpectedMessage,
            format!("expected {expected}, got {got}"),
        )));
        HandshakeError::Unexpected { expected, got }
    })
}
