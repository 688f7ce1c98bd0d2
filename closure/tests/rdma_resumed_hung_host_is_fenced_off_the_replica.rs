//! With `kill-hung-host: false` the closure takes a hung (SIGSTOPped) host
//! over without killing it. When that host resumes it still holds a
//! connected queue pair and the replica's rkey, and believes it owns the
//! log: the seal must have fenced it. It fails (its commits cannot reach
//! the replica: the QP is in error and a reconnect is refused, the stream
//! being sealed at its epoch), and nothing it writes after the seal lands
//! on the replica: the replica's image is the same record for record, and
//! still sealed.

mod common;

use std::time::{Duration, Instant};

use common::{assert_replica_holds_host, dump, wait_exit, Node};

#[test]
#[ignore = "rdma: needs an RDMA device (TG_RDMA_DEVICE) and real processes; runs in the rxe VM"]
fn rdma_resumed_hung_host_is_fenced_off_the_replica() {
    let mut node = Node::new(
        "closure-fence",
        "  heartbeat-interval-ms: 50\n  heartbeat-timeout-ms: 500\n  kill-hung-host: false\n",
    );
    node.start_replica();
    let (mut host, host_out) = node.start_host(1_000_000, 21, None);
    node.first_commit(&host_out);
    let (mut closure, closure_out) = node.start_closure();
    node.armed(&closure_out, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let pid = host.id().to_string();
    let signal = |sig: &str| {
        let st = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    let st = wait_exit(&mut closure, Duration::from_secs(60), "tg-closure", || {
        node.logs()
    });
    assert!(st.success(), "tg-closure failed: {st}\n{}", node.logs());
    let report = closure_out
        .wait_for("takeover ", Duration::from_secs(5), |_| {})
        .unwrap_or_else(|| panic!("no takeover report\n{}", node.logs()));
    let r: serde_json::Value =
        serde_json::from_str(report.strip_prefix("takeover ").unwrap()).unwrap();
    assert_eq!(r["host_killed"], false, "{r}");
    let sealed = assert_replica_holds_host(&node);
    assert_eq!(sealed.last().unwrap().kind, "seal");
    let before = dump(&node.replica_region());
    let mut committed_before = 0u64;
    host_out.drain(|l| {
        if let Some(n) = l.strip_prefix("committed ") {
            committed_before = n.parse().unwrap();
        }
    });

    // Resume the stale host: it must fail, and write nothing to the replica.
    signal("-CONT");
    let resumed = Instant::now();
    let st = wait_exit(
        &mut host,
        Duration::from_secs(60),
        "the resumed host",
        || node.logs(),
    );
    let mut committed_after = Vec::new();
    host_out.drain(|l| {
        if let Some(n) = l.strip_prefix("committed ") {
            committed_after.push(n.parse::<u64>().unwrap());
        }
    });
    assert!(
        !st.success(),
        "the resumed host finished as if nothing happened: {st}\n{}",
        node.logs()
    );
    let err = node.log("host.err");
    assert!(
        err.contains("sealed") || err.contains("fenced") || err.contains("stale"),
        "the resumed host's error should say it was fenced:\n{err}"
    );
    let after = dump(&node.replica_region());
    assert_eq!(
        after.len(),
        before.len(),
        "records landed on the replica after the seal\n{}",
        node.logs()
    );
    assert_eq!(after, before, "the replica's image changed after the seal");
    assert!(
        node.log("replica.log")
            .contains("fencing writer: its epoch is being sealed"),
        "the replica should say it fenced the sealed epoch's writers\n{}",
        node.logs()
    );
    let status = node.replica_status();
    assert_eq!(status["sealed"], true, "replica status: {status}");
    assert_eq!(
        status["epoch"].as_u64(),
        Some(sealed.last().unwrap().epoch),
        "{status}"
    );
    eprintln!(
        "fence: resumed host failed {:?} after SIGCONT ({st}); it reported {} more local commits \
         (async, within its lag bound) after LSN {committed_before}, none of which reached the replica ({} records, sealed)",
        resumed.elapsed(),
        committed_after.len(),
        after.len()
    );
}
