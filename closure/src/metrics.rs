//! The closure's metrics and live status (`closure.metrics-listen`):
//! whether takeover is armed (and if not, what the daemon is doing), the
//! host it watches, the last keep-alive per replica, and the step
//! durations of the last takeover. Everything is an atomic the watch loop
//! sets; a scrape only reads them.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tg_ops::metrics::prometheus_client::metrics::counter::Counter;
use tg_ops::metrics::prometheus_client::metrics::family::Family;
use tg_ops::metrics::prometheus_client::metrics::gauge::Gauge;
use tg_ops::metrics::prometheus_client::registry::Registry;

use crate::takeover::TakeoverReport;

/// What the daemon is doing: exactly one is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for a host running on the log (not armed).
    WaitingForHost,
    /// Armed: a host failure now is taken over.
    Armed,
    /// Taking over a failed host.
    TakingOver,
    /// Stopping (SIGTERM): stood down.
    Stopped,
}

impl State {
    const ALL: [State; 4] = [
        State::WaitingForHost,
        State::Armed,
        State::TakingOver,
        State::Stopped,
    ];

    /// Its label value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            State::WaitingForHost => "waiting_for_host",
            State::Armed => "armed",
            State::TakingOver => "taking_over",
            State::Stopped => "stopped",
        }
    }
}

type Labels = Vec<(&'static str, String)>;

/// The closure's metrics.
#[derive(Debug, Clone)]
pub struct ClosureMetrics {
    states: Family<Labels, Gauge>,
    state_gauges: Vec<(State, Gauge)>,
    armed: Gauge,
    host_pid: Gauge,
    epoch: Gauge,
    replicas_up: Gauge,
    keepalive: Family<Labels, Gauge<f64, AtomicU64>>,
    takeovers: Counter,
    steps: Family<Labels, Gauge<f64, AtomicU64>>,
    /// The last takeover's report, for `/status` (set once per takeover).
    last: Arc<Mutex<Option<Value>>>,
    /// Each replica's link at the last keep-alive, for `/status`.
    links: Arc<Mutex<Vec<Value>>>,
}

impl Default for ClosureMetrics {
    fn default() -> Self {
        let states: Family<Labels, Gauge> = Family::default();
        let state_gauges = State::ALL
            .iter()
            .map(|&s| {
                (
                    s,
                    states
                        .get_or_create(&vec![("state", s.name().to_owned())])
                        .clone(),
                )
            })
            .collect();
        let m = ClosureMetrics {
            states,
            state_gauges,
            armed: Gauge::default(),
            host_pid: Gauge::default(),
            epoch: Gauge::default(),
            replicas_up: Gauge::default(),
            keepalive: Family::default(),
            takeovers: Counter::default(),
            steps: Family::default(),
            last: Arc::default(),
            links: Arc::default(),
        };
        m.set_state(State::WaitingForHost);
        m
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl ClosureMetrics {
    /// The daemon is now in `state`.
    pub fn set_state(&self, state: State) {
        for (s, g) in &self.state_gauges {
            g.set(i64::from(*s == state));
        }
        self.armed.set(i64::from(state == State::Armed));
    }

    /// The state now.
    #[must_use]
    pub fn state(&self) -> State {
        self.state_gauges
            .iter()
            .find(|(_, g)| g.get() == 1)
            .map_or(State::WaitingForHost, |(s, _)| *s)
    }

    /// Armed on `host_pid` at `epoch`.
    pub fn armed_on(&self, host_pid: u32, epoch: u32) {
        self.host_pid.set(i64::from(host_pid));
        self.epoch.set(i64::from(epoch));
        self.set_state(State::Armed);
    }

    /// After a keep-alive pass: each replica by name and whether its link
    /// is up (the last keep-alive of one that is up is now).
    pub fn kept_alive<'a>(&self, links: impl Iterator<Item = (&'a str, bool)>) {
        let now = now_seconds();
        let mut up = 0;
        let mut seen = Vec::new();
        for (name, ok) in links {
            let last = self
                .keepalive
                .get_or_create(&vec![("replica", name.to_owned())])
                .clone();
            if ok {
                up += 1;
                last.set(now);
            }
            let at = last.get();
            seen.push(json!({
                "replica": name,
                "up": ok,
                "last_keepalive_unix": if at > 0.0 { json!(at) } else { Value::Null },
            }));
        }
        self.replicas_up.set(up);
        *self.links.lock().unwrap_or_else(PoisonError::into_inner) = seen;
    }

    /// A takeover completed with `report`.
    pub fn took_over(&self, report: &TakeoverReport) {
        self.takeovers.inc();
        #[allow(clippy::cast_precision_loss)]
        for (step, us) in [
            ("recover", Some(report.recover_us)),
            ("tail_durable", Some(report.tail_durable_us)),
            ("seal_durable", Some(report.seal_durable_us)),
            ("sealed", Some(report.sealed_us)),
            ("restart", report.restart_us),
        ] {
            let Some(us) = us else { continue };
            self.steps
                .get_or_create(&vec![("step", step.to_owned())])
                .set(us as f64 / 1e6);
        }
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(report.to_json());
    }

    /// A registry of these metrics (the same atomics).
    #[must_use]
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "tg_closure_armed",
            "1 when a host failure now would be taken over",
            self.armed.clone(),
        );
        r.register(
            "tg_closure_state",
            "What the closure is doing (1 for the current state): waiting_for_host, armed, taking_over, stopped",
            self.states.clone(),
        );
        r.register(
            "tg_closure_host_pid",
            "Pid of the host it is armed on (last armed)",
            self.host_pid.clone(),
        );
        r.register(
            "tg_closure_epoch",
            "Epoch of the host's log it is armed on",
            self.epoch.clone(),
        );
        r.register(
            "tg_closure_replicas_up",
            "Replicas whose standby link was up at the last keep-alive",
            self.replicas_up.clone(),
        );
        r.register(
            "tg_closure_last_keepalive_timestamp_seconds",
            "Unix time of the last keep-alive that found the replica's standby link up",
            self.keepalive.clone(),
        );
        r.register(
            "tg_closure_takeovers",
            "Takeovers completed",
            self.takeovers.clone(),
        );
        r.register(
            "tg_closure_takeover_step_seconds",
            "Duration of each step of the last takeover, from detection",
            self.steps.clone(),
        );
        r
    }

    /// `GET /status`: what `tg-closure status` shows.
    #[must_use]
    pub fn status(&self) -> Value {
        let state = self.state();
        let replicas = self
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        json!({
            "pid": std::process::id(),
            "state": state.name(),
            "armed": state == State::Armed,
            "host_pid": self.host_pid.get(),
            "epoch": self.epoch.get(),
            "replicas_up": self.replicas_up.get(),
            "replicas": replicas,
            "takeovers": self.takeovers.get(),
            "last_takeover": self.last.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        })
    }
}
