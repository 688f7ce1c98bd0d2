//! Logical positions and the ring they map onto.

/// A point in the log stream: a logical byte position and the LSN of the
/// record that starts (or will start) there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Logical byte position; monotonically increasing, never wraps.
    pub pos: u64,
    /// LSN of the record at `pos` (for a tail: the next LSN to be appended).
    pub lsn: super::Lsn,
}

/// Where the ring sits in the region and how large it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Region offset of the ring's first byte.
    pub ring_offset: u64,
    /// Ring capacity in bytes (multiple of 64).
    pub capacity: u64,
}

/// One contiguous piece of a logical range in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingPiece {
    /// Offset within the ring (add [`Geometry::ring_offset`] for the region).
    pub ring_offset: u64,
    /// Region offset of the piece.
    pub region_offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Geometry {
    /// Offset within the ring of a logical position: `pos % capacity`.
    #[must_use]
    pub fn ring_offset(&self, pos: u64) -> u64 {
        pos % self.capacity
    }

    /// Offset within the region of a logical position.
    #[must_use]
    pub fn region_offset(&self, pos: u64) -> u64 {
        self.ring_offset + pos % self.capacity
    }

    /// Splits the logical range `[from, to)` into at most two contiguous ring
    /// pieces (two when it wraps). Empty ranges give no pieces.
    ///
    /// # Panics
    /// If `to < from` or the range is longer than the ring.
    #[must_use]
    pub fn split(&self, from: u64, to: u64) -> ([Option<RingPiece>; 2], usize) {
        assert!(
            from <= to && to - from <= self.capacity,
            "range longer than the ring"
        );
        let len = to - from;
        if len == 0 {
            return ([None, None], 0);
        }
        let off = self.ring_offset(from);
        let first = len.min(self.capacity - off);
        let a = RingPiece {
            ring_offset: off,
            region_offset: self.ring_offset + off,
            len: first,
        };
        if first == len {
            return ([Some(a), None], 1);
        }
        let b = RingPiece {
            ring_offset: 0,
            region_offset: self.ring_offset,
            len: len - first,
        };
        ([Some(a), Some(b)], 2)
    }

    /// Iterates the (at most two) pieces of `[from, to)`.
    pub fn pieces(&self, from: u64, to: u64) -> impl Iterator<Item = RingPiece> {
        let (p, _) = self.split(from, to);
        p.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_wraps_into_two_pieces() {
        let g = Geometry {
            ring_offset: 4096,
            capacity: 1024,
        };
        let v: Vec<_> = g.pieces(1000, 1100).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].ring_offset, v[0].len, v[0].region_offset),
            (1000, 24, 5096)
        );
        assert_eq!(
            (v[1].ring_offset, v[1].len, v[1].region_offset),
            (0, 76, 4096)
        );
        let v: Vec<_> = g.pieces(2048, 3072).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].len, 1024);
        assert_eq!(g.pieces(5, 5).count(), 0);
    }
}
