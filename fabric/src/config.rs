//! Configuration of a tailguard node, read from YAML.
//!
//! One file can describe the writer side (this node's `name`, its `device`,
//! `qp` parameters, `persistence`, `commit` policy and the `replicas` it
//! mirrors to) and/or the replica side (`replica`: where to listen, the
//! region, the epoch file and the allow-list). Keys are kebab-case and
//! unknown keys are errors. Every field documents its default and bounds;
//! [`Config::validate`] checks them all and reports each problem with the
//! field's path, e.g. `replicas[1].control: port must be 1..=65535, got 0`.
//!
//! Numeric fields are parsed wider than their hardware type (e.g. `u32` for
//! an 8-bit port number) so that an out-of-range value is reported by
//! `validate` with its bounds instead of as a YAML type error.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{KeyError, PreSharedKey};
use crate::wire::{PersistenceMode, WriterName};

/// Largest config file read, in bytes.
pub const MAX_CONFIG_FILE_LEN: u64 = 1 << 20;

/// A whole node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// This node's writer name, sent in the handshake and looked up in each
    /// replica's allow-list. Required when `replicas` is not empty; 1..=64
    /// ASCII letters, digits, `.`, `_`, `-`. No default.
    #[serde(default)]
    pub name: Option<String>,
    /// The log this node writes (writer side) or mirrors (replica side).
    /// Required: every node of one log must agree on its size.
    pub log: LogSection,
    /// The RDMA device and port to use. Required.
    pub device: DeviceConfig,
    /// Queue-pair parameters. Default: see [`QpConfig`].
    #[serde(default)]
    pub qp: QpConfig,
    /// How placed data is made durable on replicas: `apm` (RDMA READ after
    /// WRITE; durable only on ADR-with-DDIO-off or eADR replica platforms) or
    /// `gpspm` (the replica CPU persists on request; durable everywhere).
    /// Default `apm`.
    #[serde(default = "default_persistence")]
    pub persistence: PersistenceMode,
    /// When a commit returns. Default `sync` with acks from every replica.
    #[serde(default)]
    pub commit: CommitPolicy,
    /// Timeout of every control-channel read and write (set on the socket),
    /// in milliseconds. Default 5000; bounds 100..=600000.
    #[serde(default = "default_control_timeout_ms")]
    pub control_timeout_ms: u64,
    /// The replicas this node mirrors its log to (writer side). Default
    /// empty; at most [`MAX_REPLICAS`].
    #[serde(default)]
    pub replicas: Vec<ReplicaPeer>,
    /// The replica-side settings, when this node runs `tg-replica`. Default
    /// absent.
    #[serde(default)]
    pub replica: Option<ReplicaServer>,
    /// The closure daemon (`tg-closure`) that watches this writer and ships
    /// its log tail when it fails. Needs the writer side (`name`,
    /// `log.path`, `replicas`). Default absent: no closure, and the writer
    /// keeps no heartbeat.
    #[serde(default)]
    pub closure: Option<ClosureSection>,
}

/// Most cores the closure may be pinned to.
pub const MAX_CLOSURE_CORES: usize = 64;
/// Most arguments of the closure's restart command.
pub const MAX_RESTART_ARGS: usize = 64;

