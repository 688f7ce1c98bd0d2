//! The writer a benchmark drives, from a config file, and the facts about
//! the run that go into its JSON.

use std::path::Path;

use fabric::config::Config;
use fabric::replicated::ReplicatedLog;
use logcore::{CreateOptions, Log, OpenError, RegionKind};
use serde_json::{json, Value};

/// Opens the log at `log.path` (creating it if missing: a replica that
/// mirrored it before accepts it again) and joins it to its replicas.
pub(crate) fn writer(cfg_path: &Path) -> Result<(Config, ReplicatedLog), String> {
    let cfg = Config::from_yaml_file(cfg_path).map_err(|e| e.to_string())?;
    let opts = fabric::settings::replication_options(&cfg)
        .map_err(|e| format!("{}: {e}", cfg_path.display()))?;
    let path = cfg
        .log
        .path
        .clone()
        .ok_or_else(|| format!("{}: log.path is required for a writer", cfg_path.display()))?;
    let log = match Log::open(&path, RegionKind::Auto) {
        Ok(l) => l,
        Err(OpenError::Region(_)) if !path.exists() => {
            Log::create(&path, cfg.log.size_bytes, &CreateOptions::default())
                .map_err(|e| format!("creating the log {}: {e}", path.display()))?
        }
        Err(e) => return Err(format!("opening the log {}: {e}", path.display())),
    };
    let rl = ReplicatedLog::open(log, opts).map_err(|e| e.to_string())?;
    Ok((cfg, rl))
}

fn first_line(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split(':').nth(1))
        .map(|v| v.trim().to_owned())
}

/// Machine, kernel, device and versions, for the JSON and the table header.
pub(crate) fn environment(cfg: &Config, rl: &ReplicatedLog) -> Value {
    json!({
        "tailguard_version": env!("CARGO_PKG_VERSION"),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default(),
        "cpu": first_line("/proc/cpuinfo", "model name"),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "device": fabric::settings::device_name(&cfg.device).ok(),
        "persistence": format!("{:?}", cfg.persistence).to_lowercase(),
        "commit": format!("{:?}", cfg.commit),
        "log_size_bytes": cfg.log.size_bytes,
        "log_region": format!("{:?}", rl.log().region().kind()),
        "replicas": cfg.replicas.iter().map(|r| json!({"name": r.name, "control": r.control})).collect::<Vec<_>>(),
    })
}
