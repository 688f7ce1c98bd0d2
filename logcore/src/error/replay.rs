//! Replay and write-ahead commits.

use std::fmt;

use super::{AppendError, PersistError, ScanError};
use crate::layout::Lsn;

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