/// The closure daemon (`tg-closure`): its identity on the replicas, where
/// it runs, how it judges the host, and what it runs after a takeover.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClosureSection {
    /// The closure's writer name on every replica's allow-list (a distinct
    /// identity from the host's `name`), e.g. `host-a-closure`. Required;
    /// same character set as writer names; must differ from `name`.
    pub name: String,
    /// The key the closure shares with every replica (hex or raw, at least
    /// 32 bytes, mode 0600 or stricter). Required; relative to the config
    /// file's directory.
    pub key_file: PathBuf,
    /// CPU numbers the daemon pins itself to (`sched_setaffinity`); they
    /// should be sequestered from other work (`isolcpus=`/`nohz_full=` or a
    /// cpuset cgroup, see README). Default empty: not pinned (a warning
    /// says so). At most [`MAX_CLOSURE_CORES`] entries, each 0..=1023,
    /// unique.
    #[serde(default)]
    pub cores: Vec<u32>,
    /// How long the host's heartbeat may stay unchanged before the host is
    /// judged hung, in milliseconds. A host that has never beaten while
    /// watched is judged by its pid only. Default 1000; bounds 10..=600000;
    /// at least twice `heartbeat-interval-ms`.
    #[serde(default = "default_heartbeat_timeout_ms")]
    pub heartbeat_timeout_ms: u64,
    /// How often the host (`ReplicatedLog`) bumps its heartbeat, in
    /// milliseconds. Default 100; bounds 1..=60000.
    #[serde(default = "default_heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    /// Longest wait of the daemon's watch loop between checks of the
    /// heartbeat and the control block, in milliseconds (host death wakes
    /// it at once through the pidfd). Default 10; bounds 1..=10000.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How often each pre-established control channel is exercised with a
    /// status request (keep-alive), in milliseconds. Default 1000; bounds
    /// 10..=600000.
    #[serde(default = "default_keepalive_ms")]
    pub keepalive_ms: u64,
    /// Command run after a takeover (argv, no shell), e.g.
    /// `[systemctl, restart, host-a.service]`. Default absent: nothing is
    /// run. 1..=[`MAX_RESTART_ARGS`] non-empty arguments when set.
    #[serde(default)]
    pub restart: Option<Vec<String>>,
    /// Run the daemon under `SCHED_FIFO` at this priority (1..=99), so no
    /// ordinary task on its cores delays a takeover. Needs `CAP_SYS_NICE`
    /// (a warning names the fix when refused). Default absent: the normal
    /// scheduler (isolated cores are usually enough).
    #[serde(default)]
    pub realtime_priority: Option<u8>,
    /// Kill a hung host (SIGKILL through its pidfd) before taking over, so
    /// it can never resume into a log it no longer owns. With `false` a
    /// resumed host is still kept off the replicas (sealing fences its
    /// queue pairs) but may scribble on its own local log. Default true.
    #[serde(default = "default_true")]
    pub kill_hung_host: bool,
}

fn default_true() -> bool {
    true
}

fn default_heartbeat_timeout_ms() -> u64 {
    1000
}
fn default_heartbeat_interval_ms() -> u64 {
    100
}
fn default_poll_interval_ms() -> u64 {
    10
}
fn default_keepalive_ms() -> u64 {
    1000
}

/// Most replicas one writer mirrors to.
pub const MAX_REPLICAS: usize = 16;
/// Most writers on one replica's allow-list.
pub const MAX_ALLOWED_WRITERS: usize = 64;

fn default_persistence() -> PersistenceMode {
    PersistenceMode::Apm
}

fn default_control_timeout_ms() -> u64 {
    5000
}

/// Which RDMA device and port, and how to address it.
///
/// Exactly one of `name`, `netdev` and `ip` selects the device.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DeviceConfig {
    /// The verbs device name, e.g. `mlx5_0` or `rxe0`. No default.
    #[serde(default)]
    pub name: Option<String>,
    /// The network interface the device sits on, e.g. `eth0`. No default.
    #[serde(default)]
    pub netdev: Option<String>,
    /// An IP address of the interface the device sits on. No default.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// The device port. Default 1; bounds 1..=255.
    #[serde(default = "default_port")]
    pub port: u32,
    /// The GID table index. Default: on RoCE, the RoCE v2 entry holding the
    /// port's IPv4-mapped address; on InfiniBand, 0. Bounds 0..=255.
    #[serde(default)]
    pub gid_index: Option<u32>,
    /// Link-layer hint, checked against the port's actual link layer:
    /// `infiniband` (LID routing) or `roce` (every packet carries a GRH).
    /// Default: taken from the port.
    #[serde(default)]
    pub link_layer: Option<LinkLayerHint>,
    /// RoCE only: GRH traffic class (DSCP << 2 | ECN). Default 0; bounds 0..=255.
    #[serde(default)]
    pub traffic_class: Option<u32>,
    /// RoCE only: GRH hop limit. Default 64; bounds 1..=255.
    #[serde(default)]
    pub hop_limit: Option<u32>,
    /// Service level (InfiniBand SL; on RoCE mapped to a priority). Default 0;
    /// bounds 0..=15.
    #[serde(default)]
    pub service_level: u32,
}

