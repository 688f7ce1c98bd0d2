//! A host (`tg-bench load`), its closure (`tg-closure run`) and a real
//! `tg-replica`, as separate processes on one RDMA device (rxe loopback in
//! the VM tier), configured from one YAML file in a temporary folder.
//! Device tests only: see the `#[ignore = "rdma: ..."]` marks.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use testkit::{bin, rdma_device, wait_exit, Dumped, Lines};
use testkit::{free_port, write_key};

pub struct Node {
    pub dir: PathBuf,
    pub cfg_path: PathBuf,
    pub port: u16,
    pub replica: Option<Child>,
    /// More replicas (`r1`, ...): each its own `tg-replica` with its own
    /// config file, region and epoch file.
    pub spares: Vec<Spare>,
}

/// A replica beyond `r0`.
pub struct Spare {
    pub name: String,
    pub cfg_path: PathBuf,
    pub port: u16,
    pub process: Option<Child>,
}

/// How the host commits and how many replicas it has.
pub struct Topology {
    /// The `commit:` section's lines (indented by two).
    pub commit: &'static str,
    /// Replicas, `r0` first.
    pub replicas: usize,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            commit: "  policy: async\n  max-lag-bytes: 262144\n",
            replicas: 1,
        }
    }
}

impl Node {
    /// A folder with keys, a replica region file and the config (control
    /// timeout 15 s: a replica formatting its region for the first writer
    /// under a loaded TCG VM has taken over 5 s to accept): host
    /// `host-a` (commit async), closure `host-a-closure` with the given
    /// extra `closure:` lines, replica `r0`.
    pub fn new(name: &str, closure_extra: &str) -> Node {
        Node::with(name, closure_extra, &Topology::default())
    }

