//! Running `tg-bench` as a user does: the binary, a config in a temporary
//! folder and, for device tests, a real `tg-replica` beside it (after
//! replica/tests/common/mod.rs). Device tests are the `#[ignore = "rdma: ..."]`
//! ones; ci/test runs them in the rxe VM.
#![allow(dead_code, unused_imports, unreachable_pub)]

pub mod schema;
pub mod svg;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use testkit::{free_port, rdma_device, write_key};

pub const BENCH: &str = env!("CARGO_BIN_EXE_tg-bench");

/// `tg-bench ARGS`, bounded: a test must not hang on a stuck run.
pub fn tg_bench(args: &[&str]) -> Output {
    let mut child = Command::new(BENCH)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("tg-bench {args:?} ran for more than 600 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Asserts the run failed the way a person should see it: a non-zero exit
/// and exactly one line on stderr, starting `tg-bench: `, containing `what`.
pub fn assert_one_line_error(out: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "exit 0 for an error; stderr: {err}");
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "want one line, got: {err}");
    assert!(err.starts_with("tg-bench: "), "{err}");
    assert!(err.contains(what), "want {what:?} in: {err}");
    err
}

pub fn scratch(name: &str) -> PathBuf {
    testkit::scratch(&format!("bench-{name}"))
}

/// A sync apm config for host `host-a`, replica `r0` on `port`, with a
/// closure identity (`host-a-closure`) on the replica's allow-list, for
/// `takeover`.
pub fn write_config(dir: &Path, device: &str, port: u16, log_size: u64) -> PathBuf {
    write_key(&dir.join("host-a.key"), 7);
    write_key(&dir.join("closure.key"), 9);
    let region = dir.join("replica.region");
    std::fs::File::create(&region)
        .unwrap()
        .set_len(log_size)
        .unwrap();
    let yaml = format!(
        "name: host-a\nlog:\n  path: {dir}/host.log\n  size-bytes: {log_size}\ndevice:\n  name: {device}\n\
         qp:\n  path-mtu: 1024\npersistence: apm\ncommit:\n  policy: sync\n  acks: 1\ncontrol-timeout-ms: 5000\n\
         replicas:\n  - name: r0\n    control: 127.0.0.1:{port}\n    key-file: host-a.key\n\
         closure:\n  name: host-a-closure\n  key-file: closure.key\n\
         replica:\n  listen: 127.0.0.1:{port}\n  region: {region}\n  epoch-file: epoch\n\
         \x20 allow:\n    - name: host-a\n      key-file: host-a.key\n\
         \x20   - name: host-a-closure\n      key-file: closure.key\n",
        dir = dir.display(),
        region = region.display(),
    );
    let path = dir.join("tailguard.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A real `tg-replica serve` on the config's port, killed on drop.
pub struct Replica {
    pub child: Child,
    pub log: PathBuf,
}

impl Replica {
    /// Starts it and waits (bounded) until it accepts.
    pub fn start(dir: &Path, cfg: &Path, port: u16) -> Replica {
        let log = dir.join("replica.log");
        let child = testkit::start_replica(cfg, port, &log);
        Replica { child, log }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
