//! One run of the daemon: arm, watch, and take over (or stand down).

use std::io::Write;
use std::time::{Duration, Instant};

use logcore::Control;
use serde_json::{json, Value};

use crate::error::ClosureError;
use crate::isolation;
use crate::liveness::{Verdict, Watch};
use crate::metrics::{ClosureMetrics, State};
use crate::options::ClosureOptions;
use crate::standby::Standby;
use crate::takeover::{take_over, TakeoverReport};
use tg_ops::signals::Signals;
use tg_ops::systemd::{Notifier, Watchdog};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The host failed and the closure took over.
    TookOver(TakeoverReport),
    /// The host shut down cleanly (or another party sealed the log, or a
    /// new writer replaced the host): nothing to take over.
    StoodDown(Verdict),
    /// A stop (SIGTERM) was asked for while the host was alive: the
    /// closure stood down without a takeover (the host runs on, unarmed).
    Stopped,
}

/// What the daemon answers besides its host: its signals (SIGTERM stands
/// it down) and systemd (`READY=1` at the first arm, `STATUS=` lines, the
/// watchdog from the watch loop).
#[derive(Debug)]
pub struct Supervisor {
    signals: Signals,
    notifier: Notifier,
    watchdog: Watchdog,
    ready: bool,
    /// What `/metrics` and `/status` show.
    pub metrics: ClosureMetrics,
    endpoint: Option<tg_ops::metrics::Endpoint>,
}

impl Supervisor {
    /// `signals`, and systemd as the environment names it.
    #[must_use]
    pub fn from_env(signals: Signals) -> Self {
        let notifier = Notifier::from_env();
        Supervisor {
            signals,
            watchdog: Watchdog::from_env(notifier.clone()),
            notifier,
            ready: false,
            metrics: ClosureMetrics::default(),
            endpoint: None,
        }
    }

    /// Serves `/metrics` and `/status` on `listen`.
    ///
    /// # Errors
    /// The bind's.
    pub fn serve_metrics(&mut self, listen: &str) -> std::io::Result<std::net::SocketAddr> {
        let status: tg_ops::metrics::Page = {
            let m = self.metrics.clone();
            Box::new(move || ("application/json", format!("{}\n", m.status())))
        };
        let ep = tg_ops::metrics::Endpoint::serve(
            listen,
            self.metrics.registry(),
            Box::new(|| {}),
            vec![("/status", status)],
        )?;
        let addr = ep.local_addr();
        self.endpoint = Some(ep);
        Ok(addr)
    }

    /// No signals, no service manager (a bench, an embedding).
    #[must_use]
    pub fn none() -> Self {
        Supervisor {
            signals: Signals::unhooked(),
            notifier: Notifier::none(),
            watchdog: Watchdog::every(Notifier::none(), None),
            ready: false,
            metrics: ClosureMetrics::default(),
            endpoint: None,
        }
    }

    /// Pets the watchdog; whether to go on (no stop asked for).
    fn go_on(&mut self) -> bool {
        self.watchdog.tick();
        !self.signals.stopping()
    }

    /// Tells systemd the daemon's state (and `READY=1` the first time it
    /// is armed).
    fn status(&mut self, armed: bool, status: &str) {
        if armed && !self.ready {
            self.ready = true;
            self.notifier.tell(&format!("READY=1\nSTATUS={status}"));
        } else {
            self.notifier.tell(&format!("STATUS={status}"));
        }
    }
}

/// Prints one `EVENT {json}` line on stdout (the daemon's machine-readable
/// trail: `armed`, `takeover`, `stood-down`).
pub fn emit(event: &str, v: &Value) {
    let out = std::io::stdout();
    let mut out = out.lock();
    let _ = writeln!(out, "{event} {v}");
    let _ = out.flush();
}

