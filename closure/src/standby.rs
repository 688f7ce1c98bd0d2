//! The closure's pre-established resources: the host's log mapped twice
//! (one registered with the device for local reads only, the source of
//! every RDMA WRITE; one kept for taking the log over), one protection
//! domain, and per replica a connected queue pair, mirror and control
//! channel under the closure's own writer identity. Everything the takeover
//! posts or sends on exists before the host fails.
//!
//! The links are generic over fabric's transport seam ([`Transport`]): the
//! daemon arms a [`Standby`] on verbs ([`Standby::prepare`]); the shipping,
//! keep-alive and takeover logic runs on any transport.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fabric::replicated::{ConnectOptions, LogIdentity, RegionMemory, ReplicaSpec};
use fabric::transport::{Connected, ControlSession, Rdma, Transport};
use fabric::verbs::{Access, Context, MemoryRegion, ProtectionDomain};
use fabric::wire::{SealPoint, Status};
use logcore::{Control, Image, LogState, Region, RegionKind};

use crate::error::ClosureError;
use crate::options::ClosureOptions;

/// Where [`Standby::ship`] starts on each replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipFrom {
    /// Where this mirror last shipped to.
    Mirror,
    /// The replica's durable tail: the last one this standby knows (from
    /// its connect or its last keep-alive status) when that is within
    /// [`RESHIP_MAX_BYTES`] of the target, else asked by status on the
    /// control channel (one round trip).
    ReplicaStatus,
    /// A given position (a replica known to hold everything before it).
    At(u64),
}

/// Largest range [`Standby::ship`] re-ships from the last known durable
/// tail instead of asking the replica: bytes the replica already holds are
/// rewritten with the same bytes, which for a short range costs less than
/// a control-channel round trip.
pub const RESHIP_MAX_BYTES: u64 = 64 << 10;

/// A connected replica over transport `T`.
pub type Conn<T> =
    Connected<<T as Transport>::Path, <T as Transport>::Control, <T as Transport>::Clock>;

/// One replica as the closure holds it.
pub struct StandbyLink<T: Transport> {
    /// How to reach it (for reconnects after a failed keep-alive).
    pub spec: ReplicaSpec,
    /// The mirror and control channel, `None` after a failed keep-alive
    /// until a reconnect succeeds, and while its keep-alive thread holds
    /// it ([`StandbyLink::is_away`]).
    pub conn: Option<Conn<T>>,
    /// Its keep-alive thread, started at the first keep-alive.
    keeper: Option<Keeper<T>>,
    /// Since when the keeper holds the link (a status, reconnect or seal
    /// in progress), if it does.
    away: Option<Instant>,
    /// Whether the link was up at its last keep-alive.
    up: bool,
    /// Throttles "standby mirror down" while it stays down.
    quiet: Option<Instant>,
    held_back: u64,
}

impl<T: Transport> std::fmt::Debug for StandbyLink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandbyLink")
            .field("spec", &self.spec)
            .field("conn", &self.conn)
            .field("away", &self.away)
            .field("up", &self.up)
            .finish_non_exhaustive()
    }
}

/// Most often "standby mirror down" is logged for a link that stays down.
const DOWN_EVERY: Duration = Duration::from_secs(30);

/// How long a takeover waits, once a quorum answered, for the other
/// replicas' links to come home (a keep-alive in flight) or their seal.
pub const STRAGGLER_GRACE: Duration = Duration::from_millis(100);

/// Work for a link's keep-alive thread: everything that may block on the
/// replica's control channel (up to the control timeout when it stops
/// answering), kept off the watch loop.
enum Job<T: Transport> {
    /// A status round trip on the link.
    Check(Conn<T>),
    /// Connect it anew.
    Connect,
    /// Ask the replica to seal.
    Seal(Conn<T>, SealPoint),
}

/// What a link's keep-alive thread hands back.
enum Report<T: Transport> {
    /// Status answered; the link.
    Checked(Conn<T>, Status),
    /// Status failed: the link is dropped.
    Lost(String),
    /// Reconnected.
    Connected(Conn<T>),
    /// Could not reconnect.
    Unreachable(String),
    /// The seal's answer, and the link.
    Sealed(Conn<T>, Result<SealPoint, String>),
}

/// A link's keep-alive thread and its two channels.
struct Keeper<T: Transport> {
    jobs: mpsc::Sender<Job<T>>,
    reports: mpsc::Receiver<Report<T>>,
}

