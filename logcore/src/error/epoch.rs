//! Starting a new epoch, and sealing one.

use std::fmt;

use super::{AppendError, PersistError};

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

/// Sealing failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SealError {
    /// The seal record could not be appended.
    Append(AppendError),
    /// It could not be persisted.
    Persist(PersistError),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Append(e) => write!(f, "sealing: {e}"),
            Self::Persist(e) => write!(f, "sealing: {e}"),
        }
    }
}

impl std::error::Error for SealError {}

impl From<AppendError> for SealError {
    fn from(e: AppendError) -> Self {
        Self::Append(e)
    }
}

impl From<PersistError> for SealError {
    fn from(e: PersistError) -> Self {
        Self::Persist(e)
    }
}
