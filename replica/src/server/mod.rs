//! The replica daemon's server: it checks its region at start, then serves
//! one thread per control connection: at most [`pending::MAX_HANDSHAKES`]
//! handshakes in progress (a newer connection closes the oldest) and at
//! most `max_sessions` admitted writers.
//!
//! - `region.rs`: what the region holds at start, rewound to its intact tail.
//! - `admission.rs`: admitting writers and fencing older epochs.
//! - `session.rs`: one control connection, from handshake to close.
//! - `seal.rs`: sealing a stream at an epoch and tail.
//! - `gpspm.rs`: serving a `gpspm` writer's persist requests.
//! - `paced.rs`: a deadline per message, not per read, on a connection.
//! - `pending.rs`: the bound on handshakes in progress.
//! - `throttle.rs`: one log line per second for what a peer can repeat.
//! - `metrics.rs`: `/metrics` and `/status` (`replica.metrics-listen`).
//!
//! Admission is serialised: a writer with a newer epoch is recorded in the
//! epoch file, every queue pair of an older epoch is moved to the error
//! state (a QP in error executes no remote access), and the region is
//! registered anew (a new rkey), all before the new writer gets its
//! `Accept`. A writer's QP is dropped when its control connection closes.

mod admission;
mod gpspm;
mod metrics;
mod paced;
mod pending;
mod region;
mod seal;
mod session;
mod throttle;

use std::fmt;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use fabric::auth::AllowList;
use fabric::verbs::{Context, ProtectionDomain, VerbsError};
use tg_ops::signals::Signals;

pub use crate::settings::Settings;

use self::admission::{Admission, AdmitError};
use self::pending::{Pending, MAX_HANDSHAKES, MAX_HANDSHAKES_PER_PEER};
use self::region::{adopt, inspect_region};
use self::session::Ended;
use self::throttle::Throttle;
use crate::epoch;
use crate::fencing::Why;
use crate::replay::{self, Progress};

/// Why the replica could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The epoch file.
    Epoch(epoch::EpochFileError),
    /// The region could not be opened or holds something else.
    Region {
        /// The region.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The device.
    Verbs(VerbsError),
    /// The metrics address.
    Metrics(std::io::Error),
    /// The listen address.
    Listen {
        /// The address.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Epoch(e) => write!(f, "{e}"),
            ServeError::Region { path, reason } => write!(f, "region {}: {reason}", path.display()),
            ServeError::Verbs(e) => write!(f, "{e}"),
            ServeError::Metrics(e) => write!(f, "replica.metrics-listen: {e}"),
            ServeError::Listen { address, source } => {
                write!(f, "cannot listen on {address}: {source}")
            }
        }
    }
}

impl std::error::Error for ServeError {}

/// What the accept loop and every session thread share.
struct Inner {
    s: Settings,
    pd: ProtectionDomain,
    admission: Mutex<Admission>,
    replay: Arc<replay::Shared>,
    /// Handshakes in progress (a clone of each socket, to close it).
    pending: Mutex<Pending<TcpStream>>,
    /// Admitted sessions (a clone of each socket, to close it).
    open: Mutex<Vec<Open>>,
    /// Who may connect: the config's `replica.allow` and its keys, as last
    /// (re)read.
    allow: RwLock<Arc<AllowList>>,
    /// Set when the daemon stops: no admission from then on.
    stopping: AtomicBool,
    metrics: metrics::Metrics,
    /// Log lines a peer can cause at will: a failed handshake, and a
    /// handshake closed to make room.
    quiet_failed: Throttle,
    quiet_evicted: Throttle,
}

/// An admitted session, as a shutdown or a reload sees it.
struct Open {
    /// Its admission id.
    id: u64,
    /// The writer's name.
    writer: String,
    /// A clone of its socket.
    closer: TcpStream,
}

