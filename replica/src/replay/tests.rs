//! Replay from damaged and continued images, and the head policy.

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

/// 128 KiB region, 600 records: the ring wrapped.
fn image(name: &str) -> crate::fixture::Fixture {
    crate::fixture::wrapped(name, 128 << 10, 600)
}

fn start(f: &crate::fixture::Fixture) -> (Progress, Option<Damage>) {
    let bytes = f.bytes();
    let img = Image::parse(&bytes).unwrap();
    Progress::from_image(&img, 1)
}

#[test]
fn an_intact_image_starts_at_its_recorded_tail() {
    let f = image("replay-intact");
    let (p, damage) = start(&f);
    assert_eq!(damage, None);
    assert_eq!(p.cursor, f.tail);
    assert_eq!(p.head, f.head);
    assert_eq!(p.uuid, Some(f.uuid));
}

#[test]
fn a_zeroed_record_in_the_middle_ends_the_durable_tail_before_it() {
    let f = image("replay-zeroed-middle");
    let i = f.middle();
    f.zero_record(i);
    let (p, damage) = start(&f);
    let at = f.records[i].start;
    assert_eq!(p.cursor, at, "starts at the last intact record boundary");
    assert_eq!(
        damage,
        Some(Damage {
            recorded: f.tail,
            intact: at,
            flaw: Flaw::Record(RecordFault::Zeroed),
        })
    );
    assert_eq!(p.head, f.head, "the head stays");
    let msg = damage.unwrap().to_string();
    assert!(
        msg.contains(&format!("{} (next LSN {})", f.tail.pos, f.tail.lsn.0))
            && msg.contains(&format!("{} (next LSN {})", at.pos, at.lsn.0))
            && msg.contains("all zero"),
        "{msg}"
    );
}

#[test]
fn a_zeroed_ring_starts_at_the_head() {
    let f = image("replay-zeroed-ring");
    f.zero_ring();
    let (p, damage) = start(&f);
    assert_eq!(p.cursor, f.head);
    assert_eq!(
        damage,
        Some(Damage {
            recorded: f.tail,
            intact: f.head,
            flaw: Flaw::Record(RecordFault::Zeroed),
        })
    );
}

#[test]
fn a_flipped_byte_in_the_last_record_drops_only_that_record() {
    let f = image("replay-flipped-last");
    let last = f.records.len() - 1;
    f.flip_payload_byte(last);
    let (p, damage) = start(&f);
    let at = f.records[last].start;
    assert_eq!(p.cursor, at);
    assert_eq!(p.cursor.lsn.0 + 1, f.tail.lsn.0, "one record short");
    let d = damage.unwrap();
    assert_eq!((d.recorded, d.intact), (f.tail, at));
    assert!(
        matches!(d.flaw, Flaw::Record(RecordFault::ChecksumMismatch { .. })),
        "{d}"
    );
}

#[test]
fn a_record_from_another_lap_ends_the_durable_tail_before_it() {
    let f = image("replay-stale-lap");
    let i = f.middle();
    // Record i-1's bytes over record i: a valid record, but it names
    // another position (what a torn region or a stale lap shows).
    let bytes = f.bytes();
    let prev = f.records[i - 1];
    let off = f.geometry.region_offset(prev.start.pos) as usize;
    f.write_at(
        f.records[i].start.pos,
        &bytes[off..off + logcore::HEADER_LEN],
    );
    let (p, damage) = start(&f);
    assert_eq!(p.cursor, f.records[i].start);
    assert!(
        matches!(
            damage.unwrap().flaw,
            Flaw::Record(RecordFault::PositionMismatch { .. })
        ),
        "{damage:?}"
    );
}

/// Records a durable tail the records disagree with, as a control block
/// written by something else would.
fn record_tail(f: &crate::fixture::Fixture, tail: Cursor) {
    let r = Region::open(&f.path, RegionKind::File).unwrap();
    Control::new(&r)
        .unwrap()
        .rewind_mirror_durable(tail)
        .unwrap();
}

