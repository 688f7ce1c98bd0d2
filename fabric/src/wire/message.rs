//! The typed messages and their byte layouts (see `docs/control-channel.md`).
//!
//! Every integer is little-endian. Layouts are fixed except `Hello` (the
//! writer's name at the end, its length in the fixed part) and `Reject` (the
//! human-readable reason at the end). A body must have exactly the length its
//! layout implies: trailing bytes are an error, so there is one encoding per
//! message and the bytes a MAC covers are the bytes that were decoded.

use std::fmt;

use serde::Deserialize;

pub use crate::verbs::{QpEndpoint, RemoteRegion};

use super::error::WireError;
use super::frame::{FrameHeader, MessageType, HEADER_LEN, MAX_BODY_LEN};

/// Length of a nonce in bytes.
pub const NONCE_LEN: usize = 32;
/// Length of an HMAC-SHA256 tag in bytes.
pub const MAC_LEN: usize = 32;
/// Longest writer name in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest `Reject` reason in bytes (longer reasons are cut at a character
/// boundary by [`Reject::new`]).
pub const MAX_REJECT_MESSAGE_LEN: usize = 1024;
/// Queue-pair and packet sequence numbers are 24-bit quantities in verbs.
pub const MAX_24_BIT: u32 = (1 << 24) - 1;
/// Ring offset and capacity must be multiples of this (records are padded to
/// 64-byte boundaries).
pub const GEOMETRY_ALIGN: u64 = 64;

/// Fixed part of a `Hello` body; the name follows.
pub const HELLO_FIXED_LEN: usize = 52;
/// `Challenge` body length.
pub const CHALLENGE_LEN: usize = NONCE_LEN;
/// `Proof` body length.
pub const PROOF_LEN: usize = NONCE_LEN + MAC_LEN;
/// Encoded [`QpEndpoint`] length.
pub const ENDPOINT_LEN: usize = 32;
/// `Accept` body length; the MAC covers the first [`ACCEPT_SIGNED_LEN`] bytes.
pub const ACCEPT_LEN: usize = ACCEPT_SIGNED_LEN + MAC_LEN;
/// Bytes of an `Accept` body covered by its MAC (everything before it).
pub const ACCEPT_SIGNED_LEN: usize = ENDPOINT_LEN + 24 + 16;
/// `Connect` body length; the MAC covers the endpoint.
pub const CONNECT_LEN: usize = ENDPOINT_LEN + MAC_LEN;
/// `Status` body length.
pub const STATUS_LEN: usize = 40;
/// `Persist` / `Persisted` body length.
pub const RANGE_LEN: usize = 16;
/// `Seal` / `Sealed` body length.
pub const SEAL_LEN: usize = 16;
/// Fixed part of a `Reject` body; the reason follows.
pub const REJECT_FIXED_LEN: usize = 4;

// The layouts in docs/control-channel.md, checked at compile time.
const _: () = assert!(HELLO_FIXED_LEN == 16 + 8 + 8 + 8 + 8 + 1 + 1 + 2);
const _: () = assert!(ACCEPT_SIGNED_LEN == 72 && ACCEPT_LEN == 104);
const _: () = assert!(CONNECT_LEN == 64 && PROOF_LEN == 64);
const _: () = assert!(HELLO_FIXED_LEN + MAX_NAME_LEN <= MAX_BODY_LEN as usize);
const _: () = assert!(REJECT_FIXED_LEN + MAX_REJECT_MESSAGE_LEN <= MAX_BODY_LEN as usize);

/// How the writer makes placed data durable on the replica. Both sides must
/// agree; the replica rejects a writer whose mode differs from its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersistenceMode {
    /// RDMA READ after the WRITEs on the same QP ("appliance persistency
    /// method"). Durable only where the replica platform makes data placed by
    /// the NIC persistent (ADR with DDIO off, or eADR); otherwise visible only.
    Apm,
    /// A SEND asks the replica CPU to persist the range and reply ("general
    /// purpose server persistency method"). Durable on any platform, costs a
    /// replica CPU wake-up per flush.
    Gpspm,
}

