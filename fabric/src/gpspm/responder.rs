//! The replica side of `gpspm`: on a connected queue pair, receive a
//! [`PersistMsg`] request, make its range persistent, SEND the reply.
//!
//! The writer side (posting the request after the WRITEs and reaping the
//! reply) is in [`crate::mirror`]; the message layout is in [`super::msg`].

use std::fmt;
use std::time::Duration;

use super::msg::{PersistKind, PersistMsg, PERSIST_MSG_LEN};
use crate::verbs::{Access, AlignedBuf, MemoryRegion, Op, QueuePair, VerbsError};

/// The replica side of `gpspm`: answers persist requests on one queue pair.
pub struct GpspmResponder {
    qp: QueuePair,
    scratch: MemoryRegion<AlignedBuf>,
}

impl fmt::Debug for GpspmResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpspmResponder")
            .field("qp", &self.qp)
            .finish_non_exhaustive()
    }
}

impl GpspmResponder {
    /// Takes over a connected replica-side `qp` and posts its receives.
    /// Must run before the writer sends its first request.
    ///
    /// # Errors
    /// The failing verb.
    pub fn new(mut qp: QueuePair, pd: &crate::verbs::ProtectionDomain) -> Result<Self, VerbsError> {
        qp.enable_recv(4, PERSIST_MSG_LEN)?;
        let scratch =
            MemoryRegion::register(pd, AlignedBuf::new(PERSIST_MSG_LEN), Access::LOCAL_WRITE)?;
        Ok(GpspmResponder { qp, scratch })
    }

    /// The queue pair (e.g. to fence it with `set_error`).
    pub fn qp_mut(&mut self) -> &mut QueuePair {
        &mut self.qp
    }

    /// Waits up to `timeout` for one request, calls `persist(from, to)`, and
    /// replies. Returns the range, or `None` if no request came in time.
    ///
    /// # Errors
    /// The verbs error, a malformed request (as `InvalidRequest`), or the
    /// error `persist` returned (no reply is sent then: the writer times out
    /// rather than believe a range durable that is not).
    pub fn serve_one<E: fmt::Display>(
        &mut self,
        timeout: Duration,
        persist: impl FnOnce(u64, u64) -> Result<(), E>,
    ) -> Result<Option<(u64, u64)>, VerbsError> {
        let mut buf = [0u8; PERSIST_MSG_LEN];
        let len = match self.qp.recv(&mut buf, timeout) {
            Ok(len) => len,
            Err(VerbsError::Timeout { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let req = PersistMsg::decode(&buf[..len])
            .ok()
            .filter(|m| m.kind == PersistKind::Request)
            .ok_or_else(|| VerbsError::InvalidRequest {
                reason: format!("not a gpspm request: {:02x?}", &buf[..len]),
            })?;
        persist(req.from, req.to).map_err(|e| VerbsError::InvalidRequest {
            reason: format!("persisting [{}, {}) failed: {e}", req.from, req.to),
        })?;
        let reply = PersistMsg {
            kind: PersistKind::Reply,
            from: req.from,
            to: req.to,
        }
        .encode();
        self.scratch.write_at(0, &reply)?;
        let src = self.scratch.slice(0, PERSIST_MSG_LEN)?;
        self.qp.execute(&[Op::Send { src }], timeout)?;
        Ok(Some((req.from, req.to)))
    }
}
