//! Configuration of a tailguard node, read from YAML.
//!
//! One file can describe the writer side (this node's `name`, its `device`,
//! `qp` parameters, `persistence`, `commit` policy and the `replicas` it
//! mirrors to), the replica side (`replica`) and the closure daemon
//! (`closure`). Keys are kebab-case and unknown keys are errors. Every field
//! documents its default and bounds; [`Config::validate`] checks them all
//! and reports each problem with the field's path, e.g.
//! `replicas[1].control: port must be 1..=65535, got 0`, and only it makes
//! the [`ValidatedConfig`] the runtime settings are built from.
//!
//! This module owns the writer's part and the machinery every program
//! shares (bounded reading, parsing, [`Issues`], the errors). The `replica`
//! and `closure` sections belong to the crates that run them
//! (`replica::config`, `closure::config`): each is a type parameter of
//! [`Config`] implementing [`Section`]. A program names the sections it
//! owns and leaves the others [`Foreign`]: accepted whatever they hold and
//! checked by the program that owns them, so `tg-replica` never judges the
//! closure's settings. Unknown top-level keys, and unknown keys inside the
//! writer's part or a section the program owns, are errors everywhere.
//!
//! Numeric fields are parsed wider than their hardware type (e.g. `u32` for
//! an 8-bit port number) so that an out-of-range value is reported by
//! `validate` with its bounds instead of as a YAML type error.
#![forbid(unsafe_code)]

mod device;
mod error;
mod load;
mod qp;
mod validate;
mod writer;

use std::fmt;
use std::path::Path;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

use crate::wire::PersistenceMode;

pub use device::{DeviceConfig, LinkLayerHint};
pub use error::{ConfigError, ConfigIssue, ValidationErrors};
pub use load::MAX_CONFIG_FILE_LEN;
pub use qp::QpConfig;
pub use validate::{check_host_port, Issues, ValidatedConfig};
pub use writer::{
    CommitPolicy, LogSection, ReplicaPeer, MAX_LOG_SIZE_BYTES, MAX_REPLICAS, MIN_LOG_SIZE_BYTES,
};

/// A whole node's configuration file, as parsed (not yet checked: see
/// [`Config::validate`]).
///
/// `R` is the `replica` section and `C` the `closure` section, each
/// [`Foreign`] unless the program reading the file owns it (`tg-replica`
/// reads `Config<replica::config::ReplicaSection>`, `tg-closure` and the
/// host `Config<Foreign, closure::config::ClosureSection>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    rename_all = "kebab-case",
    deny_unknown_fields,
    bound(deserialize = "R: Deserialize<'de>, C: Deserialize<'de>")
)]
pub struct Config<R = Foreign, C = Foreign> {
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
    /// Serve the writer's metrics (OpenMetrics, `GET /metrics`: commit
    /// latency, commits, ships, bytes shipped, reconnects, lag per
    /// replica) on this `HOST:PORT` from the process that opens the log
    /// (`ReplicatedLog::open`). Off when absent; commits then read no
    /// clock for it.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// The replicas this node mirrors its log to (writer side). Default
    /// empty; at most [`MAX_REPLICAS`].
    #[serde(default)]
    pub replicas: Vec<ReplicaPeer>,
    /// The replica-side settings, when this node runs `tg-replica`
    /// (`replica::config::ReplicaSection`). Default absent.
    #[serde(default)]
    pub replica: Option<R>,
    /// The closure daemon (`tg-closure`) that watches this writer and ships
    /// its log tail when it fails (`closure::config::ClosureSection`).
    /// Default absent: no closure, and the writer keeps no heartbeat.
    #[serde(default)]
    pub closure: Option<C>,
}

fn default_persistence() -> PersistenceMode {
    PersistenceMode::Apm
}

fn default_control_timeout_ms() -> u64 {
    5000
}

/// A top-level section of the config file that a crate other than fabric
/// owns (`replica`, `closure`): its keys, defaults and checks live with the
/// code that runs it.
pub trait Section: DeserializeOwned {
    /// The section once checked: what its owner runs with (names parsed,
    /// durations typed, required writer settings taken).
    type Checked: fmt::Debug + Clone;

    /// Checks every bound and cross-field rule of the section, pushing each
    /// problem with its field path (starting with the section's key, e.g.
    /// `closure.cores[1]`). `cfg` is the whole file, for rules that involve
    /// the writer's part. Returns the checked form when it pushed no issue,
    /// and `None` when it pushed one.
    fn check<R, C>(&self, cfg: &Config<R, C>, issues: &mut Issues) -> Option<Self::Checked>;

    /// Resolves the section's relative paths against `dir`, the config
    /// file's directory (see [`resolve_relative`]).
    fn resolve_relative_paths(&mut self, dir: &Path);
}

/// A section this program does not own: accepted whatever it holds (the
/// program that owns it checks it) and never looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Foreign;

impl<'de> Deserialize<'de> for Foreign {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d)?;
        Ok(Foreign)
    }
}

impl Section for Foreign {
    type Checked = Foreign;

    fn check<R, C>(&self, _: &Config<R, C>, _: &mut Issues) -> Option<Foreign> {
        Some(Foreign)
    }

    fn resolve_relative_paths(&mut self, _: &Path) {}
}

/// Makes `p` relative to `dir` when it is relative and not empty (an empty
/// path is left for `validate` to report).
pub fn resolve_relative(dir: &Path, p: &mut std::path::PathBuf) {
    if p.is_relative() && !p.as_os_str().is_empty() {
        *p = dir.join(&*p);
    }
}
