//! Named fields of the on-media structures: each is a byte offset with its
//! width in the type, so encode, decode and the compile-time layout checks
//! all read the same constant (`docs/log-format.md` lists the same offsets).

use std::ops::Range;

/// An `N`-byte little-endian field at byte offset `off` of a structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<const N: usize> {
    /// Byte offset from the start of the structure.
    pub(crate) off: usize,
}

impl<const N: usize> Field<N> {
    /// The field at `off`.
    pub(crate) const fn at(off: usize) -> Self {
        Self { off }
    }

    /// Offset just past the field.
    pub(crate) const fn end(self) -> usize {
        self.off + N
    }

    /// `(offset, length)`, for the layout checks.
    pub(crate) const fn span(self) -> Span {
        Span {
            off: self.off,
            len: N,
        }
    }

    /// The field's bytes as a range of the structure.
    pub(crate) const fn range(self) -> Range<usize> {
        self.off..self.off + N
    }

    /// Copies the field out of `b`.
    ///
    /// # Panics
    /// If `b` is shorter than the field's end (callers pass whole structures).
    pub(crate) fn get(self, b: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[self.range()]);
        a
    }

    /// Stores `v` into `b`.
    ///
    /// # Panics
    /// If `b` is shorter than the field's end (callers pass whole structures).
    pub(crate) fn put(self, b: &mut [u8], v: [u8; N]) {
        b[self.range()].copy_from_slice(&v);
    }
}

/// A field's offset and length, width erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) off: usize,
    pub(crate) len: usize,
}

/// True when `spans`, in order, start at 0, follow each other without a gap
/// or an overlap, and end exactly at `total`: a structure fully described.
pub(crate) const fn tiles(spans: &[Span], total: usize) -> bool {
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        if spans[i].off != at || spans[i].len == 0 {
            return false;
        }
        at += spans[i].len;
        i += 1;
    }
    at == total
}

/// True when `spans`, in order, do not overlap and all end by `total`
/// (gaps allowed: reserved bytes).
pub(crate) const fn disjoint(spans: &[Span], total: usize) -> bool {
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        if spans[i].off < at || spans[i].len == 0 {
            return false;
        }
        at = spans[i].off + spans[i].len;
        i += 1;
    }
    at <= total
}

/// True when the span lies within one `line`-byte cache line.
pub(crate) const fn within_line(s: Span, line: usize) -> bool {
    s.off / line == (s.off + s.len - 1) / line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_and_disjoint_catch_gaps_and_overlaps() {
        let a = Field::<4>::at(0).span();
        let b = Field::<4>::at(4).span();
        let c = Field::<4>::at(2).span();
        assert!(tiles(&[a, b], 8));
        assert!(!tiles(&[a, b], 12));
        assert!(!tiles(&[a, c], 6));
        assert!(disjoint(&[a, Field::<4>::at(8).span()], 12));
        assert!(!disjoint(&[a, c], 12));
        assert!(within_line(Field::<8>::at(56).span(), 64));
        assert!(!within_line(Field::<8>::at(60).span(), 64));
    }
}
