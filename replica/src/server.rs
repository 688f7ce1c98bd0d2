//! Admission and sessions.
//!
//! One thread per control connection (at most `max_sessions`). Admission is
//! serialised: a writer with a newer epoch is recorded in the epoch file,
//! every queue pair of an older epoch is moved to the error state (a QP in
//! error executes no remote access), and the region is registered anew (a
//! new rkey), all before the new writer gets its `Accept`. A writer's QP is
//! dropped when its control connection closes.

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fabric::auth::AllowList;
use fabric::config::Config;
use fabric::mirror::GpspmResponder;
use fabric::replicated::RegionMemory;
use fabric::settings::{self, SettingsError};
use fabric::verbs::{
    Access, Context, MemoryRegion, PreparedQp, ProtectionDomain, QpConfig, QueuePair, VerbsError,
};
use fabric::wire::handshake::{self, Authenticated, ReplicaExpectation};
use fabric::wire::{
    Channel, Geometry, Message, PersistenceMode, Reject, RejectCode, SealPoint, Status,
};
use logcore::{Control, CreateOptions, Image, Log, Region, RegionKind, MAGIC};

use crate::epoch::{self, EpochState};
use crate::replay::{self, Damage, Progress};

/// What `tg-replica serve` runs with.
#[derive(Debug)]
pub struct Settings {
    /// Control address.
    pub listen: String,
    /// The replica's region.
    pub region: PathBuf,
    /// The epoch file.
    pub epoch_file: PathBuf,
    /// Admitted writers and their keys.
    pub allow: AllowList,
    /// RDMA device.
    pub device: String,
    /// Its port.
    pub port: u8,
    /// Queue pair parameters.
    pub qp: QpConfig,
    /// Persistence mode (must equal the writers').
    pub persistence: PersistenceMode,
    /// The ring geometry writers must have.
    pub geometry: Geometry,
    /// Bound on each handshake read/write and on a seal's wait.
    pub control_timeout: Duration,
    /// Most concurrent control connections.
    pub max_sessions: usize,
    /// Replay poll interval when idle.
    pub replay_idle: Duration,
}

impl Settings {
    /// From a validated config with a `replica` section.
    ///
    /// # Errors
    /// [`SettingsError`] naming the setting.
    pub fn from_config(cfg: &Config) -> Result<Self, SettingsError> {
        let r = cfg.replica.as_ref().ok_or(SettingsError::Missing {
            field: "replica",
            reason: "for tg-replica",
        })?;
        let allow = AllowList::load(&r.allow).map_err(SettingsError::AllowList)?;
        Ok(Settings {
            listen: r.listen.clone(),
            region: r.region.clone(),
            epoch_file: r.epoch_file.clone(),
            allow,
            device: settings::device_name(&cfg.device)?,
            port: u8::try_from(cfg.device.port).unwrap_or(1),
            qp: settings::qp_config(cfg),
            persistence: cfg.persistence,
            geometry: settings::log_geometry(cfg.log.size_bytes)?,
            control_timeout: cfg.control_timeout(),
            max_sessions: 16,
            replay_idle: Duration::from_millis(1),
        })
    }
}

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

/// A writer's queue pair as the replica holds it.
enum WriterQp {
    /// apm: the replica CPU never touches it.
    Passive(QueuePair),
    /// gpspm: a responder thread serves persist requests on it.
    Gpspm(GpspmResponder),
}

impl WriterQp {
    fn fence(&mut self) {
        let qp = match self {
            WriterQp::Passive(qp) => qp,
            WriterQp::Gpspm(r) => r.qp_mut(),
        };
        if let Err(e) = qp.set_error() {
            tracing::error!(error = %e, "could not move a fenced QP to error");
        }
    }
}

struct Writer {
    id: u64,
    name: String,
    epoch: u64,
    qp: Arc<Mutex<WriterQp>>,
    stop: Arc<AtomicBool>,
}

