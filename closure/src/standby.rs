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
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric::replicated::{LogIdentity, RegionMemory, ReplicaSpec};
use fabric::transport::{Connected, ControlSession, Rdma, Transport};
use fabric::verbs::{Access, Context, MemoryRegion, ProtectionDomain};
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
    /// until a reconnect succeeds.
    pub conn: Option<Conn<T>>,
}

impl<T: Transport> std::fmt::Debug for StandbyLink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandbyLink")
            .field("spec", &self.spec)
            .field("conn", &self.conn)
            .finish()
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
    /// mapping, whose protection domain holds the device open).
    pub transport: T,
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
            tracing::info!(replica = %spec.name, durable = c.durable, epoch, "standby mirror connected");
            links.push(StandbyLink {
                spec: spec.clone(),
                conn: Some(c),
            });
        }
        let cold_connect = cold.elapsed();
        Ok(Standby {
            takeover_region: Some(rw),
            transport,
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
                missed.push((
                    name.clone(),
                    "not connected at takeover (its keep-alive failed)".into(),
                ));
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

    /// Exercises every control channel with a status request; a failed one
    /// is dropped and reconnected (bounded by the connect timeout). Returns
    /// how many links are up.
    pub fn keepalive(&mut self, opts: &ClosureOptions) -> usize {
        let mut up = 0;
        for link in &mut self.links {
            if let Some(c) = &mut link.conn {
                match c.control.status() {
                    Ok(st) => {
                        if st.sealed {
                            tracing::warn!(replica = %link.spec.name, epoch = st.epoch, "replica reports the stream sealed");
                        }
                        // What the host has made durable there: a takeover
                        // ships from here (the replica never loses it).
                        if st.durable_tail > c.mirror.durable() {
                            c.mirror.rebase(st.durable_tail);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(replica = %link.spec.name, error = %e, "keep-alive failed; reconnecting");
                        link.conn = None;
                    }
                }
            }
            if link.conn.is_none() {
                match self
                    .transport
                    .connect(&link.spec, &opts.connect, &self.identity)
                {
                    Ok(c) => link.conn = Some(c),
                    Err(e) => {
                        tracing::warn!(replica = %link.spec.name, error = %e, "standby mirror down: a takeover now would miss this replica");
                    }
                }
            }
            up += usize::from(link.conn.is_some());
        }
        up
    }
}