impl<T: Transport> Keeper<T> {
    fn spawn(
        transport: Arc<T>,
        spec: ReplicaSpec,
        connect: ConnectOptions,
        identity: LogIdentity,
    ) -> std::io::Result<Self> {
        let (jobs, inbox) = mpsc::channel::<Job<T>>();
        let (outbox, reports) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("tg-keep-{}", spec.name))
            .spawn(move || {
                for job in inbox {
                    let report = match job {
                        Job::Check(mut c) => match c.control.status() {
                            Ok(st) => Report::Checked(c, st),
                            Err(e) => Report::Lost(e.to_string()),
                        },
                        Job::Connect => match transport.connect(&spec, &connect, &identity) {
                            Ok(c) => Report::Connected(c),
                            Err(e) => Report::Unreachable(e.to_string()),
                        },
                        Job::Seal(mut c, point) => {
                            let r = c.control.seal(point).map_err(|e| e.to_string());
                            Report::Sealed(c, r)
                        }
                    };
                    if outbox.send(report).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Keeper { jobs, reports })
    }
}

impl<T: Transport> StandbyLink<T> {
    /// A link connected at arming (`conn`), or not.
    pub fn new(spec: ReplicaSpec, conn: Option<Conn<T>>) -> Self {
        let up = conn.is_some();
        StandbyLink {
            spec,
            conn,
            keeper: None,
            away: None,
            up,
            quiet: None,
            held_back: 0,
        }
    }

    /// Whether the link was up at its last keep-alive (or at arming).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether its keep-alive thread holds it now.
    pub fn is_away(&self) -> bool {
        self.away.is_some()
    }

    /// Hands `job` to the keep-alive thread (started on first use).
    fn send(&mut self, job: Job<T>, start: impl FnOnce() -> std::io::Result<Keeper<T>>) {
        if self.keeper.is_none() {
            match start() {
                Ok(k) => self.keeper = Some(k),
                Err(e) => {
                    tracing::error!(replica = %self.spec.name, error = %e, "cannot start the keep-alive thread");
                    return;
                }
            }
        }
        let k = self.keeper.as_ref().expect("started above");
        if k.jobs.send(job).is_ok() {
            self.away = Some(Instant::now());
        }
    }

