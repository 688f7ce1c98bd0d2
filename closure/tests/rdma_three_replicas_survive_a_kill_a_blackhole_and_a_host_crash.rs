//! Three replicas on real verbs (three `tg-replica` processes on one rxe
//! device), `commit: sync, acks: 2`, a serving closure with a restart
//! command (issue 13, section 3):
//!
//! 1. r1 is SIGKILLed under load: commits go on through r0 and r2.
//! 2. r1 is restarted: it is caught up from the host's ring.
//! 3. r2 is blackholed (SIGSTOP: its control channel stops answering; the
//!    closure's keep-alive to it hangs) and then the host is SIGKILLed: the
//!    closure seals r0 and r1 within its bound (the silent r2 neither
//!    stalls its watch loop nor the seal), names r2 as missed, and runs the
//!    restart command.
//! 4. r2 resumes; the restarted host commits at the next epoch through all
//!    three, and r2 is caught up.
//!
//! Every replica's image then holds every record of the host's log from
//! its head on, at the same positions, byte for byte.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_region_holds_host, bin, wait_exit, Node, Topology};

const RESTART_RECORDS: u64 = 300;

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

fn note(l: &str, committed: &mut u64) {
    if let Some(n) = l.strip_prefix("committed ") {
        *committed = n.parse().unwrap();
    }
}

