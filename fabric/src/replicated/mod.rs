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
//!   [`crate::mirror::MAX_IN_FLIGHT`], each flushed by its own READ): a
//!   committer whose record is not shipped yet posts the next ship without
//!   waiting for the one ahead. If fewer than `k` replicas can be
//!   reached, commit retries (reconnecting with back-off) until
//!   `commit_timeout` and then fails with [`CommitError::NotEnoughAcks`];
//!   the record stays in the local log and a later commit ships it.
//! * [`CommitPolicy::Async`] `{ max_lag_bytes }`: returns after the local
//!   persist; a background shipper keeps replicas up to date, and a commit
//!   that would leave the slowest replica more than `max_lag_bytes` behind
//!   ships itself until it is within the bound (bounded lag, not loss).
//!
//! The ring's reclaim head advances only behind every replica (required or
//! not): a replica that is down keeps its place, so it can catch up from the
//! ring when it returns; a full ring then pushes back on appenders
//! ([`logcore::AppendError`]'s full variant) rather than lose its data.

mod link;
mod takeover;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use logcore::{AppendError, Appended, Cursor, Log, Lsn, PersistError};

pub use crate::verbs::{LogMemory, RegionMemory};
pub use link::{connect, ConnectOptions, Connected, LogIdentity, ReplicaSpec};
pub use takeover::{Heartbeat, Takeover, ARM_GRACE};

use crate::mirror::MirrorError;
use crate::verbs::{Access, Context, MemoryRegion, ProtectionDomain, QpConfig, VerbsError};
use crate::wire::PersistenceMode;
use crate::wire::{HandshakeError, WriterName};
use link::{Link, LinkEnv};

/// When a commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPolicy {
    /// Durable on `acks` replicas before commit returns.
    Sync {
        /// How many replicas must hold the record (1..=n).
        acks: usize,
    },
    /// Durable locally; replicas follow within `max_lag_bytes`.
    Async {
        /// Largest gap, in log bytes, between the local persisted tail and
        /// the slowest replica before commits wait.
        max_lag_bytes: u64,
    },
}

/// Everything a [`ReplicatedLog`] needs besides the log.
#[derive(Debug, Clone)]
pub struct ReplicationOptions {
    /// This writer's name on the replicas' allow-lists.
    pub writer: String,
    /// RDMA device name.
    pub device: String,
    /// Port number on it.
    pub port: u8,
    /// Queue pair parameters.
    pub qp: QpConfig,
    /// Persistence mode.
    pub persistence: PersistenceMode,
    /// Commit policy.
    pub policy: CommitPolicy,
    /// The replicas.
    pub replicas: Vec<ReplicaSpec>,
    /// Bound on one RDMA operation list (ship + flush).
    pub op_timeout: Duration,
    /// Bound on TCP connect and each handshake message.
    pub connect_timeout: Duration,
    /// Bound on a sync commit that cannot reach enough replicas.
    pub commit_timeout: Duration,
    /// First reconnect delay; doubles per failure up to `backoff_max`.
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// When set, a `tg-heartbeat` thread bumps the log's heartbeat word
    /// every `heartbeat.every`, so a closure daemon can tell a hung host
    /// from a busy one, and watches the closure's own word to report
    /// whether takeover is armed ([`ReplicatedLog::takeover`]). `None`: no
    /// heartbeat (a closure then judges the host by its pid only).
    pub heartbeat: Option<Heartbeat>,
}

/// A replica-level failure, naming the replica.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplicaError {
    /// Not connected yet.
    NotConnected {
        /// Replica.
        replica: String,
    },
    /// TCP connect or socket set-up failed.
    Connect {
        /// Replica.
        replica: String,
        /// Its address.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The handshake failed or the replica refused.
    Handshake {
        /// Replica.
        replica: String,
        /// What happened.
        source: HandshakeError,
    },
    /// A verb failed while connecting.
    Verbs {
        /// Replica.
        replica: String,
        /// What failed.
        source: VerbsError,
    },
    /// Shipping failed.
    Mirror(MirrorError),
    /// A status request failed.
    Status {
        /// Replica.
        replica: String,
        /// What happened.
        source: crate::wire::session::SessionError,
    },
    /// The replica claims more than this log persisted: it holds another
    /// history of this log (a primary that lost data, or a wrong replica).
    Diverged {
        /// Replica.
        replica: String,
        /// Its durable tail.
        replica_durable: u64,
        /// Our persisted tail.
        local_persisted: u64,
    },
    /// The replica is behind what the ring still holds: it needs re-seeding
    /// from a full copy.
    TooFarBehind {
        /// Replica.
        replica: String,
        /// Its durable tail.
        replica_durable: u64,
        /// Our reclaim head.
        local_head: u64,
    },
}