#[test]
fn a_recorded_tail_inside_a_record_ends_the_durable_tail_before_it() {
    let f = image("replay-tail-inside");
    let i = f.middle();
    let r = f.records[i];
    assert!(r.end - r.start.pos >= 128, "a record of two lines or more");
    record_tail(
        &f,
        Cursor {
            pos: r.start.pos + 64,
            lsn: r.start.lsn.next(),
        },
    );
    let (p, damage) = start(&f);
    assert_eq!(p.cursor, r.start);
    assert_eq!(
        damage.unwrap().flaw,
        Flaw::TailMismatch {
            ends: Cursor {
                pos: r.end,
                lsn: r.start.lsn.next()
            }
        }
    );
}

#[test]
fn a_recorded_tail_with_another_lsn_takes_the_records_lsn() {
    let f = image("replay-tail-lsn");
    let r = f.records[f.middle()];
    record_tail(
        &f,
        Cursor {
            pos: r.start.pos,
            lsn: Lsn(r.start.lsn.0 + 5),
        },
    );
    let (p, damage) = start(&f);
    assert_eq!(p.cursor, r.start, "the position, with the chain's LSN");
    assert_eq!(damage.unwrap().flaw, Flaw::TailMismatch { ends: r.start });
}

#[test]
fn without_a_usable_mark_the_head_never_passes_the_cursor() {
    let cap = 1 << 20;
    let mut marks = VecDeque::new();
    let mut p = progress(cap, 3 * cap, 0);
    advance_head(&mut p, &mut marks);
    assert_eq!(p.head, p.cursor);
}

/// The replica's mirror as two writers left it: `ours` went on (a
/// newer epoch, or a seal), `fenced` is a copy of it from `split` on
/// that appended at its old epoch. A round of replay over `ours`, then
/// the fenced writer's record placed right after what the round
/// applied (where a late WRITE of a fenced QP would land).
struct TwoWriters {
    _dir: PathBuf,
    ours: Vec<u8>,
    geometry: Geometry,
    uuid: [u8; 16],
}

use std::path::PathBuf;

use logcore::{CreateOptions, Log};

/// `split` records at epoch 1 by both, then `ours(log)` on ours and,
/// on the fenced copy, a record as long as what `ours` appended
/// followed by the stale record (epoch 1) that must not be applied.
fn two_writers(name: &str, ours: impl FnOnce(&Log) -> u64) -> (TwoWriters, Vec<u8>, u64) {
    let dir = testkit::scratch(name);
    let (a, b) = (dir.join("ours.region"), dir.join("fenced.region"));
    let opts = CreateOptions {
        kind: RegionKind::File,
        ..CreateOptions::default()
    };
    let log = Log::create(&a, 64 << 10, &opts).unwrap();
    for i in 0..5 {
        log.append_record(&testkit::payload(1, i, 200)).unwrap();
    }
    log.persist_all().unwrap();
    drop(log);
    std::fs::copy(&a, &b).unwrap();
    let log = Log::open(&a, RegionKind::File).unwrap();
    let split = log.tail().pos;
    let len = ours(&log);
    log.persist_all().unwrap();
    let (geometry, uuid) = (log.geometry(), log.superblock().uuid);
    drop(log);
    let fenced = Log::open(&b, RegionKind::File).unwrap();
    // As long as what ours appended, so the next record starts where
    // ours ends.
    let pad = len - logcore::HEADER_LEN as u64;
    let first = fenced.append_record(&vec![7; pad as usize]).unwrap();
    assert_eq!(first.pos, split);
    let stale = fenced.append_record(b"written by a fenced writer").unwrap();
    fenced.persist_all().unwrap();
    drop(fenced);
    let fb = std::fs::read(&b).unwrap();
    let (from, to) = (
        geometry.region_offset(stale.pos) as usize,
        geometry.region_offset(stale.end) as usize,
    );
    let w = TwoWriters {
        _dir: dir,
        ours: std::fs::read(&a).unwrap(),
        geometry,
        uuid,
    };
    (w, fb[from..to].to_vec(), stale.pos)
}

