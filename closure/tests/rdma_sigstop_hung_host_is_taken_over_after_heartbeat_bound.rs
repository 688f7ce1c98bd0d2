//! A hung host (SIGSTOP: alive, not beating) is taken over once its
//! heartbeat has been still for the configured bound, not before: the
//! closure kills it first (`kill-hung-host`, the default), and the replica
//! then holds every record of the local log followed by the seal, and
//! reports the stream sealed.

mod common;

use std::time::{Duration, Instant};

use common::{assert_replica_holds_host, wait_exit, Node};

const TIMEOUT_MS: u64 = 500;

#[test]
#[ignore = "rdma: needs an RDMA device (TG_RDMA_DEVICE) and real processes; runs in the rxe VM"]
fn rdma_sigstop_hung_host_is_taken_over_after_heartbeat_bound() {
    let mut node = Node::new(
        "closure-hang",
        &format!("  heartbeat-interval-ms: 50\n  heartbeat-timeout-ms: {TIMEOUT_MS}\n"),
    );
    node.start_replica();
    let (mut host, host_out) = node.start_host(1_000_000, 11, None);
    node.first_commit(&host_out);
    let (mut closure, closure_out) = node.start_closure();
    node.armed(&closure_out, Duration::from_secs(30));
    // Let the closure see a few beats (a host that never beat is judged by
    // its pid only).
    std::thread::sleep(Duration::from_millis(300));
    let pid = i32::try_from(host.id()).unwrap();
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    let stopped_at = Instant::now();
    let st = wait_exit(&mut closure, Duration::from_secs(60), "tg-closure", || {
        node.logs()
    });
    let waited = stopped_at.elapsed();
    let report = closure_out
        .wait_for("takeover ", Duration::from_secs(5), |_| {})
        .unwrap_or_else(|| panic!("no takeover report (closure {st})\n{}", node.logs()));
    assert!(st.success(), "tg-closure failed: {st}\n{}", node.logs());
    let r: serde_json::Value =
        serde_json::from_str(report.strip_prefix("takeover ").unwrap()).unwrap();
    assert!(r["reason"].as_str().unwrap().starts_with("hung"), "{r}");
    assert!(
        waited >= Duration::from_millis(TIMEOUT_MS),
        "taken over {waited:?} after SIGSTOP, before the {TIMEOUT_MS} ms bound"
    );
    let records = assert_replica_holds_host(&node);
    assert_eq!(records.last().unwrap().kind, "seal");
    let status = node.replica_status();
    assert_eq!(status["sealed"], true, "replica status: {status}");
    eprintln!(
        "hang: taken over {waited:?} after SIGSTOP (bound {TIMEOUT_MS} ms): {}; tail durable {} us after detection",
        r["reason"], r["tail_durable_us"]
    );
    assert_eq!(r["host_killed"], true, "{r}");
    // Killed by the closure: gone without being resumed.
    let st = wait_exit(&mut host, Duration::from_secs(5), "the hung host", || {
        node.logs()
    });
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(9),
        "the hung host should have died of SIGKILL: {st}"
    );
}