impl PersistenceMode {
    fn code(self) -> u8 {
        match self {
            PersistenceMode::Apm => 1,
            PersistenceMode::Gpspm => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(PersistenceMode::Apm),
            2 => Some(PersistenceMode::Gpspm),
            _ => None,
        }
    }

    /// The name used in config files and messages.
    pub fn name(self) -> &'static str {
        match self {
            PersistenceMode::Apm => "apm",
            PersistenceMode::Gpspm => "gpspm",
        }
    }
}

impl fmt::Display for PersistenceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A writer's identity on the allow-list: 1 to 64 bytes of ASCII letters,
/// digits, `.`, `_` and `-` (so it prints safely in logs and messages).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriterName(String);

impl WriterName {
    /// Validates a name.
    pub fn new(name: impl Into<String>) -> Result<Self, String> {
        let name = name.into();
        check_name(name.as_bytes())?;
        Ok(WriterName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_name(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() || bytes.len() > MAX_NAME_LEN {
        return Err(format!(
            "must be 1..={MAX_NAME_LEN} bytes, got {}",
            bytes.len()
        ));
    }
    if let Some(b) = bytes
        .iter()
        .find(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
    {
        return Err(format!(
            "may contain only ASCII letters, digits, '.', '_' and '-', found byte {b:#04x}"
        ));
    }
    Ok(())
}

impl fmt::Debug for WriterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for WriterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the ring sits in the log region. The replica's region mirrors the
/// primary's byte for byte, so both sides must have the same geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Offset of the ring from the start of the region, in bytes; a multiple
    /// of 64.
    pub ring_offset_bytes: u64,
    /// Ring capacity in bytes; non-zero, a multiple of 64.
    pub ring_capacity_bytes: u64,
    /// Length of the whole region in bytes; at least offset + capacity.
    pub region_len_bytes: u64,
}

impl Geometry {
    /// Checks the bounds above; on failure names the field and says why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.ring_offset_bytes.is_multiple_of(GEOMETRY_ALIGN) {
            return Err((
                "ring_offset",
                format!(
                    "must be a multiple of {GEOMETRY_ALIGN}, got {}",
                    self.ring_offset_bytes
                ),
            ));
        }
        if self.ring_capacity_bytes == 0 || !self.ring_capacity_bytes.is_multiple_of(GEOMETRY_ALIGN)
        {
            return Err((
                "ring_capacity",
                format!(
                    "must be a non-zero multiple of {GEOMETRY_ALIGN}, got {}",
                    self.ring_capacity_bytes
                ),
            ));
        }
        match self.ring_offset_bytes.checked_add(self.ring_capacity_bytes) {
            Some(end) if end <= self.region_len_bytes => Ok(()),
            _ => Err((
                "region_len",
                format!(
                    "must be at least ring offset + capacity = {} + {}, got {}",
                    self.ring_offset_bytes, self.ring_capacity_bytes, self.region_len_bytes
                ),
            )),
        }
    }
}

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

/// Writer → replica, first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The writer's name on the replica's allow-list.
    pub writer: WriterName,
    /// The log's UUID; never all zero.
    pub log_uuid: [u8; 16],
    /// The writer's epoch.
    pub epoch: u64,
    /// The log's geometry.
    pub geometry: Geometry,
    /// How the writer will make data durable.
    pub persistence: PersistenceMode,
}

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
}

/// Replica → writer: the replica's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Durable tail, a log position.
    pub durable_tail: u64,
    /// Last LSN replayed into the replica's state copy.
    pub applied_lsn: u64,
    /// The replica's admitted epoch.
    pub epoch: u64,
    /// Whether the stream is sealed at that epoch.
    pub sealed: bool,
    /// Oldest log position the replica still needs intact (its image's
    /// head): a writer reclaims its ring only up to the lowest such head.
    pub head: u64,
}

/// A half-open range `[start, end)` of log positions, `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PosRange {
    /// First position in the range.
    pub start: u64,
    /// One past the last position.
    pub end: u64,
}