impl ReplicaError {
    /// Whether retrying cannot help: the replica refused this writer for
    /// what it is (key, log, geometry, mode, epoch) or the histories
    /// diverged. A commit that needs such a replica fails at once instead of
    /// waiting out its timeout.
    pub fn is_permanent(&self) -> bool {
        use crate::wire::RejectCode as C;
        match self {
            ReplicaError::Handshake {
                source: HandshakeError::Rejected { code, .. },
                ..
            } => matches!(
                code,
                C::AuthFailed
                    | C::UuidMismatch
                    | C::GeometryMismatch
                    | C::PersistenceMismatch
                    | C::StaleEpoch
                    | C::Sealed
                    | C::UnsupportedVersion
            ),
            ReplicaError::Diverged { .. } | ReplicaError::TooFarBehind { .. } => true,
            _ => false,
        }
    }
}

impl fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaError::NotConnected { replica } => write!(f, "replica {replica}: not connected yet"),
            ReplicaError::Connect { replica, address, source } => {
                write!(f, "replica {replica}: cannot reach {address}: {source} (is tg-replica running there?)")
            }
            ReplicaError::Handshake { replica, source } => write!(f, "replica {replica}: handshake: {source}"),
            ReplicaError::Verbs { replica, source } => write!(f, "replica {replica}: {source}"),
            ReplicaError::Mirror(e) => write!(f, "{e}"),
            ReplicaError::Status { replica, source } => write!(f, "replica {replica}: status: {source}"),
            ReplicaError::Diverged { replica, replica_durable, local_persisted } => write!(
                f,
                "replica {replica}: holds the log up to {replica_durable} but this log persisted only \
                 {local_persisted}: the histories diverged; re-seed the replica or promote it"
            ),
            ReplicaError::TooFarBehind { replica, replica_durable, local_head } => write!(
                f,
                "replica {replica}: durable only up to {replica_durable}, but the ring was reclaimed up to \
                 {local_head}: re-seed the replica from a full copy"
            ),
        }
    }
}

impl std::error::Error for ReplicaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplicaError::Connect { source, .. } => Some(source),
            ReplicaError::Handshake { source, .. } => Some(source),
            ReplicaError::Verbs { source, .. } => Some(source),
            ReplicaError::Mirror(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a [`ReplicatedLog`] could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The options are inconsistent.
    Invalid {
        /// The option.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The device could not be opened or the log not registered.
    Verbs(VerbsError),
    /// The log was sealed and a new epoch could not be started on it.
    NewEpoch(logcore::EpochError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Invalid { field, reason } => {
                write!(f, "replication option {field}: {reason}")
            }
            OpenError::Verbs(e) => write!(f, "{e}"),
            OpenError::NewEpoch(e) => write!(
                f,
                "the log is sealed and a new epoch could not be started: {e}"
            ),
        }
    }
}

impl std::error::Error for OpenError {}

