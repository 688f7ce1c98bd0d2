//! From a validated config (its `closure` section checked by
//! [`crate::config`]) to what the daemon runs with, keys loaded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fabric::config::CommitPolicy;
use fabric::replicated::{ConnectOptions, ReplicaSpec};
use fabric::settings::{self, SettingsError};

use crate::config::{HostConfig, ValidatedHostConfig};
use crate::error::ClosureError;

/// Everything `tg-closure` needs, keys loaded.
#[derive(Debug, Clone)]
pub struct ClosureOptions {
    /// The host's log (`log.path`).
    pub log_path: PathBuf,
    /// RDMA device name.
    pub device: String,
    /// Port on it.
    pub port: u8,
    /// How the closure connects (its own writer name).
    pub connect: ConnectOptions,
    /// Every replica, with the closure's key.
    pub replicas: Vec<ReplicaSpec>,
    /// How many replicas a takeover must seal: the host's `commit.acks`
    /// under `sync` (every acknowledged record is on that many), every
    /// replica under `async` (the host waits for the slowest).
    pub quorum: usize,
    /// Cores to pin to.
    pub cores: Vec<u32>,
    /// Heartbeat staleness bound.
    pub heartbeat_timeout: Duration,
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
    /// Where to serve `/metrics` and `/status` (`closure.metrics-listen`).
    pub metrics_listen: Option<String>,
}

impl ClosureOptions {
    /// Reads and validates `path` and builds the options.
    ///
    /// # Errors
    /// [`ClosureError::Config`], [`ClosureError::NoClosureSection`],
    /// [`ClosureError::Settings`] (device lookup, key file).
    pub fn from_file(path: &Path) -> Result<Self, ClosureError> {
        let cfg = HostConfig::from_yaml_file(path).map_err(ClosureError::Config)?;
        Self::from_config(&cfg, path)
    }

    /// Builds the options from a validated config read from `path`.
    ///
    /// # Errors
    /// As [`ClosureOptions::from_file`].
    pub fn from_config(cfg: &ValidatedHostConfig, path: &Path) -> Result<Self, ClosureError> {
        let c = cfg
            .closure()
            .ok_or_else(|| ClosureError::NoClosureSection {
                path: path.to_owned(),
            })?;
        let key = fabric::auth::PreSharedKey::load(&c.key_file).map_err(|source| {
            ClosureError::Settings(SettingsError::Key {
                field: "closure.key-file".into(),
                source,
            })
        })?;
        let replicas: Vec<ReplicaSpec> = cfg
            .replicas
            .iter()
            .map(|r| ReplicaSpec {
                name: r.name.clone(),
                address: r.control.clone(),
                key: key.clone(),
            })
            .collect();
        Ok(ClosureOptions {
            log_path: c.log_path.clone(),
            device: settings::device_name(&cfg.device).map_err(ClosureError::Settings)?,
            port: cfg.port(),
            connect: ConnectOptions {
                writer: c.name.clone(),
                qp: cfg.qp_config(),
                persistence: cfg.persistence,
                op_timeout: settings::defaults::OP_TIMEOUT,
                connect_timeout: cfg.control_timeout(),
            },
            quorum: match cfg.commit {
                CommitPolicy::Sync { acks } => acks.map_or(replicas.len(), |k| k as usize),
                CommitPolicy::Async { .. } => replicas.len(),
            },
            replicas,
            cores: c.cores.clone(),
            heartbeat_timeout: c.heartbeat_timeout,
            poll_interval: c.poll_interval,
            keepalive: c.keepalive,
            restart: c.restart.clone(),
            realtime_priority: c.realtime_priority,
            kill_hung_host: c.kill_hung_host,
            metrics_listen: c.metrics_listen.clone(),
        })
    }
}
