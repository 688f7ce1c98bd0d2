//! A whole-region image: its metadata decoded, ready to scan.

use super::{Scan, ScanConfig, ScanSummary, Source};
use crate::error::{LayoutError, RecordFault, ScanError};
use crate::layout::{Control, ControlSnapshot, Cursor, Superblock, SUPERBLOCK_LEN};
use crate::pmem::Region;

/// A whole-region image: superblock and control block decoded, ready to
/// scan. `Image<'a>` borrows a byte image ([`Image::parse`]);
/// `Image<'a, Region>` reads a mapped region another writer may be
/// changing ([`Image::read`]).
#[derive(Debug, Clone)]
pub struct Image<'a, S: ?Sized + Source = [u8]> {
    src: &'a S,
    superblock: Superblock,
    control: ControlSnapshot,
}

impl<'a> Image<'a> {
    /// Decodes the metadata of a whole-region byte image.
    ///
    /// # Errors
    /// [`LayoutError`] for a foreign, corrupt or mis-sized image.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LayoutError> {
        let superblock = Superblock::decode(bytes, bytes.len() as u64)?;
        let control = ControlSnapshot::decode(bytes)?;
        Self::checked(bytes, superblock, control)
    }
}

impl<'a> Image<'a, Region> {
    /// Reads the metadata of a mapped region, which another process or the
    /// NIC may be writing: the superblock is copied out, the control block
    /// read with the atomics its writers use. Scans of it copy each record
    /// out before checking it ([`Scan::next_record`]).
    ///
    /// # Errors
    /// [`LayoutError`] for a foreign, corrupt or mis-sized region.
    pub fn read(region: &'a Region) -> Result<Self, LayoutError> {
        let mut sb = [0u8; SUPERBLOCK_LEN];
        let n = region.len().min(SUPERBLOCK_LEN);
        region.read_at(0, &mut sb[..n]);
        let superblock = Superblock::decode(&sb[..n], region.len() as u64)?;
        let control = Control::new(region)?.snapshot()?;
        Self::checked(region, superblock, control)
    }
}

impl<'a, S: ?Sized + Source> Image<'a, S> {
    /// The control block must describe at most one ring of records, head
    /// first.
    fn checked(
        src: &'a S,
        superblock: Superblock,
        control: ControlSnapshot,
    ) -> Result<Self, LayoutError> {
        let cap = superblock.geometry.capacity;
        if control.head.pos > control.persisted.pos
            || control.persisted.pos - control.head.pos > cap
            || control.head.lsn > control.persisted.lsn
        {
            return Err(LayoutError::ControlInconsistent {
                head: control.head.pos,
                persisted_tail: control.persisted.pos,
                capacity_bytes: cap,
            });
        }
        Ok(Self {
            src,
            superblock,
            control,
        })
    }

    /// The superblock.
    #[must_use]
    pub fn superblock(&self) -> &Superblock {
        &self.superblock
    }

    /// The control block as stored.
    #[must_use]
    pub fn control(&self) -> &ControlSnapshot {
        &self.control
    }

    /// Scan from the head.
    ///
    /// # Errors
    /// [`LayoutError`] if the geometry does not fit the image.
    pub fn scan(&self) -> Result<Scan<'a, S>, LayoutError> {
        Scan::over(
            self.src,
            ScanConfig::for_image(&self.superblock, &self.control),
        )
    }

    /// Scan from `start` instead of the head: a record boundary between
    /// the head and the persisted tail (the takeover scans from the
    /// recorded persisted tail).
    ///
    /// # Errors
    /// [`LayoutError`] if the geometry does not fit the image.
    pub fn scan_from(&self, start: Cursor) -> Result<Scan<'a, S>, LayoutError> {
        debug_assert!(
            self.control.head.pos <= start.pos && start.pos <= self.control.persisted.pos,
            "scan start {start:?} outside [head, persisted tail]"
        );
        let mut cfg = ScanConfig::for_image(&self.superblock, &self.control);
        cfg.start = start;
        Scan::over(self.src, cfg)
    }

    /// Scans everything and checks that every acknowledged record is intact.
    ///
    /// # Errors
    /// [`ScanError`] on corruption before the persisted tail.
    pub fn verify(&self) -> Result<ScanSummary, ScanError> {
        match self.scan() {
            Ok(s) => s.finish(),
            // Unreachable after parse() (it checked the same things), but a
            // scanner must not panic: report it as corruption at the head.
            Err(_) => Err(ScanError::CorruptBeforeTail {
                pos: self.control.head.pos,
                offset: self
                    .superblock
                    .geometry
                    .region_offset(self.control.head.pos),
                lsn: self.control.head.lsn,
                persisted_tail: self.control.persisted.pos,
                fault: RecordFault::OutsideImage {
                    offset: self.superblock.geometry.ring_offset,
                },
            }),
        }
    }
}
