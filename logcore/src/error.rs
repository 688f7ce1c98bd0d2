//! Typed errors, one enum per subsystem. Each carries the context a person
//! needs (path, offset, LSN, expected/got) and its message says what to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::layout::Lsn;

/// Opening, creating or mapping a region failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegionError {
    /// A system call on the region's path failed.
    Io {
        /// The region path.
        path: PathBuf,
        /// What was being done ("open", "mmap", "ftruncate", ...).
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The path is neither a regular file nor a character device.
    UnsupportedPath {
        /// The region path.
        path: PathBuf,
    },
    /// The kind asked for does not match what the path is (e.g. `devdax` on
    /// a regular file).
    KindMismatch {
        /// The region path.
        path: PathBuf,
        /// The kind that was asked for.
        asked: &'static str,
        /// What the path actually is.
        found: &'static str,
    },
    /// `MAP_SYNC` was refused: the file is not on a DAX-mounted filesystem.
    MapSyncUnsupported {
        /// The region path.
        path: PathBuf,
        /// The refusal (`EOPNOTSUPP` or `EINVAL`).
        source: io::Error,
    },
    /// A devdax device's size or alignment could not be read from sysfs.
    DevDaxSysfs {
        /// The device path.
        path: PathBuf,
        /// The sysfs file read.
        sysfs: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The region is smaller than asked for (devdax devices have a fixed size).
    TooSmall {
        /// The region path.
        path: PathBuf,
        /// Its usable length in bytes.
        len_bytes: u64,
        /// The length needed.
        needed_bytes: u64,
    },
    /// This CPU has no cache-line flush instruction, so a pmem kind cannot
    /// give its guarantee.
    NoCacheFlush {
        /// The region path.
        path: PathBuf,
    },
    /// A write was attempted on a read-only mapping.
    ReadOnly {
        /// The region path.
        path: PathBuf,
    },
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, op, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            Self::UnsupportedPath { path } => write!(
                f,
                "{} is neither a regular file nor a character device: give a devdax device \
                 (/dev/daxX.Y), a file on a DAX-mounted filesystem, or a plain file",
                path.display()
            ),
            Self::KindMismatch { path, asked, found } => write!(
                f,
                "region kind {asked} asked for, but {} is {found}: use --kind auto or the matching kind",
                path.display()
            ),
            Self::MapSyncUnsupported { path, source } => write!(
                f,
                "mmap(MAP_SYNC) refused for {} ({source}): the filesystem is not mounted with -o dax \
                 on a pmem device; mount it with dax, use a devdax device, or use kind `file` \
                 (msync persistence, development only)",
                path.display()
            ),
            Self::DevDaxSysfs { path, sysfs, source } => write!(
                f,
                "cannot read the size/alignment of devdax device {} from {} ({source}): is it a \
                 device-dax namespace (ndctl create-namespace -m devdax)?",
                path.display(),
                sysfs.display()
            ),
            Self::TooSmall { path, len_bytes, needed_bytes } => write!(
                f,
                "region {} has {len_bytes} usable bytes but {needed_bytes} are needed: use a larger \
                 device/file or a smaller --size",
                path.display()
            ),
            Self::NoCacheFlush { path } => write!(
                f,
                "this CPU has no cache-line flush instruction, so {} cannot be persisted as pmem: \
                 use kind `file`",
                path.display()
            ),
            Self::ReadOnly { path } => write!(
                f,
                "region {} is mapped read-only: open it with Access::ReadWrite to write",
                path.display()
            ),
        }
    }
}

