//! A takeover that fails before its seal abandons the log: the control
//! block keeps "running" (under the closure's pid), never "clean shutdown",
//! so a host cannot open the log while the taker lives (`InUse`) and the
//! next open recovers it as after a crash, every record kept.

mod common;

use logcore::{Log, LogState, Region, RegionKind};

#[test]
fn an_abandoned_takeover_is_not_a_clean_shutdown() {
    let (_d, path, log) = common::new_log(1 << 16);
    for i in 0..10u8 {
        log.append(&[i; 100]).unwrap();
    }
    let recorded = log.persist_all().unwrap();
    let mut hung = common::hand_to_hung_writer(log);

    let taken = Log::take_over(Region::open(&path, RegionKind::File).unwrap()).unwrap();
    // The takeover could not ship or seal: it gives the log up.
    taken.abandon();
    hung.kill().unwrap();
    hung.wait().unwrap();

    {
        let region = Region::open(&path, RegionKind::File).unwrap();
        let ctl = logcore::Control::new(&region).unwrap();
        assert_eq!(
            ctl.state(),
            LogState::Running,
            "never marked cleanly shut down"
        );
        assert_eq!(ctl.host_pid(), std::process::id(), "held by the taker");
    }
    // (InUse would refuse a host while the taker lives: a test process is
    // both, so it recovers.)
    let reopened = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(reopened.recovery().previous_state, LogState::Running);
    assert_eq!(reopened.persisted(), recorded, "every record kept");
    drop(reopened);

    // Compare: dropping a taken-over log without abandoning it marks it clean.
    let taken = Log::take_over(Region::open(&path, RegionKind::File).unwrap()).unwrap();
    drop(taken);
    let reopened = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(reopened.recovery().previous_state, LogState::CleanShutdown);
}
