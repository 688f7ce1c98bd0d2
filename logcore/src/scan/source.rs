//! What a scan reads: a byte image, or a mapped region read by copying.

use crate::pmem::Region;

/// Bytes a [`crate::Scan`] or [`crate::Image`] reads.
///
/// * `[u8]`: a byte image nobody changes while it is borrowed (a file read
///   into memory, a copy of a ring). Scans of it can hand out records that
///   borrow it.
/// * [`Region`]: a mapping another writer may change while it is read (the
///   NIC writing a replica's ring, a host appending to the log `tg-log`
///   inspects, a closure updating the control block). It is only copied
///   out of ([`Region::read_at`]): no `&[u8]` over it is ever formed, so the
///   compiler never assumes those bytes hold still.
///
/// Sealed: the scanner's bounds reasoning relies on these two.
pub trait Source: sealed::Sealed {
    /// Bytes in the source.
    fn len_bytes(&self) -> usize;

    /// Copies `buf.len()` bytes from `offset` into `buf`; `false`, with
    /// `buf` untouched, when the range is not inside the source.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> bool;
}

impl Source for [u8] {
    fn len_bytes(&self) -> usize {
        self.len()
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> bool {
        match self.get(offset..offset.saturating_add(buf.len())) {
            Some(b) => {
                buf.copy_from_slice(b);
                true
            }
            None => false,
        }
    }
}

impl Source for Region {
    fn len_bytes(&self) -> usize {
        self.len()
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> bool {
        if offset > self.len() || buf.len() > self.len() - offset {
            return false;
        }
        Region::read_at(self, offset, buf);
        true
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for [u8] {}
    impl Sealed for crate::pmem::Region {}
}
