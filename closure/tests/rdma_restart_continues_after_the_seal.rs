//! The restart path, end to end: `tg-closure run` (serving, not `--once`)
//! takes over a SIGKILLed host, seals its epoch and runs the restart
//! command, which starts a new host on the same log. That host replays its
//! log (checking every record the first one left), starts the next epoch
//! and goes on: its LSNs continue right after the seal's. The closure
//! re-arms on it (new pid, new epoch), the host reports takeover armed, and
//! the replica admits the new epoch after the seal and replays both: its
//! image holds the first epoch's records, the seal, then the second
//! epoch's records, at the host's positions byte for byte, and its applied
//! LSN reaches the second host's last commit.

mod common;

use std::time::{Duration, Instant};

use common::{assert_replica_holds_host, bin, wait_exit, Node};

/// The restarted host's run: long enough (at its rate) for the closure to
/// re-arm on it while it runs.
const RESTART_RECORDS: u64 = 400;
const RESTART_RATE: u64 = 100;

#[test]
#[ignore = "rdma: needs an RDMA device (TG_RDMA_DEVICE) and real processes; runs in the rxe VM"]
fn rdma_restart_continues_after_the_seal() {
    let dir = std::env::temp_dir().join(format!("tg-closure-restart-{}", std::process::id()));
    // The restart command: a shell only for the redirections; `exec` keeps
    // the pid, so the closure's `restart_pid` is the new host's.
    let restart = format!(
        "exec {bench} -v -v load --quiet --config {dir}/tailguard.yaml --records {RESTART_RECORDS} \
         --rate {RESTART_RATE} --seed 202 --json {dir}/host2.json > {dir}/host2.out 2> {dir}/host2.err",
        bench = bin("tg-bench").display(),
        dir = dir.display(),
    );
    let mut node = Node::new(
        "closure-restart",
        &format!("  heartbeat-interval-ms: 50\n  restart: [/bin/sh, -c, {restart:?}]\n"),
    );
    assert_eq!(
        node.dir, dir,
        "the restart command must point into the node's folder"
    );
    node.start_replica();
    let (mut host, host_out) = node.start_host(1_000_000, 101, Some(2000));
    node.first_commit(&host_out);
    let (mut closure, closure_out) = node.start_closure_serving();
    let json = |line: String, prefix: &str| -> serde_json::Value {
        serde_json::from_str(line.strip_prefix(prefix).unwrap()).unwrap()
    };
    let armed1 = node.armed(&closure_out, Duration::from_secs(30));
    assert_eq!(armed1["host_pid"].as_u64(), Some(u64::from(host.id())));
    let epoch1 = armed1["epoch"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(500));

    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();
    let mut committed1 = Vec::new();
    host_out.drain(|l| {
        if let Some(n) = l.strip_prefix("committed ") {
            committed1.push(n.parse::<u64>().unwrap());
        }
    });
    let killed = Instant::now();
    let report = json(
        closure_out
            .wait_for("takeover ", Duration::from_secs(30), |_| {})
            .unwrap_or_else(|| panic!("no takeover in 30 s\n{}", node.logs())),
        "takeover ",
    );
    let seal_lsn = report["seal_lsn"].as_u64().unwrap();
    let host2_pid = report["restart_pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no restart command ran: {report}"));
    assert_eq!(report["epoch"].as_u64(), Some(epoch1), "{report}");

    // The closure re-arms on the restarted host at the next epoch.
    let armed2 = json(
        closure_out
            .wait_for("armed ", Duration::from_secs(60), |_| {})
            .unwrap_or_else(|| panic!("closure did not re-arm in 60 s\n{}", logs(&node))),
        "armed ",
    );
    let rearmed = killed.elapsed();
    assert_eq!(armed2["host_pid"].as_u64(), Some(host2_pid), "{armed2}");
    assert_eq!(armed2["epoch"].as_u64(), Some(epoch1 + 1), "{armed2}");

    // The restarted host finishes cleanly: the closure stands down (and
    // stays up, waiting for the next host).
    let stood = closure_out
        .wait_for("stood-down ", Duration::from_secs(120), |_| {})
        .unwrap_or_else(|| panic!("restarted host did not finish in 120 s\n{}", logs(&node)));
    assert!(stood.contains("CleanShutdown"), "{stood}");
    assert!(
        closure.try_wait().unwrap().is_none(),
        "the serving closure exited after standing down\n{}",
        logs(&node)
    );
    let h2: serde_json::Value = serde_json::from_str(&node.log("host2.json"))
        .unwrap_or_else(|e| panic!("restarted host left no JSON ({e})\n{}", logs(&node)));

    // The restarted host replayed what the first one left, up to the seal,
    // and its LSNs continue right after the seal.
    let replayed = &h2["replayed"];
    assert_eq!(replayed["was_sealed"], true, "{h2}");
    assert_eq!(replayed["foreign"], 0, "records host 1 did not write: {h2}");
    assert_eq!(replayed["last_lsn"].as_u64(), Some(seal_lsn - 1), "{h2}");
    let last1 = *committed1.last().unwrap();
    assert!(
        last1 < seal_lsn,
        "host 1 committed {last1} past the seal {seal_lsn}"
    );
    assert_eq!(
        h2["results"]["first_lsn"].as_u64(),
        Some(seal_lsn + 1),
        "{h2}"
    );
    let last2 = h2["results"]["last_lsn"].as_u64().unwrap();
    assert_eq!(last2, seal_lsn + RESTART_RECORDS);
    let lines: Vec<u64> = node
        .log("host2.out")
        .lines()
        .filter_map(|l| l.strip_prefix("committed ")?.parse().ok())
        .collect();
    assert_eq!(lines, (seal_lsn + 1..=last2).collect::<Vec<_>>());
    let err2 = node.log("host2.err");
    assert!(
        err2.contains("takeover armed"),
        "host 2 never reported takeover armed:\n{err2}"
    );
    assert!(err2.contains("writing a new epoch"), "{err2}");

    // The replica holds both epochs at the host's positions and replays
    // them: epoch 1's records, its seal, then epoch 2's.
    let records = assert_replica_holds_host(&node);
    let seal = records
        .iter()
        .position(|r| r.kind == "seal")
        .unwrap_or_else(|| panic!("no seal in the shared history"));
    assert_eq!(records[seal].lsn, seal_lsn);
    assert_eq!(records[seal].epoch, epoch1);
    assert!(records[..seal].iter().all(|r| r.epoch == epoch1));
    let after: Vec<_> = records[seal + 1..]
        .iter()
        .filter(|r| r.kind == "data")
        .collect();
    assert_eq!(after.len() as u64, RESTART_RECORDS);
    assert!(after.iter().all(|r| r.epoch == epoch1 + 1));
    assert_eq!(after.first().unwrap().lsn, seal_lsn + 1);
    assert_eq!(after.last().unwrap().lsn, last2);
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let s = node.replica_status();
        if s["next_lsn"].as_u64() == Some(last2 + 1) || Instant::now() > end {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The replica's replay progress (recorded in its region's control
    // block by the replay thread) is past the second host's last record.
    assert_eq!(status["next_lsn"].as_u64(), Some(last2 + 1), "{status}");
    assert_eq!(status["epoch"].as_u64(), Some(epoch1 + 1), "{status}");
    assert_eq!(status["sealed"], false, "{status}");

    eprintln!(
        "restart: sealed epoch {epoch1} at LSN {seal_lsn} (tail durable {} us after detection); \
         host 2 (pid {host2_pid}) replayed {} records in {} us; closure re-armed {rearmed:?} after \
         the kill at epoch {}; replica applied to LSN {last2}",
        report["tail_durable_us"],
        replayed["records"],
        replayed["micros"],
        epoch1 + 1
    );
    let _ = closure.kill();
    let _ = wait_exit(&mut closure, Duration::from_secs(10), "tg-closure", || {
        String::new()
    });
}

fn logs(node: &Node) -> String {
    format!(
        "{}\n--- host2.err\n{}\n--- host2.out (tail)\n{}",
        node.logs(),
        node.log("host2.err"),
        node.log("host2.out")
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    )
}
