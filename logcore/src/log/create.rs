//! Formatting a new log.

use std::path::Path;

use super::CreateOptions;
use super::Log;
use crate::error::OpenError;
use crate::layout::{Control, Cursor, Lsn, Superblock, MAGIC};
use crate::pmem::Region;

impl Log {
    /// Formats a new log at `path` (`size_bytes` for files; a devdax device
    /// uses its whole size) and opens it.
    ///
    /// # Errors
    /// [`OpenError::AlreadyFormatted`] if a log is there and
    /// `opts.overwrite` is false; region and layout errors otherwise.
    pub fn create(
        path: impl AsRef<Path>,
        size_bytes: u64,
        opts: &CreateOptions,
    ) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let region = Region::create(path, opts.kind, size_bytes)?;
        let layout = |source| OpenError::Layout {
            path: path.to_owned(),
            source,
        };
        let persist = |source| OpenError::Persist {
            path: path.to_owned(),
            source,
        };
        let mut magic = [0u8; 8];
        region.read_at(0, &mut magic);
        if magic == MAGIC && !opts.overwrite {
            return Err(OpenError::AlreadyFormatted {
                path: path.to_owned(),
            });
        }
        let sb = Superblock::for_region(
            region.len() as u64,
            opts.uuid.unwrap_or_else(new_uuid),
            opts.epoch,
            now_unix_ms(),
        )
        .map_err(layout)?;
        let sb = match opts.capacity {
            Some(c) => sb.with_capacity(c).map_err(layout)?,
            None => sb,
        };
        // Invalidate the old superblock first: a crash mid-create leaves a
        // region that is plainly "not a log", never a half-new one.
        region.write(0, &[0u8; 8]);
        region.persist(0, 8).map_err(persist)?;
        if opts.uuid.is_some() {
            let zero = vec![0u8; 1 << 20];
            let g = sb.geometry;
            let mut off = 0u64;
            while off < g.capacity {
                let n = (g.capacity - off).min(zero.len() as u64) as usize;
                region.write((g.ring_offset + off) as usize, &zero[..n]);
                off += n as u64;
            }
            region
                .persist(g.ring_offset as usize, g.capacity as usize)
                .map_err(persist)?;
        }
        let control = Control::new(&region).map_err(layout)?;
        control
            .format(
                Cursor {
                    pos: 0,
                    lsn: Lsn::FIRST,
                },
                opts.epoch,
            )
            .map_err(persist)?;
        region.write(0, &sb.encode());
        region.persist(0, sb.encode().len()).map_err(persist)?;
        Self::from_region(region)
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// 16 random bytes (RFC 4122 version 4 layout).
fn new_uuid() -> [u8; 16] {
    use std::io::Read;
    let mut u = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut u))
        .is_ok();
    if !ok {
        // No urandom: time and pid still make collisions unlikely on one host.
        let t = now_unix_ms() ^ u64::from(std::process::id()).rotate_left(32);
        u[..8].copy_from_slice(&t.to_le_bytes());
        u[8..].copy_from_slice(&crc32c::crc32c(&t.to_le_bytes()).to_le_bytes().repeat(2));
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}