fn default_port() -> u32 {
    1
}

/// How packets reach the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkLayerHint {
    /// InfiniBand: routed by LID inside the subnet.
    Infiniband,
    /// RoCE v2 (including Soft-RoCE): routed by GID, every packet has a GRH.
    Roce,
}

/// Reliable-connected queue-pair parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct QpConfig {
    /// Path MTU in bytes: 256, 512, 1024, 2048 or 4096. Default 1024 (what
    /// Soft-RoCE and a 1500-byte Ethernet MTU carry).
    #[serde(default = "default_path_mtu")]
    pub path_mtu: u32,
    /// Local ACK timeout exponent: the QP waits 4.096 µs × 2^timeout for an
    /// ACK before retrying. Default 14 (≈ 67 ms); bounds 1..=31 (0, wait
    /// forever, would hide a dead replica).
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    /// Transport retries after an ACK timeout before the QP errors out.
    /// Default 7; bounds 0..=7.
    #[serde(default = "default_retry")]
    pub retry_count: u32,
    /// Retries after a receiver-not-ready NAK (gpspm). Default 6; bounds
    /// 0..=6 (7 would mean retry forever).
    #[serde(default = "default_rnr_retry")]
    pub rnr_retry: u32,
    /// Minimum RNR NAK timer code for our receive queue. Default 12 (0.64 ms);
    /// bounds 1..=31.
    #[serde(default = "default_min_rnr_timer")]
    pub min_rnr_timer: u32,
    /// Send-queue depth in work requests. Default 256; bounds 1..=32768.
    #[serde(default = "default_max_send_wr")]
    pub max_send_wr: u32,
    /// Receive-queue depth in work requests (gpspm replies). Default 64;
    /// bounds 1..=32768.
    #[serde(default = "default_max_recv_wr")]
    pub max_recv_wr: u32,
    /// Largest inline send in bytes (0 disables inline). Default 64; bounds
    /// 0..=1024 (the device may allow less; QP creation then fails loudly).
    #[serde(default = "default_max_inline")]
    pub max_inline: u32,
    /// RDMA READs in flight per QP as initiator (READ flushes). Default 16;
    /// bounds 1..=255 (the device caps it, e.g. 16 on mlx5).
    #[serde(default = "default_max_rd_atomic")]
    pub max_rd_atomic: u32,
    /// Ships (the WRITEs of a log range and their READ flush) kept in
    /// flight per replica under `apm`: a committer whose record is not
    /// shipped yet posts the next ship without waiting for the ones ahead.
    /// Default 1: one ship at a time per replica, each covering everything
    /// persisted when it starts (pure group commit). Bounds 1..=8, and at
    /// most `max-rd-atomic` and `max-send-wr` / 4. More than 1 overlaps
    /// round trips, which pays where a round trip leaves the CPUs idle (a
    /// hardware NIC); on Soft-RoCE every ship costs the CPUs the appenders
    /// run on, and 4 gave fewer commits/s than 1 (measure with `tg-bench
    /// throughput`, whose commits/ship column shows the coalescing).
    #[serde(default = "default_ships_in_flight")]
    pub ships_in_flight: u32,
}

fn default_path_mtu() -> u32 {
    1024
}
fn default_timeout() -> u32 {
    14
}
fn default_retry() -> u32 {
    7
}
fn default_rnr_retry() -> u32 {
    6
}
fn default_min_rnr_timer() -> u32 {
    12
}
fn default_max_send_wr() -> u32 {
    256
}
fn default_max_recv_wr() -> u32 {
    64
}
fn default_max_inline() -> u32 {
    64
}
fn default_max_rd_atomic() -> u32 {
    16
}
fn default_ships_in_flight() -> u32 {
    1
}