impl std::error::Error for RegionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. }
            | Self::MapSyncUnsupported { source, .. }
            | Self::DevDaxSysfs { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The bytes of a region do not hold a log this build can read (superblock
/// and geometry checks). Carries no path: it is raised on plain images too;
/// [`OpenError::Layout`] adds the path.
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

/// Why one record failed validation. At the tail this just ends the log (a
/// torn or never-written record); before the persisted tail it is corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordFault {
    /// The header is all zero: never written.
    Zeroed,
    /// Unknown record kind.
    BadKind {
        /// Kind value found.
        kind: u16,
    },
    /// The header names another position: stale data from an earlier lap of
    /// the ring (or a foreign log).
    PositionMismatch {
        /// Position expected.
        expected: u64,
        /// Position in the header.
        found: u64,
    },
    /// LSN continuity broken.
    LsnMismatch {
        /// LSN expected.
        expected: Lsn,
        /// LSN in the header.
        found: Lsn,
    },
    /// Length does not fit the ring (or padding does not end at the ring end).
    BadLength {
        /// Payload length in the header.
        len: u32,
        /// Bytes left until the ring end.
        room_bytes: u64,
    },
    /// The record's epoch is older than its predecessor's or newer than the
    /// log's current epoch.
    BadEpoch {
        /// Epoch in the header.
        found: u32,
        /// Lowest epoch allowed here.
        min: u32,
        /// Highest epoch allowed here.
        max: u32,
    },
    /// The record comes from an older incarnation than its predecessor (a
    /// record appended but never persisted before an earlier crash).
    StaleIncarnation {
        /// Incarnation in the header.
        found: u16,
        /// Incarnation of the predecessor.
        previous: u16,
    },
    /// The record's bytes lie outside the image. Defensive: `Scan::new`
    /// already refuses a ring that does not fit its image, so a scan reports
    /// this only if that check is ever weakened; it exists so the scanner
    /// never has to index unchecked.
    OutsideImage {
        /// Image offset that could not be read.
        offset: u64,
    },
    /// CRC32C mismatch: a torn or corrupted record.
    ChecksumMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed.
        computed: u32,
    },
}

impl fmt::Display for RecordFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zeroed => write!(f, "header is all zero (never written)"),
            Self::BadKind { kind } => write!(f, "unknown record kind {kind}"),
            Self::PositionMismatch { expected, found } => write!(
                f,
                "header names position {found}, expected {expected} (stale data from an earlier lap)"
            ),
            Self::LsnMismatch { expected, found } => {
                write!(f, "LSN {found} where {expected} was expected")
            }
            Self::BadLength { len, room_bytes } => {
                write!(f, "payload length {len} does not fit the {room_bytes} bytes to the ring end")
            }
            Self::BadEpoch { found, min, max } => {
                write!(f, "epoch {found} outside the allowed {min}..={max}")
            }
            Self::StaleIncarnation { found, previous } => write!(
                f,
                "incarnation {found} older than its predecessor's {previous} (never-persisted \
                 record from before an earlier crash)"
            ),
            Self::OutsideImage { offset } => {
                write!(f, "record bytes at image offset {offset} lie outside the image (truncated?)")
            }
            Self::ChecksumMismatch { stored, computed } => {
                write!(f, "CRC32C mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
        }
    }
}

/// Scanning found damage the log cannot have by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanError {
    /// A record before the persisted tail is invalid: those records were
    /// reported durable, so this is corruption, not a torn tail.
    CorruptBeforeTail {
        /// Logical position of the bad record.
        pos: u64,
        /// Region offset of the bad record.
        offset: u64,
        /// LSN expected there.
        lsn: Lsn,
        /// Persisted tail recorded in the control block.
        persisted_tail: u64,
        /// What is wrong with it.
        fault: RecordFault,
    },
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CorruptBeforeTail {
                pos,
                offset,
                lsn,
                persisted_tail,
                fault,
            } => write!(
                f,
                "corrupt record at position {pos} (region offset {offset}, expected LSN {lsn}) \
                 before the persisted tail {persisted_tail}: {fault}; records up to the persisted \
                 tail were acknowledged as durable, so restore this log from a replica"
            ),
        }
    }
}

impl std::error::Error for ScanError {}

