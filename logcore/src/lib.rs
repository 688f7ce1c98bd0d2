//! The persistent-memory update log of tailguard: regions, persistence,
//! on-media layout, append / persist / recover / replay.
//!
//! A host partition logs every transaction record here **before** it changes
//! its state; `fabric` mirrors the ring byte-for-byte to replicas; the
//! closure daemon and the replica read it with the same [`Scan`]ner.
//!
//! ```no_run
//! use logcore::{CreateOptions, Log};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let log = Log::create("/dev/shm/tg.log", 64 << 20, &CreateOptions::default())?;
//! let lsn = log.append(b"set x = 1")?;
//! let durable = log.persist_to(lsn)?; // ship [.., durable.pos) to replicas
//! log.advance_head(durable.pos)?;      // once replicas have it
//! # Ok(()) }
//! ```
//!
//! * [`Region`]: a devdax device, an fsdax file (`MAP_SYNC`), or a plain file;
//!   exposes its fixed mapping ([`Region::as_ptr`], [`Region::len`]) and
//!   copies out of it ([`Region::read_at`]), never lending `&[u8]`.
//! * [`Log`]: the writer. Many threads append; `persist_to` group-commits.
//! * [`Image`] / [`Scan`]: read any image (a copied file, a buffer) in place,
//!   or a mapped [`Region`] another writer may be changing by copying out of
//!   it ([`Source`]).
//! * [`Control`]: the control block, shared with other processes.
//! * [`Apply`] / [`Wal`]: replay and write-ahead commits.
//!
//! The byte layout is in `docs/log-format.md`.
#![warn(missing_docs)]
// All unsafe code (mmap, flush instructions, raw mapping access) is in pmem/.
#![deny(unsafe_code)]

mod error;
mod layout;
mod log;
#[allow(unsafe_code)]
mod pmem;
mod replay;
mod scan;

pub use error::{
    AppendError, CommitError, EpochError, HeadError, LayoutError, OpenError, PersistError,
    RecordFault, RegionError, ReplayError, ScanError, SealError,
};
pub use layout::{
    crc_salt, record_len, Control, ControlSnapshot, Cursor, Geometry, LogState, Lsn,
    MirrorProgress, Record, RecordHeader, RecordKind, RingPiece, Superblock, CONTROL_LEN,
    CONTROL_OFFSET, DEFAULT_RING_OFFSET, FORMAT_VERSION, HEADER_LEN, MAGIC, MIN_CAPACITY,
    RECORD_ALIGN, SUPERBLOCK_LEN,
};
pub use log::{Appended, CreateOptions, Log, Recovery};
pub use pmem::{flush_method, Access, FlushMethod, Persistence, Region, RegionKind};
pub use replay::{Apply, Wal};
pub use scan::{Continuity, Image, Scan, ScanConfig, ScanSummary, Source, Stop, StopReason};