struct Admission {
    epoch: EpochState,
    mr: Option<Arc<MemoryRegion<RegionMemory>>>,
    writers: Vec<Writer>,
    next_id: u64,
}

struct Inner {
    s: Settings,
    pd: ProtectionDomain,
    admission: Mutex<Admission>,
    replay: Arc<replay::Shared>,
    sessions: AtomicUsize,
}

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

/// Reads the region's log identity: `Ok(None)` for a region that holds no
/// log yet (no magic), an error for one that holds something else.
fn inspect_region(s: &Settings, ep: &EpochState) -> Result<Option<Progress>, ServeError> {
    let bad = |reason: String| ServeError::Region {
        path: s.region.clone(),
        reason,
    };
    let region = match Region::open(&s.region, RegionKind::Auto) {
        Ok(r) => r,
        Err(e) => return Err(bad(format!("{e}"))),
    };
    if region.len() < s.geometry.region_len_bytes as usize {
        return Err(bad(format!(
            "{} bytes, smaller than the log ({} bytes, log.size-bytes)",
            region.len(),
            s.geometry.region_len_bytes
        )));
    }
    // Copied out, not borrowed: the region is registered for remote writes.
    let mut magic = [0u8; 8];
    region.read_at(0, &mut magic);
    if magic != MAGIC {
        if let Some(u) = ep.uuid {
            return Err(bad(format!(
                "holds no log, but the epoch file {} says it mirrored log {}: the region was \
                 wiped or replaced; remove the epoch file only if starting over is intended",
                s.epoch_file.display(),
                hex(&u)
            )));
        }
        return Ok(None);
    }
    let img = Image::read(&region).map_err(|e| bad(format!("{e}; refusing to overwrite it")))?;
    let sb = img.superblock();
    if sb.geometry.ring_offset != s.geometry.ring_offset_bytes
        || sb.geometry.capacity != s.geometry.ring_capacity_bytes
    {
        return Err(bad(format!(
            "formatted for a ring of {} bytes at {}, but log.size-bytes gives {} at {}: fix the config \
             (every node of a log uses the same size)",
            sb.geometry.capacity, sb.geometry.ring_offset, s.geometry.ring_capacity_bytes, s.geometry.ring_offset_bytes
        )));
    }
    if ep.uuid.is_some_and(|u| u != sb.uuid) {
        return Err(bad(format!(
            "mirrors log {} but the epoch file belongs to log {}",
            hex(&sb.uuid),
            hex(&ep.uuid.unwrap_or_default())
        )));
    }
    let (progress, damage) =
        Progress::from_image(&img, u32::try_from(ep.epoch).unwrap_or(u32::MAX));
    if let Some(d) = damage {
        rewind(&region, &s.region, &d).map_err(bad)?;
    }
    Ok(Some(progress))
}

/// The records end before the recorded durable tail (`d`): say so, and
/// record the last intact position as the durable tail (persisted), so that
/// what the replica reports at handshake, `tg-replica status`, `tg-log
/// verify` and the next start agree. The writer then re-ships from there.
/// With nothing intact, that is the head: the writer re-ships everything
/// from it, if its ring still holds it.
fn rewind(region: &Region, path: &std::path::Path, d: &Damage) -> Result<(), String> {
    tracing::warn!(
        region = %path.display(),
        recorded_tail = d.recorded.pos,
        recorded_next_lsn = d.recorded.lsn.0,
        intact_tail = d.intact.pos,
        intact_next_lsn = d.intact.lsn.0,
        "{d}; the region lost or damaged records it had acknowledged (a power-off with \
         the ring not persistent, a zeroed or torn ring): starting from the intact tail and \
         reporting it as durable, so the writer re-ships LSN {} on from its ring; if it \
         reclaimed them it refuses this replica (too far behind) and the replica must be \
         re-seeded from a full copy",
        d.intact.lsn.0
    );
    let cannot = |e: &dyn fmt::Display| {
        format!(
            "{d}; cannot record the intact tail {} in the control block: {e}; check that the \
             region's device or file is writable",
            d.intact.pos
        )
    };
    let c = Control::new(region).map_err(|e| cannot(&e))?;
    c.rewind_mirror_durable(d.intact).map_err(|e| cannot(&e))
}

