//! A mapped region: devdax device, fsdax file (`MAP_SYNC`), or plain file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use super::flush::{flush_method, FlushMethod};
use super::sys::{page_size, MAP_SHARED_VALIDATE, MAP_SYNC};
use crate::error::RegionError;
use tg_sys::syscall;

/// Default devdax alignment when sysfs does not say (2 MiB pages).
const DEVDAX_DEFAULT_ALIGN: u64 = 2 << 20;

/// What backs a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegionKind {
    /// Pick from the path: a character device is devdax; a regular file is
    /// fsdax if `MAP_SYNC` is accepted, else a plain file.
    Auto,
    /// A device-dax character device (`/dev/daxX.Y`): CPU stores reach pmem
    /// with cache flushes, no kernel involvement. The kind RDMA can register.
    DevDax,
    /// A file on a DAX filesystem mapped `MAP_SHARED_VALIDATE | MAP_SYNC`:
    /// cache flushes persist data and the file system's metadata is synced
    /// on fault.
    FsDax,
    /// A plain file in the page cache: `msync(MS_SYNC)` persists. Survives a
    /// process crash as soon as stored; a power loss only after msync.
    File,
}

impl RegionKind {
    /// Lower-case name (`auto`, `devdax`, `fsdax`, `file`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::DevDax => "devdax",
            Self::FsDax => "fsdax",
            Self::File => "file",
        }
    }

    /// Parses a name as printed by [`RegionKind::name`].
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "devdax" => Self::DevDax,
            "fsdax" => Self::FsDax,
            "file" => Self::File,
            _ => return None,
        })
    }
}

/// How [`Region::persist`] makes bytes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Persistence {
    /// Cache-line write-back plus `sfence` (devdax, fsdax).
    CacheFlush(FlushMethod),
    /// `msync(MS_SYNC)` of the covering pages (plain file).
    Msync,
}

/// Whether the mapping may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `PROT_READ`: for verify/dump/stat of a log another process owns.
    ReadOnly,
    /// `PROT_READ | PROT_WRITE`.
    ReadWrite,
}

/// A mapped persistent-memory region.
///
/// The mapping is created once and never moved or resized: [`Region::as_ptr`]
/// is valid and at a fixed address for the whole lifetime of the value, so
/// `fabric` can register `[as_ptr(), as_ptr() + len())` with RDMA.
#[derive(Debug)]
pub struct Region {
    path: PathBuf,
    kind: RegionKind,
    access: Access,
    persistence: Persistence,
    ptr: NonNull<u8>,
    len: usize,
    // Kept open for the mapping's lifetime (devdax requires an open fd for
    // nothing after mmap, but holding it makes `lsof` show the owner).
    _file: File,
}

// SAFETY: Region owns a shared mapping; the raw pointer is only a base
// address. All in-process mutation goes through atomics or through `Log`,
// which serialises writers; the mapping itself may be used from any thread.
unsafe impl Send for Region {}
// SAFETY: see `Send`: &Region only exposes reads, atomics and flushes, plus
// `write`, whose callers (Log) guarantee disjoint, serialised ranges.
unsafe impl Sync for Region {}

impl Region {
    /// Opens an existing region for reading and writing.
    ///
    /// # Errors
    /// [`RegionError`] naming the path and the failing step.
    pub fn open(path: impl AsRef<Path>, kind: RegionKind) -> Result<Self, RegionError> {
        Self::map(path.as_ref(), kind, Access::ReadWrite, None)
    }

    /// Opens an existing region with the given access.
    ///
    /// # Errors
    /// [`RegionError`] naming the path and the failing step.
    pub fn open_with(
        path: impl AsRef<Path>,
        kind: RegionKind,
        access: Access,
    ) -> Result<Self, RegionError> {
        Self::map(path.as_ref(), kind, access, None)
    }

    /// Creates (files) or opens (devdax) a region of at least `len_bytes`.
    /// A file is created or extended to `len_bytes`; a devdax device must
    /// already be that large.
    ///
    /// # Errors
    /// [`RegionError`] naming the path and the failing step.
    pub fn create(
        path: impl AsRef<Path>,
        kind: RegionKind,
        len_bytes: u64,
    ) -> Result<Self, RegionError> {
        Self::map(path.as_ref(), kind, Access::ReadWrite, Some(len_bytes))
    }