impl Inner {
    /// The allow-list as last read.
    fn allow(&self) -> Arc<AllowList> {
        Arc::clone(&self.allow.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// How often the accept loop looks at its signals and pets the watchdog.
const TURN: Duration = Duration::from_millis(20);

/// What [`Replica::serve`] answers besides connections.
pub struct Hooks<'a> {
    /// SIGTERM/SIGINT (stop) and SIGHUP (reload).
    pub signals: &'a Signals,
    /// Rereads `replica.allow` and its key files (on SIGHUP).
    pub reread: &'a dyn Fn() -> Result<AllowList, String>,
    /// Called every turn of the accept loop (a few ms apart): the watchdog.
    pub tick: &'a mut dyn FnMut(),
}

impl fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("signals", self.signals)
            .finish_non_exhaustive()
    }
}

/// How a [`Replica::serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Writers whose sessions it ended.
    pub sessions_ended: usize,
    /// The durable tail it reported last (everything before it flushed).
    pub durable_tail: u64,
}

/// Most log lines per second of each kind a peer can cause at will.
const QUIET: Duration = Duration::from_secs(1);

/// Locks `m`, ignoring poisoning: a session thread that panicked does not
/// stop the others.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bound, ready replica.
pub struct Replica {
    inner: Arc<Inner>,
    listener: TcpListener,
    metrics: Option<tg_ops::metrics::Endpoint>,
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("listen", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Loads the epoch file, checks the region, opens the device and binds
    /// the control address.
    ///
    /// # Errors
    /// [`ServeError`] saying what is wrong and what to do.
    pub fn bind(s: Settings) -> Result<Self, ServeError> {
        let mut ep = epoch::load(&s.epoch_file).map_err(ServeError::Epoch)?;
        let progress = inspect_region(&s, &ep)?;
        if let Some(adopted) = progress.as_ref().and_then(|p| adopt(&ep, p)) {
            tracing::warn!(epoch = adopted.epoch, "the epoch file did not name the region's log (a crash during the first admission?): adopting it");
            epoch::store(&s.epoch_file, &adopted).map_err(ServeError::Epoch)?;
            ep = adopted;
        }
        let ctx = Context::open(&s.device, s.port).map_err(ServeError::Verbs)?;
        let pd = ProtectionDomain::new(&ctx).map_err(ServeError::Verbs)?;
        let listener = TcpListener::bind(&s.listen).map_err(|source| ServeError::Listen {
            address: s.listen.clone(),
            source,
        })?;
        let admitted = u32::try_from(ep.epoch).unwrap_or(u32::MAX);
        let replay = Arc::new(replay::Shared {
            progress: Mutex::new(Some(progress.unwrap_or_else(|| Progress::fresh(admitted)))),
            moved: std::sync::Condvar::new(),
            applied_at_ms: std::sync::atomic::AtomicU64::new(0),
        });
        let inner = Arc::new(Inner {
            admission: Mutex::new(Admission::new(ep)),
            allow: RwLock::new(Arc::new(s.allow.clone())),
            s,
            pd,
            replay,
            pending: Mutex::new(Pending::new(MAX_HANDSHAKES, MAX_HANDSHAKES_PER_PEER)),
            open: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            metrics: metrics::Metrics::default(),
            quiet_failed: Throttle::new(QUIET),
            quiet_evicted: Throttle::new(QUIET),
        });
        if inner.replay.get().is_some_and(|p| p.uuid.is_some()) {
            let mr = inner.register_region().map_err(|e| match e {
                AdmitError::Verbs(v) => ServeError::Verbs(v),
                AdmitError::Other(reason) => ServeError::Region {
                    path: inner.s.region.clone(),
                    reason,
                },
            })?;
            lock(&inner.admission).keyed(mr);
        }
        let metrics = match &inner.s.metrics_listen {
            Some(addr) => Some(inner.serve_metrics(addr).map_err(ServeError::Metrics)?),
            None => None,
        };
        Ok(Replica {
            inner,
            listener,
            metrics,
        })
    }

    /// Where `/metrics` and `/status` are served, if they are.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .map(tg_ops::metrics::Endpoint::local_addr)
    }

