//! Replay: scan the mirrored ring from the last applied position, apply
//! every valid record to the state copy, and record the progress in the
//! replica's own control block.
//!
//! The replica applies records as it validates them, and flushes what a
//! round applied before it takes that round as its progress ([`round`]), so
//! its durable tail (what it reports to writers in Accept and Status, what
//! it records in its control block and what promotion keeps) is its applied
//! tail made persistent: the end of the last record that scanned valid and
//! was flushed. Scanning alone proves only that the bytes are visible: under
//! `gpspm` nothing else flushes a record whose writer died between its
//! WRITEs and its persist request, or whose request timed out. A writer may
//! have placed more bytes than that; it re-ships them after a reconnect,
//! which is harmless (the bytes are the same).
//!
//! The bytes are read through a mapping of the replica's own, while the
//! device writes through the registered one. Records behind the applied
//! position are never overwritten by a writer (it reclaims only behind
//! what this replica reports), and bytes past it are read, checked by CRC,
//! and only then applied; a record being written at that moment fails its
//! CRC and ends the scan until the next round.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use logcore::{
    crc_salt, Continuity, Control, Cursor, Geometry, Image, Lsn, MirrorProgress, RecordFault,
    RecordKind, Region, RegionKind, Scan, ScanConfig, ScanError, Source, StopReason,
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
    /// What the applied records require of the next one (epoch, seal,
    /// incarnation): carried from one scan round to the next, so a record
    /// of an older or sealed epoch is refused however late it arrives.
    pub after: Continuity,
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
            after: Continuity::default(),
            max_epoch: 0,
            max_incarnation: 0,
            admitted_epoch,
        }
    }

    /// From a formatted replica image: resumes after its last intact
    /// record up to the recorded durable tail (the state copy restarts
    /// there: the built-in digest is not persistent) and keeps its recorded
    /// head.
    ///
    /// The recorded tail is not taken on trust: every record from the head
    /// up to it is verified first ([`verify`]). If one does not verify (the
    /// ring lost writes at a power-off, was zeroed, or tore), the cursor is
    /// the last intact record boundary (the head if none is intact) and the
    /// [`Damage`] says what was found; the replica then reports that cursor
    /// as its durable tail, so a writer re-ships from there.
    pub fn from_image<S: ?Sized + Source>(
        img: &Image<'_, S>,
        admitted_epoch: u32,
    ) -> (Self, Option<Damage>) {
        let c = img.control();
        let (after, checked) = check(img);
        let damage = checked.err();
        let p = Progress {
            uuid: Some(img.superblock().uuid),
            geometry: Some(img.superblock().geometry),
            cursor: damage.map_or(c.persisted, |d| d.intact),
            head: c.head,
            digest: Digest::default(),
            after,
            max_epoch: c.epoch,
            max_incarnation: c.incarnation,
            admitted_epoch,
        };
        (p, damage)
    }
}

/// Records before a replica image's recorded durable tail that do not
/// verify: what [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// The durable tail recorded in the control block.
    pub recorded: Cursor,
    /// End of the last intact record (a record boundary, the head if no
    /// record is intact): what the replica really holds.
    pub intact: Cursor,
    /// What is wrong at `intact`.
    pub flaw: Flaw,
}

/// Why the records end before the recorded tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flaw {
    /// The record at the intact position does not validate.
    Record(RecordFault),
    /// Every record validates, but the recorded tail is not where they
    /// end: the record at the intact position ends at `ends` (past the
    /// recorded tail), or the chain reaches the recorded position with
    /// another LSN (`ends` is that boundary).
    TailMismatch {
        /// The record boundary the chain reaches instead.
        ends: Cursor,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Damage {
            recorded,
            intact,
            flaw,
        } = self;
        write!(
            f,
            "the control block records the durable tail at {} (next LSN {}), but the records \
             end at {} (next LSN {}): ",
            recorded.pos, recorded.lsn.0, intact.pos, intact.lsn.0
        )?;
        match flaw {
            Flaw::Record(fault) => write!(f, "the record there does not verify: {fault}"),
            Flaw::TailMismatch { ends } => write!(
                f,
                "the record chain reaches {} (next LSN {}) instead of the recorded tail",
                ends.pos, ends.lsn.0
            ),
        }
    }
}