/// Round 1 over ours; then the stale record lands at `at`; round 2.
fn rounds(w: &TwoWriters, stale: &[u8], at: u64) -> (Progress, usize) {
    let mut p = Progress::fresh(2);
    p.uuid = Some(w.uuid);
    p.geometry = Some(w.geometry);
    let mut marks = VecDeque::new();
    assert!(scan_round(&w.ours[..], &mut p, &mut marks) > 5);
    assert_eq!(p.cursor.pos, at, "round 1 applies everything ours wrote");
    let before = p;
    let mut img = w.ours.clone();
    let off = w.geometry.region_offset(at) as usize;
    img[off..off + stale.len()].copy_from_slice(stale);
    let n = scan_round(&img[..], &mut p, &mut marks);
    assert_eq!(p.digest, before.digest);
    (p, n)
}

/// Hole: every round built a new scan that had seen no epoch, so a
/// record of a lower epoch than the ones applied, arriving in a later
/// round, was applied.
#[test]
fn a_record_of_an_older_epoch_arriving_in_a_later_round_is_not_applied() {
    let (w, stale, at) = two_writers("replay-older-epoch", |log| {
        log.begin_epoch(2).unwrap();
        let a = log.append_record(&testkit::payload(2, 0, 200)).unwrap();
        a.end - a.pos
    });
    let (p, n) = rounds(&w, &stale, at);
    assert_eq!(
        (n, p.cursor.pos),
        (0, at),
        "the stale epoch-1 record was applied"
    );
    assert_eq!(p.after.epoch, 2);
}

/// Ours seals epoch 1: the seal record's length.
fn seal(log: &Log) -> u64 {
    let from = log.tail().pos;
    log.seal().unwrap();
    log.tail().pos - from
}

/// Hole: the same after a seal: a record of the sealed epoch arriving
/// in a round after the seal record was applied.
#[test]
fn a_record_of_a_sealed_epoch_arriving_in_a_later_round_is_not_applied() {
    let (w, stale, at) = two_writers("replay-sealed-epoch", seal);
    let (p, n) = rounds(&w, &stale, at);
    assert_eq!(
        (n, p.cursor.pos),
        (0, at),
        "a record continued the sealed epoch"
    );
    assert_eq!(p.after.sealed, Some(1));
}

#[test]
fn a_restarted_replica_keeps_what_its_records_require() {
    let (w, _, at) = two_writers("replay-restart-continuity", seal);
    let (p, damage) = Progress::from_image(&Image::parse(&w.ours).unwrap(), 1);
    assert_eq!((damage, p.cursor.pos), (None, at));
    assert_eq!((p.after.epoch, p.after.sealed), (1, Some(1)));
}

/// A fresh progress over the fixture's log, at its head: the next round
/// applies every record up to its tail (the history crosses the ring's
/// end, so the round's bytes come in two pieces).
fn at_head(f: &crate::fixture::Fixture) -> Progress {
    let mut p = Progress::fresh(1);
    p.uuid = Some(f.uuid);
    p.geometry = Some(f.geometry);
    p.cursor = f.head;
    p.head = f.head;
    p
}

