//! From a [`ValidatedConfig`] to what the runtime takes: the device, the log
//! geometry, and a writer's [`ReplicationOptions`]. [`Config::validate`] has
//! checked every bound and narrowed the numbers (the queue-pair parameters
//! are [`ValidatedConfig::qp_config`]); what can still fail here (a device
//! to look up, a key file to read, a role the file does not describe)
//! fails with a message naming the setting.
//!
//! [`Config::validate`]: crate::config::Config::validate

use std::fmt;

use crate::auth::{AllowListError, KeyError};
use crate::config::{CommitPolicy as CfgCommit, DeviceConfig, Section, ValidatedConfig};
use crate::replicated::{CommitPolicy, Heartbeat, ReplicaSpec, ReplicationOptions};
use crate::verbs::{self, VerbsError};
use crate::wire::Geometry;

/// Why a config could not be turned into runtime settings.
#[derive(Debug)]
#[non_exhaustive]
pub enum SettingsError {
    /// The device named by `device.netdev` / `device.ip` is not there.
    Device(VerbsError),
    /// A key file could not be loaded.
    Key {
        /// The setting (`replicas[i].key-file`).
        field: String,
        /// Why.
        source: KeyError,
    },
    /// The replica's allow-list could not be loaded.
    AllowList(AllowListError),
    /// A required setting for this role is missing.
    Missing {
        /// The setting.
        field: &'static str,
        /// For what.
        reason: &'static str,
    },
    /// `log.size-bytes` gives no valid ring.
    Geometry {
        /// The size.
        size_bytes: u64,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Device(e) => write!(f, "device: {e}"),
            SettingsError::Key { field, source } => write!(f, "{field}: {source}"),
            SettingsError::AllowList(e) => write!(f, "replica.allow: {e}"),
            SettingsError::Missing { field, reason } => write!(f, "{field}: required {reason}"),
            SettingsError::Geometry { size_bytes, reason } => {
                write!(
                    f,
                    "log.size-bytes: {size_bytes} gives no valid ring: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for SettingsError {}

/// The verbs device name the `device` section selects (by name, by netdev,
/// or by the IPv4 address of a netdev).
///
/// # Errors
/// [`SettingsError::Device`] when nothing matches.
pub fn device_name(d: &DeviceConfig) -> Result<String, SettingsError> {
    if let Some(n) = &d.name {
        return Ok(n.clone());
    }
    let netdev = match (&d.netdev, d.ip) {
        (Some(nd), _) => nd.clone(),
        (None, Some(std::net::IpAddr::V4(ip))) => {
            verbs::netdev_for_ip(ip).map_err(SettingsError::Device)?
        }
        _ => {
            return Err(SettingsError::Missing {
                field: "device",
                reason: "(name, netdev or an IPv4 ip) to select the RDMA device",
            })
        }
    };
    verbs::device_for_netdev(&netdev).map_err(SettingsError::Device)
}

/// The ring geometry every node of a log of `size_bytes` uses (what
/// `logcore` formats a region of that size with).
///
/// # Errors
/// [`SettingsError::Geometry`] when the size holds no ring.
pub fn log_geometry(size_bytes: u64) -> Result<Geometry, SettingsError> {
    let sb = logcore::Superblock::for_region(size_bytes, [1; 16], 1, 0).map_err(|e| {
        SettingsError::Geometry {
            size_bytes,
            reason: e.to_string(),
        }
    })?;
    Ok(Geometry {
        ring_offset_bytes: sb.geometry.ring_offset,
        ring_capacity_bytes: sb.geometry.capacity,
        region_len_bytes: size_bytes,
    })
}

/// Bounds not (yet) in the config file, with their values.
pub mod defaults {
    use std::time::Duration;
    /// One RDMA operation list (ship + flush).
    pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
    /// How long a `sync` commit retries unreachable replicas.
    pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
    /// First reconnect delay (doubles per failure).
    pub const BACKOFF_MIN: Duration = Duration::from_millis(50);
    /// Largest reconnect delay.
    pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
}

/// A writer's replication options, with every replica's key loaded.
///
/// `heartbeat` is what the host beats for its closure, when it has one
/// (`closure::config::ClosureSettings::heartbeat`, from the file's
/// `closure` section); `None` keeps no heartbeat.
///
/// # Errors
/// [`SettingsError`] naming the setting.
pub fn replication_options<R: Section, C: Section>(
    cfg: &ValidatedConfig<R, C>,
    heartbeat: Option<Heartbeat>,
) -> Result<ReplicationOptions, SettingsError> {
    let writer = cfg.name.clone().ok_or(SettingsError::Missing {
        field: "name",
        reason: "on a writer",
    })?;
    let mut replicas = Vec::with_capacity(cfg.replicas.len());
    for (i, r) in cfg.replicas.iter().enumerate() {
        let key = r.load_key().map_err(|source| SettingsError::Key {
            field: format!("replicas[{i}].key-file"),
            source,
        })?;
        replicas.push(ReplicaSpec {
            name: r.name.clone(),
            address: r.control.clone(),
            key,
        });
    }
    let policy = match cfg.commit {
        CfgCommit::Sync { acks } => CommitPolicy::Sync {
            acks: acks.map_or(replicas.len(), |k| k as usize),
        },
        CfgCommit::Async { max_lag_bytes } => CommitPolicy::Async { max_lag_bytes },
    };
    Ok(ReplicationOptions {
        writer,
        device: device_name(&cfg.device)?,
        port: cfg.port(),
        qp: cfg.qp_config(),
        persistence: cfg.persistence,
        policy,
        replicas,
        op_timeout: defaults::OP_TIMEOUT,
        connect_timeout: cfg.control_timeout(),
        commit_timeout: defaults::COMMIT_TIMEOUT,
        backoff_min: defaults::BACKOFF_MIN,
        backoff_max: defaults::BACKOFF_MAX,
        heartbeat,
        metrics_listen: cfg.metrics_listen.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_what_logcore_formats() {
        let g = log_geometry(64 << 20).unwrap();
        assert_eq!(g.region_len_bytes, 64 << 20);
        assert_eq!(g.ring_offset_bytes + g.ring_capacity_bytes, 64 << 20);
        assert!(log_geometry(4096).is_err());
    }

    #[test]
    fn a_missing_netdev_is_named() {
        let d = DeviceConfig {
            name: None,
            netdev: Some("tg-none0".into()),
            ip: None,
            port: 1,
            gid_index: None,
            link_layer: None,
            traffic_class: None,
            hop_limit: None,
            service_level: 0,
        };
        let e = device_name(&d).unwrap_err().to_string();
        assert!(e.contains("tg-none0"), "{e}");
    }
}
