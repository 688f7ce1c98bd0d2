//! [`ReplicatedLog`]: the host-side handle that joins a local `logcore` log
//! to its replicas.
//!
//! `append` writes locally (no network); `commit(lsn)` returns once the
//! record is persistent locally and the commit policy's replicas hold it:
//!
//! * [`CommitPolicy::Sync`] `{ acks: k }`: durable on at least `k` of the
//!   `n` replicas. The committing threads ship and poll themselves (no
//!   hand-off). Every ship covers the whole persisted tail (group commit),
//!   and under `apm` several ships are in flight at once (up to
//!   [`crate::mirror::MAX_IN_FLIGHT`], each flushed by its own READ). A
//!   commit returns as soon as `k` replicas hold its record: the others are
//!   not visited. If fewer than `k` replicas are up, commit waits (the
//!   link manager reconnects them) until `commit_timeout` and then fails
//!   with [`CommitError::NotEnoughAcks`]; the record stays in the local log
//!   and a later commit ships it.
//! * [`CommitPolicy::Async`] `{ max_lag_bytes }`: returns after the local
//!   persist; a background shipper keeps replicas up to date, and a commit
//!   that would leave the slowest replica more than `max_lag_bytes` behind
//!   ships itself until it is within the bound (bounded lag, not loss).
//!
//! Threads: the committers (append, persist, post, poll: nothing else), the
//! link manager `tg-links` (connects, status and keep-alives, reclaim; see
//! [`manager`]), `tg-shipper` under `async`, and `tg-heartbeat` when a
//! closure is configured. `docs/architecture.md` draws them.
//!
//! The ring's reclaim head advances only behind every replica (required or
//! not): a replica that is down keeps its place, so it can catch up from the
//! ring when it returns; a full ring then pushes back on appenders
//! ([`logcore::AppendError`]'s full variant) rather than lose its data.

mod closure_watch;
mod error;
pub mod manager;
mod metrics;
mod options;
mod quorum;
mod shipper;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use logcore::{AppendError, Appended, Cursor, Log, Lsn};

pub use crate::transport::connect;
pub use crate::verbs::{LogMemory, RegionMemory};
pub use closure_watch::{Heartbeat, TakeoverReadiness, ARM_GRACE};
pub use error::{CommitError, OpenError, ReplicaError};
pub use options::{
    CommitPolicy, ConnectOptions, LogIdentity, ReplicaSpec, ReplicaStatus, ReplicationOptions,
};

use crate::transport::{Clock, FirstLook, Rdma, Transport};
use crate::verbs::{Access, Context, MemoryRegion, ProtectionDomain};
use crate::wire::{PersistenceMode, WriterName};
use manager::{Backoff, Manager};
use shipper::{Shipper, Step};

/// What the threads of one [`ReplicatedLog`] share.
struct Inner<T: Transport> {
    log: Arc<Log>,
    transport: T,
    shippers: Vec<Shipper<T>>,
    policy: CommitPolicy,
    /// Several ships in flight per replica (`apm` and
    /// `qp.ships-in-flight` > 1).
    pipelined: bool,
    commit_timeout: Duration,
    backoff: Backoff,
    manager: Manager,
    stop: AtomicBool,
    readiness: Mutex<TakeoverReadiness>,
    counters: metrics::CommitCounters,
}

impl<T: Transport> Inner<T> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn min_durable(&self) -> u64 {
        self.shippers
            .iter()
            .map(Shipper::durable)
            .min()
            .unwrap_or(0)
    }
}

/// A local log and the replicas that mirror it, over transport `T` (real
/// verbs and TCP unless a simulator says otherwise).
pub struct ReplicatedLog<T: Transport = Rdma> {
    inner: Arc<Inner<T>>,
    threads: Vec<JoinHandle<()>>,
    /// `/metrics`, when `metrics-listen` is set.
    metrics: Option<tg_ops::metrics::Endpoint>,
}

impl<T: Transport> fmt::Debug for ReplicatedLog<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatedLog")
            .field("policy", &self.inner.policy)
            .field("replicas", &self.status())
            .finish_non_exhaustive()
    }
}

