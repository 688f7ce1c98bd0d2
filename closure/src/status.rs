//! `tg-closure status`: is takeover armed for this node's host, and if not,
//! why. Read from the host's log (the closure's pid and beat in its control
//! block: works with no daemon and no RDMA device) and, with
//! `closure.metrics-listen`, from the daemon itself (its state, the last
//! keep-alive per replica, the last takeover).

use std::path::Path;
use std::time::{Duration, Instant};

use logcore::{Control, LogState, Region, RegionKind};
use serde_json::{json, Value};

use crate::config::HostConfig;

/// What the status shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The host's log.
    pub log: String,
    /// Its state (`running`, `clean-shutdown`, `sealed`, ...).
    pub log_state: &'static str,
    /// The host writing it (0: none).
    pub host_pid: u32,
    /// Its epoch.
    pub epoch: u32,
    /// The closure the log names (0: none).
    pub closure_pid: u32,
    /// Whether a host failure now would be taken over.
    pub armed: bool,
    /// If not armed: why, and what to do.
    pub why_not: Option<String>,
    /// The daemon's own answer (`GET /status`), or why there is none;
    /// `Null` without `closure.metrics-listen`.
    pub daemon: Value,
}

impl Status {
    /// As one JSON object.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "log": self.log,
            "log_state": self.log_state,
            "host_pid": self.host_pid,
            "epoch": self.epoch,
            "closure_pid": self.closure_pid,
            "armed": self.armed,
            "why_not": self.why_not,
            "daemon": self.daemon,
        })
    }

    /// As lines for a person.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "log           {} ({}, epoch {})\nhost          {}\n",
            self.log,
            self.log_state,
            self.epoch,
            if self.host_pid == 0 {
                "none".to_owned()
            } else {
                format!("pid {}", self.host_pid)
            }
        );
        match (&self.why_not, self.armed) {
            (_, true) => out.push_str(&format!(
                "takeover      ARMED (closure pid {})\n",
                self.closure_pid
            )),
            (Some(why), false) => out.push_str(&format!("takeover      NOT ARMED: {why}\n")),
            (None, false) => out.push_str("takeover      NOT ARMED\n"),
        }
        match &self.daemon {
            Value::Null => out.push_str(
                "daemon        not asked (set closure.metrics-listen for keep-alives and takeovers)\n",
            ),
            d if d["running"] == false => out.push_str(&format!(
                "daemon        no answer on {}: {}\n",
                d["metrics_listen"].as_str().unwrap_or("?"),
                d["error"].as_str().unwrap_or("?")
            )),
            d => {
                out.push_str(&format!(
                    "daemon        pid {}, {}\n",
                    d["pid"],
                    d["state"].as_str().unwrap_or("?")
                ));
                for r in d["replicas"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "replica       {} {} (last keep-alive {})\n",
                        r["replica"].as_str().unwrap_or("?"),
                        if r["up"] == true { "up" } else { "DOWN" },
                        r["last_keepalive_unix"]
                            .as_f64()
                            .map_or("never".to_owned(), |t| format!("at unix {t:.3}"))
                    ));
                }
                if d["takeovers"].as_u64().unwrap_or(0) > 0 {
                    out.push_str(&format!(
                        "takeovers     {} (last: {})\n",
                        d["takeovers"], d["last_takeover"]
                    ));
                }
            }
        }
        out
    }
}

/// Reads the status for the config at `path`.
///
/// # Errors
/// The config, or the host's log that cannot be read, as a sentence.
pub fn read(path: &Path) -> Result<Status, String> {
    let cfg = HostConfig::from_yaml_file(path).map_err(|e| e.to_string())?;
    let c = cfg.closure().ok_or_else(|| {
        format!(
            "{}: no `closure:` section (this node has no closure to ask about)",
            path.display()
        )
    })?;
    let region = Region::open(&c.log_path, RegionKind::Auto)
        .map_err(|e| format!("the host's log {}: {e}", c.log_path.display()))?;
    let control = Control::new(&region)
        .map_err(|e| format!("the host's log {}: {e}", c.log_path.display()))?;
    let (state, host_pid, epoch, closure_pid) = (
        control.state(),
        control.host_pid(),
        control.epoch(),
        control.closure_pid(),
    );
    let why_not = if closure_pid == 0 {
        Some(match state {
            LogState::Running => "no closure names itself in the log: start tg-closure (systemctl start tg-closure@NODE)".to_owned(),
            s => format!("the log is {} (no running host to arm on)", s.name()),
        })
    } else if !beats(&control, c.heartbeat_timeout) {
        Some(format!(
            "closure pid {closure_pid} has not beaten for {} ms (closure.heartbeat-timeout-ms): dead or hung; restart it",
            c.heartbeat_timeout.as_millis()
        ))
    } else {
        None
    };
    let daemon = match &c.metrics_listen {
        None => Value::Null,
        Some(addr) => match tg_ops::metrics::fetch(addr, "/status", Duration::from_secs(2))
            .and_then(|b| serde_json::from_str::<Value>(&b).map_err(|e| e.to_string()))
        {
            Ok(mut v) => {
                v["running"] = true.into();
                v
            }
            Err(e) => json!({ "running": false, "metrics_listen": addr, "error": e }),
        },
    };
    Ok(Status {
        log: c.log_path.display().to_string(),
        log_state: state.name(),
        host_pid,
        epoch,
        armed: why_not.is_none(),
        closure_pid,
        why_not,
        daemon,
    })
}

/// Whether the closure's beat moves within `timeout` (it ticks every pass
/// of its watch loop).
fn beats(control: &Control<'_>, timeout: Duration) -> bool {
    let first = control.closure_beat();
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
        if control.closure_beat() != first {
            return true;
        }
    }
    false
}