impl Default for QpConfig {
    fn default() -> Self {
        QpConfig {
            path_mtu: default_path_mtu(),
            timeout: default_timeout(),
            retry_count: default_retry(),
            rnr_retry: default_rnr_retry(),
            min_rnr_timer: default_min_rnr_timer(),
            max_send_wr: default_max_send_wr(),
            max_recv_wr: default_max_recv_wr(),
            max_inline: default_max_inline(),
            max_rd_atomic: default_max_rd_atomic(),
            ships_in_flight: default_ships_in_flight(),
        }
    }
}

/// When `commit(lsn)` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(
    tag = "policy",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum CommitPolicy {
    /// After the local persist and durability on `acks` replicas.
    Sync {
        /// How many replicas must hold the range durably. Default: all of
        /// them; bounds 1..=number of replicas.
        #[serde(default)]
        acks: Option<u32>,
    },
    /// After the local persist only; replicas may lag by at most
    /// `max-lag-bytes`, and appends block when they would lag more.
    Async {
        /// Lag bound in bytes. Required; bounds 64..=2^40.
        max_lag_bytes: u64,
    },
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy::Sync { acks: None }
    }
}

/// A replica as the writer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ReplicaPeer {
    /// The replica's name, used in errors and status. Required, unique; same
    /// character set as writer names.
    pub name: String,
    /// The replica's control address, `HOST:PORT` (IPv6 as `[ADDR]:PORT`).
    /// Required; port 1..=65535.
    pub control: String,
    /// File holding the key this writer shares with this replica (hex or raw,
    /// at least 32 bytes, mode 0600 or stricter). Required; a relative path is
    /// relative to the config file's directory.
    pub key_file: PathBuf,
}

impl ReplicaPeer {
    /// Loads this replica's key file (see [`PreSharedKey::load`]).
    pub fn load_key(&self) -> Result<PreSharedKey, KeyError> {
        PreSharedKey::load(&self.key_file)
    }
}

/// Smallest log region: the metadata page plus the smallest ring.
pub const MIN_LOG_SIZE_BYTES: u64 = 1 << 20;
/// Largest log region.
pub const MAX_LOG_SIZE_BYTES: u64 = 1 << 40;

/// The log region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogSection {
    /// The writer's local log: a devdax device, a file on fsdax (mapped
    /// with `MAP_SYNC`) or on a plain file system (persisted with msync).
    /// Required on the writer side (when `replicas` is set); unused by
    /// `tg-replica`. Relative paths are relative to the config file's
    /// directory.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Length of the log region in bytes. The writer creates its log this
    /// size (a devdax device must be at least as large), and replicas
    /// derive the expected ring geometry from it: the writer and every
    /// replica of one log must have the same value. Required; bounds
    /// [`MIN_LOG_SIZE_BYTES`]..=[`MAX_LOG_SIZE_BYTES`], a multiple of 4096.
    pub size_bytes: u64,
}

/// The replica side (`tg-replica serve`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ReplicaServer {
    /// Control address to listen on, `HOST:PORT`. Required; port 1..=65535.
    pub listen: String,
    /// The pmem region mirroring the writer's log: a devdax device
    /// (`/dev/dax0.0`) or a file on fsdax or a plain file system. Required;
    /// relative paths are relative to the config file's directory.
    pub region: PathBuf,
    /// File holding the highest admitted epoch (written before a newer
    /// writer is admitted). Required; relative as above.
    pub epoch_file: PathBuf,
    /// Writers allowed to connect, each with its key file. Required,
    /// 1..=[`MAX_ALLOWED_WRITERS`] entries, names unique.
    pub allow: Vec<AllowedWriter>,
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AllowedWriter {
    /// The writer's name (its `name` setting). Required.
    pub name: String,
    /// The key shared with that writer. Required; relative as above.
    pub key_file: PathBuf,
}

/// One problem found by [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The field's path, e.g. `replicas[1].control`.
    pub field: String,
    /// What is wrong, with the value found.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem [`Config::validate`] found (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ConfigIssue>);