    fn map(
        path: &Path,
        kind: RegionKind,
        access: Access,
        create_len: Option<u64>,
    ) -> Result<Self, RegionError> {
        let io = |op: &'static str| {
            move |source: io::Error| RegionError::Io {
                path: path.to_owned(),
                op,
                source,
            }
        };
        let is_char = std::fs::metadata(path).map(|m| m.file_type().is_char_device());
        let is_char = match (is_char, create_len) {
            (Ok(c), _) => c,
            (Err(e), Some(_)) if e.kind() == io::ErrorKind::NotFound => false,
            (Err(e), _) => return Err(io("stat")(e)),
        };
        let writable = access == Access::ReadWrite;
        let mut opts = OpenOptions::new();
        opts.read(true)
            .write(writable)
            .custom_flags(libc::O_CLOEXEC);
        if create_len.is_some() && !is_char {
            opts.create(true);
        }
        let file = opts.open(path).map_err(io("open"))?;
        let meta = file.metadata().map_err(io("stat"))?;
        let ft = meta.file_type();
        let kind = match (kind, ft.is_char_device(), ft.is_file()) {
            (RegionKind::Auto | RegionKind::DevDax, true, _) => RegionKind::DevDax,
            (RegionKind::DevDax, false, _) => {
                return Err(RegionError::KindMismatch {
                    path: path.to_owned(),
                    asked: "devdax",
                    found: if ft.is_file() {
                        "a regular file"
                    } else {
                        "not a device"
                    },
                })
            }
            (RegionKind::Auto | RegionKind::FsDax | RegionKind::File, false, true) => kind,
            (RegionKind::FsDax | RegionKind::File, true, _) => {
                return Err(RegionError::KindMismatch {
                    path: path.to_owned(),
                    asked: kind.name(),
                    found: "a character device",
                })
            }
            _ => {
                return Err(RegionError::UnsupportedPath {
                    path: path.to_owned(),
                })
            }
        };