    /// Takes what the keep-alive thread handed back, if anything: the link
    /// comes home (or stays down). Returns a seal's answer.
    fn collect(&mut self, wait: Option<Duration>) -> Option<Result<SealPoint, String>> {
        let k = self.keeper.as_ref()?;
        let report = match wait {
            None => k.reports.try_recv().ok()?,
            Some(d) => k.reports.recv_timeout(d).ok()?,
        };
        self.away = None;
        let name = &self.spec.name;
        match report {
            Report::Checked(mut c, st) => {
                if st.sealed {
                    tracing::warn!(replica = %name, epoch = st.epoch, "replica reports the stream sealed");
                }
                // What the host has made durable there: a takeover ships
                // from here (the replica never loses it).
                if st.durable_tail > c.mirror.durable() {
                    c.mirror.rebase(st.durable_tail);
                }
                self.conn = Some(c);
                self.up = true;
            }
            Report::Lost(e) => {
                tracing::warn!(replica = %name, error = %e, "keep-alive failed; reconnecting");
                self.up = false;
                self.quiet = None;
            }
            Report::Connected(c) => {
                tracing::info!(replica = %name, durable = c.durable, "standby mirror reconnected");
                self.conn = Some(c);
                self.up = true;
                self.quiet = None;
                self.held_back = 0;
            }
            Report::Unreachable(e) => {
                self.up = false;
                let now = Instant::now();
                if self
                    .quiet
                    .is_none_or(|t| now.duration_since(t) >= DOWN_EVERY)
                {
                    tracing::warn!(replica = %name, error = %e, held_back = self.held_back, "standby mirror down: a takeover now would miss this replica");
                    self.quiet = Some(now);
                    self.held_back = 0;
                } else {
                    self.held_back += 1;
                }
            }
            Report::Sealed(c, r) => {
                self.conn = Some(c);
                return Some(r);
            }
        }
        None
    }
}

/// The armed closure: log mapped and registered, mirrors connected, over
/// transport `T` (verbs unless a simulator says otherwise).
#[derive(Debug)]
pub struct Standby<T: Transport = Rdma<RegionMemory>> {
    /// The read-write mapping handed to [`logcore::Log::take_over`]; taken
    /// by the takeover.
    pub takeover_region: Option<Region>,
    /// How the links reach the replicas (on verbs: it owns the registered
    /// mapping, whose protection domain holds the device open); shared with
    /// the links' keep-alive threads.
    pub transport: Arc<T>,
    /// What the closure tells replicas about the log.
    pub identity: LogIdentity,
    /// One per replica, in config order.
    pub links: Vec<StandbyLink<T>>,
    /// Time to open the device, register the log and connect every
    /// replica from nothing (what a cold agent would pay at takeover).
    pub cold_connect: Duration,
}

/// Waits (bounded) for a host running on the log: state `running` with a
/// writer pid.
///
/// # Errors
/// [`ClosureError::NoHost`] after `wait`.
pub fn wait_for_host(region: &Region, path: &Path, wait: Duration) -> Result<(), ClosureError> {
    wait_for_host_until(region, path, wait, &mut || true)
}

/// [`wait_for_host`], asking `go_on` between looks (a few ms apart) and
/// returning [`ClosureError::Stopped`] once it says no.
///
/// # Errors
/// As [`wait_for_host`]; [`ClosureError::Stopped`].
pub fn wait_for_host_until(
    region: &Region,
    path: &Path,
    wait: Duration,
    go_on: &mut dyn FnMut() -> bool,
) -> Result<(), ClosureError> {
    let control = Control::new(region).map_err(|source| ClosureError::Layout {
        path: path.to_owned(),
        source,
    })?;
    let start = Instant::now();
    loop {
        if control.state() == LogState::Running && control.host_pid() != 0 {
            return Ok(());
        }
        if !go_on() {
            return Err(ClosureError::Stopped);
        }
        if start.elapsed() >= wait {
            return Err(ClosureError::NoHost {
                path: path.to_owned(),
                waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                state: control.state().name(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Standby {
    /// Maps the host's log, registers it and connects every replica.
    ///
    /// # Errors
    /// Mapping, layout, verbs and connection errors; a replica that cannot
    /// be reached at start fails arming (the daemon is restarted by its
    /// supervisor rather than run half-armed).
    pub fn prepare(opts: &ClosureOptions, wait_host: Duration) -> Result<Self, ClosureError> {
        Standby::prepare_until(opts, wait_host, &mut || true)
    }

    /// [`prepare`](Self::prepare), asking `go_on` while it waits for a host.
    ///
    /// # Errors
    /// As [`prepare`](Self::prepare); [`ClosureError::Stopped`] once `go_on`
    /// says no.
    pub fn prepare_until(
        opts: &ClosureOptions,
        wait_host: Duration,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Self, ClosureError> {
        let path = &opts.log_path;
        let region_err = |source| ClosureError::Region {
            path: path.clone(),
            source,
        };
        let rw = Region::open(path, RegionKind::Auto).map_err(region_err)?;
        wait_for_host_until(&rw, path, wait_host, go_on)?;
        tracing::info!(log = %path.display(), "host running on the log; preparing the standby");
        let (uuid, geometry, epoch) = {
            let image = Image::read(&rw).map_err(|source| ClosureError::Layout {
                path: path.clone(),
                source,
            })?;
            let sb = image.superblock();
            (sb.uuid, sb.geometry, image.control().epoch.max(sb.epoch))
        };
        let cold = Instant::now();
        // A read-write mapping, though the device only reads it: Linux pins
        // the pages of a long-term registration for writing, and
        // `ibv_reg_mr` on a read-only mapping fails with EFAULT (seen with
        // rxe on 6.1). The registration's access flags are what keep the
        // device from writing.
        let mapped = Region::open(path, RegionKind::Auto).map_err(region_err)?;
        let len = mapped.len();
        let identity = LogIdentity {
            uuid,
            epoch,
            geometry,
            region_len: len as u64,
        };
        // Only an empty mapping is refused, and the superblock was parsed
        // from one of the same file.
        let mem = RegionMemory::new(mapped, len).ok_or_else(|| ClosureError::Layout {
            path: path.clone(),
            source: logcore::LayoutError::TooSmall {
                len_bytes: len as u64,
                min_bytes: (logcore::CONTROL_OFFSET + logcore::CONTROL_LEN) as u64,
            },
        })?;
        let ctx = Context::open(&opts.device, opts.port).map_err(ClosureError::Verbs)?;
        let pd = ProtectionDomain::new(&ctx).map_err(ClosureError::Verbs)?;
        tracing::info!(device = %opts.device, "device opened");
        // Local read only: the device reads the log to send it and may not
        // write into it.
        let source = Arc::new(
            MemoryRegion::register(&pd, mem, Access::LOCAL_READ).map_err(ClosureError::Verbs)?,
        );
        tracing::info!(len_bytes = len, "log registered (device may only read it)");
        // The MR holds the protection domain, and it the device, open.
        drop((pd, ctx));
        let transport = Rdma::new(source);
        let mut links = Vec::with_capacity(opts.replicas.len());
        for spec in &opts.replicas {
            let c = transport
                .connect(spec, &opts.connect, &identity)
                .map_err(ClosureError::Connect)?;
            // Two entries reaching one tg-replica would count twice toward
            // the quorum a takeover must seal.
            if let Some(o) = links
                .iter()
                .find(|l: &&StandbyLink<_>| l.conn.as_ref().is_some_and(|o| o.region == c.region))
            {
                return Err(ClosureError::Connect(
                    fabric::replicated::ReplicaError::SameReplica {
                        replica: spec.name.clone(),
                        other: o.spec.name.clone(),
                    },
                ));
            }
            tracing::info!(replica = %spec.name, durable = c.durable, epoch, "standby mirror connected");
            links.push(StandbyLink::new(spec.clone(), Some(c)));
        }
        let cold_connect = cold.elapsed();
        Ok(Standby {
            takeover_region: Some(rw),
            transport: Arc::new(transport),
            identity,
            links,
            cold_connect,
        })
    }

    /// The registered mapping of the host's log.
    pub fn source(&self) -> &Arc<MemoryRegion<RegionMemory>> {
        self.transport.source()
    }
}

impl<T: Transport> Standby<T> {
    /// Ships `[from, to)` to every replica with the pre-established
    /// mirrors and makes it durable there; returns the bytes shipped
    /// (summed over replicas) and how many replicas now hold `to`. With
    /// [`ShipFrom::ReplicaStatus`] each replica's durable tail is asked
    /// first and pushed to `durable_seen`. A replica that is not connected
    /// is pushed to `missed` with why; so is one whose ship fails, and its
    /// link is dropped (its queue pair is in error).
    ///
    /// # Errors
    /// [`ClosureError::Diverged`]: a replica ahead of `to` (shipping would
    /// not make the copies equal; nothing is sealed).
    pub fn ship(
        &mut self,
        to: u64,
        from: ShipFrom,
        durable_seen: &mut Vec<(String, u64)>,
        missed: &mut Vec<(String, String)>,
    ) -> Result<(u64, usize), ClosureError> {
        let (mut shipped, mut reached) = (0, 0);
        for link in &mut self.links {
            let name = &link.spec.name;
            let Some(c) = &mut link.conn else {
                // (A link its keep-alive thread still holds is named by
                // the takeover already.)
                if !link.is_away() {
                    missed.push((
                        name.clone(),
                        "not connected at takeover (its keep-alive failed)".into(),
                    ));
                }
                continue;
            };
            let start = match from {
                ShipFrom::Mirror => None,
                ShipFrom::At(pos) => Some(pos),
                // The host shipped past what this standby mirror knows: ask.
                // A status failure leaves the mirror's own (older) position:
                // re-shipping bytes the replica holds writes the same bytes.
                ShipFrom::ReplicaStatus
                    if to.saturating_sub(c.mirror.durable()) <= RESHIP_MAX_BYTES =>
                {
                    Some(c.mirror.durable())
                }
                ShipFrom::ReplicaStatus => Some(match c.control.status() {
                    Ok(st) => st.durable_tail,
                    Err(e) => {
                        tracing::warn!(replica = %name, error = %e, "status failed; shipping from the standby's last position");
                        c.mirror.durable()
                    }
                }),
            };
            if let Some(durable) = start {
                if durable > to {
                    return Err(ClosureError::Diverged {
                        replica: name.clone(),
                        replica_durable: durable,
                        local_tail: to,
                    });
                }
                if from == ShipFrom::ReplicaStatus {
                    durable_seen.push((name.clone(), durable));
                }
                c.mirror.rebase(durable);
            }
            let first = c.mirror.durable();
            match c.mirror.ship(to) {
                Ok(_) => {
                    shipped += to - first;
                    reached += 1;
                }
                Err(e) => {
                    tracing::warn!(replica = %name, error = %e, "takeover: shipping failed; going on with the other replicas");
                    missed.push((name.clone(), format!("shipping failed: {e}")));
                    link.conn = None;
                }
            }
        }
        Ok((shipped, reached))
    }

    /// One keep-alive pass, which never blocks: takes home what each
    /// link's keep-alive thread finished since the last pass, then hands
    /// every link at home to it again (a status round trip on a connected
    /// link, a reconnect of a dropped one). A replica that stops answering
    /// holds only its own thread, up to the control timeout. Returns how
    /// many links were up at their last keep-alive.
    pub fn keepalive(&mut self, opts: &ClosureOptions) -> usize {
        for i in 0..self.links.len() {
            let link = &mut self.links[i];
            let _ = link.collect(None);
            if link.is_away() {
                continue;
            }
            let job = match link.conn.take() {
                Some(c) => Job::Check(c),
                None => Job::Connect,
            };
            self.hand(i, job, &opts.connect);
        }
        self.links.iter().filter(|l| l.up).count()
    }

    /// Hands `job` to link `i`'s keep-alive thread (started on first use).
    fn hand(&mut self, i: usize, job: Job<T>, connect: &ConnectOptions) {
        let (transport, identity) = (Arc::clone(&self.transport), self.identity);
        let link = &mut self.links[i];
        let spec = link.spec.clone();
        link.send(job, || {
            Keeper::spawn(transport, spec, connect.clone(), identity)
        });
    }

    /// Before a takeover: waits for the links out with their keep-alive
    /// threads to come home, until all are, or `quorum` links are connected
    /// and [`STRAGGLER_GRACE`] has passed, or `bound`. A link still out is
    /// missed by the takeover. Returns how many are connected.
    pub fn recall(&mut self, quorum: usize, bound: Duration) -> usize {
        let start = Instant::now();
        let mut quorum_at: Option<Instant> = None;
        loop {
            for link in self.links.iter_mut().filter(|l| l.is_away()) {
                let _ = link.collect(Some(Duration::from_micros(200)));
            }
            let home = self.links.iter().filter(|l| l.conn.is_some()).count();
            if self.links.iter().all(|l| !l.is_away()) {
                return home;
            }
            let now = Instant::now();
            if home >= quorum {
                let at = *quorum_at.get_or_insert(now);
                if now.duration_since(at) >= STRAGGLER_GRACE {
                    return home;
                }
            }
            if now.duration_since(start) >= bound {
                return home;
            }
        }
    }

    /// Asks every connected replica to seal at `point`, each on its link's
    /// keep-alive thread (a replica that does not answer holds only its
    /// own), and waits until all answered, or `quorum` confirmed and
    /// [`STRAGGLER_GRACE`] passed, or `bound`. Returns how many confirmed,
    /// and each replica that did not, with why.
    pub fn seal(
        &mut self,
        point: SealPoint,
        quorum: usize,
        opts: &ClosureOptions,
        bound: Duration,
    ) -> (usize, Vec<(String, String)>) {
        let mut missed = Vec::new();
        let mut asked = Vec::new();
        for i in 0..self.links.len() {
            // A link is connected here only if both ships reached it.
            let Some(c) = self.links[i].conn.take() else {
                continue;
            };
            self.hand(i, Job::Seal(c, point), &opts.connect);
            let link = &self.links[i];
            if link.is_away() {
                asked.push(i);
            } else {
                missed.push((
                    link.spec.name.clone(),
                    "its keep-alive thread did not start".to_owned(),
                ));
            }
        }
        let start = Instant::now();
        let mut quorum_at: Option<Instant> = None;
        let mut sealed = 0;
        while !asked.is_empty() {
            asked.retain(|&i| {
                let link = &mut self.links[i];
                match link.collect(Some(Duration::from_micros(200))) {
                    Some(Ok(_)) => {
                        sealed += 1;
                        false
                    }
                    Some(Err(e)) => {
                        tracing::warn!(replica = %link.spec.name, error = %e, "takeover: the replica did not confirm the seal; going on with the others");
                        missed.push((link.spec.name.clone(), format!("did not confirm the seal: {e}")));
                        false
                    }
                    None => true,
                }
            });
            let now = Instant::now();
            if sealed >= quorum {
                let at = *quorum_at.get_or_insert(now);
                if now.duration_since(at) >= STRAGGLER_GRACE {
                    break;
                }
            }
            if now.duration_since(start) >= bound {
                break;
            }
        }
        for &i in &asked {
            let name = &self.links[i].spec.name;
            tracing::warn!(replica = %name, waited_ms = start.elapsed().as_millis(), "takeover: the replica has not answered the seal; going on without it");
            missed.push((
                name.clone(),
                format!(
                    "did not answer the seal within {} ms",
                    start.elapsed().as_millis()
                ),
            ));
        }
        (sealed, missed)
    }
}
