//! One replica as the writer sees it: connected (a [`Mirror`] and its control
//! channel) or down (with the last error and when to try again).

use std::fmt;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::PreSharedKey;
use crate::mirror::{Mirror, MirrorError, Probe, ReplicaTarget, RingGeometry};
use crate::verbs::{Access, MemoryRegion, PreparedQp, QpConfig, RdmaMemory, RemoteRegion};
use crate::wire::{handshake, session};
use crate::wire::{Channel, Geometry, Hello, PersistenceMode, WriterName};

use super::{LogMemory, ReplicaError};

/// How to reach and authenticate to one replica.
#[derive(Clone)]
pub struct ReplicaSpec {
    /// The replica's name (for errors and status).
    pub name: String,
    /// Its control address, `host:port`.
    pub address: String,
    /// The pre-shared key for this writer on that replica.
    pub key: PreSharedKey,
}

impl fmt::Debug for ReplicaSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaSpec")
            .field("name", &self.name)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// What every link of one writer shares.
pub(crate) struct LinkEnv {
    /// Several ships in flight per link (`apm` and `qp.ships-in-flight` > 1).
    pub(crate) pipelined: bool,
    pub(crate) writer: WriterName,
    pub(crate) source: Arc<MemoryRegion<LogMemory>>,
    pub(crate) qp: QpConfig,
    pub(crate) persistence: PersistenceMode,
    pub(crate) op_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
}

enum State {
    Up {
        mirror: Box<Mirror<LogMemory>>,
        // Kept open: status and seal messages; closing it tells the replica
        // this writer is gone.
        control: Channel<TcpStream>,
    },
    Down {
        error: Arc<ReplicaError>,
        retry_at: Instant,
        backoff: Duration,
    },
}

pub(crate) struct Link {
    pub(crate) spec: ReplicaSpec,
    state: State,
    /// Last position known durable on the replica (survives reconnects: the
    /// handshake reports it again).
    durable: u64,
    /// The replica's head at its last status: the ring may be reclaimed up
    /// to here (0 until a status arrives: nothing is reclaimed blindly).
    status_head: u64,
    pub(crate) reconnects: u64,
    /// Ships posted (WRITEs + flush lists): records made durable per ship
    /// is the group-commit factor.
    pub(crate) ships: u64,
}

impl Link {
    pub(crate) fn new(spec: ReplicaSpec) -> Self {
        let error = Arc::new(ReplicaError::NotConnected {
            replica: spec.name.clone(),
        });
        Link {
            spec,
            state: State::Down {
                error,
                retry_at: Instant::now(),
                backoff: Duration::ZERO,
            },
            durable: 0,
            status_head: 0,
            reconnects: 0,
            ships: 0,
        }
    }

    pub(crate) fn durable(&self) -> u64 {
        self.durable
    }

    /// How far this replica lets the writer reclaim: below both what it
    /// holds durably and what it still keeps intact.
    pub(crate) fn reclaim_floor(&self) -> u64 {
        self.durable.min(self.status_head)
    }

    /// Asks the replica for its status (one control-channel round trip) and
    /// records its head. A failure takes the link down.
    pub(crate) fn refresh_status(&mut self, env: &LinkEnv) {
        let State::Up { control, .. } = &mut self.state else {
            return;
        };
        match session::request_status(control) {
            Ok(st) => self.status_head = st.head,
            Err(e) => {
                let name = self.spec.name.clone();
                self.down(
                    env,
                    ReplicaError::Status {
                        replica: name,
                        source: e,
                    },
                );
            }
        }
    }

    /// Connects now if down (ignoring the back-off).
    pub(crate) fn up(&mut self, env: &LinkEnv) -> Result<(), Arc<ReplicaError>> {
        if self.is_up() {
            return Ok(());
        }
        self.connect(env).map_err(|e| self.down(env, e))
    }

