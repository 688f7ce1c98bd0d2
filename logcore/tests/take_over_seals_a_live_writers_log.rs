//! The closure's entry point: `Log::take_over` recovers a log whose writer
//! pid is still alive (a hung host), keeps every persisted record, and a
//! seal after it ends the epoch; the next writer sees the log sealed.

mod common;

use logcore::{Log, LogState, Region, RegionKind};

#[test]
fn take_over_seals_a_live_writers_log() {
    let (_d, path, log) = common::new_log(1 << 16);
    let mut lsns = Vec::new();
    for i in 0..10u8 {
        lsns.push(log.append(&[i; 100]).unwrap());
    }
    let persisted = log.persist_all().unwrap();
    let mut hung = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    log.control()
        .set_state(LogState::Running, hung.id())
        .unwrap();
    std::mem::forget(log); // the "hung" writer still holds it

    let region = Region::open(&path, RegionKind::File).unwrap();
    let taken = Log::take_over(region).unwrap();
    assert_eq!(taken.recovery().previous_state, LogState::Running);
    assert_eq!(taken.persisted(), persisted, "every persisted record kept");
    let seal = taken.seal().unwrap();
    assert_eq!(seal, persisted.lsn, "the seal takes the next LSN");
    assert_eq!(taken.control().state(), LogState::Sealed);
    drop(taken);

    hung.kill().unwrap();
    hung.wait().unwrap();
    let reopened = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(reopened.recovery().previous_state, LogState::Sealed);
    assert_eq!(reopened.recovery().records, 11, "ten records and the seal");
    assert!(reopened.append(b"x").is_err(), "sealed until a new epoch");
}
