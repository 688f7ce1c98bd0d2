//! A takeover that cannot reach its replica fails with a named error and
//! leaves the host's log as a crash would: never marked cleanly shut down
//! (a clean mark would let a host open a log a hung host may still write,
//! and tell the next closure there is nothing to take over), no seal on
//! the replica, and the log still opens with every record it held.

mod common;

use std::time::Duration;

use common::{dump, wait_exit, Node};
use logcore::{Image, Log, LogState, RegionKind};

#[test]
#[ignore = "rdma: needs an RDMA device (TG_RDMA_DEVICE) and real processes; runs in the rxe VM"]
fn rdma_failed_takeover_leaves_the_log_unclean() {
    let mut node = Node::new("closure-failed", "  heartbeat-interval-ms: 50\n");
    node.start_replica();
    let (mut host, host_out) = node.start_host(1_000_000, 11, Some(500));
    node.first_commit(&host_out);
    let (mut closure, closure_out) = node.start_closure();
    node.armed(&closure_out, Duration::from_secs(30));
    // The replica dies first, then the host: the closure has no replica
    // to ship the tail to or seal.
    let mut replica = node.replica.take().unwrap();
    replica.kill().unwrap();
    replica.wait().unwrap();
    host.kill().unwrap();
    host.wait().unwrap();
    let st = wait_exit(&mut closure, Duration::from_secs(120), "tg-closure", || {
        node.logs()
    });
    assert!(
        !st.success(),
        "a takeover with no replica must fail\n{}",
        node.logs()
    );
    let bytes = std::fs::read(node.host_log()).unwrap();
    let state = Image::parse(&bytes).unwrap().control().state;
    assert_ne!(
        state,
        LogState::CleanShutdown,
        "a failed takeover marked the log cleanly shut down\n{}",
        node.logs()
    );
    let err = node.log("closure.err");
    assert!(
        err.contains("r0"),
        "the closure's error names the replica:\n{err}"
    );
    assert!(
        err.contains("not cleanly shut down"),
        "the closure says how it left the log:\n{err}"
    );

    let records = dump(&node.host_log())
        .iter()
        .filter(|d| d.kind == "data")
        .count();
    assert!(records > 0);
    // The closure is gone: a host recovers the log as after a crash.
    let log = Log::open(node.host_log(), RegionKind::File).unwrap();
    assert_ne!(log.recovery().previous_state, LogState::CleanShutdown);
    drop(log);
    assert_eq!(
        dump(&node.host_log())
            .iter()
            .filter(|d| d.kind == "data")
            .count(),
        records,
        "every record kept"
    );
}
