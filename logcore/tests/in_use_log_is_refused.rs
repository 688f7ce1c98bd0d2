//! A log whose control block names a live writer process is refused with
//! its pid; once that process is gone the log opens (crash recovery).

mod common;

use logcore::{Log, LogState, OpenError, RegionKind};

#[test]
fn in_use_log_is_refused() {
    let (_d, path, log) = common::new_log(1 << 16);
    let mut other = common::hand_to_hung_writer(log);
    let e = Log::open(&path, RegionKind::File).unwrap_err();
    match &e {
        OpenError::InUse { pid, .. } => assert_eq!(*pid, other.id()),
        e => panic!("expected InUse, got {e}"),
    }
    assert!(e.to_string().contains("stop it first"), "{e}");
    other.kill().unwrap();
    other.wait().unwrap();
    let log = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(log.recovery().previous_state, LogState::Running);
}
