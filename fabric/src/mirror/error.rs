//! [`MirrorError`]: what can go wrong shipping to one replica.

use std::fmt;

use crate::gpspm::{PersistMsg, PersistMsgError};
use crate::verbs::VerbsError;

/// An error of one mirror, naming its replica.
#[derive(Debug)]
#[non_exhaustive]
pub enum MirrorError {
    /// The verbs layer failed (QP error, timeout, ...): the mirror must be
    /// reconnected.
    Verbs {
        /// Replica name.
        replica: String,
        /// What failed.
        source: VerbsError,
    },
    /// The range to ship is longer than the ring: data the replica lacks was
    /// already overwritten locally (a reclamation bug, or a replica that was
    /// counted durable when it was not).
    RangeTooLarge {
        /// Replica name.
        replica: String,
        /// Range start.
        from: u64,
        /// Range end.
        to: u64,
        /// Ring capacity.
        capacity: u64,
    },
    /// The replica answered a gpspm persist request for another range or
    /// with a request: a confused or hostile peer.
    UnexpectedReply {
        /// Replica name.
        replica: String,
        /// The range asked for.
        expected: (u64, u64),
        /// What came back.
        got: PersistMsg,
    },
    /// The replica's answer to a gpspm persist request did not decode.
    MalformedReply {
        /// Replica name.
        replica: String,
        /// Why.
        source: PersistMsgError,
    },
}

impl fmt::Display for MirrorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorError::Verbs { replica, source } => write!(f, "replica {replica}: {source}"),
            MirrorError::RangeTooLarge { replica, from, to, capacity } => write!(
                f,
                "replica {replica}: range [{from}, {to}) is longer than the ring ({capacity} bytes); \
                 the replica must be re-seeded from a full copy"
            ),
            MirrorError::UnexpectedReply { replica, expected: (from, to), got } => write!(
                f,
                "replica {replica}: gpspm reply for [{from}, {to}) expected, got {got:?}: \
                 is the peer a tg-replica of the same version?"
            ),
            MirrorError::MalformedReply { replica, source } => {
                write!(f, "replica {replica}: malformed gpspm reply: {source}")
            }
        }
    }
}

impl std::error::Error for MirrorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MirrorError::Verbs { source, .. } => Some(source),
            MirrorError::MalformedReply { source, .. } => Some(source),
            MirrorError::RangeTooLarge { .. } | MirrorError::UnexpectedReply { .. } => None,
        }
    }
}
