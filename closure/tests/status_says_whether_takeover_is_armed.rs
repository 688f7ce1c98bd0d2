//! `tg-closure status` on a real log file, without a device: not armed
//! (and why) when no closure names itself in the log, armed while the
//! named closure beats, not armed once its beat stops; exit 0 armed, 3 not;
//! `--json` is one plain JSON object on stdout; a `closure.metrics-listen`
//! where nothing answers is reported, not fatal.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logcore::{Control, CreateOptions, Log, LogState, Region, RegionKind};

fn config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let yaml = format!(
        "name: host-a\nlog:\n  path: host.log\n  size-bytes: 1048576\ndevice:\n  name: rxe0\n\
         replicas:\n  - name: r0\n    control: 127.0.0.1:7471\n    key-file: host.key\n\
         closure:\n  name: host-a-closure\n  key-file: closure.key\n  heartbeat-timeout-ms: 300\n{extra}"
    );
    let p = dir.join("node.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

fn status(cfg: &std::path::Path) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_tg-closure"))
        .args(["status", "--json", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {stdout:?}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

#[test]
fn status_reports_armed_only_while_the_named_closure_beats() {
    let dir = testkit::scratch("closure-status");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = free.local_addr().unwrap();
    drop(free);
    let cfg = config(&dir, &format!("  metrics-listen: {dead}\n"));
    let log = Log::create(dir.join("host.log"), 1 << 20, &CreateOptions::default()).unwrap();
    let epoch = log.epoch();

    // The host runs; no closure.
    let (code, v) = status(&cfg);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["armed"], false);
    assert_eq!(v["log_state"], "running", "{v}");
    assert_eq!(v["host_pid"], std::process::id(), "{v}");
    assert_eq!(v["epoch"], epoch, "{v}");
    assert!(
        v["why_not"].as_str().unwrap().contains("start tg-closure"),
        "{v}"
    );
    assert_eq!(v["daemon"]["running"], false, "{v}");
    assert!(
        v["daemon"]["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{v}"
    );

    // A closure names itself and beats.
    let region = Region::open(dir.join("host.log"), RegionKind::File).unwrap();
    let control = Control::new(&region).unwrap();
    control.set_closure_pid(4242);
    let beating = Arc::new(AtomicBool::new(true));
    let beat = {
        let (path, beating) = (dir.join("host.log"), Arc::clone(&beating));
        std::thread::spawn(move || {
            let r = Region::open(path, RegionKind::File).unwrap();
            let c = Control::new(&r).unwrap();
            while beating.load(Ordering::Relaxed) {
                c.closure_tick();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let (code, v) = status(&cfg);
    assert_eq!(
        (code, &v["armed"]),
        (0, &serde_json::Value::Bool(true)),
        "{v}"
    );
    assert_eq!(v["closure_pid"], 4242);
    assert!(v["why_not"].is_null(), "{v}");

    // Its beat stops: dead or hung.
    beating.store(false, Ordering::Relaxed);
    beat.join().unwrap();
    let (code, v) = status(&cfg);
    assert_eq!(code, 3, "{v}");
    let why = v["why_not"].as_str().unwrap();
    assert!(why.contains("4242") && why.contains("not beaten"), "{why}");

    // The text form says the same.
    let out = Command::new(env!("CARGO_BIN_EXE_tg-closure"))
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("NOT ARMED") && text.contains("4242"),
        "{text}"
    );

    // A clean shutdown: nothing to arm on.
    control.set_closure_pid(0);
    control.set_state(LogState::CleanShutdown, 0).unwrap();
    let (code, v) = status(&cfg);
    assert_eq!(code, 3);
    assert!(v["why_not"].as_str().unwrap().contains("clean"), "{v}");
    drop(log);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn status_without_a_closure_section_or_a_log_says_what_is_missing() {
    let dir = testkit::scratch("closure-status-missing");
    let cfg = config(&dir, "");
    let out = Command::new(env!("CARGO_BIN_EXE_tg-closure"))
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("host.log"),
        "names the log it could not read: {err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout on an error");
    std::fs::remove_dir_all(dir).unwrap();
}
