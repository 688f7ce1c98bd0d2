//! With the device present but no tg-replica listening, tg-bench ends at
//! connect time with one line naming the replica, its address and what to
//! check, exit 1, and within the control timeout (not a commit timeout).

mod common;

use std::time::{Duration, Instant};

use common::{assert_one_line_error, free_port, rdma_device, scratch, tg_bench, write_config};

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn rdma_bench_reports_an_unreachable_replica() {
    let dir = scratch("unreachable");
    let port = free_port();
    let cfg = write_config(&dir, &rdma_device(), port, 1 << 20);
    let start = Instant::now();
    let out = tg_bench(&[
        "latency",
        "--config",
        cfg.to_str().unwrap(),
        "--sizes",
        "8",
        "--iterations",
        "1",
    ]);
    let err = assert_one_line_error(&out, &format!("127.0.0.1:{port}"));
    assert!(
        err.contains("r0") && err.contains("is tg-replica running there?"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
