//! What a [`super::ReplicatedLog`] is told: its commit policy, its
//! replicas and how to reach them, its bounds.

use std::fmt;
use std::time::Duration;

use crate::auth::PreSharedKey;
use crate::verbs::QpConfig;
use crate::wire::{PersistenceMode, WriterName};

use super::Heartbeat;

/// When a commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPolicy {
    /// Durable on `acks` replicas before commit returns.
    Sync {
        /// How many replicas must hold the record (1..=n).
        acks: usize,
    },
    /// Durable locally; replicas follow within `max_lag_bytes`.
    Async {
        /// Largest gap, in log bytes, between the local persisted tail and
        /// the slowest replica before commits wait.
        max_lag_bytes: u64,
    },
}

/// Everything a [`ReplicatedLog`] needs besides the log.
#[derive(Debug, Clone)]
pub struct ReplicationOptions {
    /// This writer's name on the replicas' allow-lists.
    pub writer: String,
    /// RDMA device name.
    pub device: String,
    /// Port number on it.
    pub port: u8,
    /// Queue pair parameters.
    pub qp: QpConfig,
    /// Persistence mode.
    pub persistence: PersistenceMode,
    /// Commit policy.
    pub policy: CommitPolicy,
    /// The replicas.
    pub replicas: Vec<ReplicaSpec>,
    /// Bound on one RDMA operation list (ship + flush).
    pub op_timeout: Duration,
    /// Bound on TCP connect and each handshake message.
    pub connect_timeout: Duration,
    /// Bound on a sync commit that cannot reach enough replicas.
    pub commit_timeout: Duration,
    /// First reconnect delay; doubles per failure up to `backoff_max`.
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// When set, a `tg-heartbeat` thread bumps the log's heartbeat word
    /// every `heartbeat.every`, so a closure daemon can tell a hung host
    /// from a busy one, and watches the closure's own word to report
    /// whether takeover is armed ([`ReplicatedLog::takeover`]). `None`: no
    /// heartbeat (a closure then judges the host by its pid only).
    pub heartbeat: Option<Heartbeat>,
    /// Serve the writer's metrics on this `HOST:PORT` (config
    /// `metrics-listen`); `None`: off, and commits read no clock for them.
    pub metrics_listen: Option<String>,
}

/// How to reach and authenticate to one replica.
#[derive(Clone)]
pub struct ReplicaSpec {
    /// The replica's name (for errors and status).
    pub name: String,
    /// Its control address, `host:port`.
    pub address: String,
    /// The pre-shared key for this writer on that replica.
    pub key: PreSharedKey,
}

impl fmt::Debug for ReplicaSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaSpec")
            .field("name", &self.name)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Which log a writer identity ships, as it introduces itself to a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogIdentity {
    /// The log's UUID (superblock).
    pub uuid: [u8; 16],
    /// The epoch the writer writes in.
    pub epoch: u32,
    /// The ring's placement.
    pub geometry: logcore::Geometry,
    /// Length of the whole log region in bytes.
    pub region_len: u64,
}

/// How one writer identity connects (its name, QP parameters, bounds).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The writer name on the replica's allow-list.
    pub writer: WriterName,
    /// Queue-pair parameters.
    pub qp: QpConfig,
    /// Persistence mode (must match the replica's).
    pub persistence: PersistenceMode,
    /// Bound on one RDMA operation list of the mirror.
    pub op_timeout: Duration,
    /// Bound on TCP connect and each handshake message (also set as the
    /// control socket's read and write timeouts).
    pub connect_timeout: Duration,
}

/// One replica's state, for status output.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// Replica name.
    pub name: String,
    /// Connected now.
    pub connected: bool,
    /// Logical position durable there.
    pub durable: u64,
    /// Successful connections so far.
    pub connects: u64,
    /// Ships posted so far (each: the WRITEs of a range and one flush).
    /// Commits or records divided by this is the group-commit factor.
    pub ships: u64,
    /// Why it is down, if it is.
    pub last_error: Option<String>,
}

impl LogIdentity {
    /// How `log` introduces itself now (its epoch included).
    pub fn of(log: &logcore::Log) -> Self {
        LogIdentity {
            uuid: log.superblock().uuid,
            epoch: log.epoch(),
            geometry: log.geometry(),
            region_len: log.region().len() as u64,
        }
    }
}
