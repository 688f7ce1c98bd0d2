//! The `closure:` section of a node's config file: the closure daemon's
//! identity on the replicas, where it runs, how it judges the host, and
//! what it runs after a takeover.
//!
//! fabric reads the rest of the file (`fabric::config`); this section is a
//! [`Section`] of it, so one file still carries the writer, the replica and
//! the closure. The host (which beats the heartbeat this section bounds)
//! and `tg-closure` read the file as a [`HostConfig`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use fabric::config::{
    check_host_port, resolve_relative, Config, Foreign, Issues, Section, ValidatedConfig,
};
use fabric::replicated::Heartbeat;
use fabric::wire::WriterName;
use serde::Deserialize;

/// The config file as the host and its closure read it: the writer's part
/// and the `closure` section (the `replica` section is `tg-replica`'s).
pub type HostConfig = Config<Foreign, ClosureSection>;

/// A [`HostConfig`] that passed validation.
pub type ValidatedHostConfig = ValidatedConfig<Foreign, ClosureSection>;

/// Most cores the closure may be pinned to.
pub const MAX_CLOSURE_CORES: usize = 64;
/// Most arguments of the closure's restart command.
pub const MAX_RESTART_ARGS: usize = 64;

/// The closure daemon (`tg-closure`): its identity on the replicas, where
/// it runs, how it judges the host, and what it runs after a takeover.
/// Needs the writer side (`name`, `log.path`, `replicas`).
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
    /// Serve metrics (OpenMetrics, `GET /metrics`) and the daemon's live
    /// status (`GET /status`, which `tg-closure status` asks) on this
    /// `HOST:PORT`. Off when absent. Bind it to a management address.
    #[serde(default)]
    pub metrics_listen: Option<String>,
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

/// The `closure` section once checked: what the closure and the host's
/// heartbeat run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureSettings {
    /// The closure's writer name (`closure.name`).
    pub name: WriterName,
    /// Its key file (`closure.key-file`), not yet loaded.
    pub key_file: PathBuf,
    /// The host's log the closure maps (`log.path`).
    pub log_path: PathBuf,
    /// Cores to pin to.
    pub cores: Vec<u32>,
    /// Heartbeat staleness bound.
    pub heartbeat_timeout: Duration,
    /// How often the host beats.
    pub heartbeat_interval: Duration,
    /// Watch-loop wait bound.
    pub poll_interval: Duration,
    /// Control-channel keep-alive period.
    pub keepalive: Duration,
    /// Restart command (argv), if any.
    pub restart: Option<Vec<String>>,
    /// `SCHED_FIFO` priority, if any.
    pub realtime_priority: Option<u8>,
    /// SIGKILL a hung host before taking over.
    pub kill_hung_host: bool,
    /// Where to serve `/metrics` and `/status`.
    pub metrics_listen: Option<String>,
}

impl ClosureSettings {
    /// What the host beats for this closure: pass it to
    /// `fabric::settings::replication_options`.
    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            every: self.heartbeat_interval,
            closure_timeout: self.heartbeat_timeout,
        }
    }
}

impl Section for ClosureSection {
    type Checked = ClosureSettings;

    fn check<R, C>(&self, cfg: &Config<R, C>, v: &mut Issues) -> Option<ClosureSettings> {
        let before = v.len();
        let name = WriterName::new(self.name.clone())
            .map_err(|why| v.push("closure.name", format!("{why}, got {:?}", self.name)))
            .ok();
        if cfg.name.as_deref() == Some(self.name.as_str()) {
            v.push(
                "closure.name",
                format!(
                    "must differ from the host's `name` ({:?}): the closure is a distinct writer on the replicas",
                    self.name
                ),
            );
        }
        if cfg.replicas.is_empty() {
            v.push(
                "closure",
                "needs the writer side (`replicas`): the closure ships the host's log to them",
            );
        }
        if cfg.log.path.is_none() {
            v.push(
                "closure",
                "needs `log.path`: the closure maps the host's log",
            );
        }
        if self.key_file.as_os_str().is_empty() {
            v.push("closure.key-file", "must not be empty");
        }
        if let Some(m) = &self.metrics_listen {
            if let Err(why) = check_host_port(m) {
                v.push("closure.metrics-listen", why);
            }
        }
        if self.cores.len() > MAX_CLOSURE_CORES {
            v.push(
                "closure.cores",
                format!(
                    "at most {MAX_CLOSURE_CORES} cores, got {}",
                    self.cores.len()
                ),
            );
        }
        for (i, &core) in self.cores.iter().enumerate() {
            v.range(&format!("closure.cores[{i}]"), core.into(), 0, 1023);
            if self.cores[..i].contains(&core) {
                v.push(
                    format!("closure.cores[{i}]"),
                    format!("duplicate core {core}"),
                );
            }
        }
        v.range(
            "closure.heartbeat-timeout-ms",
            self.heartbeat_timeout_ms,
            10,
            600_000,
        );
        v.range(
            "closure.heartbeat-interval-ms",
            self.heartbeat_interval_ms,
            1,
            60_000,
        );
        if self.heartbeat_timeout_ms < 2 * self.heartbeat_interval_ms {
            v.push(
                "closure.heartbeat-timeout-ms",
                format!(
                    "must be at least twice heartbeat-interval-ms ({}), got {}: a healthy host would be judged hung",
                    self.heartbeat_interval_ms, self.heartbeat_timeout_ms
                ),
            );
        }
        v.range("closure.poll-interval-ms", self.poll_interval_ms, 1, 10_000);
        v.range("closure.keepalive-ms", self.keepalive_ms, 10, 600_000);
        if let Some(p) = self.realtime_priority {
            v.range("closure.realtime-priority", p.into(), 1, 99);
        }
        if let Some(argv) = &self.restart {
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
        if v.len() > before {
            return None;
        }
        Some(ClosureSettings {
            name: name?,
            key_file: self.key_file.clone(),
            log_path: cfg.log.path.clone()?,
            cores: self.cores.clone(),
            heartbeat_timeout: Duration::from_millis(self.heartbeat_timeout_ms),
            heartbeat_interval: Duration::from_millis(self.heartbeat_interval_ms),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            keepalive: Duration::from_millis(self.keepalive_ms),
            restart: self.restart.clone(),
            realtime_priority: self.realtime_priority,
            kill_hung_host: self.kill_hung_host,
            metrics_listen: self.metrics_listen.clone(),
        })
    }

    fn resolve_relative_paths(&mut self, dir: &Path) {
        resolve_relative(dir, &mut self.key_file);
    }
}
