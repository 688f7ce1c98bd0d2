//! A writer and a real `tg-replica` process on one RDMA device (rxe
//! loopback in the VM tier), configured from one YAML file in a temporary
//! folder. Device tests only: see the `#[ignore = "rdma: ..."]` marks.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use fabric::config::{Config, ValidatedConfig};
use fabric::replicated::{ReplicatedLog, ReplicationOptions};
use logcore::{CreateOptions, Log};
use testkit::free_port;
pub use testkit::{devdax, hex, rdma_device, write_key, Dumped};

/// Zeroes a region's superblock so `tg-replica` sees a fresh region.
pub fn wipe_superblock(path: &Path) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = if path.starts_with("/dev") {
        2 << 20
    } else {
        4096
    };
    let mut m = unsafe_free_map(&f, len);
    m[..4096].fill(0);
    if !path.starts_with("/dev") {
        // devdax has no page cache to write back (msync is EINVAL there).
        m.flush().unwrap();
    }
}

fn unsafe_free_map(f: &std::fs::File, len: usize) -> memmap2::MmapMut {
    // memmap2's map_mut is itself `unsafe` (the file may change under the
    // mapping); the test owns the device for its duration.
    #[allow(unsafe_code)]
    // SAFETY: no other process maps the region while the test wipes it.
    unsafe {
        memmap2::MmapOptions::new().len(len).map_mut(f).unwrap()
    }
}

/// Shape of a test deployment.
#[derive(Debug, Clone)]
pub struct Shape {
    pub persistence: &'static str,
    /// `sync` or `async`.
    pub commit: &'static str,
    pub log_size: u64,
    /// The replica's region; `None`: a file in the folder.
    pub region: Option<PathBuf>,
    /// `qp.ships-in-flight`.
    pub ships_in_flight: u32,
    /// `replica.idle-session-ms`; `None`: the default (and a config a
    /// build without the key still reads).
    pub idle_session_ms: Option<u64>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            persistence: "apm",
            commit: "sync",
            log_size: 4 << 20,
            region: None,
            ships_in_flight: 1,
            idle_session_ms: None,
        }
    }
}

pub struct Node {
    pub dir: PathBuf,
    pub cfg_path: PathBuf,
    pub port: u16,
    pub shape: Shape,
    pub replica: Option<Child>,
}