    /// A raw round trip on this replica's queue pair (see [`Mirror::probe`]).
    pub(crate) fn probe(&mut self, kind: Probe, len: u32) -> Result<(), Arc<ReplicaError>> {
        match &mut self.state {
            State::Up { mirror, .. } => mirror
                .probe(kind, len)
                .map_err(|e| Arc::new(ReplicaError::Mirror(e))),
            State::Down { error, .. } => Err(Arc::clone(error)),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    pub(crate) fn last_error(&self) -> Option<Arc<ReplicaError>> {
        match &self.state {
            State::Down { error, .. } => Some(Arc::clone(error)),
            State::Up { .. } => None,
        }
    }

    /// Makes the replica durable up to at least `target` (shipping up to
    /// `ship_to >= target`, everything persisted so far: group commit).
    /// Connects first if the link is down and its back-off has passed.
    pub(crate) fn ensure(
        &mut self,
        env: &LinkEnv,
        target: u64,
        ship_to: u64,
    ) -> Result<u64, Arc<ReplicaError>> {
        if self.durable >= target {
            return Ok(self.durable);
        }
        if let State::Down {
            error, retry_at, ..
        } = &self.state
        {
            if Instant::now() < *retry_at {
                return Err(Arc::clone(error));
            }
            if let Err(e) = self.connect(env) {
                return Err(self.down(env, e));
            }
        }
        let State::Up { mirror, .. } = &mut self.state else {
            unreachable!("connected above")
        };
        self.ships += u64::from(ship_to > mirror.posted());
        let r = mirror.ship(ship_to);
        self.settle(env, r)
    }

    /// One step toward `target` durable without waiting (several ships in
    /// flight, `apm`): reaps the ships that completed, and if `target` is
    /// not posted yet, posts everything up to `ship_to` (unless the
    /// in-flight bound is reached). Returns the durable position, which
    /// may still be short of `target`: call again (or let another
    /// committer) until it is not. For `apm` links with several ships in
    /// flight (`LinkEnv::pipelined`). A link that is down connects and
    /// ships as [`Self::ensure`] does.
    pub(crate) fn advance(
        &mut self,
        env: &LinkEnv,
        target: u64,
        ship_to: u64,
    ) -> Result<u64, Arc<ReplicaError>> {
        if self.durable >= target {
            return Ok(self.durable);
        }
        debug_assert!(env.pipelined);
        if !self.is_up() {
            return self.ensure(env, target, ship_to);
        }
        let State::Up { mirror, .. } = &mut self.state else {
            unreachable!("up")
        };
        let mut r = mirror.reap();
        if let Ok(d) = r {
            if d < target && mirror.posted() < target && mirror.can_post() {
                self.ships += 1;
                r = mirror.post(ship_to).map(|()| mirror.durable());
            }
        }
        self.settle(env, r)
    }

    /// Records a ship's outcome: the new durable position, or the link
    /// goes down with the error.
    fn settle(
        &mut self,
        env: &LinkEnv,
        r: Result<u64, MirrorError>,
    ) -> Result<u64, Arc<ReplicaError>> {
        match r {
            Ok(d) => {
                self.durable = d;
                Ok(d)
            }
            Err(e) => Err(self.down(env, ReplicaError::Mirror(e))),
        }
    }

    fn down(&mut self, env: &LinkEnv, error: ReplicaError) -> Arc<ReplicaError> {
        let backoff = match &self.state {
            State::Down { backoff, .. } => (*backoff * 2).clamp(env.backoff_min, env.backoff_max),
            State::Up { .. } => env.backoff_min,
        };
        tracing::warn!(replica = %self.spec.name, error = %error, retry_in_ms = backoff.as_millis() as u64, "replica down");
        let error = Arc::new(error);
        self.state = State::Down {
            error: Arc::clone(&error),
            retry_at: Instant::now() + backoff,
            backoff,
        };
        error
    }

    fn connect(&mut self, env: &LinkEnv) -> Result<(), ReplicaError> {
        let name = &self.spec.name;
        let log = &env.source.memory().0;
        let geo = log.geometry();
        let identity = LogIdentity {
            uuid: log.superblock().uuid,
            epoch: log.epoch(),
            geometry: geo,
            region_len: log.region().len() as u64,
        };
        let opts = ConnectOptions {
            writer: env.writer.clone(),
            qp: env.qp,
            persistence: env.persistence,
            op_timeout: env.op_timeout,
            connect_timeout: env.connect_timeout,
        };
        let c = connect(&self.spec, &opts, &env.source, &identity)?;
        let durable = c.durable;
        let persisted = log.persisted().pos;
        let head = log.head().pos;
        if durable > persisted {
            return Err(ReplicaError::Diverged {
                replica: name.clone(),
                replica_durable: durable,
                local_persisted: persisted,
            });
        }
        if durable < head {
            return Err(ReplicaError::TooFarBehind {
                replica: name.clone(),
                replica_durable: durable,
                local_head: head,
            });
        }
        tracing::info!(replica = %name, durable, epoch = log.epoch(), "replica connected");
        self.durable = durable;
        self.reconnects += 1;
        self.state = State::Up {
            mirror: Box::new(c.mirror),
            control: c.control,
        };
        Ok(())
    }
}

/// Which log a writer identity ships, as it introduces itself to a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogIdentity {
    /// The log's UUID (superblock).
    pub uuid: [u8; 16],
    /// The epoch the writer writes in.
    pub epoch: u32,
    /// The ring's placement.
    pub geometry: logcore::Geometry,
    /// Length of the whole log region in bytes.
    pub region_len: u64,
}

/// How one writer identity connects (its name, QP parameters, bounds).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The writer name on the replica's allow-list.
    pub writer: WriterName,
    /// Queue-pair parameters.
    pub qp: QpConfig,
    /// Persistence mode (must match the replica's).
    pub persistence: PersistenceMode,
    /// Bound on one RDMA operation list of the mirror.
    pub op_timeout: Duration,
    /// Bound on TCP connect and each handshake message (also set as the
    /// control socket's read and write timeouts).
    pub connect_timeout: Duration,
}