/// A formatted region whose epoch file names no log: the replica crashed
/// between formatting the region and recording the first admission (in
/// that order). Record the region's log and the highest epoch it holds.
fn adopt(ep: &EpochState, p: &Progress) -> Option<EpochState> {
    match (ep.uuid, p.uuid) {
        (None, Some(u)) => Some(EpochState {
            epoch: ep.epoch.max(u64::from(p.max_epoch)),
            sealed: ep.sealed,
            uuid: Some(u),
        }),
        _ => None,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
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
            admission: Mutex::new(Admission {
                epoch: ep,
                mr: None,
                writers: Vec::new(),
                next_id: 1,
            }),
            s,
            pd,
            replay,
            sessions: AtomicUsize::new(0),
        });
        if inner.replay.get().is_some_and(|p| p.uuid.is_some()) {
            inner
                .register_region(&mut lock(&inner.admission))
                .map_err(|e| match e {
                    AdmitError::Verbs(v) => ServeError::Verbs(v),
                    AdmitError::Other(reason) => ServeError::Region {
                        path: inner.s.region.clone(),
                        reason,
                    },
                })?;
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
            if inner.sessions.fetch_add(1, Ordering::AcqRel) >= inner.s.max_sessions {
                inner.sessions.fetch_sub(1, Ordering::AcqRel);
                tracing::warn!(peer = ?stream.peer_addr().ok(), max = inner.s.max_sessions, "too many control connections; refusing");
                let mut ch = Channel::new(stream);
                let _ = ch.send(&Message::Reject(Reject::new(
                    RejectCode::Internal,
                    "replica busy: too many control connections",
                )));
                continue;
            }
            std::thread::spawn(move || {
                let peer = stream.peer_addr().ok();
                if let Err(e) = inner.session(stream) {
                    tracing::warn!(?peer, error = %e, "control session ended");
                }
                inner.sessions.fetch_sub(1, Ordering::AcqRel);
            });
        }
    }
}

#[derive(Debug)]
enum AdmitError {
    Verbs(VerbsError),
    Other(String),
}

impl fmt::Display for AdmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdmitError::Verbs(e) => write!(f, "{e}"),
            AdmitError::Other(s) => f.write_str(s),
        }
    }
}

/// Moves every writer QP of an epoch below `below` to the error state (so
/// its WRITEs and READs fail at the device) and forgets the writer; its
/// session ends when it next talks.
fn fence_writers(a: &mut Admission, below: u64, why: &str) {
    for w in a.writers.iter().filter(|w| w.epoch < below) {
        tracing::warn!(writer = %w.name, epoch = w.epoch, "fencing writer: {why}");
        w.stop.store(true, Ordering::Relaxed);
        lock(&w.qp).fence();
    }
    a.writers.retain(|w| w.epoch >= below);
}

impl Inner {
    fn expectation(&self, a: &Admission) -> ReplicaExpectation {
        ReplicaExpectation {
            log_uuid: a.epoch.uuid,
            geometry: self.s.geometry,
            persistence: self.s.persistence,
            admitted_epoch: a.epoch.epoch,
            sealed: a.epoch.sealed,
        }
    }

