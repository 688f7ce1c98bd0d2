//! The watch judges a real host process through its pidfd and the log's
//! control block: alive while it beats, dead at once when it exits, hung
//! only after beating and then staying still past the bound, never hung
//! when it never beat, and a clean shutdown or a new writer is no takeover.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use closure::liveness::{Verdict, Watch};
use logcore::{CreateOptions, Log, LogState, RegionKind};

fn log(name: &str) -> (std::path::PathBuf, Log) {
    let dir = std::env::temp_dir().join(format!("tg-liveness-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("host.log");
    let opts = CreateOptions {
        kind: RegionKind::File,
        ..CreateOptions::default()
    };
    let log = Log::create(&path, 1 << 20, &opts).unwrap();
    (dir, log)
}

fn host() -> Child {
    Command::new("sleep").arg("30").spawn().unwrap()
}

const POLL: Duration = Duration::from_millis(5);

#[test]
fn a_host_that_exits_is_dead_at_once() {
    let (dir, log) = log("dies");
    let mut h = host();
    log.control().set_state(LogState::Running, h.id()).unwrap();
    let c = log.control();
    let mut w = Watch::arm(&c, Duration::from_secs(10)).unwrap();
    assert_eq!(w.pid(), h.id());
    assert_eq!(w.check(&c, POLL).unwrap(), Verdict::Alive);
    h.kill().unwrap();
    h.wait().unwrap();
    let t = Instant::now();
    // A long wait returns as soon as the pidfd fires.
    assert_eq!(w.check(&c, Duration::from_secs(10)).unwrap(), Verdict::Died);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_host_gone_before_arming_is_dead() {
    let (dir, log) = log("gone");
    let mut h = host();
    let pid = h.id();
    h.kill().unwrap();
    h.wait().unwrap();
    log.control().set_state(LogState::Running, pid).unwrap();
    let c = log.control();
    let mut w = Watch::arm(&c, Duration::from_secs(10)).unwrap();
    assert_eq!(w.check(&c, POLL).unwrap(), Verdict::Died);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_host_that_stops_beating_is_hung_after_the_bound() {
    let (dir, log) = log("hangs");
    let mut h = host();
    log.control().set_state(LogState::Running, h.id()).unwrap();
    let c = log.control();
    let bound = Duration::from_millis(100);
    let mut w = Watch::arm(&c, bound).unwrap();
    log.heartbeat();
    assert_eq!(w.check(&c, POLL).unwrap(), Verdict::Alive);
    assert!(w.beats());
    let still = Instant::now();
    let v = loop {
        let v = w.check(&c, POLL).unwrap();
        if v != Verdict::Alive || still.elapsed() > Duration::from_secs(5) {
            break v;
        }
    };
    assert!(
        matches!(v, Verdict::Hung { stale_ms } if stale_ms >= 100),
        "{v:?}"
    );
    assert!(still.elapsed() >= bound);
    h.kill().unwrap();
    h.wait().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_host_that_never_beats_is_judged_by_pid_only() {
    let (dir, log) = log("never-beats");
    let mut h = host();
    log.control().set_state(LogState::Running, h.id()).unwrap();
    let c = log.control();
    let mut w = Watch::arm(&c, Duration::from_millis(20)).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(w.check(&c, POLL).unwrap(), Verdict::Alive);
    assert!(!w.beats());
    h.kill().unwrap();
    h.wait().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn clean_shutdown_and_a_new_writer_are_no_takeover() {
    let (dir, log) = log("clean");
    let mut h = host();
    log.control().set_state(LogState::Running, h.id()).unwrap();
    let c = log.control();
    let mut w = Watch::arm(&c, Duration::from_secs(10)).unwrap();
    log.control()
        .set_state(LogState::Running, h.id() + 1)
        .unwrap();
    assert_eq!(
        w.check(&c, POLL).unwrap(),
        Verdict::Replaced { pid: h.id() + 1 }
    );
    log.control()
        .set_state(LogState::CleanShutdown, h.id())
        .unwrap();
    h.kill().unwrap();
    h.wait().unwrap();
    // Exited, but after a clean shutdown: not a death to take over.
    assert_eq!(w.check(&c, POLL).unwrap(), Verdict::CleanShutdown);
    std::fs::remove_dir_all(dir).unwrap();
}