/// Isolates the daemon (cores, real-time policy, OOM protection), then runs
/// one [`cycle`]: arm, watch, and take over or stand down.
///
/// # Errors
/// [`ClosureError`] while arming, watching or taking over.
pub fn run(
    opts: &ClosureOptions,
    wait_host: Duration,
    sup: &mut Supervisor,
) -> Result<Outcome, ClosureError> {
    let mut iso = isolate(opts);
    cycle(opts, wait_host, &mut iso, sup)
}

/// The daemon's normal life: isolates once, then runs [`cycle`] after
/// cycle. After a takeover it waits for the host the restart command
/// brings back (at its new epoch) and re-arms on it; after a clean
/// shutdown or a seal by someone else it waits for the next host; when a
/// new host replaced the watched one it re-arms at once. Waits for a host
/// are unbounded after the first arm (a warning every `wait_host` says
/// what the log shows); errors end it, and a stop (SIGTERM), which
/// returns `Ok`.
///
/// # Errors
/// The first [`ClosureError`] of any cycle (the first arm's
/// [`ClosureError::NoHost`] included).
pub fn serve(
    opts: &ClosureOptions,
    wait_host: Duration,
    sup: &mut Supervisor,
) -> Result<(), ClosureError> {
    let mut iso = isolate(opts);
    let mut first = true;
    loop {
        let outcome = match cycle(opts, wait_host, &mut iso, sup) {
            Ok(Outcome::Stopped) | Err(ClosureError::Stopped) => return Ok(()),
            Err(ClosureError::NoHost {
                path,
                waited_ms,
                state,
            }) if !first => {
                tracing::warn!(
                    log = %path.display(),
                    waited_ms,
                    state,
                    "no host running on the log yet; still waiting (after a takeover: did the restart command start it?)"
                );
                continue;
            }
            r => r?,
        };
        first = false;
        match &outcome {
            Outcome::TookOver(r) => {
                tracing::info!(epoch = r.epoch, "re-arming for the restarted host")
            }
            Outcome::StoodDown(v) => tracing::info!(verdict = ?v, "re-arming for the next host"),
            Outcome::Stopped => return Ok(()),
        }
        sup.metrics.set_state(State::WaitingForHost);
        sup.status(false, "not armed: waiting for the next host");
    }
}

fn isolate(opts: &ClosureOptions) -> isolation::Isolation {
    let iso = isolation::isolate(&opts.cores, opts.realtime_priority);
    for w in &iso.warnings {
        tracing::warn!("{w}");
    }
    iso
}

