//! A host that finishes and closes its log cleanly is not taken over: the
//! closure stands down, the log is not sealed, the replica is not sealed.

mod common;

use std::time::Duration;

use common::{dump, wait_exit, Node};

/// 3000 records at 100/s: the closure arms while the host runs (arming
/// takes seconds under TCG emulation, over ten on a loaded machine).
const RECORDS: u64 = 3000;

#[test]
#[ignore = "rdma: needs an RDMA device (TG_RDMA_DEVICE) and real processes; runs in the rxe VM"]
fn rdma_clean_shutdown_is_no_takeover() {
    let mut node = Node::new("closure-clean", "");
    node.start_replica();
    let (mut host, host_out) = node.start_host(RECORDS, 7, Some(100));
    node.first_commit(&host_out);
    let (mut closure, closure_out) = node.start_closure();
    node.armed(&closure_out, Duration::from_secs(30));
    let st = wait_exit(&mut host, Duration::from_secs(120), "tg-bench load", || {
        node.logs()
    });
    assert!(st.success(), "host failed: {st}\n{}", node.logs());
    let st = wait_exit(&mut closure, Duration::from_secs(30), "tg-closure", || {
        node.logs()
    });
    assert!(st.success(), "tg-closure failed: {st}\n{}", node.logs());
    let line = closure_out
        .wait_for("stood-down ", Duration::from_secs(5), |l| {
            assert!(
                !l.starts_with("takeover "),
                "a clean shutdown was taken over: {l}"
            );
        })
        .unwrap_or_else(|| panic!("the closure did not stand down\n{}", node.logs()));
    assert!(line.contains("CleanShutdown"), "{line}");
    let host = dump(&node.host_log());
    assert_eq!(
        host.iter().filter(|d| d.kind == "data").count() as u64,
        RECORDS
    );
    assert!(
        host.iter().all(|d| d.kind != "seal"),
        "no seal after a clean shutdown"
    );
    let status = node.replica_status();
    assert_eq!(status["sealed"], false, "replica status: {status}");
}
