//! Advancing the head (reclaim).

use std::fmt;

use super::PersistError;

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