/// Why a commit did not succeed. The record stays in the local log.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommitError {
    /// The local persist failed.
    Persist(PersistError),
    /// Fewer than `needed` replicas made the record durable in time.
    NotEnoughAcks {
        /// Replicas required.
        needed: usize,
        /// Replicas that acknowledged.
        acked: usize,
        /// How long we tried.
        waited_ms: u64,
        /// The failures, one per replica that did not acknowledge.
        failures: Vec<Arc<ReplicaError>>,
    },
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitError::Persist(e) => write!(f, "local persist failed: {e}"),
            CommitError::NotEnoughAcks {
                needed,
                acked,
                waited_ms,
                failures,
            } => {
                write!(
                    f,
                    "only {acked} of {needed} required replicas acknowledged within {waited_ms} ms"
                )?;
                for e in failures {
                    write!(f, "; {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CommitError {}

/// One replica's state, for status output.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// Replica name.
    pub name: String,
    /// Connected now.
    pub connected: bool,
    /// Logical position durable there.
    pub durable: u64,
    /// Successful connections so far.
    pub connects: u64,
    /// Ships posted so far (each: the WRITEs of a range and one flush).
    /// Commits or records divided by this is the group-commit factor.
    pub ships: u64,
    /// Why it is down, if it is.
    pub last_error: Option<String>,
}

/// A link and, readable without its lock, how far it is durable: committers
/// whose record is covered return without ever taking the lock.
struct Slot {
    link: Mutex<Link>,
    durable: AtomicU64,
    /// Committers waiting for a leader's ship sleep here; the leader wakes
    /// them all once per ship.
    shipped: Condvar,
    shipped_lock: Mutex<()>,
    /// Committers inside `await_ship`.
    waiters: AtomicUsize,
    /// A committer keeps polling this link for ships in flight (at most
    /// one does; the others sleep until a ship completes).
    polled: AtomicBool,
}

impl Slot {
    /// Publishes the link's durable position (caller holds the link lock)
    /// and wakes the committers waiting for it.
    ///
    /// Takes the lock and wakes (a futex syscall) only when a committer is
    /// waiting: a lone committer's ship costs no syscall here. The store
    /// and the waiter count are SeqCst on both sides, so either the waiter
    /// sees the new position or this sees the waiter.
    fn publish(&self, link: &Link) {
        let old = self.durable.swap(link.durable(), Ordering::SeqCst);
        if link.durable() != old && self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = self
                .shipped_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.shipped.notify_all();
        }
    }

    /// Sleeps until a ship is published, the poller leaves or `bound`
    /// passes, unless `target` is already durable or nobody polls (checked
    /// under the lock, so no wake-up is lost).
    fn await_ship(&self, target: u64, bound: Duration, while_polled: bool) {
        let g = self
            .shipped_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pipelined, sleep only while someone polls: a poller that gives up
        // its role wakes the sleepers (under this lock), so one of them
        // takes over. Otherwise the leader holding the link publishes.
        if self.durable.load(Ordering::SeqCst) < target
            && (!while_polled || self.polled.load(Ordering::SeqCst))
        {
            let _ = self.shipped.wait_timeout(g, bound);
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The link a committer keeps polling for (see [`Inner::replicate`]);
/// gives the role up when dropped.
struct Polling<'a>(Option<&'a Slot>);

impl<'a> Polling<'a> {
    /// Whether this committer polls `slot`: it already does, or nobody
    /// does and it takes the role.
    fn claim(&mut self, slot: &'a Slot) -> bool {
        match self.0 {
            Some(s) if std::ptr::eq(s, slot) => true,
            Some(_) => false,
            None => {
                let taken = slot
                    .polled
                    .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if taken {
                    self.0 = Some(slot);
                }
                taken
            }
        }
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.polled.store(false, Ordering::SeqCst);
            if s.waiters.load(Ordering::SeqCst) > 0 {
                let _g = s
                    .shipped_lock
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                s.shipped.notify_all();
            }
        }
    }
}

struct Inner {
    log: Arc<Log>,
    env: LinkEnv,
    links: Vec<Slot>,
    policy: CommitPolicy,
    commit_timeout: Duration,
    stop: AtomicBool,
    takeover: Mutex<Takeover>,
}

fn lock(m: &Mutex<Link>) -> MutexGuard<'_, Link> {
    // A panic while shipping leaves the link in a state `ensure` handles.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A local log and the replicas that mirror it.
pub struct ReplicatedLog {
    inner: Arc<Inner>,
    shipper: Option<JoinHandle<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

impl fmt::Debug for ReplicatedLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatedLog")
            .field("policy", &self.inner.policy)
            .field("replicas", &self.status())
            .finish_non_exhaustive()
    }
}

impl ReplicatedLog {
    /// Registers `log`'s region on the device and prepares a link per
    /// replica. Connections are made by the first commit (and again after
    /// any failure), so a replica that is down at start does not stop the
    /// writer.
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
        let ctx = Context::open(&opts.device, opts.port).map_err(OpenError::Verbs)?;
        let pd = ProtectionDomain::new(&ctx).map_err(OpenError::Verbs)?;
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
        // Local read only: the device reads the log to send it and may not
        // write into it. (A READ target needs LOCAL_WRITE: the mirror's own
        // scratch buffer is the flush target, never the log.)
        let source = Arc::new(
            MemoryRegion::register(&pd, LogMemory(Arc::clone(&log)), Access::LOCAL_READ)
                .map_err(OpenError::Verbs)?,
        );
        // The MR holds the protection domain (and it the device) alive.
        let env = LinkEnv {
            pipelined: opts.persistence == PersistenceMode::Apm && opts.qp.ships_in_flight > 1,
            writer,
            source,
            qp: opts.qp,
            persistence: opts.persistence,
            op_timeout: opts.op_timeout,
            connect_timeout: opts.connect_timeout,
            backoff_min: opts.backoff_min,
            backoff_max: opts.backoff_max,
        };
        let inner = Arc::new(Inner {
            log,
            env,
            links: opts
                .replicas
                .into_iter()
                .map(|s| Slot {
                    link: Mutex::new(Link::new(s)),
                    durable: AtomicU64::new(0),
                    shipped: Condvar::new(),
                    shipped_lock: Mutex::new(()),
                    waiters: AtomicUsize::new(0),
                    polled: AtomicBool::new(false),
                })
                .collect(),
            policy: opts.policy,
            commit_timeout: opts.commit_timeout,
            stop: AtomicBool::new(false),
            takeover: Mutex::new(if opts.heartbeat.is_some() {
                Takeover::Pending
            } else {
                Takeover::NotConfigured
            }),
        });
        let shipper = match opts.policy {
            CommitPolicy::Async { .. } => {
                let inner = Arc::clone(&inner);
                Some(
                    std::thread::Builder::new()
                        .name("tg-shipper".into())
                        .spawn(move || inner.ship_loop())
                        .expect("spawn shipper"),
                )
            }
            CommitPolicy::Sync { .. } => None,
        };
        let heartbeat = opts.heartbeat.map(|hb| {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("tg-heartbeat".into())
                .spawn(move || inner.heartbeat_loop(hb))
                .expect("spawn heartbeat")
        });
        Ok(ReplicatedLog {
            inner,
            shipper,
            heartbeat,
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
        let start = Instant::now();
        loop {
            match self.inner.log.append_record(payload) {
                Err(AppendError::Full { .. }) if start.elapsed() < self.inner.commit_timeout => {
                    // Back-pressure: wait (bounded by the commit timeout) for
                    // the replicas to hold and apply enough that the ring can
                    // be reclaimed; a replica that is down holds it full.
                    // Records appended but not committed yet must be
                    // persisted and shipped first: only those can be
                    // reclaimed.
                    self.inner.ship_everything_persisted();
                    self.inner.reclaim(true);
                    std::thread::sleep(Duration::from_millis(2));
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
                    self.inner.replicate(floor, self.inner.links.len())?;
                }
            }
        }
        Ok(persisted)
    }

    /// One raw-verbs round trip of `len` bytes to replica `index` on the
    /// same queue pair commits use (a baseline for benchmarks); connects
    /// first if needed.
    ///
    /// # Errors
    /// The replica's error; `index` out of range is a `NotConnected`.
    pub fn probe(
        &self,
        index: usize,
        kind: crate::mirror::Probe,
        len: u32,
    ) -> Result<(), Arc<ReplicaError>> {
        let Some(slot) = self.inner.links.get(index) else {
            return Err(Arc::new(ReplicaError::NotConnected {
                replica: format!("#{index}"),
            }));
        };
        let mut link = lock(&slot.link);
        link.up(&self.inner.env)?;
        slot.publish(&link);
        link.probe(kind, len)
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
            .replicate(persisted.pos, self.inner.links.len())?;
        Ok(persisted)
    }

    /// Whether a host failure now would be taken over by a closure daemon
    /// (judged every heartbeat from the closure's word in the control
    /// block; changes are also logged: a warning when it is disarmed).
    pub fn takeover(&self) -> Takeover {
        self.inner
            .takeover
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Each replica's state.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        self.inner
            .links
            .iter()
            .map(|slot| {
                let l = lock(&slot.link);
                ReplicaStatus {
                    name: l.spec.name.clone(),
                    connected: l.is_up(),
                    durable: l.durable(),
                    connects: l.reconnects,
                    ships: l.ships,
                    last_error: l.last_error().map(|e| e.to_string()),
                }
            })
            .collect()
    }
}

impl Drop for ReplicatedLog {
    fn drop(&mut self) {
        if let CommitPolicy::Async { .. } = self.inner.policy {
            // A clean shutdown must not leave the lag behind: the closure
            // stands down on it and nothing else would ship it.
            if let Err(e) = self.sync() {
                tracing::warn!(error = %e, "closing: the replicas lack part of the log (it ships when the log is next opened)");
            }
        }
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.shipper.take() {
            let _ = h.join();
        }
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

impl Inner {
    fn min_durable(&self) -> u64 {
        self.links
            .iter()
            .map(|s| s.durable.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// Makes `target` durable on `needed` replicas, retrying until the
    /// commit timeout; then moves the reclaim head.
    ///
    /// Group commit: a replica whose published durable position covers
    /// `target` counts at once, lock-free. Otherwise the committer takes
    /// the link's lock for an instant ([`Link::advance`]): it reaps the
    /// ships that completed and, if its record is not posted yet, posts
    /// everything persisted by then (covering every record appended before
    /// it) without waiting, so under `apm` several ships are in flight on
    /// the queue pair while their committers wait. One waiting committer
    /// keeps polling the link (spinning for a hardware round trip's time,
    /// then yielding between polls); the others sleep until a ship
    /// completes and its durable position is published. Nothing is
    /// allocated unless the commit fails.
    fn replicate(&self, target: u64, needed: usize) -> Result<(), CommitError> {
        let start = Instant::now();
        let mut waiting_since: Option<Instant> = None;
        let mut polling = Polling(None);
        loop {
            let mut acked = 0;
            let mut wait_on = None;
            for slot in &self.links {
                if slot.durable.load(Ordering::Acquire) >= target {
                    acked += 1;
                    continue;
                }
                let mut link = match slot.link.try_lock() {
                    Ok(g) => g,
                    Err(TryLockError::Poisoned(p)) => p.into_inner(),
                    Err(TryLockError::WouldBlock) => {
                        wait_on = wait_on.or(Some(slot));
                        continue;
                    }
                };
                let ship_to = self.log.persisted().pos.max(target);
                // One ship at a time: the leader ships and polls under the
                // lock. Several: post and poll without holding it.
                let r = if self.env.pipelined {
                    link.advance(&self.env, target, ship_to)
                } else {
                    link.ensure(&self.env, target, ship_to)
                };
                slot.publish(&link);
                drop(link);
                match r {
                    Ok(d) if d >= target => acked += 1,
                    Ok(_) => wait_on = wait_on.or(Some(slot)),
                    Err(_) => {}
                }
            }
            if acked >= needed {
                drop(polling);
                self.reclaim(false);
                return Ok(());
            }
            let now = Instant::now();
            let waited = now - start;
            if let Some(slot) = wait_on.filter(|_| waited < self.commit_timeout) {
                // Our record is in flight (ours or another committer's
                // ship) or the link is busy for an instant. One committer
                // keeps polling: it spins as long as a hardware round trip
                // takes, then yields between polls; the others sleep
                // (leaving the CPU to the device) until a ship completes.
                if self.env.pipelined && polling.claim(slot) {
                    if now - *waiting_since.get_or_insert(now) < crate::verbs::SPIN_BEFORE_YIELD {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                } else if self.env.pipelined {
                    slot.await_ship(target, Duration::from_millis(1), true);
                } else if now - *waiting_since.get_or_insert(now) < crate::verbs::SPIN_BEFORE_YIELD
                {
                    // The leader holds the link for its whole ship: poll
                    // the published position for a hardware round trip's
                    // time, then sleep until it publishes.
                    std::thread::yield_now();
                } else {
                    slot.await_ship(target, Duration::from_millis(1), false);
                }
                continue;
            }
            drop(std::mem::replace(&mut polling, Polling(None)));
            let failures: Vec<Arc<ReplicaError>> = self
                .links
                .iter()
                .filter(|s| s.durable.load(Ordering::Acquire) < target)
                .filter_map(|s| lock(&s.link).last_error())
                .collect();
            let hopeless = failures.iter().filter(|e| e.is_permanent()).count();
            if waited >= self.commit_timeout || self.links.len() - hopeless < needed {
                return Err(CommitError::NotEnoughAcks {
                    needed,
                    acked,
                    waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                    failures,
                });
            }
            std::thread::sleep(self.env.backoff_min.min(self.commit_timeout - waited));
        }
    }

    /// Reclaims ring space lazily: only when less than a quarter of the
    /// ring is free (or `force`), and only up to what every replica allows
    /// (durable there and behind its reported head), after asking each live
    /// replica for its head. Keeping history until space is needed lets the
    /// host replay its own log after a restart and keeps both images
    /// comparable; a replica that is down holds the head where it was.
    fn reclaim(&self, force: bool) {
        let head = self.log.head().pos;
        let used = self.log.persisted().pos - head;
        if !force && used < self.log.geometry().capacity / 4 * 3 {
            return;
        }
        let mut floor = u64::MAX;
        for slot in &self.links {
            let mut link = lock(&slot.link);
            link.refresh_status(&self.env);
            slot.publish(&link);
            floor = floor.min(link.reclaim_floor());
        }
        if floor > head && floor != u64::MAX {
            // Both bounds are record boundaries: durable positions are whole
            // persisted tails, replica heads are scan cursors.
            match self.log.advance_head(floor) {
                Ok(c) => tracing::debug!(head = c.pos, "reclaimed"),
                Err(e) => tracing::warn!(error = %e, floor, "could not advance the reclaim head"),
            }
        }
    }

    /// Persists everything appended and ships it to every reachable replica
    /// (best effort: errors leave the link down, as in a commit).
    fn ship_everything_persisted(&self) {
        let Ok(persisted) = self.log.persist_all() else {
            return;
        };
        for slot in &self.links {
            if slot.durable.load(Ordering::Acquire) < persisted.pos {
                let mut link = lock(&slot.link);
                let _ = link.ensure(&self.env, persisted.pos, persisted.pos);
                slot.publish(&link);
            }
        }
    }

    /// Bumps the heartbeat word every `every` until stopped. It beats from
    /// its own thread, so it proves the process is scheduled, not that
    /// appends progress: a host stopped (SIGSTOP) or starved stops beating,
    /// a host idle between commits does not.
    fn heartbeat_loop(&self, hb: Heartbeat) {
        let control = self.log.control();
        let mut watch = takeover::ClosureWatch::new(
            hb.closure_timeout,
            takeover::ARM_GRACE,
            Instant::now(),
            control.closure_pid(),
            control.closure_beat(),
        );
        while !self.stop.load(Ordering::Relaxed) {
            self.log.heartbeat();
            if let Some(t) = watch.observe(
                Instant::now(),
                control.closure_pid(),
                control.closure_beat(),
            ) {
                match t {
                    Takeover::Disarmed { reason } => tracing::warn!("takeover disarmed: {reason}"),
                    t => tracing::info!("takeover {t}"),
                }
                t.clone_into(&mut self.takeover.lock().unwrap_or_else(PoisonError::into_inner));
            }
            std::thread::sleep(hb.every);
        }
    }

    /// Background shipping for the async policy: bounded sleep when idle.
    fn ship_loop(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            let persisted = self.log.persisted().pos;
            let mut progress = false;
            for slot in &self.links {
                if slot.durable.load(Ordering::Acquire) >= persisted {
                    continue;
                }
                let mut link = lock(&slot.link);
                // A down link returns at once until its back-off passes.
                progress |= link.ensure(&self.env, persisted, persisted).is_ok();
                slot.publish(&link);
            }
            if progress {
                self.reclaim(false);
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}
