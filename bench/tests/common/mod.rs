//! Running `tg-bench` as a user does: the binary, a config in a temporary
//! folder and, for device tests, a real `tg-replica` beside it (after
//! replica/tests/common/mod.rs). Device tests are the `#[ignore = "rdma: ..."]`
//! ones; ci/test runs them in the rxe VM.
#![allow(dead_code, unreachable_pub)]

pub mod schema;
pub mod svg;

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    let dir = std::env::temp_dir().join(format!("tg-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn write_key(path: &Path, byte: u8) {
    let hex: String = (0..32)
        .map(|i| format!("{:02x}", byte.wrapping_add(i)))
        .collect();
    std::fs::write(path, hex).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A writer + replica config in `dir` (key, log, epoch and region files
/// inside it): the replica region is a plain file of `log_size` bytes.
pub fn write_config(dir: &Path, device: &str, port: u16, log_size: u64) -> PathBuf {
    write_key(&dir.join("host-a.key"), 7);
    let region = dir.join("replica.region");
    std::fs::File::create(&region)
        .unwrap()
        .set_len(log_size)
        .unwrap();
    let yaml = format!(
        "name: host-a\nlog:\n  path: {dir}/host.log\n  size-bytes: {log_size}\ndevice:\n  name: {device}\n\
         qp:\n  path-mtu: 1024\npersistence: apm\ncommit:\n  policy: sync\n  acks: 1\ncontrol-timeout-ms: 5000\n\
         replicas:\n  - name: r0\n    control: 127.0.0.1:{port}\n    key-file: host-a.key\n\
         replica:\n  listen: 127.0.0.1:{port}\n  region: {region}\n  epoch-file: epoch\n\
         \x20 allow:\n    - name: host-a\n      key-file: host-a.key\n",
        dir = dir.display(),
        region = region.display(),
    );
    let path = dir.join("tailguard.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

pub fn rdma_device() -> String {
    std::env::var("TG_RDMA_DEVICE").unwrap_or_else(|_| {
        panic!("this test needs an RDMA device: set TG_RDMA_DEVICE (e.g. rxe0), or run ci/test (rxe VM)")
    })
}

/// A real `tg-replica serve` on the config's port, killed on drop.
pub struct Replica {
    pub child: Child,
    pub log: PathBuf,
}

impl Replica {
    /// Starts it and waits (bounded) until it accepts.
    pub fn start(dir: &Path, cfg: &Path, port: u16) -> Replica {
        let bin = Path::new(BENCH).with_file_name("tg-replica");
        assert!(
            bin.exists(),
            "{} not built (cargo build --workspace)",
            bin.display()
        );
        let log = dir.join("replica.log");
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "tg-replica exited with {st}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "tg-replica did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Replica { child, log }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
