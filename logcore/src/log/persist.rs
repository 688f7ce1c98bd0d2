//! Making appended records durable (group commit), then the persisted tail.

use std::io;
use std::sync::atomic::Ordering;

use super::{lock, Log};
use crate::error::PersistError;
use crate::layout::{Cursor, Lsn};

impl Log {
    /// Makes every record up to and including `lsn` durable (and every other
    /// record appended so far: group commit), then the persisted tail in the
    /// control block. Returns the persisted tail: its `pos` is where the
    /// replication layer may ship up to.
    ///
    /// # Errors
    /// [`PersistError::NotAppended`] for a future LSN; [`PersistError::Io`]
    /// when msync fails.
    pub fn persist_to(&self, lsn: Lsn) -> Result<Cursor, PersistError> {
        if lsn.0 < self.persisted_lsn.load(Ordering::Acquire) {
            return Ok(self.persisted());
        }
        let _g = lock(&self.persist);
        if lsn.0 < self.persisted_lsn.load(Ordering::Acquire) {
            return Ok(self.persisted());
        }
        let tail = self.tail();
        if lsn >= tail.lsn {
            return Err(PersistError::NotAppended {
                lsn,
                next_lsn: tail.lsn,
            });
        }
        self.persist_range_to(tail)?;
        Ok(tail)
    }

    /// Persists everything appended so far.
    ///
    /// # Errors
    /// [`PersistError::Io`] when msync fails.
    pub fn persist_all(&self) -> Result<Cursor, PersistError> {
        let _g = lock(&self.persist);
        let tail = self.tail();
        self.persist_range_to(tail)?;
        Ok(tail)
    }

    /// Caller holds the persist lock.
    fn persist_range_to(&self, tail: Cursor) -> Result<(), PersistError> {
        let from = self.persisted().pos;
        if tail.pos == from {
            return Ok(());
        }
        let io = |offset: u64, len: u64| {
            move |source: io::Error| PersistError::Io {
                offset,
                len_bytes: len,
                source,
            }
        };
        for p in self.sb.geometry.pieces(from, tail.pos) {
            self.region
                .persist(p.region_offset as usize, p.len as usize)
                .map_err(io(p.region_offset, p.len))?;
        }
        // Data first, then the tail that covers it (write-ahead on media).
        self.control()
            .set_persisted_tail(tail)
            .map_err(io(crate::layout::CONTROL_OFFSET as u64, 64))?;
        *lock(&self.persisted) = tail;
        self.persisted_lsn.store(tail.lsn.0, Ordering::Release);
        Ok(())
    }
}