impl ReplicatedLog {
    /// Registers `log`'s region on the device and starts the link manager,
    /// which connects every replica in the background: a replica that is
    /// down at start does not stop the writer, and the first commit waits
    /// (up to the commit timeout) for `k` of them.
    ///
    /// A sealed log (a closure took it over after this host failed) is
    /// reopened for appends at the next epoch: the replicas admit it after
    /// the seal and fence everything of the old epoch, and its LSNs go on
    /// after the seal record's.
    ///
    /// # Errors
    /// [`OpenError::Invalid`] for an impossible policy; [`OpenError::Verbs`]
    /// when the device cannot be opened or the region registered.
    pub fn open(log: Log, opts: ReplicationOptions) -> Result<Self, OpenError> {
        let (device, port) = (opts.device.clone(), opts.port);
        Self::with_transport(log, opts, |log| {
            let ctx = Context::open(&device, port).map_err(OpenError::Verbs)?;
            let pd = ProtectionDomain::new(&ctx).map_err(OpenError::Verbs)?;
            // Local read only: the device reads the log to send it and may
            // not write into it (a READ flush lands in the mirror's own
            // scratch buffer). The MR holds the PD, and it the device, alive.
            let source =
                MemoryRegion::register(&pd, LogMemory(Arc::clone(log)), Access::LOCAL_READ)
                    .map_err(OpenError::Verbs)?;
            Ok(Rdma::new(Arc::new(source)))
        })
    }

    /// A raw-verbs round trip of `len` bytes to replica `index` on the
    /// queue pair commits use (the benchmarks' baseline).
    ///
    /// # Errors
    /// The replica's error if it is down; `index` out of range is a
    /// `NotConnected`.
    #[cfg(feature = "bench-probes")]
    pub fn probe(
        &self,
        index: usize,
        kind: crate::mirror::Probe,
        len: u32,
    ) -> Result<(), Arc<ReplicaError>> {
        let Some(s) = self.inner.shippers.get(index) else {
            return Err(Arc::new(ReplicaError::NotConnected {
                replica: format!("#{index}"),
            }));
        };
        match s.with_mirror(|m| m.probe(kind, len)) {
            Some(r) => r.map_err(|e| Arc::new(ReplicaError::Mirror(e))),
            None => Err(s.last_error()),
        }
    }
}

