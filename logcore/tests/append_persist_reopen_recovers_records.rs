//! Records appended and persisted are all found, byte for byte, after the
//! log is closed and reopened; recovery reports the tail it found.

mod common;

use logcore::{Log, Lsn, RegionKind, StopReason};

#[test]
fn append_persist_reopen_recovers_records() {
    let (_dir, path, log) = common::new_log(1 << 20);
    let mut want = Vec::new();
    for i in 0..200u64 {
        let p = common::payload(i, 700);
        let lsn = log.append(&p).unwrap();
        assert_eq!(lsn, Lsn(i + 1), "LSNs are dense from 1");
        want.push((lsn.0, p));
    }
    let durable = log.persist_to(Lsn(200)).unwrap();
    assert_eq!(durable.lsn, Lsn(201));
    assert_eq!(durable, log.tail());
    assert_eq!(log.control().persisted_tail().unwrap(), durable);
    drop(log);

    let log = Log::open(&path, RegionKind::Auto).unwrap();
    let rec = *log.recovery();
    assert_eq!(rec.tail, durable);
    assert_eq!(rec.records, 200);
    assert!(matches!(
        rec.stop,
        StopReason::Fault(logcore::RecordFault::Zeroed)
    ));
    assert_eq!(log.tail(), durable);
    drop(log);
    assert_eq!(common::records_of(&std::fs::read(&path).unwrap()), want);
}
