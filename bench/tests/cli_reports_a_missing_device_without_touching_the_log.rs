//! A config naming an RDMA device this machine does not have ends with one
//! line saying how to get one (or which devices exist), exit 1, and no log
//! file created. Needs no device: the name cannot exist anywhere.

mod common;

use common::{assert_one_line_error, scratch, tg_bench, write_config};

#[test]
fn a_device_that_is_not_there_is_one_line_and_leaves_no_log() {
    let dir = scratch("no-device");
    let cfg = write_config(&dir, "tgnosuchdev9", common::free_port(), 1 << 20);
    for args in [
        &["latency", "--sizes", "8", "--iterations", "1"][..],
        &[
            "throughput",
            "--threads",
            "1",
            "--batch",
            "1",
            "--seconds",
            "0.1",
        ],
        &["load", "--records", "1"],
    ] {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--config", cfg.to_str().unwrap()]);
        let out = tg_bench(&a);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        // Without RDMA in the kernel: how to load rxe. With RDMA: the
        // devices that do exist.
        let what = if err.contains("no RDMA") {
            "rdma link add"
        } else {
            "RDMA device 'tgnosuchdev9' not found"
        };
        assert_one_line_error(&out, what);
        assert!(
            !dir.join("host.log").exists(),
            "{args:?} created the log before finding the device"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
