//! What can fail: one replica ([`ReplicaError`]), opening the log
//! ([`OpenError`]), a commit ([`CommitError`]).

use std::fmt;
use std::sync::Arc;

use logcore::PersistError;

use crate::mirror::MirrorError;
use crate::verbs::VerbsError;
use crate::wire::HandshakeError;

/// A replica-level failure, naming the replica.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplicaError {
    /// Not connected yet.
    NotConnected {
        /// Replica.
        replica: String,
    },
    /// This entry reaches the same `tg-replica` (the same region
    /// registration on the same port) as another connected entry.
    SameReplica {
        /// This replica entry.
        replica: String,
        /// The entry connected to it already.
        other: String,
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
    /// Connected, but its ships did not make the position durable within
    /// the commit timeout (a slow or overloaded link).
    Slow {
        /// Replica.
        replica: String,
        /// Its durable position then.
        durable: u64,
        /// The position the commit waited for.
        target: u64,
    },
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
            ReplicaError::SameReplica { replica, other } => write!(
                f,
                "replica {replica}: reaches the same tg-replica as replica {other} (one region \
                 registration on one port): its acknowledgement would count twice toward the \
                 acks; give each entry in `replicas` its own tg-replica"
            ),
            ReplicaError::Connect { replica, address, source } => {
                write!(f, "replica {replica}: cannot reach {address}: {source} (is tg-replica running there?)")
            }
            ReplicaError::Handshake { replica, source } => write!(f, "replica {replica}: handshake: {source}"),
            ReplicaError::Verbs { replica, source } => write!(f, "replica {replica}: {source}"),
            ReplicaError::Mirror(e) => write!(f, "{e}"),
            ReplicaError::Slow { replica, durable, target } => write!(
                f,
                "replica {replica}: connected but durable only up to {durable}, short of {target}: \
                 the link or the replica is overloaded (check `tg-replica status` and the link)"
            ),
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
    /// A background thread (link manager, shipper, heartbeat) could not be
    /// started.
    Thread {
        /// The thread's name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics listener (`metrics-listen`) could not be bound.
    Metrics(std::io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Invalid { field, reason } => {
                write!(f, "replication option {field}: {reason}")
            }
            OpenError::Verbs(e) => write!(f, "{e}"),
            OpenError::Thread { name, source } => write!(
                f,
                "cannot start thread {name}: {source} (check the process's thread limit, ulimit -u)"
            ),
            OpenError::NewEpoch(e) => write!(
                f,
                "the log is sealed and a new epoch could not be started: {e}"
            ),
            OpenError::Metrics(e) => write!(
                f,
                "metrics-listen: {e} (choose a free port, or remove metrics-listen)"
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
