//! The writer's metrics (config `metrics-listen`): commit latency, commits,
//! and per replica its link, what it holds durably, the lag behind the
//! local persisted tail, ships, bytes shipped and connections. With metrics
//! off a commit touches none of this; with them on it reads the clock twice
//! and adds to a few atomics. Everything else is read from the shippers at
//! scrape time.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Weak;

use tg_ops::metrics::prometheus_client::collector::Collector;
use tg_ops::metrics::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use tg_ops::metrics::prometheus_client::metrics::counter::ConstCounter;
use tg_ops::metrics::prometheus_client::metrics::gauge::ConstGauge;
use tg_ops::metrics::prometheus_client::metrics::MetricType;
use tg_ops::metrics::prometheus_client::registry::Registry;
use tg_ops::metrics::AtomicHistogram;

use super::{Inner, Shipper};
use crate::transport::Transport;

/// What commits count (only when metrics are on: `latency` is `Some`).
#[derive(Debug)]
pub(super) struct CommitCounters {
    /// Commit latency, when metrics are on (`None`: no clock is read).
    pub(super) latency: Option<AtomicHistogram>,
    pub(super) commits: AtomicU64,
    pub(super) failures: AtomicU64,
}

impl CommitCounters {
    pub(super) fn new(timed: bool) -> Self {
        CommitCounters {
            latency: timed.then(AtomicHistogram::latency),
            commits: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }
}

/// Reads a writer's state at each scrape (and nothing once it is closed).
pub(super) struct HostCollector<T: Transport> {
    pub(super) inner: Weak<Inner<T>>,
}

impl<T: Transport> fmt::Debug for HostCollector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostCollector").finish_non_exhaustive()
    }
}

/// Encodes one metric with a value per replica.
fn per_replica<T: Transport>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    shippers: &[Shipper<T>],
    value: impl Fn(&Shipper<T>) -> u64,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for s in shippers {
        let labels = vec![("replica", s.spec.name.as_str())];
        let v = value(s);
        match kind {
            MetricType::Counter => ConstCounter::new(v).encode(m.encode_family(&labels)?)?,
            _ => ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX))
                .encode(m.encode_family(&labels)?)?,
        }
    }
    Ok(())
}

impl<T: Transport + Send + Sync + 'static> Collector for HostCollector<T>
where
    T::Clock: Send + Sync,
{
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(());
        };
        let c = &inner.counters;
        ConstCounter::new(c.commits.load(Ordering::Relaxed)).encode(enc.encode_descriptor(
            "tg_host_commits",
            "Commits that returned durable",
            None,
            MetricType::Counter,
        )?)?;
        ConstCounter::new(c.failures.load(Ordering::Relaxed)).encode(enc.encode_descriptor(
            "tg_host_commit_failures",
            "Commits that returned an error (the record stays in the local log)",
            None,
            MetricType::Counter,
        )?)?;
        if let Some(h) = &c.latency {
            h.encode(enc.encode_descriptor(
                "tg_host_commit_latency_seconds",
                "Time from commit() to durable on the replicas the policy needs",
                None,
                MetricType::Histogram,
            )?)?;
        }
        let persisted = inner.log.persisted().pos;
        ConstGauge::new(i64::try_from(persisted).unwrap_or(i64::MAX)).encode(
            enc.encode_descriptor(
                "tg_host_persisted_tail_bytes",
                "Ring position up to which the local log is persistent",
                None,
                MetricType::Gauge,
            )?,
        )?;
        let sh = &inner.shippers[..];
        per_replica(
            &mut enc,
            "tg_host_replica_up",
            "1 while the replica's link is connected",
            MetricType::Gauge,
            sh,
            |s| u64::from(s.is_up()),
        )?;
        per_replica(
            &mut enc,
            "tg_host_replica_durable_bytes",
            "Ring position durable on the replica",
            MetricType::Gauge,
            sh,
            Shipper::durable,
        )?;
        per_replica(
            &mut enc,
            "tg_host_replica_lag_bytes",
            "Local persisted tail minus what the replica holds durably",
            MetricType::Gauge,
            sh,
            |s| persisted.saturating_sub(s.durable()),
        )?;
        per_replica(
            &mut enc,
            "tg_host_replica_ships",
            "Ships posted (the WRITEs of a range and one flush); commits / ships is the group-commit factor",
            MetricType::Counter,
            sh,
            |s| s.ships.load(Ordering::Relaxed),
        )?;
        per_replica(
            &mut enc,
            "tg_host_replica_shipped_bytes",
            "Log bytes posted to the replica",
            MetricType::Counter,
            sh,
            |s| s.shipped_bytes.load(Ordering::Relaxed),
        )?;
        per_replica(
            &mut enc,
            "tg_host_replica_connects",
            "Successful connections (reconnects are this minus one)",
            MetricType::Counter,
            sh,
            |s| s.connects.load(Ordering::Relaxed),
        )?;
        Ok(())
    }
}

/// A registry with the writer's metrics.
pub(super) fn registry<T: Transport + Send + Sync + 'static>(inner: Weak<Inner<T>>) -> Registry
where
    T::Clock: Send + Sync,
{
    let mut r = Registry::default();
    r.register_collector(Box::new(HostCollector { inner }));
    r
}
