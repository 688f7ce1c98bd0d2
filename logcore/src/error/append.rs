//! Appending records.

use std::fmt;

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
