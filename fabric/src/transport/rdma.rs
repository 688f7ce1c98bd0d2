//! The production transport: RC queue pairs on a verbs device, TCP control
//! channels, the OS clock.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;

use super::{Connected, ControlSession, OsClock, Transport};
use crate::mirror::Mirror;
use crate::replicated::{ConnectOptions, LogIdentity, LogMemory, ReplicaError, ReplicaSpec};
use crate::verbs::{Access, MemoryRegion, PreparedQp, RdmaMemory, RingPlacement, VerbsPath};
use crate::wire::session::{self, SessionError};
use crate::wire::{handshake, Channel, Geometry, Hello, SealPoint, Status};

impl ControlSession for Channel<TcpStream> {
    fn status(&mut self) -> Result<Status, SessionError> {
        session::request_status(self)
    }
    fn seal(&mut self, point: SealPoint) -> Result<SealPoint, SessionError> {
        session::request_seal(self, point)
    }
}

/// What [`connect`] returns on verbs.
pub type RdmaConnected<M> = Connected<VerbsPath<M>, Channel<TcpStream>, OsClock>;

/// Real verbs and TCP for a writer whose log is registered as `source`.
#[derive(Debug)]
pub struct Rdma<M: RdmaMemory = LogMemory> {
    source: Arc<MemoryRegion<M>>,
}

impl<M: RdmaMemory> Rdma<M> {
    /// The transport of a writer shipping from `source` (the registered
    /// log region; its protection domain holds the device open).
    pub fn new(source: Arc<MemoryRegion<M>>) -> Self {
        Rdma { source }
    }

    /// The registered log region.
    pub fn source(&self) -> &Arc<MemoryRegion<M>> {
        &self.source
    }
}

impl<M: RdmaMemory + 'static> Transport for Rdma<M> {
    type Path = VerbsPath<M>;
    type Control = Channel<TcpStream>;
    type Clock = OsClock;

    fn clock(&self) -> OsClock {
        OsClock
    }

    fn connect(
        &self,
        spec: &ReplicaSpec,
        opts: &ConnectOptions,
        log: &LogIdentity,
    ) -> Result<RdmaConnected<M>, ReplicaError> {
        connect(spec, opts, &self.source, log)
    }
}

/// Connects one writer identity to one replica: TCP, the authenticated
/// handshake, a new RC queue pair on `source`'s protection domain, and a
/// [`Mirror`] from `source` (the registered log region) starting at the
/// replica's durable tail. The host's link manager and the closure
/// daemon's pre-established mirrors both connect through here.
///
/// # Errors
/// [`ReplicaError`] naming the replica: unreachable, refused, or a verb
/// failed.
pub fn connect<M: RdmaMemory>(
    spec: &ReplicaSpec,
    opts: &ConnectOptions,
    source: &Arc<MemoryRegion<M>>,
    log: &LogIdentity,
) -> Result<RdmaConnected<M>, ReplicaError> {
    let name = &spec.name;
    let io = |source| ReplicaError::Connect {
        replica: name.clone(),
        address: spec.address.clone(),
        source,
    };
    let addr = resolve(&spec.address).map_err(io)?;
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
    let region_id = {
        let (ep, r) = (established.replica_endpoint(), established.region());
        super::RegionId {
            gid: ep.gid,
            lid: ep.lid,
            rkey: r.rkey,
            addr: r.addr,
        }
    };
    let path = VerbsPath::new(
        qp,
        Arc::clone(source),
        established.region(),
        RingPlacement {
            local_offset: geo.ring_offset,
            remote_offset: geo.ring_offset,
            capacity: geo.capacity,
        },
        opts.persistence == crate::wire::PersistenceMode::Gpspm,
    )
    .map_err(verbs)?;
    let mirror = Mirror::new(
        name,
        path,
        OsClock,
        geo.capacity,
        durable,
        opts.persistence,
        opts.op_timeout,
    );
    tracing::debug!(replica = %name, %addr, writer = %opts.writer, durable, "mirror connected");
    Ok(Connected {
        mirror,
        control: established.into_channel(),
        durable,
        region: region_id,
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
