//! A region's bytes that are not a readable log (superblock, geometry, control block).

use std::fmt;

/// The bytes of a region do not hold a log this build can read (superblock
/// and geometry checks). Carries no path: it is raised on plain images too;
/// [`OpenError::Layout`](crate::OpenError::Layout) adds the path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// The image is too small to hold a superblock, control block and ring.
    TooSmall {
        /// Image length in bytes.
        len_bytes: u64,
        /// Minimum length in bytes.
        min_bytes: u64,
    },
    /// The first 8 bytes are not the tailguard log magic: not a log, or
    /// never formatted.
    ForeignMagic {
        /// The bytes found.
        found: [u8; 8],
    },
    /// A format version this build does not read.
    UnsupportedVersion {
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// The superblock checksum does not match its bytes.
    SuperblockChecksum {
        /// CRC stored in the superblock.
        stored: u32,
        /// CRC computed over its bytes.
        computed: u32,
    },
    /// The superblock's geometry contradicts the image or the request.
    GeometryMismatch {
        /// The superblock field.
        field: &'static str,
        /// The value the image or caller implies.
        expected: u64,
        /// The value found.
        got: u64,
    },
    /// A geometry value breaks a format rule.
    BadGeometry {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The rule broken.
        rule: &'static str,
    },
    /// The control block's position/LSN pair slots are both invalid.
    ControlTorn {
        /// Which pair ("head", "persisted tail", "remote durable tail").
        pair: &'static str,
        /// Region offset of the pair.
        offset: u64,
    },
    /// The control block's head lies after its persisted tail, or more than a
    /// ring capacity before it.
    ControlInconsistent {
        /// Head position.
        head: u64,
        /// Persisted tail position.
        persisted_tail: u64,
        /// Ring capacity.
        capacity_bytes: u64,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall {
                len_bytes,
                min_bytes,
            } => write!(
                f,
                "image of {len_bytes} bytes is too small for a log (minimum {min_bytes}): use a \
                 larger region"
            ),
            Self::ForeignMagic { found } => write!(
                f,
                "no tailguard log here (magic {found:02x?}): wrong path, or the region was never \
                 formatted (tg-log create)"
            ),
            Self::UnsupportedVersion { found, supported } => write!(
                f,
                "log format version {found} is not supported (this build reads {supported}): use \
                 the tg-log that wrote it"
            ),
            Self::SuperblockChecksum { stored, computed } => write!(
                f,
                "superblock checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 the superblock is corrupt; restore the region from a replica"
            ),
            Self::GeometryMismatch {
                field,
                expected,
                got,
            } => write!(
                f,
                "geometry mismatch in superblock field {field}: expected {expected}, found {got}; \
                 the region was resized or belongs to another log: open it with its own geometry \
                 or recreate it"
            ),
            Self::BadGeometry { field, value, rule } => {
                write!(f, "invalid geometry: {field} = {value} ({rule})")
            }
            Self::ControlTorn { pair, offset } => write!(
                f,
                "control block {pair} at offset {offset} has no valid slot: the control block is \
                 corrupt; restore the region from a replica"
            ),
            Self::ControlInconsistent {
                head,
                persisted_tail,
                capacity_bytes,
            } => write!(
                f,
                "control block inconsistent: head {head} vs persisted tail {persisted_tail} \
                 (capacity {capacity_bytes}); restore the region from a replica"
            ),
        }
    }
}

impl std::error::Error for LayoutError {}
