//! Making records durable.

use std::fmt;
use std::io;

use crate::layout::Lsn;

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