    /// Registers the first `region_len` bytes of the region (a new rkey).
    fn register_region(&self, a: &mut Admission) -> Result<(), AdmitError> {
        let region = Region::open(&self.s.region, RegionKind::Auto)
            .map_err(|e| AdmitError::Other(e.to_string()))?;
        let len = usize::try_from(self.s.geometry.region_len_bytes).unwrap_or(usize::MAX);
        let mem = RegionMemory::new(region, len).ok_or_else(|| {
            AdmitError::Other(format!("region is smaller than the log's {len} bytes"))
        })?;
        a.mr = Some(Arc::new(
            MemoryRegion::register(&self.pd, mem, Access::REPLICA).map_err(AdmitError::Verbs)?,
        ));
        Ok(())
    }

    /// Formats a fresh region for the writer's log.
    fn format_region(&self, uuid: [u8; 16], epoch: u32) -> Result<(), AdmitError> {
        let opts = CreateOptions {
            kind: RegionKind::Auto,
            epoch,
            uuid: Some(uuid),
            capacity: Some(self.s.geometry.ring_capacity_bytes),
            overwrite: false,
        };
        let log = Log::create(&self.s.region, self.s.geometry.region_len_bytes, &opts)
            .map_err(|e| AdmitError::Other(e.to_string()))?;
        let geometry = log.geometry();
        drop(log);
        let mut g = lock(&self.replay.progress);
        let mut p = Progress::fresh(epoch);
        p.uuid = Some(uuid);
        p.geometry = Some(geometry);
        *g = Some(p);
        Ok(())
    }

