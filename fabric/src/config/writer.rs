//! The writer's own sections: `log`, `commit` and `replicas`, and their
//! checks.

use std::path::PathBuf;

use serde::Deserialize;

use super::{check_host_port, Issues};
use crate::auth::{KeyError, PreSharedKey};
use crate::wire::WriterName;

/// Most replicas one writer mirrors to.
pub const MAX_REPLICAS: usize = 16;

/// Smallest log region: the metadata page plus the smallest ring.
pub const MIN_LOG_SIZE_BYTES: u64 = 1 << 20;
/// Largest log region.
pub const MAX_LOG_SIZE_BYTES: u64 = 1 << 40;

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

impl LogSection {
    /// Checks the size, and the path when `writer` (the node has replicas).
    pub(super) fn check(&self, writer: bool, v: &mut Issues) {
        v.range(
            "log.size-bytes",
            self.size_bytes,
            MIN_LOG_SIZE_BYTES,
            MAX_LOG_SIZE_BYTES,
        );
        if !self.size_bytes.is_multiple_of(4096) {
            v.push(
                "log.size-bytes",
                format!("must be a multiple of 4096, got {}", self.size_bytes),
            );
        }
        if writer && self.path.is_none() {
            v.push(
                "log.path",
                "required when `replicas` is set (the writer's local log)",
            );
        }
    }
}

impl CommitPolicy {
    /// Checks the policy against the number of replicas.
    pub(super) fn check(&self, replicas: usize, v: &mut Issues) {
        match *self {
            CommitPolicy::Sync { acks: Some(k) } => {
                let n = replicas as u64;
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
    }
}

/// Checks the `replicas` list: its length, and each entry's name (valid,
/// unique), control address (valid, unique) and key file.
pub(super) fn check_replicas(replicas: &[ReplicaPeer], v: &mut Issues) {
    if replicas.len() > MAX_REPLICAS {
        v.push(
            "replicas",
            format!("at most {MAX_REPLICAS} replicas, got {}", replicas.len()),
        );
    }
    for (i, r) in replicas.iter().enumerate() {
        let at = |f: &str| format!("replicas[{i}].{f}");
        if let Err(why) = WriterName::new(r.name.clone()) {
            v.push(at("name"), format!("{why}, got {:?}", r.name));
        }
        if replicas[..i].iter().any(|o| o.name == r.name) {
            v.push(at("name"), format!("duplicate replica name {:?}", r.name));
        }
        if let Err(why) = check_host_port(&r.control) {
            v.push(at("control"), why);
        }
        if let Some(o) = replicas[..i]
            .iter()
            .find(|o| o.control.eq_ignore_ascii_case(&r.control))
        {
            v.push(
                at("control"),
                format!(
                    "{} is also the control address of replica {:?}: one tg-replica would count \
                     twice toward the acks; list each replica once",
                    r.control, o.name
                ),
            );
        }
        if r.key_file.as_os_str().is_empty() {
            v.push(at("key-file"), "must not be empty");
        }
    }
}