/// One cycle: prepares the standby resources (waiting up to `wait_host`
/// for a host running on the log), locks memory, watches the host until it
/// fails or goes away, and takes over if it failed. While armed, the
/// closure's pid and heartbeat are kept in the log's control block so the
/// host can report whether takeover is armed; both are cleared when the
/// cycle ends.
///
/// # Errors
/// [`ClosureError`] while arming, watching or taking over.
pub fn cycle(
    opts: &ClosureOptions,
    wait_host: Duration,
    iso: &mut isolation::Isolation,
    sup: &mut Supervisor,
) -> Result<Outcome, ClosureError> {
    let mut standby = Standby::prepare_until(opts, wait_host, &mut || sup.go_on())?;
    // Everything the takeover uses exists now: lock it in RAM.
    let before = iso.warnings.len();
    isolation::lock(iso);
    for w in &iso.warnings[before..] {
        tracing::warn!("{w}");
    }
    // The control block through the registered mapping: the watch only
    // reads it. The Arc keeps it mapped while `standby` is
    // borrowed mutably by the takeover.
    let source = std::sync::Arc::clone(standby.source());
    let control =
        Control::new(source.memory().region()).map_err(|source| ClosureError::Layout {
            path: opts.log_path.clone(),
            source,
        })?;
    let mut watch = Watch::arm(&control, opts.heartbeat_timeout)?;
    control.set_closure_pid(std::process::id());
    control.closure_tick();
    // Cleared however this cycle ends: a closure that is not watching
    // must not look armed to the host.
    let _armed = ClearOnDrop(&control);
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
            "realtime": iso.realtime,
            "memory_locked": iso.memory_locked,
            "oom_protected": iso.oom_protected,
        }),
    );
    sup.metrics.armed_on(watch.pid(), standby.identity.epoch);
    sup.metrics.kept_alive(
        standby
            .links
            .iter()
            .map(|l| (l.spec.name.as_str(), l.is_up())),
    );
    sup.status(
        true,
        &format!(
            "armed: host pid {}, epoch {}, {} replicas",
            watch.pid(),
            standby.identity.epoch,
            standby.links.len()
        ),
    );
    let mut next_keepalive = Instant::now() + opts.keepalive;
    let verdict = loop {
        let v = watch.check(&control, opts.poll_interval)?;
        if v != Verdict::Alive {
            break v;
        }
        if !sup.go_on() {
            // `_armed` clears the closure pid as this returns: the host
            // sees takeover disarmed.
            tracing::info!(
                host_pid = watch.pid(),
                "stopping (SIGTERM): standing down without a takeover; the host runs on unarmed"
            );
            sup.metrics.set_state(State::Stopped);
            sup.status(false, "stopping: stood down, host unarmed");
            emit(
                "stood-down",
                &json!({ "verdict": "Stopped", "host_pid": watch.pid() }),
            );
            return Ok(Outcome::Stopped);
        }
        control.closure_tick();
        if Instant::now() >= next_keepalive {
            standby.keepalive(opts);
            sup.metrics.kept_alive(
                standby
                    .links
                    .iter()
                    .map(|l| (l.spec.name.as_str(), l.is_up())),
            );
            next_keepalive = Instant::now() + opts.keepalive;
        }
    };
    let detected = Instant::now();
    match verdict {
        Verdict::Died | Verdict::Hung { .. } => {
            sup.metrics.set_state(State::TakingOver);
            tracing::warn!(host_pid = watch.pid(), ?verdict, "host failed: taking over");
            let killed =
                matches!(verdict, Verdict::Hung { .. }) && opts.kill_hung_host && kill_hung(&watch);
            let mut report = take_over(&mut standby, opts, verdict, watch.pid(), detected)?;
            report.host_killed = killed;
            sup.metrics.took_over(&report);
            sup.metrics.set_state(State::WaitingForHost);
            emit("takeover", &report.to_json());
            Ok(Outcome::TookOver(report))
        }
        v => {
            sup.metrics.set_state(State::WaitingForHost);
            tracing::info!(host_pid = watch.pid(), verdict = ?v, "standing down: nothing to take over");
            emit(
                "stood-down",
                &json!({ "verdict": format!("{v:?}"), "host_pid": watch.pid() }),
            );
            Ok(Outcome::StoodDown(v))
        }
    }
}

/// How long a SIGKILLed hung host may take to be gone.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// Kills the hung host so it cannot resume into the log the closure is
/// about to seal (a stopped process dies on SIGKILL without running).
/// Returns whether it is gone; a failure is a warning: the replicas'
/// fencing still keeps a resumed host off them.
fn kill_hung(watch: &Watch) -> bool {
    match watch.kill(KILL_WAIT) {
        Ok(true) => {
            tracing::info!(
                host_pid = watch.pid(),
                "hung host killed (closure.kill-hung-host)"
            );
            true
        }
        Ok(false) => {
            tracing::warn!(
                host_pid = watch.pid(),
                waited_ms = KILL_WAIT.as_millis(),
                "hung host still there after SIGKILL; taking over anyway (the replicas fence it)"
            );
            false
        }
        Err(e) => {
            tracing::warn!(host_pid = watch.pid(), error = %e, "cannot kill the hung host; taking over anyway (the replicas fence it)");
            false
        }
    }
}

struct ClearOnDrop<'a, 'r>(&'a Control<'r>);

impl Drop for ClearOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.set_closure_pid(0);
    }
}