impl<T: Transport> ReplicatedLog<T> {
    /// As [`ReplicatedLog::open`], over the transport `make` builds for the
    /// (possibly new-epoch) log.
    ///
    /// # Errors
    /// As [`ReplicatedLog::open`], and what `make` returns.
    pub fn with_transport(
        log: Log,
        opts: ReplicationOptions,
        make: impl FnOnce(&Arc<Log>) -> Result<T, OpenError>,
    ) -> Result<Self, OpenError> {
        let n = opts.replicas.len();
        if n == 0 {
            return Err(OpenError::Invalid {
                field: "replicas",
                reason: "at least one replica is needed".into(),
            });
        }
        if let CommitPolicy::Sync { acks } = opts.policy {
            if acks == 0 || acks > n {
                return Err(OpenError::Invalid {
                    field: "commit.acks",
                    reason: format!("must be 1..={n}, got {acks}"),
                });
            }
        }
        let writer = WriterName::new(opts.writer.clone()).map_err(|reason| OpenError::Invalid {
            field: "writer",
            reason,
        })?;
        if log.is_sealed() {
            let sealed = log.epoch();
            let next = sealed.checked_add(1).ok_or(OpenError::NewEpoch(
                logcore::EpochError::NotNewer {
                    current: sealed,
                    asked: sealed,
                },
            ))?;
            log.begin_epoch(next).map_err(OpenError::NewEpoch)?;
            tracing::info!(
                sealed_epoch = sealed,
                epoch = next,
                next_lsn = log.tail().lsn.0,
                "the log was sealed (taken over): writing a new epoch"
            );
        }
        let log = Arc::new(log);
        let transport = make(&log)?;
        let connect = ConnectOptions {
            writer,
            qp: opts.qp,
            persistence: opts.persistence,
            op_timeout: opts.op_timeout,
            connect_timeout: opts.connect_timeout,
        };
        let inner = Arc::new(Inner {
            log,
            transport,
            shippers: opts.replicas.into_iter().map(Shipper::new).collect(),
            policy: opts.policy,
            pipelined: opts.persistence == PersistenceMode::Apm && opts.qp.ships_in_flight > 1,
            commit_timeout: opts.commit_timeout,
            backoff: Backoff {
                min: opts.backoff_min,
                max: opts.backoff_max,
            },
            manager: Manager::default(),
            stop: AtomicBool::new(false),
            readiness: Mutex::new(if opts.heartbeat.is_some() {
                TakeoverReadiness::Pending
            } else {
                TakeoverReadiness::NotConfigured
            }),
            counters: metrics::CommitCounters::new(opts.metrics_listen.is_some()),
        });
        let metrics = match &opts.metrics_listen {
            Some(listen) => Some(
                tg_ops::metrics::Endpoint::serve(
                    listen,
                    metrics::registry(Arc::downgrade(&inner)),
                    Box::new(|| {}),
                    Vec::new(),
                )
                .map_err(OpenError::Metrics)?,
            ),
            None => None,
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| OpenError::Thread {
                    name: name.to_owned(),
                    source: e,
                })
        };
        let mut threads = Vec::with_capacity(3);
        let i = Arc::clone(&inner);
        threads.push(spawn("tg-links", Box::new(move || i.manage(&connect)))?);
        if let CommitPolicy::Async { .. } = opts.policy {
            let i = Arc::clone(&inner);
            threads.push(spawn("tg-shipper", Box::new(move || i.ship_loop()))?);
        }
        if let Some(hb) = opts.heartbeat {
            let i = Arc::clone(&inner);
            threads.push(spawn(
                "tg-heartbeat",
                Box::new(move || i.heartbeat_loop(hb)),
            )?);
        }
        Ok(ReplicatedLog {
            inner,
            threads,
            metrics,
        })
    }

    /// The local log.
    pub fn log(&self) -> &Log {
        &self.inner.log
    }

    /// Appends one record locally (not yet persistent nor replicated). When
    /// the ring is full it waits, up to the commit timeout, for the replicas
    /// to let it reclaim space (appended records must first be committed:
    /// only persisted, replicated bytes can be reclaimed).
    ///
    /// # Errors
    /// [`AppendError`]; `Full` after the commit timeout means a replica is
    /// down or far behind (see [`Self::status`]), or the appender holds
    /// uncommitted records that fill the ring: commit them.
    pub fn append(&self, payload: &[u8]) -> Result<Appended, AppendError> {
        let clock = self.inner.transport.clock();
        // The clock is read only once the ring is full (an append that fits
        // needs none).
        let mut full_since = FirstLook::new();
        loop {
            match self.inner.log.append_record(payload) {
                Err(AppendError::Full { .. })
                    if full_since.since(clock.now()) < self.inner.commit_timeout =>
                {
                    // Back-pressure: records appended but not committed yet
                    // must be persisted and shipped first (only those can be
                    // reclaimed); the manager then reclaims behind the
                    // replicas. A replica that is down holds the ring full.
                    self.inner.ship_everything_persisted();
                    self.inner.manager.wake();
                    clock.sleep(Duration::from_millis(1));
                }
                r => return r,
            }
        }
    }

    /// Returns once record `lsn` (and every record before it) is persistent
    /// locally and durable on the replicas the policy requires. Returns the
    /// local persisted tail at that point.
    ///
    /// # Errors
    /// [`CommitError`]; a failed commit loses nothing locally and may be
    /// retried.
    pub fn commit(&self, lsn: Lsn) -> Result<Cursor, CommitError> {
        let c = &self.inner.counters;
        // Metrics off: nothing reads the counters, so a commit touches
        // none (a shared atomic is a contended cache line for appenders).
        let Some(latency) = &c.latency else {
            return self.commit_untimed(lsn);
        };
        let clock = self.inner.transport.clock();
        let t0 = clock.now();
        let r = self.commit_untimed(lsn);
        if r.is_ok() {
            latency.observe(clock.now().saturating_duration_since(t0));
            c.commits.fetch_add(1, Ordering::Relaxed);
        } else {
            c.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Where the writer's `/metrics` is served (`metrics-listen`), if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics
            .as_ref()
            .map(tg_ops::metrics::Endpoint::local_addr)
    }

    fn commit_untimed(&self, lsn: Lsn) -> Result<Cursor, CommitError> {
        let persisted = self
            .inner
            .log
            .persist_to(lsn)
            .map_err(CommitError::Persist)?;
        match self.inner.policy {
            CommitPolicy::Sync { acks } => self.inner.replicate(persisted.pos, acks)?,
            CommitPolicy::Async { max_lag_bytes } => {
                let floor = persisted.pos.saturating_sub(max_lag_bytes);
                if self.inner.min_durable() < floor {
                    self.inner.replicate(floor, self.inner.shippers.len())?;
                }
            }
        }
        Ok(persisted)
    }

    /// Persists everything appended and waits until it is durable on every
    /// replica (under `async`: drains the lag). Dropping a
    /// `ReplicatedLog` under `async` does this too (a warning if it cannot
    /// within the commit timeout), so a clean shutdown leaves the replicas
    /// complete.
    ///
    /// # Errors
    /// [`CommitError`] as [`Self::commit`], for every replica.
    pub fn sync(&self) -> Result<Cursor, CommitError> {
        let persisted = self.inner.log.persist_all().map_err(CommitError::Persist)?;
        self.inner
            .replicate(persisted.pos, self.inner.shippers.len())?;
        Ok(persisted)
    }

    /// Whether a host failure now would be taken over by a closure daemon
    /// (judged every heartbeat from the closure's word in the control
    /// block; changes are also logged: a warning when it is disarmed).
    pub fn takeover_readiness(&self) -> TakeoverReadiness {
        self.inner
            .readiness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until every replica is connected, up to `timeout`, or until
    /// a connection attempt to one of them failed: a writer that wants to
    /// know at start that its replicas are reachable (commits do not need
    /// this: they wait for `k` replicas themselves).
    ///
    /// # Errors
    /// The first failed replica's error (naming it and what to check), or
    /// [`ReplicaError::NotConnected`] of one still connecting at `timeout`.
    pub fn connected(&self, timeout: Duration) -> Result<(), Arc<ReplicaError>> {
        let clock = self.inner.transport.clock();
        let start = clock.now();
        loop {
            if let Some(s) = self
                .inner
                .shippers
                .iter()
                .find(|s| !s.is_up() && s.failed_connects.load(Ordering::Acquire) > 0)
            {
                return Err(s.last_error());
            }
            match self.inner.shippers.iter().find(|s| !s.is_up()) {
                None => return Ok(()),
                Some(s) if clock.now() - start >= timeout => return Err(s.last_error()),
                Some(_) => clock.sleep(Duration::from_millis(1)),
            }
        }
    }

    /// Each replica's state (lock-free: what the shippers published).
    pub fn status(&self) -> Vec<ReplicaStatus> {
        self.inner
            .shippers
            .iter()
            .map(|s| {
                let up = s.is_up();
                ReplicaStatus {
                    name: s.spec.name.clone(),
                    connected: up,
                    durable: s.durable(),
                    connects: s.connects.load(Ordering::Relaxed),
                    ships: s.ships.load(Ordering::Relaxed),
                    last_error: (!up).then(|| s.last_error().to_string()),
                }
            })
            .collect()
    }
}

impl<T: Transport> Drop for ReplicatedLog<T> {
    fn drop(&mut self) {
        if let CommitPolicy::Async { .. } = self.inner.policy {
            // A clean shutdown must not leave the lag behind: the closure
            // stands down on it and nothing else would ship it.
            if let Err(e) = self.sync() {
                tracing::warn!(error = %e, "closing: the replicas lack part of the log (it ships when the log is next opened)");
            }
        }
        self.inner.stop.store(true, Ordering::Relaxed);
        self.inner.manager.wake();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

impl<T: Transport> Inner<T> {
    /// Persists everything appended and ships it to every replica that is
    /// up (best effort: a failure takes that replica down, as in a commit).
    fn ship_everything_persisted(&self) {
        let Ok(persisted) = self.log.persist_all() else {
            return;
        };
        for s in &self.shippers {
            if let Step::Failed(_) = s.step(persisted.pos, persisted.pos, false) {
                self.manager.wake();
            }
        }
    }

    /// Background shipping for the async policy: bounded sleep when idle.
    fn ship_loop(&self) {
        let clock = self.transport.clock();
        while !self.stopping() {
            let persisted = self.log.persisted().pos;
            let mut progress = false;
            for s in self.shippers.iter().filter(|s| s.durable() < persisted) {
                match s.step(persisted, persisted, false) {
                    Step::Durable(_) => progress = true,
                    Step::Failed(_) => self.manager.wake(),
                    Step::Busy | Step::Down => {}
                }
            }
            if !progress {
                clock.sleep(Duration::from_micros(200));
            }
        }
    }

    /// Bumps the heartbeat word every `every` until stopped. It beats from
    /// its own thread, so it proves the process is scheduled, not that
    /// appends progress: a host stopped (SIGSTOP) or starved stops beating,
    /// a host idle between commits does not.
    fn heartbeat_loop(&self, hb: Heartbeat) {
        let clock = self.transport.clock();
        let control = self.log.control();
        let mut watch = closure_watch::ClosureWatch::new(
            hb.closure_timeout,
            ARM_GRACE,
            clock.now(),
            control.closure_pid(),
            control.closure_beat(),
        );
        while !self.stopping() {
            self.log.heartbeat();
            if let Some(t) =
                watch.observe(clock.now(), control.closure_pid(), control.closure_beat())
            {
                match t {
                    TakeoverReadiness::Disarmed { reason } => {
                        tracing::warn!("takeover disarmed: {reason}");
                    }
                    t => tracing::info!("takeover {t}"),
                }
                t.clone_into(
                    &mut self
                        .readiness
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner),
                );
            }
            clock.sleep(hb.every);
        }
    }
}
