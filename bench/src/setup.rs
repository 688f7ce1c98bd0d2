//! The writer a benchmark drives, from a config file, and the facts about
//! the run that go into its JSON. Every failure here is one line saying
//! what to do: a config that does not load, a device that is not there, a
//! replica that does not answer.

use std::path::{Path, PathBuf};

use closure::config::{HostConfig, ValidatedHostConfig};
use fabric::config::ConfigError;
use fabric::replicated::{ReplicatedLog, ReplicationOptions};
use logcore::{CreateOptions, Log, OpenError, RegionKind};
use serde_json::{json, Value};

/// A config that loaded and validated, not yet connected to anything.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) path: PathBuf,
    pub(crate) cfg: ValidatedHostConfig,
    opts: ReplicationOptions,
    log_path: PathBuf,
}

/// One line from a config error: the parser's source snippet is dropped and
/// several validation issues are joined with `; `.
fn config_error(e: &ConfigError) -> String {
    let text = e.to_string();
    match e {
        ConfigError::Read { .. } => {
            format!("{text} (pass --config FILE; configs/ holds annotated examples)")
        }
        ConfigError::Parse { .. } => format!(
            "{} (see configs/rxe-loopback.yaml for every key)",
            text.lines().next().unwrap_or_default()
        ),
        _ => text.lines().collect::<Vec<_>>().join("; "),
    }
}

/// Reads and validates the writer side of the config at `cfg_path` (and its
/// `closure` section: a host with a closure beats the heartbeat it bounds).
pub(crate) fn load(cfg_path: &Path) -> Result<Loaded, String> {
    let cfg = HostConfig::from_yaml_file(cfg_path).map_err(|e| config_error(&e))?;
    let heartbeat = cfg
        .closure()
        .map(closure::config::ClosureSettings::heartbeat);
    let opts = fabric::settings::replication_options(&cfg, heartbeat)
        .map_err(|e| format!("{}: {e}", cfg_path.display()))?;
    let log_path = cfg.log.path.clone().ok_or_else(|| {
        format!(
            "{}: log.path is required for a writer: set it to a file the writer may create",
            cfg_path.display()
        )
    })?;
    Ok(Loaded {
        path: cfg_path.to_owned(),
        cfg,
        opts,
        log_path,
    })
}

/// Opens the device (before touching the log, so a missing device leaves
/// no file behind), opens the log at `log.path` (creating it if missing: a
/// replica that mirrored it before accepts it again), joins it to its
/// replicas and connects to each at once, so an unreachable replica is
/// reported here and not as a commit timeout later.
pub(crate) fn connect(l: &Loaded) -> Result<ReplicatedLog, String> {
    join(l, open_log(l)?)
}

/// The first half of [`connect`]: checks the device, then opens (or
/// creates) the log, recovering it.
pub(crate) fn open_log(l: &Loaded) -> Result<Log, String> {
    drop(fabric::verbs::Context::open(&l.opts.device, l.opts.port).map_err(|e| e.to_string())?);
    let path = &l.log_path;
    let log = match Log::open(path, RegionKind::Auto) {
        Ok(log) => log,
        Err(OpenError::Region(_)) if !path.exists() => {
            Log::create(path, l.cfg.log.size_bytes, &CreateOptions::default()).map_err(|e| {
                format!(
                    "creating the log {}: {e} (check log.path in {})",
                    path.display(),
                    l.path.display()
                )
            })?
        }
        Err(e) => {
            return Err(format!(
            "opening the log {}: {e} (delete it to start a fresh log, or point log.path elsewhere)",
            path.display()
        ))
        }
    };
    Ok(log)
}

/// The second half of [`connect`]: joins `log` to its replicas (a sealed
/// log moves to a new epoch) and connects each.
pub(crate) fn join(l: &Loaded, log: Log) -> Result<ReplicatedLog, String> {
    let rl = ReplicatedLog::open(log, l.opts.clone()).map_err(|e| e.to_string())?;
    // Every replica connected (TCP, handshake, QP set-up) before measuring,
    // or the first one's error within the control timeout.
    rl.connected(l.opts.connect_timeout * 2)
        .map_err(|e| e.to_string())?;
    Ok(rl)
}

fn first_line(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split(':').nth(1))
        .map(|v| v.trim().to_owned())
}

/// Machine, kernel, device and versions, for the JSON and the plots.
pub(crate) fn environment(cfg: &ValidatedHostConfig, rl: &ReplicatedLog) -> Value {
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

/// The machine in one line, for plot captions.
pub(crate) fn machine_caption(env: &Value) -> String {
    let s = |k: &str| env[k].as_str().unwrap_or("unknown").to_owned();
    format!(
        "machine: {} ({} cpus), kernel {}, device {}, persistence {}, tailguard {}",
        s("cpu"),
        env["cpus"],
        s("kernel"),
        s("device"),
        s("persistence"),
        s("tailguard_version"),
    )
}
