//! A record left from the previous lap at the next ring offset, intact and
//! with a valid CRC, is recognised as stale by its position and ends the
//! scan; reopening does not resurrect it.

mod common;

use logcore::{Log, Lsn, RecordFault, RegionKind, StopReason};

#[test]
fn stale_lap_record_ends_the_scan() {
    let (_d, path, log) = common::new_log(4096 + 8192);
    // 128 one-line records fill the 8 KiB ring exactly.
    for i in 0..128u32 {
        log.append(&i.to_le_bytes()).unwrap();
    }
    let t = log.persist_all().unwrap();
    assert_eq!(t.pos, 8192);
    log.advance_head(t.pos).unwrap();
    let l = log.append(b"lap two").unwrap();
    assert_eq!(l, Lsn(129));
    log.persist_to(l).unwrap();
    drop(log);

    let log = Log::open(&path, RegionKind::File).unwrap();
    let r = log.recovery();
    assert_eq!(r.records, 1);
    assert_eq!(r.tail.pos, 8192 + 64);
    assert_eq!(
        r.stop,
        StopReason::Fault(RecordFault::PositionMismatch {
            expected: 8256,
            found: 64
        }),
        "the lap-one record at ring offset 64 is stale"
    );
    drop(log);
    let recs = common::records_of(&std::fs::read(&path).unwrap());
    assert_eq!(recs, vec![(129, b"lap two".to_vec())]);
}