impl Node {
    pub fn new(name: &str, shape: Shape) -> Node {
        let dir = std::env::temp_dir().join(format!("tg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write_key(&dir.join("host-a.key"), 7);
        let port = free_port();
        let region = shape
            .region
            .clone()
            .unwrap_or_else(|| dir.join("replica.region"));
        if shape.region.is_some() {
            wipe_superblock(&region);
        } else {
            std::fs::File::create(&region)
                .unwrap()
                .set_len(shape.log_size)
                .unwrap();
        }
        let commit = match shape.commit {
            "sync" => "policy: sync\n  acks: 1".to_owned(),
            _ => "policy: async\n  max-lag-bytes: 262144".to_owned(),
        };
        let idle = shape
            .idle_session_ms
            .map_or(String::new(), |ms| format!("  idle-session-ms: {ms}\n"));
        let yaml = format!(
            "name: host-a\nlog:\n  path: {dir}/host.log\n  size-bytes: {size}\ndevice:\n  name: {dev}\n\
             qp:\n  path-mtu: 1024\n  ships-in-flight: {ships}\npersistence: {pers}\ncommit:\n  {commit}\ncontrol-timeout-ms: 5000\n\
             replicas:\n  - name: r0\n    control: 127.0.0.1:{port}\n    key-file: host-a.key\n\
             replica:\n  listen: 127.0.0.1:{port}\n  region: {region}\n  epoch-file: epoch\n{idle}\
             \x20 allow:\n    - name: host-a\n      key-file: host-a.key\n",
            dir = dir.display(),
            size = shape.log_size,
            dev = rdma_device(),
            pers = shape.persistence,
            ships = shape.ships_in_flight,
            region = region.display(),
        );
        let cfg_path = dir.join("tailguard.yaml");
        std::fs::write(&cfg_path, yaml).unwrap();
        Node {
            dir,
            cfg_path,
            port,
            shape,
            replica: None,
        }
    }

    /// The config as the writer reads it (the `replica` section is the
    /// daemon's).
    pub fn config(&self) -> ValidatedConfig {
        Config::from_yaml_file(&self.cfg_path).unwrap()
    }

    /// Starts `tg-replica serve` and waits (bounded) until it accepts.
    pub fn start_replica(&mut self) {
        assert!(self.replica.is_none());
        self.replica = Some(testkit::start_replica(
            &self.cfg_path,
            self.port,
            &self.dir.join("replica.log"),
        ));
    }

    pub fn kill_replica(&mut self) {
        if let Some(mut c) = self.replica.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn replica_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("replica.log")).unwrap_or_default()
    }

    pub fn options(&self) -> ReplicationOptions {
        let mut o = fabric::settings::replication_options(&self.config(), None).unwrap();
        o.commit_timeout = Duration::from_secs(20);
        o
    }

    /// Creates the host log and joins it to the replica.
    pub fn writer(&self) -> ReplicatedLog {
        let log = Log::create(
            self.dir.join("host.log"),
            self.shape.log_size,
            &CreateOptions::default(),
        )
        .unwrap();
        ReplicatedLog::open(log, self.options()).unwrap()
    }

    /// `tg-replica status --json`.
    pub fn replica_status(&self) -> serde_json::Value {
        testkit::replica_status(&self.cfg_path)
    }

    /// Waits (bounded) until the replica's image holds everything up to `pos`.
    pub fn wait_replica_durable(&self, pos: u64) {
        let start = Instant::now();
        loop {
            let d = self.replica_status()["durable_tail"].as_u64().unwrap();
            if d >= pos {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "replica stuck at {d}, want {pos}: {}",
                self.replica_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn replica_region(&self) -> PathBuf {
        self.shape
            .region
            .clone()
            .unwrap_or_else(|| self.dir.join("replica.region"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_replica();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The deterministic payload of record number `i` under `seed`: 8 to 1507
/// bytes, content derived from both.
pub fn payload(seed: u64, i: u64) -> Vec<u8> {
    testkit::payload(seed, i, 1507)
}

/// `tg-log dump --jsonl --payload` of an image.
pub fn dump(path: &Path) -> Vec<Dumped> {
    testkit::dump(path, true)
}

/// Writes raw bytes to the replica's control port and returns what it
/// answered before closing (bounded).
pub fn poke(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut out);
    out
}

/// A TCP connection to the replica's control port (on 127.0.0.1) from the
/// loopback address `from` (any of 127.0.0.0/8): a second peer address on
/// one machine.
pub fn connect_from(from: std::net::Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    #[allow(unsafe_code)]
    // SAFETY: socket() takes no pointers; a negative return is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(unsafe_code)]
    // SAFETY: fd is a socket just created and owned by nothing else; the
    // stream closes it from here on, on every path.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (src, dst) = (
        sockaddr(from, 0),
        sockaddr(std::net::Ipv4Addr::LOCALHOST, port),
    );
    for (call, addr) in [("bind", &src), ("connect", &dst)] {
        let p = std::ptr::from_ref(addr).cast::<libc::sockaddr>();
        #[allow(unsafe_code)]
        // SAFETY: p points to a live sockaddr_in of `len` bytes for the
        // duration of the call; the fd is open (owned by `stream`).
        let r = unsafe {
            if call == "bind" {
                libc::bind(stream.as_raw_fd(), p, len)
            } else {
                libc::connect(stream.as_raw_fd(), p, len)
            }
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(stream)
}

/// A second admitted session of `w`'s writer identity over real verbs (its
/// own queue pair and control channel), connected the way the closure's
/// standby connects: for tests that speak to the replica directly.
pub fn second_session(
    node: &Node,
    w: &ReplicatedLog,
) -> fabric::transport::RdmaConnected<fabric::replicated::RegionMemory> {
    use fabric::replicated::{ConnectOptions, LogIdentity, RegionMemory};
    use fabric::verbs::{Access, Context, MemoryRegion, ProtectionDomain};
    let o = node.options();
    let connect = ConnectOptions {
        writer: fabric::wire::WriterName::new(o.writer.clone()).unwrap(),
        qp: o.qp,
        persistence: o.persistence,
        op_timeout: o.op_timeout,
        connect_timeout: o.connect_timeout,
    };
    let region =
        logcore::Region::open(node.dir.join("host.log"), logcore::RegionKind::File).unwrap();
    let len = region.len();
    let identity = LogIdentity {
        uuid: w.log().superblock().uuid,
        epoch: w.log().epoch(),
        geometry: w.log().geometry(),
        region_len: len as u64,
    };
    let ctx = Context::open(&o.device, o.port).unwrap();
    let pd = ProtectionDomain::new(&ctx).unwrap();
    // The registration holds the protection domain, and it the device.
    let source = std::sync::Arc::new(
        MemoryRegion::register(
            &pd,
            RegionMemory::new(region, len).unwrap(),
            Access::LOCAL_READ,
        )
        .unwrap(),
    );
    fabric::replicated::connect(&o.replicas[0], &connect, &source, &identity)
        .expect("a second session of the writer is admitted")
}
