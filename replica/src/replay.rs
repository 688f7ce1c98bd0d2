//! Replay: scan the mirrored ring from the last applied position, apply
//! every valid record to the state copy, and record the progress in the
//! replica's own control block.
//!
//! The replica applies records as it validates them, so its durable tail
//! (what it reports to writers and what promotion keeps) is its applied
//! tail: the end of the last record that scanned valid. A writer may have
//! placed more bytes than that; it re-ships them after a reconnect, which is
//! harmless (the bytes are the same).
//!
//! The bytes are read through a mapping of the replica's own, while the
//! device writes through the registered one. Records behind the applied
//! position are never overwritten by a writer (it reclaims only behind
//! what this replica reports), and bytes past it are read, checked by CRC,
//! and only then applied; a record being written at that moment fails its
//! CRC and ends the scan until the next round.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use logcore::{
    crc_salt, Control, Cursor, Geometry, Image, Lsn, MirrorProgress, RecordKind, Region,
    RegionKind, Scan, ScanConfig,
};

use crate::digest::Digest;

/// What the replica knows of its mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The log UUID (None until the first writer formats the region).
    pub uuid: Option<[u8; 16]>,
    /// Ring geometry.
    pub geometry: Option<Geometry>,
    /// End of the last applied (= durable) record.
    pub cursor: Cursor,
    /// Oldest position kept intact: the image's head (see [`advance_head`]).
    pub head: Cursor,
    /// The state copy.
    pub digest: Digest,
    /// Epoch of the last seal record seen, if any.
    pub sealed_epoch: Option<u32>,
    /// Highest epoch among applied records.
    pub max_epoch: u32,
    /// Highest writer incarnation among applied records.
    pub max_incarnation: u64,
    /// Bound on record epochs the scan accepts (the admitted epoch).
    pub admitted_epoch: u32,
}

impl Progress {
    /// Before any writer.
    pub fn fresh(admitted_epoch: u32) -> Self {
        Progress {
            uuid: None,
            geometry: None,
            cursor: Cursor {
                pos: 0,
                lsn: Lsn::FIRST,
            },
            head: Cursor {
                pos: 0,
                lsn: Lsn::FIRST,
            },
            digest: Digest::default(),
            sealed_epoch: None,
            max_epoch: 0,
            max_incarnation: 0,
            admitted_epoch,
        }
    }

    /// From a formatted replica image: resumes after its recorded durable
    /// tail (the state copy restarts there: the built-in digest is not
    /// persistent) and keeps its recorded head.
    pub fn from_image(img: &Image<'_>, admitted_epoch: u32) -> Self {
        let c = img.control();
        Progress {
            uuid: Some(img.superblock().uuid),
            geometry: Some(img.superblock().geometry),
            cursor: c.persisted,
            head: c.head,
            digest: Digest::default(),
            sealed_epoch: None,
            max_epoch: c.epoch,
            max_incarnation: c.incarnation,
            admitted_epoch,
        }
    }
}

/// Record boundaries the replica may move its head to, oldest first: one
/// every [`MARK_EVERY`] of the ring (64 of them span two rings). Bounded:
/// when full the oldest is dropped.
const MAX_MARKS: usize = 64;
/// Spacing of marks, as a fraction of the ring capacity.
const MARK_EVERY: u64 = 32;

/// Moves `p.head` so the image keeps between a quarter and a half of a ring
/// of history behind the cursor: enough for `tg-log dump` and for
/// comparing images, while leaving writers (who reclaim only up to this
/// head) at least half the ring beyond what this replica has applied.
/// `marks` are record boundaries seen in order.
pub fn advance_head(p: &mut Progress, marks: &mut std::collections::VecDeque<Cursor>) {
    let Some(g) = p.geometry else { return };
    if p.cursor.pos - p.head.pos <= g.capacity / 2 {
        return;
    }
    let want = p.cursor.pos.saturating_sub(g.capacity / 4);
    let mut head = p.cursor;
    while let Some(m) = marks.front().copied() {
        if m.pos >= want {
            head = m;
            break;
        }
        marks.pop_front();
    }
    debug_assert!(head.pos >= p.head.pos && head.pos <= p.cursor.pos);
    p.head = head;
}

/// Progress shared between the replay thread and the sessions.
#[derive(Debug, Default)]
pub struct Shared {
    /// The progress.
    pub progress: Mutex<Option<Progress>>,
    /// Signalled whenever the cursor moves.
    pub moved: Condvar,
}

