//! `Hello` (type 1), the writer's first message, and the types it carries:
//! the writer's name, the log geometry and the persistence mode.
//!
//! ```text
//! offset size field
//!      0   16 log_uuid       not all zero
//!     16    8 epoch
//!     24    8 ring_offset    bytes, a multiple of 64
//!     32    8 ring_capacity  bytes, a non-zero multiple of 64
//!     40    8 region_len     bytes, >= ring_offset + ring_capacity
//!     48    1 persistence    1 = apm, 2 = gpspm
//!     49    1 name_len       1..=64
//!     50    2 reserved       0
//!     52      name           name_len bytes
//! ```

use std::fmt;

use serde::Deserialize;

use super::super::codec::Body;
use super::super::error::WireError;
use crate::layout::{tiles, Field};

/// Longest writer name in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Ring offset and capacity must be multiples of this (records are padded to
/// 64-byte boundaries).
pub const GEOMETRY_ALIGN: u64 = 64;
/// Fixed part of a `Hello` body; the name follows.
pub const HELLO_FIXED_LEN: usize = 52;

const LOG_UUID: Field<16> = Field::at(0);
const EPOCH: Field<8> = Field::at(16);
const RING_OFFSET: Field<8> = Field::at(24);
const RING_CAPACITY: Field<8> = Field::at(32);
const REGION_LEN: Field<8> = Field::at(40);
const PERSISTENCE: Field<1> = Field::at(48);
const NAME_LEN: Field<1> = Field::at(49);
const RESERVED: Field<2> = Field::at(50);
/// The name starts right after the fixed part.
const NAME_OFFSET: usize = HELLO_FIXED_LEN;

const _: () = assert!(tiles(
    &[
        LOG_UUID.span(),
        EPOCH.span(),
        RING_OFFSET.span(),
        RING_CAPACITY.span(),
        REGION_LEN.span(),
        PERSISTENCE.span(),
        NAME_LEN.span(),
        RESERVED.span(),
    ],
    HELLO_FIXED_LEN
));
const _: () = assert!(HELLO_FIXED_LEN == 52 && NAME_OFFSET == RESERVED.end());
// name_len is one byte.
const _: () = assert!(MAX_NAME_LEN <= u8::MAX as usize);

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

impl Hello {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let name = self.writer.as_str().as_bytes();
        let mut b = [0u8; HELLO_FIXED_LEN];
        LOG_UUID.put(&mut b, self.log_uuid);
        EPOCH.put_u64(&mut b, self.epoch);
        RING_OFFSET.put_u64(&mut b, self.geometry.ring_offset_bytes);
        RING_CAPACITY.put_u64(&mut b, self.geometry.ring_capacity_bytes);
        REGION_LEN.put_u64(&mut b, self.geometry.region_len_bytes);
        PERSISTENCE.put(&mut b, [self.persistence.code()]);
        // WriterName bounds the name to MAX_NAME_LEN (64) bytes.
        NAME_LEN.put(&mut b, [u8::try_from(name.len()).unwrap_or(u8::MAX)]);
        // RESERVED stays zero.
        out.extend_from_slice(&b);
        out.extend_from_slice(name);
    }

    pub(super) fn decode(body: &Body<'_>) -> Result<Self, WireError> {
        body.min_len(HELLO_FIXED_LEN)?;
        let log_uuid = body.array(LOG_UUID)?;
        if log_uuid == [0; 16] {
            return Err(body.invalid("log_uuid", "must not be all zero"));
        }
        let epoch = body.u64(EPOCH)?;
        let geometry = Geometry {
            ring_offset_bytes: body.u64(RING_OFFSET)?,
            ring_capacity_bytes: body.u64(RING_CAPACITY)?,
            region_len_bytes: body.u64(REGION_LEN)?,
        };
        geometry
            .validate()
            .map_err(|(f, why)| body.invalid(f, why))?;
        let mode = body.u8(PERSISTENCE)?;
        let persistence = PersistenceMode::from_code(mode).ok_or_else(|| {
            body.invalid(
                "persistence",
                format!("must be 1 (apm) or 2 (gpspm), got {mode}"),
            )
        })?;
        let name_len = usize::from(body.u8(NAME_LEN)?);
        body.reserved_u16(RESERVED, "reserved")?;
        if name_len == 0 || name_len > MAX_NAME_LEN {
            return Err(body.invalid(
                "name_len",
                format!("must be 1..={MAX_NAME_LEN}, got {name_len}"),
            ));
        }
        body.exact_len(NAME_OFFSET + name_len)?;
        let name = body.bytes_at(NAME_OFFSET, name_len)?;
        check_name(name).map_err(|why| body.invalid("name", why))?;
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
}

/// The `Hello` body bytes, as covered by the handshake MACs.
pub(crate) fn hello_body(h: &Hello) -> Vec<u8> {
    let mut v = Vec::with_capacity(HELLO_FIXED_LEN + MAX_NAME_LEN);
    h.encode(&mut v);
    v
}