/// An epoch and the tail it is sealed at (`Seal` and `Sealed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealPoint {
    /// The epoch being sealed.
    pub epoch: u64,
    /// The final tail of that epoch, a log position.
    pub tail: u64,
}

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
    /// `gpspm`: persist this range of the replica's region.
    Persist(PosRange),
    /// `gpspm`: this range is persistent.
    Persisted(PosRange),
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
            Message::Persist(_) => MessageType::Persist,
            Message::Persisted(_) => MessageType::Persisted,
            Message::Seal(_) => MessageType::Seal,
            Message::Sealed(_) => MessageType::Sealed,
        }
    }

    /// Appends the message's body (no header) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(h) => encode_hello(h, out),
            Message::Challenge(c) => out.extend_from_slice(&c.nonce),
            Message::Proof(p) => {
                out.extend_from_slice(&p.client_nonce);
                out.extend_from_slice(&p.mac);
            }
            Message::Accept(a) => {
                encode_accept_signed(a, out);
                out.extend_from_slice(&a.mac);
            }
            Message::Connect(c) => {
                encode_endpoint(&c.endpoint, out);
                out.extend_from_slice(&c.mac);
            }
            Message::Ready | Message::StatusRequest => {}
            Message::Reject(r) => {
                out.extend_from_slice(&r.code.code().to_le_bytes());
                // Reject::new bounds the message to MAX_REJECT_MESSAGE_LEN < u16::MAX.
                let len = u16::try_from(r.message.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&r.message.as_bytes()[..usize::from(len)]);
            }
            Message::Status(s) => {
                put_u64(out, s.durable_tail);
                put_u64(out, s.applied_lsn);
                put_u64(out, s.epoch);
                out.push(u8::from(s.sealed));
                out.extend_from_slice(&[0u8; 7]);
                put_u64(out, s.head);
            }
            Message::Persist(r) | Message::Persisted(r) => {
                put_u64(out, r.start);
                put_u64(out, r.end);
            }
            Message::Seal(s) | Message::Sealed(s) => {
                put_u64(out, s.epoch);
                put_u64(out, s.tail);
            }
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
        let mut r = Reader {
            message,
            body,
            pos: 0,
        };
        let msg = match message {
            MessageType::Hello => Message::Hello(decode_hello(&mut r)?),
            MessageType::Challenge => {
                r.exact_len(CHALLENGE_LEN)?;
                Message::Challenge(Challenge { nonce: r.array()? })
            }
            MessageType::Proof => {
                r.exact_len(PROOF_LEN)?;
                Message::Proof(Proof {
                    client_nonce: r.array()?,
                    mac: r.array()?,
                })
            }
            MessageType::Accept => {
                r.exact_len(ACCEPT_LEN)?;
                let endpoint = decode_endpoint(&mut r)?;
                let addr = r.u64()?;
                let rkey = r.u32()?;
                r.reserved_u32("reserved")?;
                let len = r.u64()?;
                let region = RemoteRegion { addr, rkey, len };
                region
                    .validate()
                    .map_err(|(f, why)| WireError::invalid(message, f, why))?;
                let durable_tail = r.u64()?;
                let epoch = r.u64()?;
                let mac = r.array()?;
                Message::Accept(Accept {
                    endpoint,
                    region,
                    durable_tail,
                    epoch,
                    mac,
                })
            }
            MessageType::Connect => {
                r.exact_len(CONNECT_LEN)?;
                Message::Connect(Connect {
                    endpoint: decode_endpoint(&mut r)?,
                    mac: r.array()?,
                })
            }
            MessageType::Ready => {
                r.exact_len(0)?;
                Message::Ready
            }
            MessageType::StatusRequest => {
                r.exact_len(0)?;
                Message::StatusRequest
            }
            MessageType::Reject => Message::Reject(decode_reject(&mut r)?),
            MessageType::Status => {
                r.exact_len(STATUS_LEN)?;
                let durable_tail = r.u64()?;
                let applied_lsn = r.u64()?;
                let epoch = r.u64()?;
                let sealed = match r.u8()? {
                    0 => false,
                    1 => true,
                    v => {
                        return Err(WireError::invalid(
                            message,
                            "sealed",
                            format!("must be 0 or 1, got {v}"),
                        ))
                    }
                };
                let pad: [u8; 7] = r.array()?;
                if pad != [0; 7] {
                    return Err(WireError::invalid(message, "reserved", "must be zero"));
                }
                let head = r.u64()?;
                if head > durable_tail {
                    return Err(WireError::invalid(
                        message,
                        "head",
                        format!("must not pass durable_tail {durable_tail}, got {head}"),
                    ));
                }
                Message::Status(Status {
                    durable_tail,
                    applied_lsn,
                    epoch,
                    sealed,
                    head,
                })
            }
            MessageType::Persist | MessageType::Persisted => {
                r.exact_len(RANGE_LEN)?;
                let range = PosRange {
                    start: r.u64()?,
                    end: r.u64()?,
                };
                if range.start >= range.end {
                    return Err(WireError::invalid(
                        message,
                        "end",
                        format!(
                            "range must be non-empty, got [{}, {})",
                            range.start, range.end
                        ),
                    ));
                }
                if message == MessageType::Persist {
                    Message::Persist(range)
                } else {
                    Message::Persisted(range)
                }
            }
            MessageType::Seal | MessageType::Sealed => {
                r.exact_len(SEAL_LEN)?;
                let point = SealPoint {
                    epoch: r.u64()?,
                    tail: r.u64()?,
                };
                if message == MessageType::Seal {
                    Message::Seal(point)
                } else {
                    Message::Sealed(point)
                }
            }
        };
        debug_assert_eq!(r.pos, body.len(), "decoder consumed the whole body");
        Ok(msg)
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

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn encode_hello(h: &Hello, out: &mut Vec<u8>) {
    let name = h.writer.as_str().as_bytes();
    out.extend_from_slice(&h.log_uuid);
    put_u64(out, h.epoch);
    put_u64(out, h.geometry.ring_offset_bytes);
    put_u64(out, h.geometry.ring_capacity_bytes);
    put_u64(out, h.geometry.region_len_bytes);
    out.push(h.persistence.code());
    // WriterName bounds the name to MAX_NAME_LEN (64) bytes.
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(name);
}

