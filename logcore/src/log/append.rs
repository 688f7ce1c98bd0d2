//! Appending records: reserve space, pad the ring end, write header and payload.

use std::sync::atomic::Ordering;

use super::{lock, AppendState, Appended, Log};
use crate::error::AppendError;
use crate::layout::{record_len, Cursor, Lsn, RecordHeader, RecordKind, HEADER_LEN, RECORD_ALIGN};

impl Log {
    /// Appends one data record; returns its LSN. Not yet durable: call
    /// [`Log::persist_to`].
    ///
    /// # Errors
    /// [`AppendError::Full`] (back-pressure), [`AppendError::RecordTooLarge`],
    /// [`AppendError::Sealed`]. Nothing is written on error.
    pub fn append(&self, payload: &[u8]) -> Result<Lsn, AppendError> {
        self.append_record(payload).map(|a| a.lsn)
    }

    /// Like [`Log::append`], also returning the record's ring position.
    ///
    /// # Errors
    /// As [`Log::append`].
    pub fn append_record(&self, payload: &[u8]) -> Result<Appended, AppendError> {
        self.check_len(payload)?;
        // The payload CRC needs no LSN: compute it outside the lock.
        let payload_crc = crc32c::crc32c_append(self.salt, payload);
        let mut st = lock(&self.append);
        self.append_locked(&mut st, &[(payload, payload_crc)], RecordKind::Data)
    }

    /// Appends several records atomically with respect to other appenders
    /// (consecutive LSNs, all or nothing on `Full`); returns the last LSN.
    ///
    /// # Errors
    /// As [`Log::append`], plus [`AppendError::EmptyBatch`].
    pub fn append_batch(&self, payloads: &[&[u8]]) -> Result<Appended, AppendError> {
        if payloads.is_empty() {
            return Err(AppendError::EmptyBatch);
        }
        for p in payloads {
            self.check_len(p)?;
        }
        let mut st = lock(&self.append);
        let mut first = None;
        // Space for the whole batch is checked before anything is written.
        self.reserve(&st, payloads.iter().map(|p| p.len() as u64))?;
        let mut last = None;
        for p in payloads {
            let crc = crc32c::crc32c_append(self.salt, p);
            let a = self.append_locked(&mut st, &[(p, crc)], RecordKind::Data)?;
            first.get_or_insert(a.pos);
            last = Some(a);
        }
        let last = last.unwrap_or_else(|| unreachable!("non-empty batch"));
        Ok(Appended {
            lsn: last.lsn,
            pos: first.unwrap_or(last.pos),
            end: last.end,
        })
    }

    fn check_len(&self, payload: &[u8]) -> Result<(), AppendError> {
        if payload.len() as u64 > self.max_payload {
            return Err(AppendError::RecordTooLarge {
                len_bytes: payload.len() as u64,
                max_bytes: self.max_payload,
            });
        }
        Ok(())
    }

    /// Checks that records of these payload lengths fit; returns the bytes
    /// they need including padding.
    fn reserve(
        &self,
        st: &AppendState,
        lens: impl Iterator<Item = u64>,
    ) -> Result<u64, AppendError> {
        if st.sealed {
            return Err(AppendError::Sealed { epoch: st.epoch });
        }
        let cap = self.sb.geometry.capacity;
        let mut pos = st.tail.pos;
        for len in lens {
            let total = record_len(len);
            let room = cap - pos % cap;
            if total > room {
                pos += room;
            }
            pos += total;
        }
        let needed = pos - st.tail.pos;
        let head = self.head_pos.load(Ordering::Acquire);
        let free = cap - (st.tail.pos - head);
        if needed > free {
            return Err(AppendError::Full {
                needed_bytes: needed,
                free_bytes: free,
                head,
                tail: st.tail.pos,
            });
        }
        Ok(needed)
    }

    pub(super) fn append_locked(
        &self,
        st: &mut AppendState,
        records: &[(&[u8], u32)],
        kind: RecordKind,
    ) -> Result<Appended, AppendError> {
        self.reserve(st, records.iter().map(|(p, _)| p.len() as u64))?;
        let cap = self.sb.geometry.capacity;
        let start = st.tail.pos;
        let mut lsn = st.tail.lsn;
        for (payload, payload_crc) in records {
            let total = record_len(payload.len() as u64);
            let room = cap - st.tail.pos % cap;
            if total > room {
                // Records never straddle the ring end: fill it with padding,
                // which carries the next LSN and does not consume it.
                let h = RecordHeader {
                    crc: 0,
                    kind: RecordKind::Padding.raw(),
                    incarnation: self.incarnation,
                    len: (room - HEADER_LEN as u64) as u32,
                    epoch: st.epoch,
                    lsn: st.tail.lsn.0,
                    pos: st.tail.pos,
                };
                self.write_record(h, &[], self.salt);
                st.tail.pos += room;
            }
            lsn = st.tail.lsn;
            let h = RecordHeader {
                crc: 0,
                kind: kind.raw(),
                incarnation: self.incarnation,
                len: payload.len() as u32,
                epoch: st.epoch,
                lsn: lsn.0,
                pos: st.tail.pos,
            };
            self.write_record(h, payload, *payload_crc);
            st.tail = Cursor {
                pos: st.tail.pos + total,
                lsn: lsn.next(),
            };
        }
        // Invariant: the appended tail never laps the head.
        debug_assert!(st.tail.pos - self.head_pos.load(Ordering::Acquire) <= cap);
        Ok(Appended {
            lsn,
            pos: start,
            end: st.tail.pos,
        })
    }

    fn write_record(&self, mut h: RecordHeader, payload: &[u8], payload_crc: u32) {
        let g = self.sb.geometry;
        // Precondition: aligned, and the whole record lies in this lap.
        debug_assert!(h.pos.is_multiple_of(RECORD_ALIGN));
        debug_assert!(g.ring_offset(h.pos) + h.total_len() <= g.capacity);
        h.crc = h.checksum(payload_crc);
        let off = g.region_offset(h.pos) as usize;
        self.region.write(off, &h.encode());
        self.region.write(off + HEADER_LEN, payload);
    }
}
