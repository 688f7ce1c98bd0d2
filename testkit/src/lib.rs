//! The shared harness of tailguard's device tests: the workspace's own
//! binaries run as real processes (`tg-replica`, `tg-bench`, `tg-closure`,
//! `tg-log`) on the RDMA device and devdax named by the environment (the
//! rxe VM of `ci/test` sets them). A dev-dependency only.
//!
//! Everything here waits with a bound and panics with what to do: a device
//! test must fail loudly, never hang or pass without its device.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// The RDMA device to test on (`TG_RDMA_DEVICE`); panics saying how to get
/// one when unset.
#[must_use]
pub fn rdma_device() -> String {
    std::env::var("TG_RDMA_DEVICE").unwrap_or_else(|_| {
        panic!("this test needs an RDMA device: set TG_RDMA_DEVICE (e.g. rxe0), or run ci/test (rxe VM)")
    })
}

/// The devdax device to test on (`TG_PMEM_DEVDAX`); panics when unset.
#[must_use]
pub fn devdax() -> PathBuf {
    PathBuf::from(std::env::var("TG_PMEM_DEVDAX").unwrap_or_else(|_| {
        panic!("this test needs a devdax device: set TG_PMEM_DEVDAX=/dev/daxX.Y, or run ci/test")
    }))
}

/// A workspace binary (`tg-replica`, `tg-log`, ...) beside the running
/// test: test executables live in `target/PROFILE/deps/`, binaries one
/// level up.
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let p = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/PROFILE/deps")
        .join(name);
    assert!(
        p.exists(),
        "{} not built (cargo build --workspace)",
        p.display()
    );
    p
}

/// A fresh, empty folder for one test.
#[must_use]
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A TCP port free right now on 127.0.0.1.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A 32-byte hex key derived from `byte`, mode 0600 (as the config demands).
pub fn write_key(path: &Path, byte: u8) {
    let hex: String = (0..32)
        .map(|i| format!("{:02x}", byte.wrapping_add(i)))
        .collect();
    std::fs::write(path, hex).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `tg-replica serve --config CFG` with stderr to `log`, returned once it
/// accepts on `port` (30 s bound; its log is shown if it exits first).
#[must_use]
pub fn start_replica(cfg: &Path, port: u16, log: &Path) -> Child {
    let mut child = Command::new(bin("tg-replica"))
        .args(["serve", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "tg-replica exited with {st}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tg-replica did not listen within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// `tg-replica status --json --config CFG`.
#[must_use]
pub fn replica_status(cfg: &Path) -> serde_json::Value {
    let out = Command::new(bin("tg-replica"))
        .args(["status", "--json", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tg-replica status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits (bounded) for a child to exit; kills it and panics past the bound.
pub fn wait_exit(
    child: &mut Child,
    within: Duration,
    what: &str,
    logs: impl Fn() -> String,
) -> ExitStatus {
    let end = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {within:?}\n{}", logs());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines of a child's stdout, read on a thread (waits are bounded).
#[derive(Debug)]
pub struct Lines(Receiver<String>);

impl Lines {
    /// Starts reading `out`.
    #[must_use]
    pub fn new(out: ChildStdout) -> Lines {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The next line starting with `prefix` within `within` (others are
    /// passed to `seen`).
    pub fn wait_for(
        &self,
        prefix: &str,
        within: Duration,
        mut seen: impl FnMut(&str),
    ) -> Option<String> {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Some(l),
                Ok(l) => seen(&l),
                Err(_) => return None,
            }
        }
    }

    /// Every line available now.
    pub fn drain(&self, mut seen: impl FnMut(&str)) {
        while let Ok(l) = self.0.try_recv() {
            seen(&l);
        }
    }
}

/// One record of `tg-log dump --jsonl` (with `--payload`: its hex payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dumped {
    /// Its LSN.
    pub lsn: u64,
    /// Logical position: unique per record (a padding record shares the
    /// LSN of the record after it).
    pub pos: u64,
    /// Its epoch.
    pub epoch: u64,
    /// `data`, `seal`, `padding`, ...
    pub kind: String,
    /// Payload length.
    pub len: u64,
    /// The record's checksum.
    pub crc: u64,
    /// Hex payload (empty without `payload`).
    pub payload: String,
}

/// `tg-log dump --jsonl [--payload] PATH`, parsed.
#[must_use]
pub fn dump(path: &Path, payload: bool) -> Vec<Dumped> {
    let mut cmd = Command::new(bin("tg-log"));
    cmd.args(["dump", "--jsonl"]);
    if payload {
        cmd.arg("--payload");
    }
    let out = cmd.arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "tg-log dump {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Dumped {
                lsn: v["lsn"].as_u64().unwrap(),
                pos: v["pos"].as_u64().unwrap(),
                epoch: v["epoch"].as_u64().unwrap(),
                kind: v["kind"].as_str().unwrap().to_owned(),
                len: v["len"].as_u64().unwrap(),
                crc: v["crc"].as_u64().unwrap(),
                payload: v["payload"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

/// The deterministic payload of record number `i` under `seed`: 8 to
/// `max_len` bytes, content derived from both.
#[must_use]
pub fn payload(seed: u64, i: u64, max_len: u64) -> Vec<u8> {
    assert!(max_len >= 8, "payloads are at least 8 bytes");
    let mut x = (i ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let len = 8 + (x >> 7) % (max_len - 7);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Lower-case hex.
#[must_use]
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_for_a_prefix_and_pass_the_others_on() {
        let mut child = Command::new("sh")
            .args(["-c", "echo one; echo armed {}; echo two"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Lines::new(child.stdout.take().unwrap());
        let mut seen = Vec::new();
        let l = lines.wait_for("armed ", Duration::from_secs(10), |l| {
            seen.push(l.to_owned())
        });
        assert_eq!(l.as_deref(), Some("armed {}"));
        assert_eq!(seen, ["one"]);
        assert!(wait_exit(&mut child, Duration::from_secs(10), "sh", String::new).success());
        assert_eq!(
            lines.wait_for("nothing", Duration::from_millis(200), |_| {}),
            None
        );
    }

    #[test]
    #[should_panic(expected = "did not exit within")]
    fn wait_exit_is_bounded() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let _ = wait_exit(&mut child, Duration::from_millis(100), "sleep", String::new);
    }

    #[test]
    fn keys_are_private() {
        let d = scratch("testkit-key");
        write_key(&d.join("k"), 1);
        let mode = std::fs::metadata(d.join("k")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(d.join("k")).unwrap().len(), 64);
        std::fs::remove_dir_all(d).unwrap();
    }
}