    /// The bound control address.
    ///
    /// # Errors
    /// The OS error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until a stop is asked for: the replay thread, and a thread
    /// per control connection. On SIGHUP it rereads the allow-list; on a
    /// stop it closes the listener and the handshakes in progress, fences
    /// every writer (no remote access lands after it), closes their
    /// sessions, and lets replay apply and flush what arrived before it
    /// returns.
    ///
    /// # Errors
    /// The listener cannot be made non-blocking.
    pub fn serve(self, hooks: &mut Hooks<'_>) -> std::io::Result<Stopped> {
        let stop = Arc::new(AtomicBool::new(false));
        let replay = {
            let (path, shared, idle, stop) = (
                self.inner.s.region.clone(),
                Arc::clone(&self.inner.replay),
                self.inner.s.replay_idle,
                Arc::clone(&stop),
            );
            std::thread::Builder::new()
                .name("tg-replay".into())
                .spawn(move || replay::run(&path, &shared, idle, &stop))?
        };
        self.listener.set_nonblocking(true)?;
        while !hooks.signals.stopping() {
            (hooks.tick)();
            if hooks.signals.take_reload() {
                self.inner.reload(hooks.reread);
            }
            match self.listener.accept() {
                Ok((stream, _)) => self.accepted(stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(TURN),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    std::thread::sleep(TURN);
                }
            }
        }
        drop(self.listener);
        let ended = self.inner.shut_down();
        stop.store(true, Ordering::Relaxed);
        if replay.join().is_err() {
            tracing::error!(
                "the replay thread panicked: the durable tail is the last one it recorded"
            );
        }
        let durable_tail = self.inner.replay.get().map_or(0, |p| p.cursor.pos);
        Ok(Stopped {
            sessions_ended: ended,
            durable_tail,
        })
    }

    /// Starts a session thread for an accepted connection.
    fn accepted(&self, stream: TcpStream) {
        let inner = Arc::clone(&self.inner);
        // Accepted sockets do not inherit the listener's O_NONBLOCK on
        // Linux; said anyway, as every read here relies on it.
        if let Err(e) = stream.set_nonblocking(false) {
            tracing::warn!(error = %e, "cannot make an accepted connection blocking; closing it");
            return;
        }
        let (handle, peer) = match (stream.try_clone(), stream.peer_addr()) {
            (Ok(h), Ok(p)) => (h, p.ip()),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot hold an accepted connection; closing it");
                return;
            }
        };
        let now = Instant::now();
        let (hid, evicted) = lock(&inner.pending).enter(handle, peer, now);
        if let Some(ev) = evicted {
            let _ = ev.handle.shutdown(Shutdown::Both);
            if let Some(held) = inner.quiet_evicted.pass(now) {
                tracing::warn!(peer = %ev.peer, age = ?ev.age, max = MAX_HANDSHAKES, per_peer = MAX_HANDSHAKES_PER_PEER, held_back = held, "handshakes in progress at the bound: closed the oldest to make room");
            }
        }
        std::thread::spawn(move || {
            let peer = stream.peer_addr().ok();
            match inner.session(stream, hid) {
                Ok(()) => {}
                Err(_) if inner.stopping.load(Ordering::Relaxed) => {}
                Err(Ended::Handshake { reason, message }) => {
                    inner.metrics.refused(reason);
                    if let Some(held) = inner.quiet_failed.pass(Instant::now()) {
                        tracing::warn!(?peer, error = %message, reason, held_back = held, "control connection refused");
                    }
                }
                Err(Ended::Session(e)) => {
                    tracing::warn!(?peer, error = %e, "control session ended");
                }
            }
        });
    }
}

impl Inner {
    /// Starts the `/metrics` and `/status` listener on `addr`.
    fn serve_metrics(self: &Arc<Self>, addr: &str) -> std::io::Result<tg_ops::metrics::Endpoint> {
        let refresh = {
            let inner = Arc::clone(self);
            Box::new(move || inner.refresh_metrics())
        };
        let status: tg_ops::metrics::Page = {
            let inner = Arc::clone(self);
            Box::new(move || ("application/json", format!("{}\n", inner.live_status())))
        };
        tg_ops::metrics::Endpoint::serve(
            addr,
            self.metrics.registry(),
            refresh,
            vec![("/status", status)],
        )
    }