/// The `Hello` body bytes, as covered by the handshake MACs.
pub(crate) fn hello_body(h: &Hello) -> Vec<u8> {
    let mut v = Vec::with_capacity(HELLO_FIXED_LEN + MAX_NAME_LEN);
    encode_hello(h, &mut v);
    v
}

fn encode_endpoint(e: &QpEndpoint, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.qpn.to_le_bytes());
    out.extend_from_slice(&e.lid.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&e.gid);
    out.extend_from_slice(&e.psn.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
}

/// The endpoint bytes, as covered by the `Connect` MAC.
pub(crate) fn endpoint_bytes(e: &QpEndpoint) -> Vec<u8> {
    let mut v = Vec::with_capacity(ENDPOINT_LEN);
    encode_endpoint(e, &mut v);
    v
}

fn encode_accept_signed(a: &Accept, out: &mut Vec<u8>) {
    encode_endpoint(&a.endpoint, out);
    put_u64(out, a.region.addr);
    out.extend_from_slice(&a.region.rkey.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    put_u64(out, a.region.len);
    put_u64(out, a.durable_tail);
    put_u64(out, a.epoch);
}

/// The `Accept` body bytes before its MAC, as covered by the MACs.
pub(crate) fn accept_signed_bytes(a: &Accept) -> Vec<u8> {
    let mut v = Vec::with_capacity(ACCEPT_SIGNED_LEN);
    encode_accept_signed(a, &mut v);
    debug_assert_eq!(v.len(), ACCEPT_SIGNED_LEN);
    v
}

fn decode_hello(r: &mut Reader<'_>) -> Result<Hello, WireError> {
    let m = r.message;
    r.min_len(HELLO_FIXED_LEN)?;
    let log_uuid: [u8; 16] = r.array()?;
    if log_uuid == [0; 16] {
        return Err(WireError::invalid(m, "log_uuid", "must not be all zero"));
    }
    let epoch = r.u64()?;
    let geometry = Geometry {
        ring_offset_bytes: r.u64()?,
        ring_capacity_bytes: r.u64()?,
        region_len_bytes: r.u64()?,
    };
    geometry
        .validate()
        .map_err(|(f, why)| WireError::invalid(m, f, why))?;
    let mode = r.u8()?;
    let persistence = PersistenceMode::from_code(mode).ok_or_else(|| {
        WireError::invalid(
            m,
            "persistence",
            format!("must be 1 (apm) or 2 (gpspm), got {mode}"),
        )
    })?;
    let name_len = usize::from(r.u8()?);
    r.reserved_u16("reserved")?;
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return Err(WireError::invalid(
            m,
            "name_len",
            format!("must be 1..={MAX_NAME_LEN}, got {name_len}"),
        ));
    }
    r.exact_len(HELLO_FIXED_LEN + name_len)?;
    let name = r.bytes(name_len)?;
    check_name(name).map_err(|why| WireError::invalid(m, "name", why))?;
    // check_name admits ASCII only, so this is valid UTF-8.
    let writer = WriterName(String::from_utf8_lossy(name).into_owned());
    Ok(Hello {
        writer,
        log_uuid,
        epoch,
        geometry,
        persistence,
    })
}

