//! The writer a benchmark drives, from a config file, and the facts about
//! the run that go into its JSON. Every failure here is one line saying
//! what to do: a config that does not load, a device that is not there, a
//! replica that does not answer.

use std::path::{Path, PathBuf};

use closure::config::{HostConfig, ValidatedHostConfig};
use fabric::config::{ConfigError, ValidationErrors};
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

/// What perftest's `-d`, `-i` and `-x` override in the config's `device`
/// section. Each is checked by the config's own validation, so it has the
/// bounds the file's value would have.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct DeviceOverrides {
    /// `-d/--ib-dev`: `device.name`; selecting the device by name replaces
    /// the file's `device.netdev` or `device.ip`.
    pub(crate) name: Option<String>,
    /// `-i/--ib-port`: `device.port`.
    pub(crate) port: Option<u32>,
    /// `-x/--gid-index`: `device.gid-index`.
    pub(crate) gid_index: Option<u32>,
}

impl DeviceOverrides {
    /// The flag that overrides a config field, if any.
    fn flag_for(field: &str) -> Option<&'static str> {
        match field {
            "device.name" => Some("-d/--ib-dev"),
            "device.port" => Some("-i/--ib-port"),
            "device.gid-index" => Some("-x/--gid-index"),
            _ => None,
        }
    }

    /// `cfg` with the overrides applied and validated again. `cfg` passed
    /// validation, so whatever is refused now is an override: each issue
    /// is reported under the flag that set it.
    pub(crate) fn apply(
        &self,
        cfg: ValidatedHostConfig,
        cfg_path: &Path,
    ) -> Result<ValidatedHostConfig, String> {
        if *self == DeviceOverrides::default() {
            return Ok(cfg);
        }
        let mut raw: HostConfig = (*cfg).clone();
        if let Some(name) = &self.name {
            raw.device.name = Some(name.clone());
            raw.device.netdev = None;
            raw.device.ip = None;
        }
        if let Some(port) = self.port {
            raw.device.port = port;
        }
        if let Some(g) = self.gid_index {
            raw.device.gid_index = Some(g);
        }
        raw.validate()
            .map_err(|e| self.override_error(&e, cfg_path))
    }

    /// One line: each issue under its flag, saying which setting of which
    /// file the flag replaced.
    fn override_error(&self, errors: &ValidationErrors, cfg_path: &Path) -> String {
        let issues: Vec<String> = errors
            .0
            .iter()
            .map(|i| match Self::flag_for(&i.field) {
                Some(flag) => format!(
                    "{flag}: {} (it overrides {} in {})",
                    i.message,
                    i.field,
                    cfg_path.display()
                ),
                None => format!(
                    "{} with {self}: {}: {}",
                    cfg_path.display(),
                    i.field,
                    i.message
                ),
            })
            .collect();
        issues.join("; ")
    }
}

impl std::fmt::Display for DeviceOverrides {
    /// The overrides as flags, for messages: `-d mlx5_0 -i 2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut flags = Vec::new();
        if let Some(n) = &self.name {
            flags.push(format!("-d {n}"));
        }
        if let Some(p) = self.port {
            flags.push(format!("-i {p}"));
        }
        if let Some(g) = self.gid_index {
            flags.push(format!("-x {g}"));
        }
        f.write_str(&flags.join(" "))
    }
}

/// Reads and validates the writer side of the config at `cfg_path` (and its
/// `closure` section: a host with a closure beats the heartbeat it bounds),
/// with `overrides` from the command line applied to its `device` section.
pub(crate) fn load(cfg_path: &Path, overrides: &DeviceOverrides) -> Result<Loaded, String> {
    let cfg = HostConfig::from_yaml_file(cfg_path).map_err(|e| config_error(&e))?;
    let cfg = overrides.apply(cfg, cfg_path)?;
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
        "device_port": cfg.port(),
        "gid_index": cfg.qp_config().gid_index,
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

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "name: host-a\nlog:\n  path: /tmp/tg-bench-never-created.log\n  size-bytes: 1048576\n\
                        device:\n  netdev: eth9\n  gid-index: 1\n\
                        replicas:\n  - name: r0\n    control: 127.0.0.1:7471\n    key-file: host-a.key\n";

    fn cfg() -> ValidatedHostConfig {
        HostConfig::from_yaml_str(YAML).unwrap()
    }

    #[test]
    fn overrides_replace_the_device_settings_they_name() {
        let path = Path::new("cfg.yaml");
        let same = DeviceOverrides::default().apply(cfg(), path).unwrap();
        assert_eq!(same.device, cfg().device, "no flags: the file as it is");

        let o = DeviceOverrides {
            name: Some("mlx5_1".into()),
            port: Some(2),
            gid_index: Some(3),
        };
        let c = o.apply(cfg(), path).unwrap();
        // -d selects by name: the file's netdev no longer applies.
        assert_eq!(c.device.name.as_deref(), Some("mlx5_1"));
        assert_eq!(c.device.netdev, None);
        assert_eq!(c.port(), 2);
        // The GID index reaches the queue-pair settings the fabric uses.
        assert_eq!(c.qp_config().gid_index, Some(3));
        assert_eq!(o.to_string(), "-d mlx5_1 -i 2 -x 3");

        // One flag leaves the others as the file has them.
        let c = DeviceOverrides {
            port: Some(7),
            ..DeviceOverrides::default()
        }
        .apply(cfg(), path)
        .unwrap();
        assert_eq!(c.device.netdev.as_deref(), Some("eth9"));
        assert_eq!(c.qp_config().gid_index, Some(1));
        assert_eq!(c.port(), 7);
    }

    #[test]
    fn an_override_out_of_bounds_is_named_by_its_flag() {
        let path = Path::new("cfg.yaml");
        let refuse = |o: DeviceOverrides| o.apply(cfg(), path).unwrap_err();
        let e = refuse(DeviceOverrides {
            port: Some(0),
            ..DeviceOverrides::default()
        });
        assert_eq!(
            e,
            "-i/--ib-port: must be 1..=255, got 0 (it overrides device.port in cfg.yaml)"
        );
        let e = refuse(DeviceOverrides {
            gid_index: Some(256),
            ..DeviceOverrides::default()
        });
        assert!(
            e.starts_with("-x/--gid-index: must be 0..=255, got 256"),
            "{e}"
        );
        let e = refuse(DeviceOverrides {
            name: Some("a/b".into()),
            port: Some(300),
            ..DeviceOverrides::default()
        });
        assert!(e.contains("-d/--ib-dev: must be 1..=64 bytes"), "{e}");
        assert!(
            e.contains("; -i/--ib-port: must be 1..=255, got 300"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}
