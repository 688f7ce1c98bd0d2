//! A crash after the seal record is persisted but before the control block
//! says Sealed: the next open finds the seal record at the end of the
//! current epoch and treats the log as sealed, so nothing is appended at
//! the sealed epoch (which would make every later scan stop at the first
//! such record: BadEpoch before the persisted tail, a log that no longer
//! opens).

mod common;

use logcore::{AppendError, Log, LogState, RegionKind};

#[test]
fn a_crash_between_the_seal_record_and_the_sealed_state_still_seals() {
    let (_d, path, log) = common::new_log(1 << 16);
    for i in 0..5u8 {
        log.append(&[i; 64]).unwrap();
    }
    log.seal().unwrap();
    // The crash: the seal record and the tail past it are persisted, the
    // state is not.
    log.control()
        .set_state(LogState::Running, std::process::id())
        .unwrap();
    std::mem::forget(log);

    let log = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(log.recovery().previous_state, LogState::Running);
    assert_eq!(log.control().state(), LogState::Sealed, "repaired at open");
    assert!(
        matches!(log.append(b"late"), Err(AppendError::Sealed { epoch: 1 })),
        "appending at the sealed epoch"
    );
    log.begin_epoch(2).unwrap();
    let l = log.append(b"next epoch").unwrap();
    log.persist_to(l).unwrap();
    drop(log);

    // It opens, with every record.
    let log = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(
        log.recovery().records,
        7,
        "five records, the seal, the next epoch's"
    );
}