impl Shared {
    /// A copy of the progress.
    pub fn get(&self) -> Option<Progress> {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One scan round over `bytes` (a whole replica region): applies what is
/// valid past `p.cursor`; returns how many records were applied.
pub fn scan_round(
    bytes: &[u8],
    p: &mut Progress,
    marks: &mut std::collections::VecDeque<Cursor>,
) -> usize {
    let (Some(uuid), Some(geometry)) = (p.uuid, p.geometry) else {
        return 0;
    };
    let cfg = ScanConfig {
        geometry,
        salt: crc_salt(&uuid),
        start: p.cursor,
        // Nothing past our own cursor was ever acknowledged to us: a bad
        // record there is the end of what has arrived, not corruption.
        persisted_tail: p.cursor.pos,
        max_epoch: p.admitted_epoch.max(p.max_epoch),
        incarnation: None,
    };
    let Ok(mut scan) = Scan::new(bytes, cfg) else {
        return 0;
    };
    let mut n = 0;
    while let Some(Ok(r)) = scan.next() {
        match r.kind {
            RecordKind::Data => {
                let Ok(()) = logcore::Apply::apply(&mut p.digest, r.lsn, r.payload);
            }
            RecordKind::Seal => p.sealed_epoch = Some(r.epoch),
            // Padding, and kinds newer than this replica (scanned valid,
            // nothing to apply).
            _ => {}
        }
        p.max_epoch = p.max_epoch.max(r.epoch);
        p.max_incarnation = p.max_incarnation.max(u64::from(r.incarnation));
        n += 1;
        // Remember a record boundary every 1/MARK_EVERY of the ring, so the
        // head can move to within that of any target however large the
        // round (one round may cover most of the ring).
        let at = scan.cursor();
        if marks
            .back()
            .is_none_or(|m| at.pos - m.pos >= geometry.capacity / MARK_EVERY)
        {
            if marks.len() == MAX_MARKS {
                marks.pop_front();
            }
            marks.push_back(at);
        }
    }
    p.cursor = scan.cursor();
    n
}

/// The replay thread: scans every `idle` while nothing arrives, records
/// progress in the region's control block, and wakes waiters. Returns when
/// `stop` is set.
pub fn run(
    path: &Path,
    shared: &Arc<Shared>,
    idle: Duration,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let mut region: Option<Region> = None;
    let mut marks = std::collections::VecDeque::with_capacity(MAX_MARKS);
    while !stop.load(Ordering::Relaxed) {
        let Some(mut p) = shared.get() else {
            std::thread::sleep(idle);
            continue;
        };
        if p.uuid.is_none() {
            std::thread::sleep(idle);
            continue;
        }
        if region.is_none() {
            match Region::open(path, RegionKind::Auto) {
                Ok(r) => region = Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "replay cannot map the region; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let r = region.as_mut().expect("mapped above");
        let before = p.cursor;
        let applied = scan_round(r.bytes(), &mut p, &mut marks);
        if applied == 0 {
            std::thread::sleep(idle);
            continue;
        }
        advance_head(&mut p, &mut marks);
        let m = MirrorProgress {
            head: p.head,
            durable: p.cursor,
            epoch: p.max_epoch,
            incarnation: p.max_incarnation,
        };
        match Control::new(r) {
            Ok(c) => {
                if let Err(e) = c.record_mirror(&m) {
                    tracing::error!(error = %e, "cannot persist replay progress");
                }
            }
            Err(e) => tracing::error!(error = %e, "replica control block unreadable"),
        }
        let mut g = shared
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cur) = g.as_mut() {
            // Sessions may have raised the admitted epoch meanwhile.
            p.admitted_epoch = p.admitted_epoch.max(cur.admitted_epoch);
            if cur.cursor == before {
                *cur = p;
            }
        }
        drop(g);
        shared.moved.notify_all();
        tracing::debug!(
            records = applied,
            pos = p.cursor.pos,
            lsn = p.cursor.lsn.0,
            "replayed"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    fn progress(capacity: u64, cursor: u64, head: u64) -> Progress {
        let mut p = Progress::fresh(1);
        p.geometry = Some(Geometry {
            ring_offset: 4096,
            capacity,
        });
        p.cursor = Cursor {
            pos: cursor,
            lsn: Lsn(cursor / 64 + 1),
        };
        p.head = Cursor {
            pos: head,
            lsn: Lsn(head / 64 + 1),
        };
        p
    }

    #[test]
    fn the_head_keeps_a_quarter_to_a_half_of_the_ring() {
        let cap = 1 << 20;
        // Marks every 1/32 of the ring up to the cursor.
        let mut marks: VecDeque<Cursor> = (0..=40)
            .map(|i| Cursor {
                pos: i * cap / 32,
                lsn: Lsn(i + 1),
            })
            .collect();
        let mut p = progress(cap, 40 * cap / 32, 0);
        advance_head(&mut p, &mut marks);
        let kept = p.cursor.pos - p.head.pos;
        assert!(
            kept >= cap / 4 - cap / 32 && kept <= cap / 4,
            "kept {kept} of {cap}"
        );
        assert_eq!(
            marks.front().copied(),
            Some(p.head),
            "marks before the head are dropped"
        );
        // Within half a ring: the head stays.
        let before = p.head;
        p.cursor.pos = p.head.pos + cap / 2;
        advance_head(&mut p, &mut marks);
        assert_eq!(p.head, before);
    }

    #[test]
    fn without_a_usable_mark_the_head_never_passes_the_cursor() {
        let cap = 1 << 20;
        let mut marks = VecDeque::new();
        let mut p = progress(cap, 3 * cap, 0);
        advance_head(&mut p, &mut marks);
        assert_eq!(p.head, p.cursor);
    }
}