    /// Sets the gauges from the daemon's state.
    fn refresh_metrics(&self) {
        let m = &self.metrics;
        let (record, sessions) = {
            let a = lock(&self.admission);
            (a.record(), a.writers())
        };
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(p) = self.replay.get() {
            m.durable_tail.set(gauge(p.cursor.pos));
            m.head.set(gauge(p.head.pos));
            m.applied_lsn.set(gauge(p.digest.last_lsn));
        }
        m.epoch.set(gauge(record.epoch));
        m.sealed.set(i64::from(record.sealed));
        m.sessions.set(gauge(sessions as u64));
        m.handshakes.set(gauge(lock(&self.pending).count() as u64));
        #[allow(clippy::cast_precision_loss)]
        let at = self.replay.applied_at_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        m.last_applied.set(at);
    }

    /// `GET /status`: the daemon's live view, for `tg-replica status`.
    fn live_status(&self) -> serde_json::Value {
        let (record, writers) = {
            let a = lock(&self.admission);
            let w: Vec<serde_json::Value> = a
                .admitted()
                .map(|(id, epoch, w)| serde_json::json!({ "name": w.name(), "epoch": epoch, "session": id }))
                .collect();
            (a.record(), w)
        };
        let p = self.replay.get();
        serde_json::json!({
            "pid": std::process::id(),
            "listen": self.s.listen,
            "epoch": record.epoch,
            "sealed": record.sealed,
            "durable_tail": p.map_or(0, |p| p.cursor.pos),
            "head": p.map_or(0, |p| p.head.pos),
            "applied_lsn": p.map_or(0, |p| p.digest.last_lsn),
            "writers": writers,
            "handshakes_in_progress": lock(&self.pending).count(),
            "stopping": self.stopping.load(Ordering::Relaxed),
        })
    }

    /// SIGHUP: rereads the allow-list and its keys. A list that does not
    /// load changes nothing. Sessions of writers still listed go on (they
    /// proved their key when they connected; a rotated key is asked for
    /// at the next handshake); a writer no longer listed is fenced and
    /// its session closed.
    fn reload(&self, reread: &dyn Fn() -> Result<AllowList, String>) {
        let list = match reread() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: cannot reread the allow-list; keeping the one in use (fix the config or key file and send SIGHUP again)");
                return;
            }
        };
        let gone: Vec<Open> = {
            let mut open = lock(&self.open);
            let (gone, kept) = std::mem::take(&mut *open).into_iter().partition(|o| {
                fabric::wire::WriterName::new(o.writer.clone())
                    .map_or(true, |n| list.key(&n).is_none())
            });
            *open = kept;
            gone
        };
        let n = list.len();
        *self.allow.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(list);
        tracing::info!(writers = n, "SIGHUP: allow-list and keys reread");
        for o in gone {
            tracing::warn!(writer = %o.writer, "no longer on the allow-list: fencing it and closing its session");
            self.release(o.id);
            let _ = o.closer.shutdown(Shutdown::Both);
        }
    }

    /// A stop: refuses admission from now on, closes the handshakes in
    /// progress, fences every writer and closes their sessions (their
    /// threads see the socket closed and end). Returns how many sessions
    /// it closed.
    fn shut_down(&self) -> usize {
        self.stopping.store(true, Ordering::Relaxed);
        for h in lock(&self.pending).drain() {
            let _ = h.shutdown(Shutdown::Both);
        }
        lock(&self.admission).fence_all(Why::Shutdown);
        let open = std::mem::take(&mut *lock(&self.open));
        let n = open.len();
        tracing::info!(
            sessions = n,
            "stopping: writers fenced, closing their sessions"
        );
        for o in &open {
            let _ = o.closer.shutdown(Shutdown::Both);
        }
        n
    }
}
