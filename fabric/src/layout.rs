//! Named byte offsets for the hand-encoded formats (the control-channel
//! messages in [`crate::wire`], the `gpspm` SEND payload in
//! [`crate::gpspm`]).
//!
//! Each format declares its fields once, as [`Field`] constants with the
//! offsets of its `docs/` page; its encoder writes and its decoder reads
//! through those same constants, and a compile-time [`tiles`] assertion
//! proves the fields follow each other with no gap or overlap and end at the
//! documented length. So an offset cannot drift between encode, decode and
//! the documentation without the build failing.

/// A fixed-size field: `N` bytes at `offset` from the start of its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<const N: usize> {
    /// Offset of the first byte.
    pub(crate) offset: usize,
}

impl<const N: usize> Field<N> {
    /// The field of `N` bytes starting at `offset`.
    pub(crate) const fn at(offset: usize) -> Self {
        Field { offset }
    }

    /// One past the field's last byte.
    pub(crate) const fn end(self) -> usize {
        self.offset + N
    }

    /// `(offset, size)`, for [`tiles`].
    pub(crate) const fn span(self) -> (usize, usize) {
        (self.offset, N)
    }

    /// The field's bytes in `bytes`, or `None` if `bytes` is too short.
    pub(crate) fn get(self, bytes: &[u8]) -> Option<[u8; N]> {
        let s = bytes.get(self.offset..self.end())?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Some(a)
    }

    /// Writes the field into `buf`, a buffer of its layout's length.
    ///
    /// # Panics
    /// If `buf` is shorter than the field's end: encoders write into arrays
    /// of their layout's length, which [`tiles`] proves the field fits, so a
    /// panic here is a bug in a layout table, not a property of any input.
    pub(crate) fn put(self, buf: &mut [u8], bytes: [u8; N]) {
        buf[self.offset..self.end()].copy_from_slice(&bytes);
    }
}

impl Field<2> {
    /// Writes a little-endian `u16`.
    pub(crate) fn put_u16(self, buf: &mut [u8], v: u16) {
        self.put(buf, v.to_le_bytes());
    }
}

impl Field<4> {
    /// Writes a little-endian `u32`.
    pub(crate) fn put_u32(self, buf: &mut [u8], v: u32) {
        self.put(buf, v.to_le_bytes());
    }
}

impl Field<8> {
    /// Writes a little-endian `u64`.
    pub(crate) fn put_u64(self, buf: &mut [u8], v: u64) {
        self.put(buf, v.to_le_bytes());
    }
}

/// Whether the `(offset, size)` spans, in order, start at 0, follow each
/// other with no gap or overlap, and end exactly at `len`. Used in
/// `const _: () = assert!(tiles(...))` next to every layout table.
pub(crate) const fn tiles(spans: &[(usize, usize)], len: usize) -> bool {
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        if spans[i].0 != at {
            return false;
        }
        at += spans[i].1;
        i += 1;
    }
    at == len
}

#[cfg(test)]
mod tests {
    use super::{tiles, Field};

    #[test]
    fn tiling_rejects_gaps_overlaps_and_short_layouts() {
        assert!(tiles(&[(0, 4), (4, 2), (6, 2)], 8));
        assert!(!tiles(&[(0, 4), (5, 2)], 7), "gap");
        assert!(!tiles(&[(0, 4), (3, 2)], 5), "overlap");
        assert!(!tiles(&[(0, 4), (4, 2)], 8), "ends early");
        assert!(!tiles(&[(1, 4)], 5), "does not start at 0");
        assert!(tiles(&[], 0));
    }

    #[test]
    fn fields_read_what_they_wrote_and_refuse_short_input() {
        const F: Field<4> = Field::at(2);
        let mut b = [0u8; 6];
        F.put_u32(&mut b, 0x0403_0201);
        assert_eq!(b, [0, 0, 1, 2, 3, 4]);
        assert_eq!(F.get(&b), Some([1, 2, 3, 4]));
        assert_eq!(F.get(&b[..5]), None);
        assert_eq!((F.span(), F.end()), ((2, 4), 6));
    }
}
