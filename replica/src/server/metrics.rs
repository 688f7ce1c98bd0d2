//! The replica's metrics (`replica.metrics-listen`): what it holds, who is
//! connected, and why peers were refused. Gauges are read from the
//! daemon's state at each scrape; the refusal counters are counted as
//! refusals happen.

use std::sync::atomic::AtomicU64;

use tg_ops::metrics::prometheus_client::metrics::counter::Counter;
use tg_ops::metrics::prometheus_client::metrics::family::Family;
use tg_ops::metrics::prometheus_client::metrics::gauge::Gauge;
use tg_ops::metrics::prometheus_client::registry::Registry;

/// The `reason` label of a refusal.
type Reason = Vec<(&'static str, &'static str)>;

/// What the replica counts and shows.
#[derive(Debug, Default, Clone)]
pub(super) struct Metrics {
    refusals: Family<Reason, Counter>,
    pub(super) durable_tail: Gauge,
    pub(super) head: Gauge,
    pub(super) applied_lsn: Gauge,
    pub(super) epoch: Gauge,
    pub(super) sealed: Gauge,
    pub(super) sessions: Gauge,
    pub(super) handshakes: Gauge,
    pub(super) last_applied: Gauge<f64, AtomicU64>,
}

impl Metrics {
    /// Counts a refused (or failed) handshake.
    pub(super) fn refused(&self, reason: &'static str) {
        self.refusals.get_or_create(&vec![("reason", reason)]).inc();
    }

    /// A registry of these metrics (the same atomics: updates show).
    pub(super) fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "tg_replica_refusals",
            "Handshakes that admitted no one, by reason",
            self.refusals.clone(),
        );
        r.register(
            "tg_replica_durable_tail_bytes",
            "Ring position up to which the replica holds the log replayed and flushed",
            self.durable_tail.clone(),
        );
        r.register(
            "tg_replica_head_bytes",
            "Ring position of the oldest record the replica keeps",
            self.head.clone(),
        );
        r.register(
            "tg_replica_applied_lsn",
            "LSN of the last record replayed into the replica's state copy",
            self.applied_lsn.clone(),
        );
        r.register(
            "tg_replica_epoch",
            "Highest admitted epoch (the epoch file)",
            self.epoch.clone(),
        );
        r.register(
            "tg_replica_sealed",
            "1 when the admitted epoch is sealed (the primary's closure shipped its tail)",
            self.sealed.clone(),
        );
        r.register(
            "tg_replica_sessions",
            "Writers admitted now (hosts and closures)",
            self.sessions.clone(),
        );
        r.register(
            "tg_replica_handshakes_in_progress",
            "Control connections not yet admitted or refused",
            self.handshakes.clone(),
        );
        r.register(
            "tg_replica_last_applied_timestamp_seconds",
            "Unix time at which replay last applied a record (0: never since start); \
             alert on time() minus it while writers commit",
            self.last_applied.clone(),
        );
        r
    }
}