/// Waits (bounded) for `n` more commits of the host.
fn more(node: &Node, host_out: &testkit::Lines, n: u64, committed: &mut u64, why: &str) {
    let before = *committed;
    let t = Instant::now();
    while *committed < before + n {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "{why}: commits stalled at LSN {committed}\n{}",
            node.logs()
        );
        host_out.drain(|l| note(l, committed));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every log of the run, for failure messages.
fn logs(node: &Node) -> String {
    let mut out = node.logs();
    for f in [
        "host2.err",
        "replica-r1.log",
        "replica-r1-again.log",
        "replica-r2.log",
    ] {
        out.push_str(&format!("\n--- {f}\n{}", node.log(f)));
    }
    out
}

/// `tg-replica status --json` of the replica whose config is `cfg`.
fn status(cfg: &std::path::Path) -> serde_json::Value {
    testkit::replica_status(cfg)
}

#[test]
#[ignore = "rdma: needs an RDMA device (TG_RDMA_DEVICE) and real processes; runs in the rxe VM"]
fn three_replicas_survive_a_kill_a_blackhole_and_a_host_crash() {
    let dir = std::env::temp_dir().join(format!("tg-three-replicas-{}", std::process::id()));
    let restart = format!(
        "exec {bench} -v -v load --quiet --config {dir}/tailguard.yaml --records {RESTART_RECORDS} \
         --rate 100 --seed 303 --hold-ms 60000 > {dir}/host2.out 2> {dir}/host2.err",
        bench = bin("tg-bench").display(),
        dir = dir.display(),
    );
    let mut node = Node::with(
        "three-replicas",
        &format!(
            "  heartbeat-interval-ms: 50\n  keepalive-ms: 500\n  restart: [/bin/sh, -c, {restart:?}]\n"
        ),
        &Topology {
            commit: "  policy: sync\n  acks: 2\n",
            replicas: 3,
        },
    );
    assert_eq!(node.dir, dir);
    node.start_replica();
    node.start_spares();
    let (mut host, host_out) = node.start_host(1_000_000, 31, Some(300));
    let mut committed = node.first_commit(&host_out);
    let (mut closure, closure_out) = node.start_closure_serving();
    let armed = node.armed(&closure_out, Duration::from_secs(60));
    assert_eq!(armed["replicas"], 3, "{armed}");
    let epoch1 = armed["epoch"].as_u64().unwrap();
    // 1. r1 dies; r0 and r2 are the two acks.
    node.kill_spare(0);
    more(&node, &host_out, 200, &mut committed, "r1 killed");

    // 2. r1 comes back and is caught up.
    let r1 = &mut node.spares[0];
    r1.process = Some(testkit::start_replica(
        &r1.cfg_path,
        r1.port,
        &node.dir.join("replica-r1-again.log"),
    ));
    let r1_cfg = node.spares[0].cfg_path.clone();
    more(&node, &host_out, 200, &mut committed, "r1 restarted");
    let t = Instant::now();
    loop {
        let r0 = status(&node.cfg_path)["durable_tail"].as_u64().unwrap();
        let r1 = status(&r1_cfg)["durable_tail"].as_u64().unwrap();
        if r1 >= r0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "r1 not caught up: {r1} < r0's {r0}\n{}",
            node.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // 3. r2 is blackholed, long enough for the closure's keep-alive to it
    // to hang; then the host dies.
    let r2_pid = node.spares[1].process.as_ref().unwrap().id();
    signal(r2_pid, "-STOP");
    std::thread::sleep(Duration::from_millis(1500));
    more(
        &node,
        &host_out,
        50,
        &mut committed,
        "r2 blackholed (r0 and r1 ack)",
    );
    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();
    let killed = Instant::now();
    host_out.drain(|l| note(l, &mut committed));
    let report = closure_out
        .wait_for("takeover ", Duration::from_secs(60), |_| {})
        .unwrap_or_else(|| panic!("no takeover in 60 s\n{}", node.logs()));
    let took = killed.elapsed();
    let r: serde_json::Value =
        serde_json::from_str(report.strip_prefix("takeover ").unwrap()).unwrap();
    println!("takeover after {took:?}: {r}");
    let missed = r["replicas_missed"].as_array().unwrap();
    assert_eq!(missed.len(), 1, "{r}");
    assert_eq!(missed[0]["replica"], "r2", "{r}");
    // The control timeout is 15 s: a watch loop or a seal waiting on the
    // silent r2 would take at least that.
    let sealed_us = r["sealed_us"].as_u64().unwrap();
    assert!(
        sealed_us < 10_000_000,
        "sealed {sealed_us} µs after detection: the silent replica held the takeover\n{}",
        node.logs()
    );
    assert!(
        took < Duration::from_secs(12),
        "takeover reported {took:?} after the kill\n{}",
        node.logs()
    );
    assert!(r["restart_pid"].as_u64().is_some(), "no restart: {r}");
    let seal_lsn = r["seal_lsn"].as_u64().unwrap();
    for cfg in [&node.cfg_path, &r1_cfg] {
        let st = status(cfg);
        assert_eq!(st["sealed"], true, "{st}");
        assert_eq!(st["epoch"].as_u64(), Some(epoch1), "{st}");
        assert_eq!(st["durable_tail"], r["sealed_at"], "{st}");
    }

    // 4. r2 resumes; the restarted host commits at the next epoch and r2
    // is caught up.
    signal(r2_pid, "-CONT");
    let armed2 = node.armed(&closure_out, Duration::from_secs(90));
    assert_eq!(armed2["epoch"].as_u64(), Some(epoch1 + 1), "{armed2}");
    assert_eq!(armed2["replicas"], 3, "{armed2}");
    let t = Instant::now();
    let last2 = loop {
        let done = node
            .log("host2.out")
            .lines()
            .filter(|l| l.starts_with("committed "))
            .count() as u64;
        if done == RESTART_RECORDS {
            break seal_lsn + RESTART_RECORDS;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the restarted host committed {done} of {RESTART_RECORDS}\n{}",
            logs(&node)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let lines: Vec<u64> = node
        .log("host2.out")
        .lines()
        .filter_map(|l| l.strip_prefix("committed ")?.parse().ok())
        .collect();
    assert_eq!(lines, (seal_lsn + 1..=last2).collect::<Vec<_>>());
    // The restarted host holds its log open: every replica reaches its tail.
    let host_tail = {
        let records = testkit::dump(&node.host_log(), false);
        let last = records.last().unwrap();
        last.pos + logcore::record_len(last.len)
    };
    let cfgs = [
        node.cfg_path.clone(),
        r1_cfg.clone(),
        node.spares[1].cfg_path.clone(),
    ];
    let t = Instant::now();
    for cfg in &cfgs {
        loop {
            let st = status(cfg);
            if st["durable_tail"].as_u64().unwrap() >= host_tail {
                assert_eq!(st["epoch"].as_u64(), Some(epoch1 + 1), "{st}");
                assert_eq!(st["sealed"], false, "{st}");
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(90),
                "{} not caught up to {host_tail}: {st}\n{}",
                cfg.display(),
                logs(&node)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let regions = [
        node.replica_region(),
        node.dir.join("replica-r1.region"),
        node.dir.join("replica-r2.region"),
    ];
    for region in &regions {
        let records = assert_region_holds_host(&node, region);
        assert!(
            records
                .iter()
                .any(|d| d.kind == "seal" && d.lsn == seal_lsn),
            "{}: the shared history has no seal at {seal_lsn}",
            region.display()
        );
        assert!(
            records
                .iter()
                .any(|d| d.kind == "data" && d.lsn == last2 && d.epoch == epoch1 + 1),
            "{}: the restarted host's last record is missing",
            region.display()
        );
    }
    signal(closure.id(), "-TERM");
    let st = wait_exit(&mut closure, Duration::from_secs(20), "tg-closure", || {
        node.logs()
    });
    assert!(st.success(), "{st}");
    // The restarted host is the restart command's child, not ours.
    if let Some(pid) = r["restart_pid"].as_u64() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}