fn decode_endpoint(r: &mut Reader<'_>) -> Result<QpEndpoint, WireError> {
    let qpn = r.u32()?;
    let lid = r.u16()?;
    r.reserved_u16("endpoint.reserved")?;
    let gid = r.array()?;
    let psn = r.u32()?;
    r.reserved_u32("endpoint.reserved")?;
    let e = QpEndpoint { qpn, lid, gid, psn };
    e.validate().map_err(|(f, why)| {
        let field = if f == "qpn" {
            "endpoint.qpn"
        } else {
            "endpoint.psn"
        };
        WireError::invalid(r.message, field, why)
    })?;
    Ok(e)
}

fn decode_reject(r: &mut Reader<'_>) -> Result<Reject, WireError> {
    let m = r.message;
    r.min_len(REJECT_FIXED_LEN)?;
    let code = r.u16()?;
    let code = RejectCode::from_code(code)
        .ok_or_else(|| WireError::invalid(m, "code", "must be non-zero, got 0"))?;
    let len = usize::from(r.u16()?);
    if len > MAX_REJECT_MESSAGE_LEN {
        return Err(WireError::invalid(
            m,
            "message_len",
            format!("must be at most {MAX_REJECT_MESSAGE_LEN}, got {len}"),
        ));
    }
    r.exact_len(REJECT_FIXED_LEN + len)?;
    let text = std::str::from_utf8(r.bytes(len)?)
        .map_err(|e| WireError::invalid(m, "message", format!("not UTF-8: {e}")))?;
    // The reason ends up in the other side's logs: no control characters.
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(WireError::invalid(
            m,
            "message",
            format!("contains control character {:#x}", u32::from(c)),
        ));
    }
    Ok(Reject {
        code,
        message: text.to_owned(),
    })
}

/// A bounds-checked little-endian reader over one message body.
struct Reader<'a> {
    message: MessageType,
    body: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn min_len(&self, needed: usize) -> Result<(), WireError> {
        if self.body.len() < needed {
            return Err(WireError::Truncated {
                message: self.message,
                needed,
                got: self.body.len(),
            });
        }
        Ok(())
    }

    fn exact_len(&self, expected: usize) -> Result<(), WireError> {
        self.min_len(expected)?;
        if self.body.len() > expected {
            return Err(WireError::TrailingBytes {
                message: self.message,
                expected,
                got: self.body.len(),
            });
        }
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.body.len())
            .ok_or(WireError::Truncated {
                message: self.message,
                needed: self.pos.saturating_add(n),
                got: self.body.len(),
            })?;
        let s = &self.body[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn reserved_u16(&mut self, field: &'static str) -> Result<(), WireError> {
        let v = self.u16()?;
        if v != 0 {
            return Err(WireError::invalid(
                self.message,
                field,
                format!("must be zero, got {v:#x}"),
            ));
        }
        Ok(())
    }

    fn reserved_u32(&mut self, field: &'static str) -> Result<(), WireError> {
        let v = self.u32()?;
        if v != 0 {
            return Err(WireError::invalid(
                self.message,
                field,
                format!("must be zero, got {v:#x}"),
            ));
        }
        Ok(())
    }
}