    fn session(&self, stream: TcpStream) -> Result<(), String> {
        let t = Some(self.s.control_timeout);
        stream
            .set_read_timeout(t)
            .and_then(|()| stream.set_write_timeout(t))
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let expect = self.expectation(&lock(&self.admission));
        let auth = handshake::authenticate(Channel::new(stream), &expect, &self.s.allow)
            .map_err(|e| e.to_string())?;
        let (id, writer, mut channel) = self.admit(auth)?;
        // Admitted: serve requests until the writer closes the channel.
        let _ = channel.get_ref().set_read_timeout(None);
        let result = loop {
            match channel.recv() {
                Ok(Message::StatusRequest) => {
                    let st = self.status();
                    if let Err(e) = channel.send(&Message::Status(st)) {
                        break Err(e.to_string());
                    }
                }
                Ok(Message::Seal(point)) => {
                    let reply = self.seal(point);
                    if let Err(e) = channel.send(&reply) {
                        break Err(e.to_string());
                    }
                }
                Ok(Message::Persist(range)) => {
                    let reply = match self.persist_range(range.start, range.end) {
                        Ok(()) => Message::Persisted(range),
                        Err(e) => Message::Reject(Reject::new(RejectCode::Internal, e)),
                    };
                    if let Err(e) = channel.send(&reply) {
                        break Err(e.to_string());
                    }
                }
                Ok(other) => {
                    let _ = channel.send(&Message::Reject(Reject::new(
                        RejectCode::Malformed,
                        format!("unexpected {:?} after admission", other.message_type()),
                    )));
                    break Err(format!("unexpected message {:?}", other.message_type()));
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        self.release(id);
        tracing::info!(writer = %writer, "writer disconnected");
        result
    }

    /// Drops a writer's QP when its session ends.
    fn release(&self, id: u64) {
        let mut a = lock(&self.admission);
        if let Some(i) = a.writers.iter().position(|w| w.id == id) {
            let w = a.writers.remove(i);
            w.stop.store(true, Ordering::Relaxed);
            lock(&w.qp).fence();
        }
    }

    fn admit(
        &self,
        auth: Authenticated<TcpStream>,
    ) -> Result<(u64, String, Channel<TcpStream>), String> {
        let mut a = lock(&self.admission);
        let hello = auth.hello().clone();
        let name = hello.writer.to_string();
        // Re-check under the lock: another writer may have moved the epoch.
        if hello.epoch < a.epoch.epoch {
            let msg = format!(
                "stale epoch {}: epoch {} is admitted",
                hello.epoch, a.epoch.epoch
            );
            return Err(auth.reject(RejectCode::StaleEpoch, msg).to_string());
        }
        let epoch32 = u32::try_from(hello.epoch).unwrap_or(u32::MAX);
        let fail = |auth: Authenticated<TcpStream>, e: AdmitError| {
            auth.reject(RejectCode::Internal, e.to_string()).to_string()
        };
        if a.epoch.uuid.is_none() {
            if let Err(e) = self.format_region(hello.log_uuid, epoch32) {
                return Err(fail(auth, e));
            }
            a.epoch.uuid = Some(hello.log_uuid);
            a.mr = None;
        }
        if hello.epoch > a.epoch.epoch || a.mr.is_none() {
            // Fence: record the epoch durably, stop every older writer's QP,
            // and hand out a new rkey.
            fence_writers(&mut a, hello.epoch, "a newer epoch is admitted");
            if hello.epoch > a.epoch.epoch {
                a.epoch.epoch = hello.epoch;
                a.epoch.sealed = false;
            }
            if let Err(e) = epoch::store(&self.s.epoch_file, &a.epoch) {
                return Err(fail(auth, AdmitError::Other(e.to_string())));
            }
            if let Some(p) = lock(&self.replay.progress).as_mut() {
                p.admitted_epoch = p.admitted_epoch.max(epoch32);
            }
            a.mr = None;
            if let Err(e) = self.register_region(&mut a) {
                return Err(fail(auth, e));
            }
        }
        let mr = Arc::clone(a.mr.as_ref().expect("registered above"));
        let prepared = match PreparedQp::new(&self.pd, self.s.qp) {
            Ok(q) => q,
            Err(e) => return Err(fail(auth, AdmitError::Verbs(e))),
        };
        let endpoint = match prepared.endpoint() {
            Ok(e) => e,
            Err(e) => return Err(fail(auth, AdmitError::Verbs(e))),
        };
        let durable = self.replay.get().map_or(0, |p| p.cursor.pos);
        let connecting = auth
            .accept(endpoint, mr.remote(), durable)
            .map_err(|e| e.to_string())?;
        let qp = match prepared.connect(connecting.writer_endpoint(), Access::REPLICA) {
            Ok(q) => q,
            Err(e) => {
                return Err(connecting
                    .reject(RejectCode::Internal, e.to_string())
                    .to_string())
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let wqp = match self.s.persistence {
            PersistenceMode::Apm => WriterQp::Passive(qp),
            PersistenceMode::Gpspm => match GpspmResponder::new(qp, &self.pd) {
                Ok(r) => WriterQp::Gpspm(r),
                Err(e) => {
                    return Err(connecting
                        .reject(RejectCode::Internal, e.to_string())
                        .to_string())
                }
            },
        };
        let wqp = Arc::new(Mutex::new(wqp));
        let admitted = connecting.ready().map_err(|e| e.to_string())?;
        let id = a.next_id;
        a.next_id += 1;
        if self.s.persistence == PersistenceMode::Gpspm {
            let (wqp, stop, mr, geometry) = (
                Arc::clone(&wqp),
                Arc::clone(&stop),
                Arc::clone(&mr),
                self.s.geometry,
            );
            std::thread::spawn(move || gpspm_loop(&wqp, &stop, &mr, geometry));
        }
        a.writers.push(Writer {
            id,
            name: name.clone(),
            epoch: hello.epoch,
            qp: wqp,
            stop,
        });
        tracing::info!(writer = %name, epoch = hello.epoch, durable, "writer admitted");
        Ok((id, name, admitted.into_channel()))
    }

    fn status(&self) -> Status {
        let a = lock(&self.admission);
        let p = self.replay.get();
        Status {
            durable_tail: p.map_or(0, |p| p.cursor.pos),
            applied_lsn: p.map_or(0, |p| p.digest.last_lsn),
            head: p.map_or(0, |p| p.head.pos),
            epoch: a.epoch.epoch,
            sealed: a.epoch.sealed,
        }
    }

    /// Seals `point.epoch` once replay has reached `point.tail`.
    fn seal(&self, point: SealPoint) -> Message {
        let deadline = Instant::now() + self.s.control_timeout;
        let mut g = lock(&self.replay.progress);
        loop {
            let at = g.map_or(0, |p| p.cursor.pos);
            if at >= point.tail {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Message::Reject(Reject::new(
                    RejectCode::Internal,
                    format!(
                        "cannot seal at {}: replica holds only up to {at}",
                        point.tail
                    ),
                ));
            }
            g = self
                .replay
                .moved
                .wait_timeout(g, left.min(Duration::from_millis(50)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(g);
        let mut a = lock(&self.admission);
        if point.epoch != a.epoch.epoch {
            return Message::Reject(Reject::new(
                RejectCode::StaleEpoch,
                format!(
                    "seal for epoch {} but epoch {} is admitted",
                    point.epoch, a.epoch.epoch
                ),
            ));
        }
        a.epoch.sealed = true;
        if let Err(e) = epoch::store(&self.s.epoch_file, &a.epoch) {
            return Message::Reject(Reject::new(RejectCode::Internal, e.to_string()));
        }
        // Nothing of a sealed epoch may land after its seal: a hung host
        // that resumes still holds a connected QP and the rkey. Stop every
        // QP of this epoch (the sealing writer's too: it is done) and
        // revoke the rkey; the next epoch's admission registers anew.
        fence_writers(&mut a, point.epoch.saturating_add(1), "its epoch is sealed");
        a.mr = None;
        tracing::info!(epoch = point.epoch, tail = point.tail, "stream sealed");
        Message::Sealed(point)
    }

    fn persist_range(&self, from: u64, to: u64) -> Result<(), String> {
        let a = lock(&self.admission);
        let mr = a.mr.as_ref().ok_or("no region registered")?;
        persist(mr, self.s.geometry, from, to)
    }
}

/// Flushes `[from, to)` of the ring in the registered region.
fn persist(mr: &MemoryRegion<RegionMemory>, g: Geometry, from: u64, to: u64) -> Result<(), String> {
    if to < from || to - from > g.ring_capacity_bytes {
        return Err(format!("range [{from}, {to}) does not fit the ring"));
    }
    let lg = logcore::Geometry {
        ring_offset: g.ring_offset_bytes,
        capacity: g.ring_capacity_bytes,
    };
    for p in lg.pieces(from, to) {
        mr.memory()
            .region()
            .persist(p.region_offset as usize, p.len as usize)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn gpspm_loop(
    wqp: &Mutex<WriterQp>,
    stop: &AtomicBool,
    mr: &MemoryRegion<RegionMemory>,
    g: Geometry,
) {
    while !stop.load(Ordering::Relaxed) {
        let mut q = lock(wqp);
        let WriterQp::Gpspm(r) = &mut *q else { return };
        match r.serve_one(Duration::from_millis(20), |from, to| {
            persist(mr, g, from, to)
        }) {
            Ok(_) => {}
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    tracing::warn!(error = %e, "gpspm responder stopped");
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{self, Fixture};
    use crate::replay::Flaw;
    use logcore::{Cursor, RecordFault};

    const REGION_LEN: u64 = 128 << 10;

    fn settings(f: &Fixture) -> Settings {
        Settings {
            listen: "127.0.0.1:0".into(),
            region: f.path.clone(),
            epoch_file: f.dir.join("epoch"),
            allow: AllowList::new(),
            device: "rxe0".into(),
            port: 1,
            qp: QpConfig::default(),
            persistence: PersistenceMode::Apm,
            geometry: Geometry {
                ring_offset_bytes: f.geometry.ring_offset,
                ring_capacity_bytes: f.geometry.capacity,
                region_len_bytes: REGION_LEN,
            },
            control_timeout: Duration::from_secs(1),
            max_sessions: 1,
            replay_idle: Duration::from_millis(1),
        }
    }

    /// What `Replica::bind` finds, and what the control block records
    /// after it.
    fn inspect(f: &Fixture) -> (Progress, Cursor) {
        let ep = EpochState {
            epoch: 1,
            sealed: false,
            uuid: Some(f.uuid),
        };
        let p = inspect_region(&settings(f), &ep).unwrap().unwrap();
        let bytes = f.bytes();
        (p, Image::parse(&bytes).unwrap().control().persisted)
    }

    /// Starts twice on a damaged image: the first start reports and records
    /// the intact tail, the second finds nothing wrong and agrees.
    fn starts_at(f: &Fixture, intact: Cursor) {
        let (p, recorded) = inspect(f);
        assert_eq!(p.cursor, intact, "the durable tail reported at handshake");
        assert_eq!(p.head, f.head);
        assert_eq!(recorded, intact, "the control block now says so too");
        let bytes = f.bytes();
        assert_eq!(replay::verify(&Image::parse(&bytes).unwrap()), Ok(()));
        let (again, recorded) = inspect(f);
        assert_eq!(
            (again.cursor, recorded),
            (intact, intact),
            "a restart agrees"
        );
    }

    #[test]
    fn an_intact_region_starts_at_its_recorded_tail_untouched() {
        let f = fixture::wrapped("server-intact", REGION_LEN, 600);
        let before = f.bytes();
        let (p, recorded) = inspect(&f);
        assert_eq!((p.cursor, recorded), (f.tail, f.tail));
        assert!(f.bytes() == before, "nothing was written");
    }

    #[test]
    fn a_region_with_a_zeroed_record_restarts_before_it() {
        let f = fixture::wrapped("server-zeroed-middle", REGION_LEN, 600);
        let i = f.middle();
        f.zero_record(i);
        starts_at(&f, f.records[i].start);
    }

    #[test]
    fn a_region_with_a_zeroed_ring_restarts_at_its_head() {
        let f = fixture::wrapped("server-zeroed-ring", REGION_LEN, 600);
        f.zero_ring();
        starts_at(&f, f.head);
    }

    #[test]
    fn a_region_with_a_torn_last_record_restarts_before_it() {
        let f = fixture::wrapped("server-flipped-last", REGION_LEN, 600);
        let last = f.records.len() - 1;
        f.flip_payload_byte(last);
        starts_at(&f, f.records[last].start);
    }

    #[test]
    fn the_damage_message_names_both_tails_and_the_fault() {
        let d = Damage {
            recorded: Cursor {
                pos: 292_992,
                lsn: logcore::Lsn(495),
            },
            intact: Cursor {
                pos: 0,
                lsn: logcore::Lsn::FIRST,
            },
            flaw: Flaw::Record(RecordFault::Zeroed),
        };
        assert_eq!(
            d.to_string(),
            "the control block records the durable tail at 292992 (next LSN 495), but the \
             records end at 0 (next LSN 1): the record there does not verify: header is all \
             zero (never written)"
        );
    }

    #[test]
    fn a_formatted_region_without_an_epoch_record_is_adopted() {
        let mut p = Progress::fresh(0);
        p.uuid = Some([9; 16]);
        p.max_epoch = 3;
        let ep = EpochState {
            epoch: 1,
            sealed: false,
            uuid: None,
        };
        assert_eq!(
            adopt(&ep, &p),
            Some(EpochState {
                epoch: 3,
                sealed: false,
                uuid: Some([9; 16])
            })
        );
        // Already recorded, or nothing to adopt: unchanged.
        assert_eq!(
            adopt(
                &EpochState {
                    uuid: Some([9; 16]),
                    ..ep
                },
                &p
            ),
            None
        );
        assert_eq!(adopt(&ep, &Progress::fresh(0)), None);
    }
}