/// Checks every record from the image's head up to its recorded durable
/// tail, with the scanner `tg-log verify` uses (so the two agree).
///
/// # Errors
/// [`Damage`] naming the last intact record boundary when a record before
/// the recorded tail does not verify or the records do not end exactly at
/// it.
pub fn verify<S: ?Sized + Source>(img: &Image<'_, S>) -> Result<(), Damage> {
    check(img).1
}

/// [`verify`], and what the intact records require of the next one.
fn check<S: ?Sized + Source>(img: &Image<'_, S>) -> (Continuity, Result<(), Damage>) {
    let mut after = Continuity::default();
    let result = check_into(img, &mut after);
    (after, result)
}

fn check_into<S: ?Sized + Source>(
    img: &Image<'_, S>,
    after: &mut Continuity,
) -> Result<(), Damage> {
    let recorded = img.control().persisted;
    let head = img.control().head;
    let damage = |intact: Cursor, flaw: Flaw| Damage {
        recorded,
        intact,
        flaw,
    };
    // parse() already checked what Scan::new checks; the layout error
    // cannot happen, but is reported as damage at the head, not a panic.
    let mut scan = img
        .scan()
        .map_err(|_| damage(head, Flaw::Record(RecordFault::OutsideImage { offset: 0 })))?;
    // Bounded: the scan covers at most one ring capacity (parse() checked
    // that the recorded tail is within one of the head).
    loop {
        let at = scan.cursor();
        if at.pos >= recorded.pos {
            break;
        }
        *after = scan.continuity();
        match scan.next_record().map(|r| r.map(|r| r.end())) {
            Some(Ok(end)) if end > recorded.pos => {
                return Err(damage(
                    at,
                    Flaw::TailMismatch {
                        ends: scan.cursor(),
                    },
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(ScanError::CorruptBeforeTail { fault, .. })) => {
                return Err(damage(at, Flaw::Record(fault)));
            }
            // A fault before the recorded tail is always an error, and the
            // ring cannot fill before it: neither happens, but a scanner's
            // word is not a reason to panic.
            Some(Err(_)) | None => {
                let fault = match scan.stop().map(|s| s.reason) {
                    Some(StopReason::Fault(f)) => f,
                    _ => RecordFault::Zeroed,
                };
                return Err(damage(at, Flaw::Record(fault)));
            }
        }
    }
    let at = scan.cursor();
    *after = scan.continuity();
    if at == recorded {
        Ok(())
    } else {
        // Only the LSN can differ here (the loop stops at the first
        // boundary at or past the recorded position, and one past it was
        // caught above). The records' own LSN is the one to believe: they
        // carry a CRC, and the writer numbers from them.
        Err(damage(at, Flaw::TailMismatch { ends: at }))
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
    /// Unix time in milliseconds at which a round last applied records
    /// (0: none since start).
    pub applied_at_ms: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// A copy of the progress.
    pub fn get(&self) -> Option<Progress> {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One scan round over `src` (a whole replica region, which the NIC may be
/// writing meanwhile: each record is copied out, then checked): applies
/// what is valid past `p.cursor`; returns how many records were applied.
pub fn scan_round<S: ?Sized + Source>(
    src: &S,
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
    let Ok(scan) = Scan::over(src, cfg) else {
        return 0;
    };
    let mut scan = scan.continuing(p.after);
    let mut n = 0;
    while let Some(Ok(r)) = scan.next_record() {
        // Padding, seals and kinds newer than this replica scan valid
        // and apply nothing.
        if r.kind == RecordKind::Data {
            let Ok(()) = logcore::Apply::apply(&mut p.digest, r.lsn, r.payload);
        }
        p.max_epoch = p.max_epoch.max(r.epoch);
        p.max_incarnation = follow_incarnation(p.max_incarnation, r.incarnation);
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
    p.after = scan.continuity();
    n
}

/// The writer's incarnation as the replica follows it: records carry its
/// low 16 bits, which wrap after 65,536 opens, so a record's value moves
/// `last` forward by its serial-number distance (RFC 1982, as the scanner
/// compares them) instead of being taken as a number. The count may differ
/// from the writer's by a multiple of 65,536 (a replica that joined late);
/// only the low bits are ever compared, and a promoted replica opens past
/// them. `last` 0: nothing seen yet.
#[must_use]
pub fn follow_incarnation(last: u64, seen: u16) -> u64 {
    if last == 0 {
        return u64::from(seen);
    }
    // (Truncation to the low bits is the point.)
    #[allow(clippy::cast_possible_truncation)]
    let ahead = seen.wrapping_sub(last as u16);
    if ahead < 0x8000 {
        last + u64::from(ahead)
    } else {
        last
    }
}

/// One replay step: a [`scan_round`] on a copy of `p`, then `flush(offset,
/// len)` over every region byte of the ring the round applied; only when
/// that succeeds does the copy become `p`. Returns how many records were
/// applied (and are now persistent).
///
/// On a flush error `p` is left as it was (cursor, state copy, continuity),
/// and the marks past its cursor are dropped, so the next round scans and
/// applies the same records again, once.
///
/// # Errors
/// The flush's.
pub fn round<S: ?Sized + Source>(
    src: &S,
    p: &mut Progress,
    marks: &mut std::collections::VecDeque<Cursor>,
    mut flush: impl FnMut(usize, usize) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    let mut next = *p;
    let applied = scan_round(src, &mut next, marks);
    if let (Some(g), true) = (next.geometry, applied > 0) {
        if let Err(e) = flush_ring(g, p.cursor.pos, next.cursor.pos, &mut flush) {
            marks.retain(|m| m.pos <= p.cursor.pos);
            return Err(e);
        }
    }
    *p = next;
    Ok(applied)
}

/// Calls `flush(offset, len)` over the region bytes of the ring range
/// `[from, to)` (two pieces when it wraps).
///
/// # Errors
/// The first failing flush's.
pub fn flush_ring(
    g: Geometry,
    from: u64,
    to: u64,
    mut flush: impl FnMut(usize, usize) -> std::io::Result<()>,
) -> std::io::Result<()> {
    // A scan covers at most one ring past its start (the scanner's bound);
    // were a range ever longer, every ring byte was written anew.
    let from = from.max(to.saturating_sub(g.capacity));
    g.pieces(from, to)
        .try_for_each(|piece| flush(to_usize(piece.region_offset), to_usize(piece.len)))
}

/// A ring offset or length as a mapping offset (the region is mapped, so
/// it fits).
fn to_usize(v: u64) -> usize {
    usize::try_from(v).expect("a mapped region's offsets fit usize")
}

/// The replay thread: scans every `idle` while nothing arrives, records
/// progress in the region's control block, and wakes waiters. Once `stop`
/// is set it drains: it returns after a round that applies nothing (all
/// that arrived is applied, flushed and recorded), or after a failed
/// flush.
pub fn run(
    path: &Path,
    shared: &Arc<Shared>,
    idle: Duration,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let mut region: Option<Region> = None;
    let mut marks = std::collections::VecDeque::with_capacity(MAX_MARKS);
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let Some(mut p) = shared.get().filter(|p| p.uuid.is_some()) else {
            if stopping {
                return;
            }
            std::thread::sleep(idle);
            continue;
        };
        if region.is_none() {
            match Region::open(path, RegionKind::Auto) {
                Ok(r) => region = Some(r),
                Err(e) if stopping => {
                    tracing::error!(error = %e, "replay cannot map the region to drain it");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "replay cannot map the region; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let r = region.as_ref().expect("mapped above");
        let before = p.cursor;
        let applied = match round(r, &mut p, &mut marks, |off, len| r.persist(off, len)) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(
                    error = %e,
                    region = %path.display(),
                    pos = before.pos,
                    "cannot flush replayed records: not reporting them as durable (writers wait \
                     or re-ship them); retrying in 1 s; check the region's device or file"
                );
                if stopping {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if applied == 0 {
            if stopping {
                return;
            }
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        shared
            .applied_at_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
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
mod tests;