/// A connected replica: the mirror on its own queue pair, the control
/// channel it was admitted on (kept open: status and seal requests), and
/// the replica's durable tail at admission.
pub struct Connected<M: RdmaMemory> {
    /// Ships ring ranges to the replica.
    pub mirror: Mirror<M>,
    /// The admitted control channel.
    pub control: Channel<TcpStream>,
    /// The replica's durable tail when it admitted us.
    pub durable: u64,
}

impl<M: RdmaMemory> fmt::Debug for Connected<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connected")
            .field("mirror", &self.mirror)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

/// Connects one writer identity to one replica: TCP, the authenticated
/// handshake, a new RC queue pair on `source`'s protection domain, and a
/// [`Mirror`] from `source` (the registered log region) starting at the
/// replica's durable tail. The host's links and the closure daemon's
/// pre-established mirrors both connect through here.
///
/// # Errors
/// [`ReplicaError`] naming the replica: unreachable, refused, or a verb
/// failed.
pub fn connect<M: RdmaMemory>(
    spec: &ReplicaSpec,
    opts: &ConnectOptions,
    source: &Arc<MemoryRegion<M>>,
    log: &LogIdentity,
) -> Result<Connected<M>, ReplicaError> {
    let name = &spec.name;
    let addr = resolve(&spec.address).map_err(|e| ReplicaError::Connect {
        replica: name.clone(),
        address: spec.address.clone(),
        source: e,
    })?;
    let io = |source| ReplicaError::Connect {
        replica: name.clone(),
        address: spec.address.clone(),
        source,
    };
    let stream = TcpStream::connect_timeout(&addr, opts.connect_timeout).map_err(io)?;
    stream
        .set_read_timeout(Some(opts.connect_timeout))
        .map_err(io)?;
    stream
        .set_write_timeout(Some(opts.connect_timeout))
        .map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;

    let geo = log.geometry;
    let hello = Hello {
        writer: opts.writer.clone(),
        log_uuid: log.uuid,
        epoch: u64::from(log.epoch),
        geometry: Geometry {
            ring_offset_bytes: geo.ring_offset,
            ring_capacity_bytes: geo.capacity,
            region_len_bytes: log.region_len,
        },
        persistence: opts.persistence,
    };
    let handshake = |source| ReplicaError::Handshake {
        replica: name.clone(),
        source,
    };
    let accepted = handshake::begin(Channel::new(stream), hello, &spec.key).map_err(handshake)?;
    let verbs = |source| ReplicaError::Verbs {
        replica: name.clone(),
        source,
    };
    let prepared = PreparedQp::new(source.pd(), opts.qp).map_err(verbs)?;
    let established = accepted
        .connect(prepared.endpoint().map_err(verbs)?)
        .map_err(handshake)?;
    let qp = prepared
        .connect(established.replica_endpoint(), Access::LOCAL_WRITE)
        .map_err(verbs)?;
    let durable = established.durable_tail();
    let remote: RemoteRegion = established.region();
    let target = ReplicaTarget {
        remote,
        ring: RingGeometry {
            local_offset: geo.ring_offset,
            remote_offset: geo.ring_offset,
            capacity: geo.capacity,
        },
        durable,
    };
    let mirror = Mirror::new(
        name,
        qp,
        Arc::clone(source),
        target,
        opts.persistence,
        opts.op_timeout,
    )
    .map_err(ReplicaError::Mirror)?;
    tracing::debug!(replica = %name, %addr, writer = %opts.writer, durable, "mirror connected");
    Ok(Connected {
        mirror,
        control: established.into_channel(),
        durable,
    })
}

fn resolve(address: &str) -> std::io::Result<SocketAddr> {
    address.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{address} resolves to no address"),
        )
    })
}