    /// [`Node::new`] with another commit policy and more replicas: `r1`...
    /// listen on ports of their own, with `replica-rN.region`,
    /// `epoch-rN` and `tailguard-rN.yaml` (the same file but for its
    /// `replica:` section).
    pub fn with(name: &str, closure_extra: &str, t: &Topology) -> Node {
        let dir = std::env::temp_dir().join(format!("tg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write_key(&dir.join("host-a.key"), 7);
        write_key(&dir.join("closure.key"), 9);
        let size = 4u64 << 20;
        let ports: Vec<u16> = (0..t.replicas.max(1)).map(|_| free_port()).collect();
        let port = ports[0];
        let file = |i: usize, stem: &str, ext: &str| {
            if i == 0 {
                format!("{stem}{ext}")
            } else {
                format!("{stem}-r{i}{ext}")
            }
        };
        let replicas: String = ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!("  - name: r{i}\n    control: 127.0.0.1:{p}\n    key-file: host-a.key\n")
            })
            .collect();
        let mut cfgs = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let region = dir.join(file(i, "replica", ".region"));
            std::fs::File::create(&region)
                .unwrap()
                .set_len(size)
                .unwrap();
            let yaml = format!(
            "name: host-a\nlog:\n  path: {dir}/host.log\n  size-bytes: {size}\ndevice:\n  name: {dev}\n\
             qp:\n  path-mtu: 1024\npersistence: apm\ncommit:\n{commit}\
             control-timeout-ms: 15000\n\
             replicas:\n{replicas}\
             closure:\n  name: host-a-closure\n  key-file: closure.key\n  cores: [1]\n{closure_extra}\
             replica:\n  listen: 127.0.0.1:{p}\n  region: {region}\n  epoch-file: {epoch}\n\
             \x20 allow:\n    - name: host-a\n      key-file: host-a.key\n\
             \x20   - name: host-a-closure\n      key-file: closure.key\n",
                dir = dir.display(),
                dev = rdma_device(),
                commit = t.commit,
                region = region.display(),
                epoch = file(i, "epoch", ""),
            );
            let cfg_path = dir.join(file(i, "tailguard", ".yaml"));
            std::fs::write(&cfg_path, yaml).unwrap();
            cfgs.push(cfg_path);
        }
        let spares = ports
            .iter()
            .zip(&cfgs)
            .enumerate()
            .skip(1)
            .map(|(i, (p, c))| Spare {
                name: format!("r{i}"),
                cfg_path: c.clone(),
                port: *p,
                process: None,
            })
            .collect();
        Node {
            dir,
            cfg_path: cfgs[0].clone(),
            port,
            replica: None,
            spares,
        }
    }

    /// Starts every spare replica's `tg-replica serve` (log
    /// `replica-rN.log`).
    pub fn start_spares(&mut self) {
        for s in &mut self.spares {
            s.process = Some(testkit::start_replica(
                &s.cfg_path,
                s.port,
                &self.dir.join(format!("replica-{}.log", s.name)),
            ));
        }
    }

    /// SIGKILLs spare `i` (0: `r1`).
    pub fn kill_spare(&mut self, i: usize) {
        if let Some(mut c) = self.spares[i].process.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts `tg-replica serve` and waits (bounded) until it accepts.
    pub fn start_replica(&mut self) {
        self.replica = Some(testkit::start_replica(
            &self.cfg_path,
            self.port,
            &self.dir.join("replica.log"),
        ));
    }

    /// `tg-bench load` as the host; its stdout (`committed LSN`) piped.
    pub fn start_host(&self, records: u64, seed: u64, rate: Option<u32>) -> (Child, Lines) {
        self.start_host_with(records, seed, rate, &[])
    }

    /// [`Node::start_host`] with extra `tg-bench` arguments (before `load`).
    pub fn start_host_with(
        &self,
        records: u64,
        seed: u64,
        rate: Option<u32>,
        extra: &[&str],
    ) -> (Child, Lines) {
        let log = std::fs::File::create(self.dir.join("host.err")).unwrap();
        let mut cmd = Command::new(bin("tg-bench"));
        cmd.args(extra)
            .args(["load", "--quiet", "--config"])
            .arg(&self.cfg_path)
            .args([
                "--records",
                &records.to_string(),
                "--seed",
                &seed.to_string(),
            ]);
        if let Some(r) = rate {
            cmd.args(["--rate", &r.to_string()]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let lines = Lines::new(child.stdout.take().unwrap());
        (child, lines)
    }

    /// `tg-closure run --once` (exits after one takeover or stand-down);
    /// its stdout (`armed`, `takeover`, `stood-down`) piped.
    pub fn start_closure(&self) -> (Child, Lines) {
        self.closure_process(&["--once"])
    }

    /// `tg-closure run` as a service: re-arms after each takeover.
    pub fn start_closure_serving(&self) -> (Child, Lines) {
        self.closure_process(&[])
    }

    fn closure_process(&self, extra: &[&str]) -> (Child, Lines) {
        self.closure_process_env(extra, &[])
    }

    /// `tg-closure run` with `extra` arguments and `env` set.
    pub fn closure_process_env(
        &self,
        extra: &[&str],
        env: &[(&str, &std::path::Path)],
    ) -> (Child, Lines) {
        let log = std::fs::File::create(self.dir.join("closure.err")).unwrap();
        let mut child = Command::new(bin("tg-closure"))
            .envs(env.iter().copied())
            .args(["run", "--wait-host-ms", "30000"])
            .args(extra)
            .arg("--config")
            .arg(&self.cfg_path)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let lines = Lines::new(child.stdout.take().unwrap());
        (child, lines)
    }

    /// Waits (30 s) for the host's first `committed LSN` line; returns the LSN.
    pub fn first_commit(&self, host_out: &Lines) -> u64 {
        let l = host_out
            .wait_for("committed ", Duration::from_secs(30), |_| {})
            .unwrap_or_else(|| panic!("host committed nothing in 30 s\n{}", self.logs()));
        l["committed ".len()..].parse().unwrap()
    }

    /// Waits (bounded) for the closure's next `armed {json}` line; returns
    /// the JSON.
    pub fn armed(&self, closure_out: &Lines, within: Duration) -> serde_json::Value {
        let l = closure_out
            .wait_for("armed ", within, |_| {})
            .unwrap_or_else(|| panic!("closure did not arm in {within:?}\n{}", self.logs()));
        serde_json::from_str(&l["armed ".len()..]).unwrap()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// All three logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- host.err\n{}\n--- closure.err\n{}\n--- replica.log\n{}",
            self.log("host.err"),
            self.log("closure.err"),
            self.log("replica.log")
        )
    }

    /// `tg-replica status --json`.
    pub fn replica_status(&self) -> serde_json::Value {
        testkit::replica_status(&self.cfg_path)
    }

    pub fn host_log(&self) -> PathBuf {
        self.dir.join("host.log")
    }

    pub fn replica_region(&self) -> PathBuf {
        self.dir.join("replica.region")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let spares = self.spares.iter_mut().filter_map(|s| s.process.take());
        for mut c in self.replica.take().into_iter().chain(spares) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `tg-log dump --jsonl` of an image.
pub fn dump(path: &std::path::Path) -> Vec<Dumped> {
    testkit::dump(path, false)
}

/// Asserts the replica's image holds, at the same positions, every record
/// of the host's local log from the replica's head on (the same `tg-log
/// dump` line, and the same bytes, header, payload and padding, in both
/// images); returns the host's records.
///
/// Records before the replica's head were applied by the replica and then
/// released from its history (it keeps a quarter to half a ring); the host,
/// which reclaims lazily and only behind that head, may still hold them.
/// What a takeover must guarantee is the other end: nothing the host
/// persisted is missing after the replica's head, up to and including the
/// tail the closure shipped.
pub fn assert_replica_holds_host(node: &Node) -> Vec<Dumped> {
    assert_region_holds_host(node, &node.replica_region())
}

/// [`assert_replica_holds_host`] for the replica region at `region` (a
/// spare's: `node.dir.join("replica-r1.region")`).
pub fn assert_region_holds_host(node: &Node, region: &std::path::Path) -> Vec<Dumped> {
    let replica = dump(region);
    let first = replica.first().map_or(u64::MAX, |r| r.pos);
    let host: Vec<Dumped> = dump(&node.host_log())
        .into_iter()
        .filter(|h| h.pos >= first)
        .collect();
    assert!(
        !host.is_empty(),
        "the replica's history and the host's log do not overlap\n{}",
        node.logs()
    );
    let host_img = std::fs::read(node.host_log()).unwrap();
    let replica_img = std::fs::read(region).unwrap();
    let g = logcore::Image::parse(&host_img)
        .unwrap()
        .superblock()
        .geometry;
    let by_pos: std::collections::HashMap<u64, &Dumped> =
        replica.iter().map(|r| (r.pos, r)).collect();
    for h in &host {
        match by_pos.get(&h.pos) {
            Some(r) => {
                assert_eq!(*r, h, "record at {} differs", h.pos);
                let off = g.region_offset(h.pos) as usize;
                let end = off + logcore::record_len(h.len) as usize;
                assert!(
                    host_img[off..end] == replica_img[off..end],
                    "record at {} (LSN {}) differs in its bytes",
                    h.pos,
                    h.lsn
                );
            }
            None => panic!(
                "replica lacks the host's record at {} (LSN {}); replica holds {} records up to {:?}\n{}",
                h.pos,
                h.lsn,
                replica.len(),
                replica.last().map(|r| r.pos),
                node.logs()
            ),
        }
    }
    host
}

/// A small xorshift generator for random kill points (seed printed).
pub struct Rng(pub u64);

impl Rng {
    pub fn from_time() -> Rng {
        let s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(s | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
