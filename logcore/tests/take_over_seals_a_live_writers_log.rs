//! The closure's entry point: `Log::take_over` recovers a log whose writer
//! pid is still alive (a hung host), keeps every persisted record, scans
//! from the recorded persisted tail and extends it over records written
//! after it, and a seal after them ends the epoch; the next writer sees the
//! log sealed.

mod common;

use logcore::{Log, LogState, Region, RegionKind};

#[test]
fn take_over_seals_a_live_writers_log() {
    let (_d, path, log) = common::new_log(1 << 16);
    let mut lsns = Vec::new();
    for i in 0..10u8 {
        lsns.push(log.append(&[i; 100]).unwrap());
    }
    let recorded = log.persist_all().unwrap();
    // Written to the mapping but never recorded as persisted.
    log.append(&[20; 100]).unwrap();
    let last = log.append(&[21; 100]).unwrap();
    let mut hung = common::hand_to_hung_writer(log);

    let region = Region::open(&path, RegionKind::File).unwrap();
    let taken = Log::take_over(region).unwrap();
    assert_eq!(taken.recovery().previous_state, LogState::Running);
    assert_eq!(taken.recovery().recorded_tail, recorded);
    assert_eq!(
        taken.recovery().records,
        2,
        "scanned from the recorded tail"
    );
    assert_eq!(
        taken.persisted().lsn,
        last.next(),
        "the tail extends over both"
    );
    let seal = taken.seal().unwrap();
    assert_eq!(seal, last.next(), "the seal takes the next LSN");
    assert_eq!(taken.control().state(), LogState::Sealed);
    drop(taken);

    hung.kill().unwrap();
    hung.wait().unwrap();
    let reopened = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(reopened.recovery().previous_state, LogState::Sealed);
    assert_eq!(
        reopened.recovery().records,
        13,
        "twelve records and the seal"
    );
    assert!(reopened.append(b"x").is_err(), "sealed until a new epoch");
}