/// Hole (issue 13 d): the replica took a scanned record as durable, and
/// reported it in Accept, Status and its control block, without flushing
/// it; under gpspm nothing else flushes a record whose writer died between
/// its WRITEs and its persist request. Every region byte of the records a
/// round applies is flushed before the round counts.
#[test]
fn a_round_flushes_every_byte_it_applied_before_it_counts_them() {
    let f = image("replay-round-flushes");
    let bytes = f.bytes();
    let mut p = at_head(&f);
    let mut flushed: Vec<(usize, usize)> = Vec::new();
    let n = round(&bytes[..], &mut p, &mut VecDeque::new(), |off, len| {
        flushed.push((off, len));
        Ok(())
    })
    .unwrap();
    assert_eq!(n, f.records.len(), "the round applies head..tail");
    assert_eq!(p.cursor, f.tail);
    // Exactly the ring bytes of [head, tail), which wrap: two pieces.
    let want: Vec<(usize, usize)> = f
        .geometry
        .pieces(f.head.pos, f.tail.pos)
        .map(|piece| (piece.region_offset as usize, piece.len as usize))
        .collect();
    assert_eq!(
        want.len(),
        2,
        "the fixture's history crosses the ring's end"
    );
    assert_eq!(flushed, want, "what the round applied was not flushed");
    // A round with nothing new flushes nothing.
    let mut again = Vec::new();
    let n = round(&bytes[..], &mut p, &mut VecDeque::new(), |off, len| {
        again.push((off, len));
        Ok(())
    })
    .unwrap();
    assert_eq!((n, again.len()), (0, 0));
}

/// A flush that fails takes nothing: cursor, state copy and continuity are
/// as before, and the next round applies the same records once.
#[test]
fn a_round_whose_flush_fails_counts_nothing_and_the_next_applies_once() {
    let f = image("replay-round-flush-fails");
    let bytes = f.bytes();
    let start = at_head(&f);
    let mut p = start;
    let mut marks = VecDeque::new();
    let err = round(&bytes[..], &mut p, &mut marks, |_, _| {
        Err(std::io::Error::from_raw_os_error(libc::EIO))
    })
    .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert_eq!(
        p, start,
        "a round whose bytes were not flushed moved the progress"
    );
    assert!(
        marks.iter().all(|m: &Cursor| m.pos <= p.cursor.pos),
        "marks past the cursor were kept: {marks:?}"
    );
    let n = round(&bytes[..], &mut p, &mut marks, |_, _| Ok(())).unwrap();
    let mut once = at_head(&f);
    scan_round(&bytes[..], &mut once, &mut VecDeque::new());
    assert_eq!(n, f.records.len());
    assert_eq!(
        (p.cursor, p.digest),
        (once.cursor, once.digest),
        "applied twice or not at all"
    );
}

/// SIGTERM: the replay thread, told to stop, first applies, flushes and
/// records everything that arrived, then returns (before, it returned at
/// once, leaving arrived records unapplied and the durable tail behind).
#[test]
fn a_stopped_replay_thread_drains_what_arrived_before_it_returns() {
    let f = image("replay-stop-drains");
    let shared = std::sync::Arc::new(Shared {
        progress: Mutex::new(Some(at_head(&f))),
        moved: std::sync::Condvar::new(),
        applied_at_ms: std::sync::atomic::AtomicU64::new(0),
    });
    let stop = std::sync::atomic::AtomicBool::new(true);
    run(&f.path, &shared, Duration::from_millis(1), &stop);
    let p = shared.get().unwrap();
    assert_eq!(p.cursor, f.tail, "stopped before applying what had arrived");
    let mut once = at_head(&f);
    scan_round(&f.bytes()[..], &mut once, &mut VecDeque::new());
    assert_eq!(p.digest, once.digest);
    let region = Region::open(&f.path, RegionKind::Auto).unwrap();
    let recorded = Control::new(&region).unwrap().persisted_tail().unwrap();
    assert_eq!(
        recorded, f.tail,
        "the drained tail was not recorded in the control block"
    );
    assert!(
        shared
            .applied_at_ms
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the round that applied records did not stamp its time"
    );
}