/// Opening or creating a log failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The region could not be mapped.
    Region(RegionError),
    /// The region's bytes are not a readable log.
    Layout {
        /// The region path.
        path: PathBuf,
        /// What is wrong.
        source: LayoutError,
    },
    /// Recovery found corruption before the persisted tail.
    Corrupt {
        /// The region path.
        path: PathBuf,
        /// What is wrong.
        source: ScanError,
    },
    /// The control block says another live process has this log open.
    InUse {
        /// The region path.
        path: PathBuf,
        /// The pid in the control block.
        pid: u32,
    },
    /// `create` found an existing log and `overwrite` was not set.
    AlreadyFormatted {
        /// The region path.
        path: PathBuf,
    },
    /// Persisting the recovered control block failed.
    Persist {
        /// The region path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Region(e) => e.fmt(f),
            Self::Layout { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Corrupt { path, source } => write!(f, "{}: {source}", path.display()),
            Self::InUse { path, pid } => write!(
                f,
                "{} is in use by live process {pid}: stop it first (or, for reading, use \
                 tg-log verify/dump which do not take ownership)",
                path.display()
            ),
            Self::AlreadyFormatted { path } => write!(
                f,
                "{} already holds a tailguard log: refusing to overwrite it (pass --force to \
                 destroy it)",
                path.display()
            ),
            Self::Persist { path, source } => {
                write!(
                    f,
                    "persisting the control block of {} failed: {source}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Region(e) => Some(e),
            Self::Layout { source, .. } => Some(source),
            Self::Corrupt { source, .. } => Some(source),
            Self::Persist { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<RegionError> for OpenError {
    fn from(e: RegionError) -> Self {
        Self::Region(e)
    }
}

/// Appending failed; nothing was written.
#[derive(Debug)]
#[non_exhaustive]
pub enum AppendError {
    /// Back-pressure: the ring has no room until the head advances.
    Full {
        /// Bytes the append needs (record(s) plus any end-of-ring padding).
        needed_bytes: u64,
        /// Bytes free between tail and head.
        free_bytes: u64,
        /// Head position (reclaim point).
        head: u64,
        /// Appended tail position.
        tail: u64,
    },
    /// The payload can never fit: larger than half the ring.
    RecordTooLarge {
        /// Payload length.
        len_bytes: u64,
        /// Largest payload this log accepts.
        max_bytes: u64,
    },
    /// The log is sealed at this epoch: a takeover happened.
    Sealed {
        /// The sealed epoch.
        epoch: u32,
    },
    /// `append_batch` got no payloads.
    EmptyBatch,
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full {
                needed_bytes,
                free_bytes,
                head,
                tail,
            } => write!(
                f,
                "log full: {needed_bytes} bytes needed, {free_bytes} free (head {head}, tail \
                 {tail}); wait for the replication layer to advance the head, or use a larger ring"
            ),
            Self::RecordTooLarge {
                len_bytes,
                max_bytes,
            } => write!(
                f,
                "record of {len_bytes} bytes is larger than this log's maximum {max_bytes} (half \
                 the ring minus the header): split it or create a larger log"
            ),
            Self::Sealed { epoch } => write!(
                f,
                "log is sealed at epoch {epoch}: another node took over; start a new epoch \
                 (Log::begin_epoch) only after fencing"
            ),
            Self::EmptyBatch => write!(f, "append_batch needs at least one payload"),
        }
    }
}

impl std::error::Error for AppendError {}

/// Making records durable failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PersistError {
    /// The LSN was never appended.
    NotAppended {
        /// The LSN asked for.
        lsn: Lsn,
        /// The next LSN to be appended.
        next_lsn: Lsn,
    },
    /// `msync` failed (plain-file regions).
    Io {
        /// Region offset of the range.
        offset: u64,
        /// Length of the range.
        len_bytes: u64,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAppended { lsn, next_lsn } => write!(
                f,
                "persist_to({lsn}): that LSN has not been appended (next LSN is {next_lsn})"
            ),
            Self::Io {
                offset,
                len_bytes,
                source,
            } => write!(
                f,
                "msync of {len_bytes} bytes at region offset {offset} failed: {source}; the \
                 records are not durable, treat the log as failed"
            ),
        }
    }
}

impl std::error::Error for PersistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::NotAppended { .. } => None,
        }
    }
}