        let len = if kind == RegionKind::DevDax {
            let (size, align) = devdax_geometry(path, &meta)?;
            // mmap of devdax must be a multiple of the device alignment.
            let usable = size - size % align;
            if let Some(want) = create_len {
                if want > usable {
                    return Err(RegionError::TooSmall {
                        path: path.to_owned(),
                        len_bytes: usable,
                        needed_bytes: want,
                    });
                }
            }
            usable
        } else {
            if let Some(want) = create_len {
                if meta.len() < want {
                    file.set_len(want).map_err(io("ftruncate"))?;
                    // Make the size and the directory entry durable too:
                    // msync later covers data pages, not the file's existence.
                    file.sync_all().map_err(io("fsync"))?;
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        File::open(dir)
                            .and_then(|d| d.sync_all())
                            .map_err(io("fsync of the parent directory"))?;
                    }
                }
            }
            file.metadata().map_err(io("stat"))?.len()
        };
        let len = usize::try_from(len).map_err(|_| RegionError::TooSmall {
            path: path.to_owned(),
            len_bytes: len,
            needed_bytes: len,
        })?;
        if len == 0 {
            return Err(RegionError::TooSmall {
                path: path.to_owned(),
                len_bytes: 0,
                needed_bytes: 1,
            });
        }

        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        let fd = file.as_raw_fd();
        let mmap = |flags: libc::c_int| {
            // SAFETY: a fresh mapping at a kernel-chosen address (NULL hint)
            // of `len` bytes of an fd we hold open; it aliases no Rust object.
            let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
            tg_sys::mapped(p).map(|p| p.cast::<u8>())
        };
        let sync_flags = MAP_SHARED_VALIDATE | MAP_SYNC;
        let (kind, ptr) = match kind {
            RegionKind::DevDax => (kind, mmap(libc::MAP_SHARED).map_err(io("mmap"))?),
            RegionKind::FsDax => match mmap(sync_flags) {
                Ok(p) => (kind, p),
                Err(e) if is_sync_refusal(&e) => {
                    return Err(RegionError::MapSyncUnsupported {
                        path: path.to_owned(),
                        source: e,
                    })
                }
                Err(e) => return Err(io("mmap")(e)),
            },
            RegionKind::Auto => match mmap(sync_flags) {
                Ok(p) => (RegionKind::FsDax, p),
                Err(e) if is_sync_refusal(&e) => (
                    RegionKind::File,
                    mmap(libc::MAP_SHARED).map_err(io("mmap"))?,
                ),
                Err(e) => return Err(io("mmap")(e)),
            },
            _ => (
                RegionKind::File,
                mmap(libc::MAP_SHARED).map_err(io("mmap"))?,
            ),
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| RegionError::Io {
            path: path.to_owned(),
            op: "mmap",
            source: io::Error::other("mmap returned NULL"),
        })?;
        let persistence = if kind == RegionKind::File {
            Persistence::Msync
        } else {
            let m = flush_method();
            if m == FlushMethod::None {
                // Unmap before failing: Drop has not been armed yet.
                // SAFETY: our own fresh mapping of `len` bytes, not yet
                // owned by a Region and referenced by nothing.
                let _ = syscall!(unsafe { libc::munmap(ptr.as_ptr().cast(), len) });
                return Err(RegionError::NoCacheFlush {
                    path: path.to_owned(),
                });
            }
            Persistence::CacheFlush(m)
        };
        Ok(Self {
            path: path.to_owned(),
            kind,
            access,
            persistence,
            ptr,
            len,
            _file: file,
        })
    }

    /// Base address of the mapping; valid and fixed for the region's lifetime.
    #[must_use]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: an empty region cannot be mapped.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The resolved kind (never `Auto`).
    #[must_use]
    pub fn kind(&self) -> RegionKind {
        self.kind
    }

    /// How [`Region::persist`] makes bytes durable.
    #[must_use]
    pub fn persistence(&self) -> Persistence {
        self.persistence
    }

    /// The path the region was opened from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the mapping is writable.
    #[must_use]
    pub fn access(&self) -> Access {
        self.access
    }

    /// Makes `[offset, offset + len)` durable (see [`Persistence`]).
    ///
    /// # Errors
    /// The `msync` error for plain files.
    ///
    /// # Panics
    /// If the range is outside the region (a caller bug).
    pub fn persist(&self, offset: usize, len: usize) -> io::Result<()> {
        assert!(
            offset <= self.len && len <= self.len - offset,
            "persist range out of region"
        );
        if len == 0 {
            return Ok(());
        }
        match self.persistence {
            // SAFETY: the range is inside the mapping (asserted above).
            Persistence::CacheFlush(m) => m.flush(unsafe { self.as_ptr().add(offset) }, len),
            Persistence::Msync => {
                let page = page_size();
                let start = offset - offset % page;
                let end = offset + len;
                // SAFETY: page-aligned sub-range of our own live mapping.
                let addr = unsafe { self.as_ptr().add(start) };
                // SAFETY: `addr..addr + (end - start)` lies in the mapping
                // (the range was asserted in bounds); msync only flushes it.
                syscall!(unsafe { libc::msync(addr.cast(), end - start, libc::MS_SYNC) })?;
            }
        }
        Ok(())
    }

    /// Copies `bytes` into the mapping at `offset`.
    ///
    /// Callers (the log) guarantee that no other thread of this process
    /// writes or reads the same bytes concurrently.
    pub(crate) fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(
            self.access == Access::ReadWrite,
            "write to a read-only region"
        );
        assert!(
            offset <= self.len && bytes.len() <= self.len - offset,
            "write out of region"
        );
        // SAFETY: in bounds (asserted), writable (asserted), and `bytes`
        // cannot overlap the mapping's target range because the log never
        // hands out references into the ring while writing it.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.as_ptr().add(offset), bytes.len());
        }
    }

    /// Copies `buf.len()` bytes from the mapping at `offset` into `buf`.
    ///
    /// The only way to read the mapping's bytes: it may be written while it
    /// is read (the NIC writes a replica's ring through its registration,
    /// another process appends to the log, a closure updates the control
    /// block), so no `&[u8]` over it is ever handed out, which would let
    /// the compiler assume those bytes hold still for the borrow. The copy
    /// is a snapshot that may be torn by such a writer: callers validate it
    /// (record CRCs, superblock CRC, control-block check words) and use
    /// only `buf` afterwards, so what they checked is what they use. The
    /// control block's live words are read through [`crate::Control`]
    /// (atomics, as their writers use) rather than copied.
    ///
    /// # Panics
    /// If `[offset, offset + buf.len())` is not inside the region (a caller
    /// bug; [`crate::Source::read_at`] checks first and returns `false`).
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) {
        assert!(
            offset <= self.len && buf.len() <= self.len - offset,
            "read out of region"
        );
        // SAFETY: the source range is inside our live mapping (asserted) and
        // `buf` is a distinct, exclusively borrowed buffer, so the ranges do
        // not overlap. The copy goes through raw pointers: no reference to
        // the shared bytes exists, and bytes a concurrent writer (DMA,
        // another process) changes mid-copy only make the snapshot torn,
        // which every caller detects before use.
        unsafe {
            std::ptr::copy_nonoverlapping(self.as_ptr().add(offset), buf.as_mut_ptr(), buf.len());
        }
    }

    /// The 8-byte-aligned word at `offset` as an atomic, for the control
    /// block shared with other processes.
    pub(crate) fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
            "atomic out of region"
        );
        // SAFETY: aligned (mapping is page-aligned, offset % 8 == 0), in
        // bounds, lives as long as &self; all accesses to control-block words
        // in any process are atomic, so there is no mixed non-atomic access.
        unsafe { &*self.as_ptr().add(offset).cast::<AtomicU64>() }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // Nothing to do on failure: the mapping goes away at exit anyway.
        // SAFETY: the mapping is ours, unmapped once, here; `&mut self`
        // means no reference into it outlives this call.
        let _ = syscall!(unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) });
    }
}