/// Issue 13 j, the incarnation wrap: records carry the low 16 bits of the
/// writer's incarnation. The replica took the highest of them as a plain
/// number, so after the writer's 65,536th open (low bits 0 again) it kept
/// 65535 and recorded that in its control block; a promoted replica then
/// opened at 65536 (low bits 0) and its recovery refused every record of
/// the wrapped incarnations as newer than its own. The replica follows the
/// writer's incarnation with serial-number arithmetic instead.
#[test]
fn a_promoted_replica_opens_after_the_writers_incarnation_wrapped() {
    let dir = testkit::scratch("replay-incarnation-wrap");
    let (primary, replica) = (dir.join("primary.log"), dir.join("replica.region"));
    let len = 256 << 10;
    let file = CreateOptions {
        kind: RegionKind::File,
        ..CreateOptions::default()
    };
    let log = Log::create(&primary, len, &file).unwrap();
    let (uuid, geometry) = (log.superblock().uuid, log.geometry());
    let start = log.tail();
    // The writer has opened its log 65,534 times.
    Control::new(log.region())
        .unwrap()
        .record_mirror(&logcore::MirrorProgress {
            head: start,
            durable: start,
            epoch: log.epoch(),
            incarnation: 65_534,
        })
        .unwrap();
    drop(log);
    // Two more opens, three records each: incarnations 65535 and 65536
    // (low bits 0).
    for open in 0..2u8 {
        let log = Log::open(&primary, RegionKind::File).unwrap();
        for i in 0..3u8 {
            log.append(&[open, i, 7, 7]).unwrap();
        }
        log.persist_all().unwrap();
    }
    let tail = Log::open(&primary, RegionKind::File).unwrap().persisted();
    // The replica: the same log's ring, mirrored byte for byte.
    let mirror = Log::create(
        &replica,
        len,
        &CreateOptions {
            uuid: Some(uuid),
            ..file
        },
    )
    .unwrap();
    drop(mirror);
    let ring = geometry.ring_offset as usize..(geometry.ring_offset + geometry.capacity) as usize;
    let mut bytes = std::fs::read(&replica).unwrap();
    bytes[ring.clone()].copy_from_slice(&std::fs::read(&primary).unwrap()[ring]);
    std::fs::write(&replica, &bytes).unwrap();
    // One replay round, recorded as the replay thread records it.
    let region = Region::open(&replica, RegionKind::File).unwrap();
    let mut p = Progress::fresh(1);
    p.uuid = Some(uuid);
    p.geometry = Some(geometry);
    p.cursor = start;
    p.head = start;
    let n = scan_round(&region, &mut p, &mut VecDeque::new());
    assert_eq!(n, 6, "every record replayed");
    assert_eq!(p.cursor, tail);
    assert_eq!(
        p.max_incarnation % 65_536,
        0,
        "the replica lost track of the writer's incarnation: {}",
        p.max_incarnation
    );
    Control::new(&region)
        .unwrap()
        .record_mirror(&logcore::MirrorProgress {
            head: p.head,
            durable: p.cursor,
            epoch: p.max_epoch,
            incarnation: p.max_incarnation,
        })
        .unwrap();
    drop(region);
    // Promoted: the replica's region opens as a writer's log holding all.
    let promoted = Log::open(&replica, RegionKind::File)
        .unwrap_or_else(|e| panic!("the promoted replica does not open: {e}"));
    assert_eq!(promoted.persisted(), tail, "records lost at promotion");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_followed_incarnation_moves_by_serial_distance() {
    assert_eq!(follow_incarnation(0, 5), 5, "the first seen is taken");
    assert_eq!(follow_incarnation(5, 5), 5);
    assert_eq!(follow_incarnation(5, 9), 9);
    assert_eq!(
        follow_incarnation(65_535, 0),
        65_536,
        "the wrap moves it on"
    );
    assert_eq!(follow_incarnation(65_536, 3), 65_539);
    assert_eq!(
        follow_incarnation(65_539, 1),
        65_539,
        "an older record moves nothing"
    );
    assert_eq!(follow_incarnation(131_071, 0), 131_072);
}
