//! What `tg-replica serve` runs with, from the YAML config.

use std::path::PathBuf;
use std::time::Duration;

use fabric::auth::AllowList;
use fabric::settings::{self, SettingsError};
use fabric::verbs::QpConfig;
use fabric::wire::{Geometry, PersistenceMode};

use crate::config::ValidatedReplicaConfig;

/// What `tg-replica serve` runs with.
#[derive(Debug)]
pub struct Settings {
    /// Control address.
    pub listen: String,
    /// The replica's region.
    pub region: PathBuf,
    /// The epoch file.
    pub epoch_file: PathBuf,
    /// Admitted writers and their keys.
    pub allow: AllowList,
    /// RDMA device.
    pub device: String,
    /// Its port.
    pub port: u8,
    /// Queue pair parameters.
    pub qp: QpConfig,
    /// Persistence mode (must equal the writers').
    pub persistence: PersistenceMode,
    /// The ring geometry writers must have.
    pub geometry: Geometry,
    /// Bound on each handshake message and each write; a seal waits half
    /// of it for replay to reach the sealed tail.
    pub control_timeout: Duration,
    /// Most admitted writers at once (handshakes in progress are bounded
    /// apart).
    pub max_sessions: usize,
    /// An admitted writer that sends no request for this long is taken
    /// for gone: its session ends and its queue pair is dropped.
    pub idle_session: Duration,
    /// Replay poll interval when idle.
    pub replay_idle: Duration,
    /// Where to serve `/metrics` and `/status` (`replica.metrics-listen`).
    pub metrics_listen: Option<String>,
}

impl Settings {
    /// From a validated config with a `replica` section, every writer's key
    /// loaded.
    ///
    /// # Errors
    /// [`SettingsError`] naming the setting.
    pub fn from_config(cfg: &ValidatedReplicaConfig) -> Result<Self, SettingsError> {
        let r = cfg.replica().ok_or(SettingsError::Missing {
            field: "replica",
            reason: "for tg-replica",
        })?;
        let allow = AllowList::load(&r.allow).map_err(SettingsError::AllowList)?;
        Ok(Settings {
            listen: r.listen.clone(),
            region: r.region.clone(),
            epoch_file: r.epoch_file.clone(),
            allow,
            device: settings::device_name(&cfg.device)?,
            port: cfg.port(),
            qp: cfg.qp_config(),
            persistence: cfg.persistence,
            geometry: settings::log_geometry(cfg.log.size_bytes)?,
            control_timeout: cfg.control_timeout(),
            max_sessions: 16,
            idle_session: Duration::from_millis(r.idle_session_ms),
            replay_idle: Duration::from_millis(1),
            metrics_listen: r.metrics_listen.clone(),
        })
    }
}