fn is_sync_refusal(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL))
}

/// Size and alignment of a devdax device from /sys/dev/char/MAJ:MIN.
fn devdax_geometry(path: &Path, meta: &std::fs::Metadata) -> Result<(u64, u64), RegionError> {
    let rdev = meta.rdev();
    let dir = PathBuf::from(format!(
        "/sys/dev/char/{}:{}",
        libc::major(rdev),
        libc::minor(rdev)
    ));
    let read_u64 = |file: &str| -> Result<u64, RegionError> {
        let sysfs = dir.join(file);
        let err = |source| RegionError::DevDaxSysfs {
            path: path.to_owned(),
            sysfs: sysfs.clone(),
            source,
        };
        let text = std::fs::read_to_string(&sysfs).map_err(err)?;
        let t = text.trim();
        let v = t.strip_prefix("0x").map_or_else(
            || t.parse::<u64>().ok(),
            |h| u64::from_str_radix(h, 16).ok(),
        );
        v.ok_or_else(|| {
            err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a number: {t}"),
            ))
        })
    };
    let size = read_u64("size")?;
    // Newer kernels expose the mapping alignment per device; older ones only
    // support the region's 2 MiB default.
    let align = read_u64("align").unwrap_or(DEVDAX_DEFAULT_ALIGN).max(1);
    Ok((size, align))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_file_maps_writes_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r");
        let r = Region::create(&p, RegionKind::File, 8192).unwrap();
        assert_eq!(r.len(), 8192);
        assert_eq!(r.kind(), RegionKind::File);
        r.write(100, b"hello");
        r.persist(100, 5).unwrap();
        let mut b = [0u8; 5];
        r.read_at(100, &mut b);
        assert_eq!(&b, b"hello");
        drop(r);
        let data = std::fs::read(&p).unwrap();
        assert_eq!(&data[100..105], b"hello");
    }

    #[test]
    fn devdax_on_a_regular_file_is_a_kind_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r");
        std::fs::write(&p, [0u8; 4096]).unwrap();
        let e = Region::open(&p, RegionKind::DevDax).unwrap_err();
        assert!(matches!(e, RegionError::KindMismatch { .. }), "{e}");
    }

    #[test]
    fn missing_path_is_an_io_error_naming_it() {
        let e = Region::open("/nonexistent/tg", RegionKind::Auto).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/tg"), "{e}");
    }
}
