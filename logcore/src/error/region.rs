//! Opening, creating or mapping a region.

use std::fmt;
use std::io;
use std::path::PathBuf;

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