/// Advancing the head (reclaim point) failed; the head did not move.
#[derive(Debug)]
#[non_exhaustive]
pub enum HeadError {
    /// The new head is behind the current one.
    Backwards {
        /// Position asked for.
        pos: u64,
        /// Current head.
        head: u64,
    },
    /// The new head is past the locally persisted tail.
    BeyondPersisted {
        /// Position asked for.
        pos: u64,
        /// Persisted tail.
        persisted_tail: u64,
    },
    /// No record starts at that position.
    NotRecordBoundary {
        /// Position asked for.
        pos: u64,
    },
    /// Persisting the control block failed.
    Persist(PersistError),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backwards { pos, head } => {
                write!(f, "cannot move the head back from {head} to {pos}")
            }
            Self::BeyondPersisted {
                pos,
                persisted_tail,
            } => write!(
                f,
                "cannot reclaim up to {pos}: only {persisted_tail} is persisted; persist first"
            ),
            Self::NotRecordBoundary { pos } => write!(
                f,
                "position {pos} is not the start of a record: pass a position returned by \
                 append/persist_to"
            ),
            Self::Persist(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for HeadError {}

/// Replay failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError<E> {
    /// The checkpoint is before the head: those records were reclaimed.
    CheckpointReclaimed {
        /// Checkpoint LSN asked for.
        checkpoint: Lsn,
        /// Oldest LSN still in the log.
        head: Lsn,
    },
    /// The checkpoint is after the tail.
    CheckpointAhead {
        /// Checkpoint LSN asked for.
        checkpoint: Lsn,
        /// Next LSN to be appended.
        next_lsn: Lsn,
    },
    /// Scanning hit corruption.
    Scan(ScanError),
    /// The state machine refused a record.
    Apply {
        /// LSN of the record.
        lsn: Lsn,
        /// The state machine's error.
        source: E,
    },
}

impl<E: fmt::Display> fmt::Display for ReplayError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CheckpointReclaimed { checkpoint, head } => write!(
                f,
                "checkpoint LSN {checkpoint} was reclaimed (oldest LSN in the log is {head}): \
                 restore a newer checkpoint"
            ),
            Self::CheckpointAhead {
                checkpoint,
                next_lsn,
            } => write!(
                f,
                "checkpoint LSN {checkpoint} is past the log's end (next LSN {next_lsn}): the \
                 checkpoint belongs to another log or the log lost records"
            ),
            Self::Scan(e) => e.fmt(f),
            Self::Apply { lsn, source } => write!(f, "applying LSN {lsn} failed: {source}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ReplayError<E> {}

/// A write-ahead commit failed. If `Persist` is returned the record may or
/// may not survive a crash; the state was not mutated.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommitError<E> {
    /// Appending failed; nothing was logged, the state is unchanged.
    Append(AppendError),
    /// Persisting failed; the state is unchanged.
    Persist(PersistError),
    /// The record is durable but the state machine refused it.
    Apply {
        /// LSN of the record.
        lsn: Lsn,
        /// The state machine's error.
        source: E,
    },
}

impl<E: fmt::Display> fmt::Display for CommitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Append(e) => e.fmt(f),
            Self::Persist(e) => e.fmt(f),
            Self::Apply { lsn, source } => write!(
                f,
                "record {lsn} is durable but applying it failed: {source}; replay will apply it \
                 again, so the state machine must accept it"
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for CommitError<E> {}

/// Starting a new epoch failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum EpochError {
    /// Epochs only move forward (fencing depends on it).
    NotNewer {
        /// Current epoch.
        current: u32,
        /// Epoch asked for.
        asked: u32,
    },
    /// Persisting the control block failed.
    Persist(PersistError),
}

impl fmt::Display for EpochError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotNewer { current, asked } => write!(
                f,
                "epoch {asked} is not newer than the current epoch {current}: take the next epoch \
                 from the replica's admission (epochs never go back)"
            ),
            Self::Persist(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for EpochError {}
