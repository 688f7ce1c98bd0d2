//! Reclaiming the ring: moving the head forward.

use std::sync::atomic::Ordering;

use super::{lock, Log};
use crate::error::{HeadError, PersistError};
use crate::layout::{Cursor, Lsn, RecordHeader, RecordKind, HEADER_LEN, RECORD_ALIGN};

impl Log {
    /// Reclaims the ring up to `pos` (a record boundary at or before the
    /// persisted tail, typically what every replica has made durable and
    /// applied). The new head is persisted before the space is reused.
    /// Returns the new head.
    ///
    /// # Errors
    /// [`HeadError`] variants; the head does not move on error.
    pub fn advance_head(&self, pos: u64) -> Result<Cursor, HeadError> {
        let mut head = lock(&self.head);
        if pos < head.pos {
            return Err(HeadError::Backwards {
                pos,
                head: head.pos,
            });
        }
        if pos == head.pos {
            return Ok(*head);
        }
        let persisted = self.persisted();
        if pos > persisted.pos {
            return Err(HeadError::BeyondPersisted {
                pos,
                persisted_tail: persisted.pos,
            });
        }
        let lsn = if pos == persisted.pos {
            persisted.lsn
        } else {
            if !pos.is_multiple_of(RECORD_ALIGN) {
                return Err(HeadError::NotRecordBoundary { pos });
            }
            // Bytes in [head, persisted) are immutable while we hold the head
            // lock (appenders never write there), so reading is race-free.
            let mut b = [0u8; HEADER_LEN];
            self.region
                .read_at(self.sb.geometry.region_offset(pos) as usize, &mut b);
            let h = RecordHeader::decode(&b);
            let lsn = Lsn(h.lsn);
            if h.pos != pos
                || RecordKind::from_raw(h.kind).is_none()
                || lsn < head.lsn
                || lsn > persisted.lsn
            {
                return Err(HeadError::NotRecordBoundary { pos });
            }
            lsn
        };
        let new = Cursor { pos, lsn };
        self.control().set_head(new).map_err(|source| {
            HeadError::Persist(PersistError::Io {
                offset: crate::layout::CONTROL_OFFSET as u64,
                len_bytes: 64,
                source,
            })
        })?;
        self.head_pos.store(pos, Ordering::Release);
        *head = new;
        Ok(new)
    }
}
