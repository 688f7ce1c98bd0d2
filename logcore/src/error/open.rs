//! Opening or creating a log.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::{LayoutError, RegionError, ScanError};

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
