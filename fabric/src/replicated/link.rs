//! One replica as the writer sees it: connected (a [`Mirror`] and its control
//! channel) or down (with the last error and when to try again).

use std::fmt;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::PreSharedKey;
use crate::mirror::{Mirror, Probe, ReplicaTarget, RingGeometry};
use crate::verbs::{Access, MemoryRegion, PreparedQp, ProtectionDomain, QpConfig, RemoteRegion};
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
    pub(crate) writer: WriterName,
    pub(crate) pd: ProtectionDomain,
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
        match mirror.ship(ship_to) {
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
        let addr = resolve(&self.spec.address).map_err(|e| ReplicaError::Connect {
            replica: name.clone(),
            address: self.spec.address.clone(),
            source: e,
        })?;
        let io = |source| ReplicaError::Connect {
            replica: name.clone(),
            address: self.spec.address.clone(),
            source,
        };
        let stream = TcpStream::connect_timeout(&addr, env.connect_timeout).map_err(io)?;
        stream
            .set_read_timeout(Some(env.connect_timeout))
            .map_err(io)?;
        stream
            .set_write_timeout(Some(env.connect_timeout))
            .map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;

        let geo = log.geometry();
        let hello = Hello {
            writer: env.writer.clone(),
            log_uuid: log.superblock().uuid,
            epoch: u64::from(log.epoch()),
            geometry: Geometry {
                ring_offset_bytes: geo.ring_offset,
                ring_capacity_bytes: geo.capacity,
                region_len_bytes: log.region().len() as u64,
            },
            persistence: env.persistence,
        };
        let handshake = |source| ReplicaError::Handshake {
            replica: name.clone(),
            source,
        };
        let accepted =
            handshake::begin(Channel::new(stream), hello, &self.spec.key).map_err(handshake)?;
        let verbs = |source| ReplicaError::Verbs {
            replica: name.clone(),
            source,
        };
        let prepared = PreparedQp::new(&env.pd, env.qp).map_err(verbs)?;
        let established = accepted
            .connect(prepared.endpoint().map_err(verbs)?)
            .map_err(handshake)?;
        let qp = prepared
            .connect(established.replica_endpoint(), Access::LOCAL_WRITE)
            .map_err(verbs)?;

        let durable = established.durable_tail();
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
            Arc::clone(&env.source),
            target,
            env.persistence,
            env.op_timeout,
        )
        .map_err(ReplicaError::Mirror)?;
        tracing::info!(replica = %name, %addr, durable, epoch = log.epoch(), "replica connected");
        self.durable = durable;
        self.reconnects += 1;
        self.state = State::Up {
            mirror: Box::new(mirror),
            control: established.into_channel(),
        };
        Ok(())
    }
}

fn resolve(address: &str) -> std::io::Result<SocketAddr> {
    address.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{address} resolves to no address"),
        )
    })
}
