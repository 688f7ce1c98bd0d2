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
//!
//! Admission is serialised: a writer with a newer epoch is recorded in the
//! epoch file, every queue pair of an older epoch is moved to the error
//! state (a QP in error executes no remote access), and the region is
//! registered anew (a new rkey), all before the new writer gets its
//! `Accept`. A writer's QP is dropped when its control connection closes.

mod admission;
mod gpspm;
mod paced;
mod pending;
mod region;
mod seal;
mod session;
mod throttle;

use std::fmt;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fabric::verbs::{Context, ProtectionDomain, VerbsError};

pub use crate::settings::Settings;

use self::admission::{Admission, AdmitError};
use self::pending::{Pending, MAX_HANDSHAKES, MAX_HANDSHAKES_PER_PEER};
use self::region::{adopt, inspect_region};
use self::session::Ended;
use self::throttle::Throttle;
use crate::epoch;
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
    /// Log lines a peer can cause at will: a failed handshake, and a
    /// handshake closed to make room.
    quiet_failed: Throttle,
    quiet_evicted: Throttle,
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
        });
        let inner = Arc::new(Inner {
            admission: Mutex::new(Admission::new(ep)),
            s,
            pd,
            replay,
            pending: Mutex::new(Pending::new(MAX_HANDSHAKES, MAX_HANDSHAKES_PER_PEER)),
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
        Ok(Replica { inner, listener })
    }

    /// The bound control address.
    ///
    /// # Errors
    /// The OS error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends: the replay thread, and a thread per
    /// control connection.
    pub fn run(self) {
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (path, shared, idle, stop) = (
                self.inner.s.region.clone(),
                Arc::clone(&self.inner.replay),
                self.inner.s.replay_idle,
                Arc::clone(&stop),
            );
            std::thread::Builder::new()
                .name("tg-replay".into())
                .spawn(move || replay::run(&path, &shared, idle, &stop))
                .expect("spawn replay thread");
        }
        for conn in self.listener.incoming() {
            let stream = match conn {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let inner = Arc::clone(&self.inner);
            let (handle, peer) = match (stream.try_clone(), stream.peer_addr()) {
                (Ok(h), Ok(p)) => (h, p.ip()),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot hold an accepted connection; closing it");
                    continue;
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
                    Err(Ended::Handshake(e)) => {
                        if let Some(held) = inner.quiet_failed.pass(Instant::now()) {
                            tracing::warn!(?peer, error = %e, held_back = held, "control connection refused");
                        }
                    }
                    Err(Ended::Session(e)) => {
                        tracing::warn!(?peer, error = %e, "control session ended");
                    }
                }
            });
        }
    }
}
