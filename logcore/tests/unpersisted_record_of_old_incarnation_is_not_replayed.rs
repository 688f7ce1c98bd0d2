//! The phantom-record hazard: incarnation 1 appends A and B but crashes
//! before persisting, and A is torn. Incarnation 2 recovers to A's position
//! and appends A', which happens to end exactly where B begins; then it
//! crashes too. B is intact with the right position and LSN, yet was never
//! part of incarnation 2's log: the incarnation check must stop the scan
//! after A'.

mod common;

use logcore::{Log, RecordFault, RegionKind, StopReason};

#[test]
fn unpersisted_record_of_old_incarnation_is_not_replayed() {
    let (_d, path, log) = common::new_log(1 << 16);
    let a = log.append_record(&[1u8; 200]).unwrap(); // 256 bytes at pos 0
    let b = log.append_record(&[2u8; 10]).unwrap(); // at pos 256, LSN 2
    assert_eq!((a.end, b.lsn.0), (256, 2));
    std::mem::forget(log); // crash: nothing persisted, no clean shutdown

    // Tear A: damage its payload.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096 + 100] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();

    let log = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(log.tail().pos, 0, "torn A ends the log");
    assert!(matches!(
        log.recovery().stop,
        StopReason::Fault(RecordFault::ChecksumMismatch { .. })
    ));
    let a2 = log.append_record(&[3u8; 220]).unwrap(); // also ends at 256
    assert_eq!((a2.lsn.0, a2.end), (1, 256));
    std::mem::forget(log); // crash again before persisting

    let log = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(log.tail().lsn.0, 2, "A' is recovered, B is not");
    match log.recovery().stop {
        StopReason::Fault(RecordFault::StaleIncarnation { .. }) => {}
        other => panic!("expected StaleIncarnation, got {other:?}"),
    }
    drop(log);
    let recs = common::records_of(&std::fs::read(&path).unwrap());
    assert_eq!(recs, vec![(1, vec![3u8; 220])]);
}
