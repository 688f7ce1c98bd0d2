//! One run of the daemon: arm, watch, and take over (or stand down).

use std::io::Write;
use std::time::{Duration, Instant};

use logcore::Control;
use serde_json::{json, Value};

use crate::error::ClosureError;
use crate::isolation;
use crate::liveness::{Verdict, Watch};
use crate::options::ClosureOptions;
use crate::standby::Standby;
use crate::takeover::{take_over, TakeoverReport};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The host failed and the closure took over.
    TookOver(TakeoverReport),
    /// The host shut down cleanly (or another party sealed the log, or a
    /// new writer replaced the host): nothing to take over.
    StoodDown(Verdict),
}

/// Prints one `EVENT {json}` line on stdout (the daemon's machine-readable
/// trail: `armed`, `takeover`, `stood-down`).
pub fn emit(event: &str, v: &Value) {
    let out = std::io::stdout();
    let mut out = out.lock();
    let _ = writeln!(out, "{event} {v}");
    let _ = out.flush();
}

/// Arms (isolation, standby resources), watches the host until it fails or
/// goes away, and takes over if it failed.
///
/// # Errors
/// [`ClosureError`] while arming, watching or taking over.
pub fn run(opts: &ClosureOptions, wait_host: Duration) -> Result<Outcome, ClosureError> {
    let mut iso = isolation::isolate(&opts.cores);
    for w in &iso.warnings {
        tracing::warn!("{w}");
    }
    let mut standby = Standby::prepare(opts, wait_host)?;
    // Everything the takeover uses exists now: lock it in RAM.
    let before = iso.warnings.len();
    isolation::lock(&mut iso);
    for w in &iso.warnings[before..] {
        tracing::warn!("{w}");
    }
    // The control block through the registered mapping: the watch only
    // reads it. The Arc keeps it mapped while `standby` is
    // borrowed mutably by the takeover.
    let source = std::sync::Arc::clone(&standby.source);
    let control =
        Control::new(source.memory().region()).map_err(|source| ClosureError::Layout {
            path: opts.log_path.clone(),
            source,
        })?;
    let mut watch = Watch::arm(&control, opts.heartbeat_timeout)?;
    tracing::info!(
        host_pid = watch.pid(),
        epoch = standby.identity.epoch,
        replicas = standby.links.len(),
        "armed"
    );
    emit(
        "armed",
        &json!({
            "host_pid": watch.pid(),
            "epoch": standby.identity.epoch,
            "replicas": standby.links.len(),
            "cold_connect_us": u64::try_from(standby.cold_connect.as_micros()).unwrap_or(u64::MAX),
            "pinned": iso.pinned,
            "cores_isolated": iso.cores_isolated,
            "memory_locked": iso.memory_locked,
            "oom_protected": iso.oom_protected,
        }),
    );
    let mut next_keepalive = Instant::now() + opts.keepalive;
    let verdict = loop {
        let v = watch.check(&control, opts.poll_interval)?;
        if v != Verdict::Alive {
            break v;
        }
        if Instant::now() >= next_keepalive {
            standby.keepalive(opts);
            next_keepalive = Instant::now() + opts.keepalive;
        }
    };
    let detected = Instant::now();
    match verdict {
        Verdict::Died | Verdict::Hung { .. } => {
            tracing::warn!(host_pid = watch.pid(), ?verdict, "host failed: taking over");
            let report = take_over(&mut standby, opts, verdict, watch.pid(), detected)?;
            emit("takeover", &report.to_json());
            Ok(Outcome::TookOver(report))
        }
        v => {
            tracing::info!(host_pid = watch.pid(), verdict = ?v, "standing down: nothing to take over");
            emit(
                "stood-down",
                &json!({ "verdict": format!("{v:?}"), "host_pid": watch.pid() }),
            );
            Ok(Outcome::StoodDown(v))
        }
    }
}
