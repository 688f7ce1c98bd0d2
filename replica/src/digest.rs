//! The replica's built-in state machine: a running digest of every applied
//! record. Applications plug in their own [`logcore::Apply`]; this one is
//! enough to prove that a replica applied exactly the primary's records.

use std::convert::Infallible;

use logcore::{Apply, Lsn};

/// FNV-1a (64-bit) over each record's LSN, length and payload, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    /// The running digest.
    pub value: u64,
    /// Records applied.
    pub records: u64,
    /// Payload bytes applied.
    pub bytes: u64,
    /// LSN of the last applied record (0: none).
    pub last_lsn: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            value: 0xcbf2_9ce4_8422_2325,
            records: 0,
            bytes: 0,
            last_lsn: 0,
        }
    }
}

impl Digest {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.value ^= u64::from(b);
            self.value = self.value.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Apply for Digest {
    type Error = Infallible;

    fn apply(&mut self, lsn: Lsn, payload: &[u8]) -> Result<(), Infallible> {
        self.feed(&lsn.0.to_le_bytes());
        self.feed(&(payload.len() as u64).to_le_bytes());
        self.feed(payload);
        self.records += 1;
        self.bytes += payload.len() as u64;
        self.last_lsn = lsn.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_content_change_the_digest() {
        let mut a = Digest::default();
        a.apply(Lsn(1), b"x").unwrap();
        a.apply(Lsn(2), b"y").unwrap();
        let mut b = Digest::default();
        b.apply(Lsn(1), b"y").unwrap();
        b.apply(Lsn(2), b"x").unwrap();
        assert_ne!(a.value, b.value);
        assert_eq!((a.records, a.bytes, a.last_lsn), (2, 2, 2));
    }
}