impl ValidationErrors {
    /// Whether some issue is about `field`.
    pub fn has_field(&self, field: &str) -> bool {
        self.0.iter().any(|i| i.field == field)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Why a config could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The config file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_FILE_LEN`].
    TooLarge {
        /// The config file.
        path: PathBuf,
    },
    /// The YAML does not parse into a [`Config`] (syntax, unknown key, wrong type).
    Parse {
        /// The config file, if read from one.
        path: Option<PathBuf>,
        /// 1-based line of the problem, when known.
        line: Option<u64>,
        /// 1-based column of the problem, when known.
        column: Option<u64>,
        /// The parser's message.
        message: String,
    },
    /// The config parsed but some values are out of bounds.
    Invalid {
        /// The config file, if read from one.
        path: Option<PathBuf>,
        /// Each problem, with its field path.
        errors: ValidationErrors,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let src = |p: &Option<PathBuf>| match p {
            Some(p) => p.display().to_string(),
            None => "<config>".to_owned(),
        };
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            ConfigError::TooLarge { path } => write!(
                f,
                "config {} is larger than {MAX_CONFIG_FILE_LEN} bytes: is this the right file?",
                path.display()
            ),
            ConfigError::Parse {
                path,
                line,
                column,
                message,
            } => {
                write!(f, "{}", src(path))?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                    if let Some(c) = column {
                        write!(f, ":{c}")?;
                    }
                }
                write!(f, ": {message}")
            }
            ConfigError::Invalid { path, errors } => {
                let src = src(path);
                for (i, issue) in errors.0.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{src}: {issue}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid { errors, .. } => Some(errors),
            _ => None,
        }
    }
}

impl Config {
    /// Parses and validates a config from a YAML string. Relative paths are
    /// left as they are.
    pub fn from_yaml_str(yaml: &str) -> Result<Config, ConfigError> {
        let config = parse(yaml, None)?;
        config
            .validate()
            .map_err(|errors| ConfigError::Invalid { path: None, errors })?;
        Ok(config)
    }

    /// Reads, parses and validates a config file. Relative key, region and
    /// epoch-file paths are resolved against the file's directory. Errors
    /// carry the file's path (and the line, for parse errors).
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let read_err = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut text = String::new();
        file.take(MAX_CONFIG_FILE_LEN + 1)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_CONFIG_FILE_LEN {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        let mut config = parse(&text, Some(path))?;
        if let Some(dir) = path.parent() {
            config.resolve_relative_paths(dir);
        }
        config.validate().map_err(|errors| ConfigError::Invalid {
            path: Some(path.to_owned()),
            errors,
        })?;
        Ok(config)
    }

    fn resolve_relative_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = dir.join(&*p);
            }
        };
        for r in &mut self.replicas {
            fix(&mut r.key_file);
        }
        if let Some(p) = &mut self.log.path {
            fix(p);
        }
        if let Some(c) = &mut self.closure {
            fix(&mut c.key_file);
        }
        if let Some(s) = &mut self.replica {
            fix(&mut s.region);
            fix(&mut s.epoch_file);
            for a in &mut s.allow {
                fix(&mut a.key_file);
            }
        }
    }

    /// The control-channel socket timeout (`control-timeout-ms`), to pass to
    /// `set_read_timeout`, `set_write_timeout` and `connect_timeout`.
    pub fn control_timeout(&self) -> Duration {
        Duration::from_millis(self.control_timeout_ms)
    }

    /// The writer name (`name`) as sent in the handshake; `None` when unset.
    /// Valid after [`validate`](Self::validate).
    pub fn writer_name(&self) -> Option<WriterName> {
        self.name
            .as_ref()
            .and_then(|n| WriterName::new(n.clone()).ok())
    }

    /// The number of replica acks a `sync` commit waits for (all replicas
    /// when `acks` is not set); `None` for `async`.
    pub fn required_acks(&self) -> Option<usize> {
        match self.commit {
            CommitPolicy::Sync { acks: Some(k) } => Some(k as usize),
            CommitPolicy::Sync { acks: None } => Some(self.replicas.len()),
            CommitPolicy::Async { .. } => None,
        }
    }

    /// Checks every bound and cross-field rule, collecting every problem
    /// (not just the first) with its field path.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut v = Issues::default();
        if self.replicas.is_empty() && self.replica.is_none() {
            v.push(
                "replicas",
                "neither `replicas` (writer side) nor `replica` (replica side) is set: \
                 this node would do nothing",
            );
        }
        match &self.name {
            Some(n) => {
                if let Err(why) = WriterName::new(n.clone()) {
                    v.push("name", format!("{why}, got {n:?}"));
                }
            }
            None if !self.replicas.is_empty() => v.push(
                "name",
                "required when `replicas` is set (the writer's name on their allow-lists)",
            ),
            None => {}
        }
        v.range(
            "log.size-bytes",
            self.log.size_bytes,
            MIN_LOG_SIZE_BYTES,
            MAX_LOG_SIZE_BYTES,
        );
        if !self.log.size_bytes.is_multiple_of(4096) {
            v.push(
                "log.size-bytes",
                format!("must be a multiple of 4096, got {}", self.log.size_bytes),
            );
        }
        if !self.replicas.is_empty() && self.log.path.is_none() {
            v.push(
                "log.path",
                "required when `replicas` is set (the writer's local log)",
            );
        }
        self.device.validate(&mut v);
        self.qp.validate(&mut v);
        v.range("control-timeout-ms", self.control_timeout_ms, 100, 600_000);
        match self.commit {
            CommitPolicy::Sync { acks: Some(k) } => {
                let n = self.replicas.len() as u64;
                if n > 0 && (k == 0 || u64::from(k) > n) {
                    v.push(
                        "commit.acks",
                        format!("must be 1..={n} (the number of replicas), got {k}"),
                    );
                } else if n == 0 && k == 0 {
                    v.push("commit.acks", "must be at least 1, got 0");
                }
            }
            CommitPolicy::Sync { acks: None } => {}
            CommitPolicy::Async { max_lag_bytes } => {
                v.range("commit.max-lag-bytes", max_lag_bytes, 64, 1 << 40);
            }
        }
        if self.replicas.len() > MAX_REPLICAS {
            v.push(
                "replicas",
                format!(
                    "at most {MAX_REPLICAS} replicas, got {}",
                    self.replicas.len()
                ),
            );
        }
        for (i, r) in self.replicas.iter().enumerate() {
            let at = |f: &str| format!("replicas[{i}].{f}");
            if let Err(why) = WriterName::new(r.name.clone()) {
                v.push(at("name"), format!("{why}, got {:?}", r.name));
            }
            if self.replicas[..i].iter().any(|o| o.name == r.name) {
                v.push(at("name"), format!("duplicate replica name {:?}", r.name));
            }
            if let Err(why) = check_host_port(&r.control) {
                v.push(at("control"), why);
            }
            if r.key_file.as_os_str().is_empty() {
                v.push(at("key-file"), "must not be empty");
            }
        }
        if let Some(c) = &self.closure {
            self.validate_closure(c, &mut v);
        }
        if let Some(s) = &self.replica {
            if let Err(why) = check_host_port(&s.listen) {
                v.push("replica.listen", why);
            }
            if s.region.as_os_str().is_empty() {
                v.push("replica.region", "must not be empty");
            }
            if s.epoch_file.as_os_str().is_empty() {
                v.push("replica.epoch-file", "must not be empty");
            }
            if s.allow.is_empty() || s.allow.len() > MAX_ALLOWED_WRITERS {
                v.push(
                    "replica.allow",
                    format!(
                        "must list 1..={MAX_ALLOWED_WRITERS} writers, got {}",
                        s.allow.len()
                    ),
                );
            }
            for (i, a) in s.allow.iter().enumerate() {
                let at = |f: &str| format!("replica.allow[{i}].{f}");
                if let Err(why) = WriterName::new(a.name.clone()) {
                    v.push(at("name"), format!("{why}, got {:?}", a.name));
                }
                if s.allow[..i].iter().any(|o| o.name == a.name) {
                    v.push(at("name"), format!("duplicate writer name {:?}", a.name));
                }
                if a.key_file.as_os_str().is_empty() {
                    v.push(at("key-file"), "must not be empty");
                }
            }
        }
        v.finish()
    }
}

impl Config {
    fn validate_closure(&self, c: &ClosureSection, v: &mut Issues) {
        if let Err(why) = WriterName::new(c.name.clone()) {
            v.push("closure.name", format!("{why}, got {:?}", c.name));
        }
        if self.name.as_deref() == Some(c.name.as_str()) {
            v.push(
                "closure.name",
                format!(
                    "must differ from the host's `name` ({:?}): the closure is a distinct writer on the replicas",
                    c.name
                ),
            );
        }
        if self.replicas.is_empty() {
            v.push(
                "closure",
                "needs the writer side (`replicas`): the closure ships the host's log to them",
            );
        }
        if self.log.path.is_none() {
            v.push(
                "closure",
                "needs `log.path`: the closure maps the host's log",
            );
        }
        if c.key_file.as_os_str().is_empty() {
            v.push("closure.key-file", "must not be empty");
        }
        if c.cores.len() > MAX_CLOSURE_CORES {
            v.push(
                "closure.cores",
                format!("at most {MAX_CLOSURE_CORES} cores, got {}", c.cores.len()),
            );
        }
        for (i, &core) in c.cores.iter().enumerate() {
            v.range(&format!("closure.cores[{i}]"), core.into(), 0, 1023);
            if c.cores[..i].contains(&core) {
                v.push(
                    format!("closure.cores[{i}]"),
                    format!("duplicate core {core}"),
                );
            }
        }
        v.range(
            "closure.heartbeat-timeout-ms",
            c.heartbeat_timeout_ms,
            10,
            600_000,
        );
        v.range(
            "closure.heartbeat-interval-ms",
            c.heartbeat_interval_ms,
            1,
            60_000,
        );
        if c.heartbeat_timeout_ms < 2 * c.heartbeat_interval_ms {
            v.push(
                "closure.heartbeat-timeout-ms",
                format!(
                    "must be at least twice heartbeat-interval-ms ({}), got {}: a healthy host would be judged hung",
                    c.heartbeat_interval_ms, c.heartbeat_timeout_ms
                ),
            );
        }
        v.range("closure.poll-interval-ms", c.poll_interval_ms, 1, 10_000);
        v.range("closure.keepalive-ms", c.keepalive_ms, 10, 600_000);
        if let Some(p) = c.realtime_priority {
            v.range("closure.realtime-priority", p.into(), 1, 99);
        }
        if let Some(argv) = &c.restart {
            if argv.is_empty() || argv.len() > MAX_RESTART_ARGS {
                v.push(
                    "closure.restart",
                    format!(
                        "must have 1..={MAX_RESTART_ARGS} arguments (the program first), got {}; \
                         leave it out to run nothing",
                        argv.len()
                    ),
                );
            }
            for (i, a) in argv.iter().enumerate() {
                if a.is_empty() || a.contains('\0') {
                    v.push(
                        format!("closure.restart[{i}]"),
                        "must be non-empty and contain no NUL byte",
                    );
                }
            }
        }
    }
}

impl DeviceConfig {
    fn validate(&self, v: &mut Issues) {
        let chosen = [
            self.name.is_some(),
            self.netdev.is_some(),
            self.ip.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if chosen != 1 {
            v.push(
                "device",
                format!(
                    "set exactly one of `name`, `netdev` or `ip` to select the device, got {chosen}"
                ),
            );
        }
        for (field, value) in [("device.name", &self.name), ("device.netdev", &self.netdev)] {
            if let Some(s) = value {
                if s.is_empty() || s.len() > 64 || s.contains(['/', '\0']) {
                    v.push(
                        field,
                        format!("must be 1..=64 bytes without '/', got {s:?}"),
                    );
                }
            }
        }
        v.range("device.port", self.port.into(), 1, 255);
        if let Some(g) = self.gid_index {
            v.range("device.gid-index", g.into(), 0, 255);
        }
        if let Some(tc) = self.traffic_class {
            v.range("device.traffic-class", tc.into(), 0, 255);
        }
        if let Some(h) = self.hop_limit {
            v.range("device.hop-limit", h.into(), 1, 255);
        }
        if self.link_layer == Some(LinkLayerHint::Infiniband) {
            for (field, set) in [
                ("device.traffic-class", self.traffic_class.is_some()),
                ("device.hop-limit", self.hop_limit.is_some()),
            ] {
                if set {
                    v.push(
                        field,
                        "applies only to link-layer `roce` (GRH), not `infiniband`",
                    );
                }
            }
        }
        v.range("device.service-level", self.service_level.into(), 0, 15);
    }
}

impl QpConfig {
    fn validate(&self, v: &mut Issues) {
        if ![256, 512, 1024, 2048, 4096].contains(&self.path_mtu) {
            v.push(
                "qp.path-mtu",
                format!(
                    "must be one of 256, 512, 1024, 2048, 4096, got {}",
                    self.path_mtu
                ),
            );
        }
        v.range("qp.timeout", self.timeout.into(), 1, 31);
        v.range("qp.retry-count", self.retry_count.into(), 0, 7);
        v.range("qp.rnr-retry", self.rnr_retry.into(), 0, 6);
        v.range("qp.min-rnr-timer", self.min_rnr_timer.into(), 1, 31);
        v.range("qp.max-send-wr", self.max_send_wr.into(), 1, 32768);
        v.range("qp.max-recv-wr", self.max_recv_wr.into(), 1, 32768);
        v.range("qp.max-inline", self.max_inline.into(), 0, 1024);
        v.range("qp.max-rd-atomic", self.max_rd_atomic.into(), 1, 255);
        v.range(
            "qp.ships-in-flight",
            self.ships_in_flight.into(),
            1,
            mirror_max_in_flight(),
        );
        if self.ships_in_flight > self.max_rd_atomic {
            v.push(
                "qp.ships-in-flight",
                format!(
                    "{} ships need as many READ flushes in flight, but qp.max-rd-atomic is {}: \
                     lower ships-in-flight or raise max-rd-atomic",
                    self.ships_in_flight, self.max_rd_atomic
                ),
            );
        }
        if u64::from(self.ships_in_flight) * 4 > u64::from(self.max_send_wr) {
            v.push(
                "qp.ships-in-flight",
                format!(
                    "{} ships take up to {} send-queue entries, but qp.max-send-wr is {}: \
                     lower ships-in-flight or raise max-send-wr",
                    self.ships_in_flight,
                    self.ships_in_flight * 4,
                    self.max_send_wr
                ),
            );
        }
    }
}

/// The mirror's own bound on ships in flight.
fn mirror_max_in_flight() -> u64 {
    crate::mirror::MAX_IN_FLIGHT as u64
}

/// Checks `HOST:PORT` (IPv6 hosts in brackets); returns why not.
fn check_host_port(s: &str) -> Result<(), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("expected HOST:PORT, got {s:?}"));
    };
    if host.is_empty() {
        return Err(format!("host is empty in {s:?}"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(addr) if addr.parse::<std::net::Ipv6Addr>().is_ok() => {}
            _ => {
                return Err(format!(
                    "bracketed host must be an IPv6 address, got {host:?}"
                ))
            }
        }
    } else if host.contains(':') {
        return Err(format!(
            "IPv6 hosts must be bracketed, as [ADDR]:PORT, got {s:?}"
        ));
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(()),
        Ok(p) => Err(format!("port must be 1..=65535, got {p}")),
        Err(_) => Err(format!("port must be a number 1..=65535, got {port:?}")),
    }
}

fn parse(yaml: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    serde_saphyr::from_str::<Config>(yaml).map_err(|e| {
        let loc = e.location();
        ConfigError::Parse {
            path: path.map(Path::to_owned),
            line: loc.map(|l| l.line()),
            column: loc.map(|l| l.column()),
            message: e.to_string(),
        }
    })
}

/// Collects validation issues.
#[derive(Default)]
struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            field: field.into(),
            message: message.into(),
        });
    }

    fn range(&mut self, field: &str, value: u64, min: u64, max: u64) {
        if !(min..=max).contains(&value) {
            self.push(field, format!("must be {min}..={max}, got {value}"));
        }
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}
