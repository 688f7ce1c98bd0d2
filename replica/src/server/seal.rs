//! Sealing a stream: fence every queue pair of the epoch, wait until replay
//! holds the sealed tail, then record the seal in the epoch file (see
//! [`crate::fencing`]).

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use fabric::wire::{Message, Reject, RejectCode, SealPoint};

use super::{lock, Inner};
use crate::epoch;

impl Inner {
    /// Seals `point.epoch` once replay has reached `point.tail`.
    pub(super) fn seal(&self, point: SealPoint) -> Message {
        // Nothing of a sealed epoch may land after its seal: a hung host
        // that resumes still holds a connected QP and the rkey. Stop every
        // QP of this epoch (the sealing writer's too: it is done) and drop
        // the rkey before waiting; the next epoch's admission registers
        // anew.
        if lock(&self.admission).begin_seal(point.epoch).is_err() {
            return self.stale_seal(point);
        }
        let reply = self.seal_fenced(point);
        if !matches!(reply, Message::Sealed(_)) {
            lock(&self.admission).abandon_seal();
        }
        reply
    }

    fn stale_seal(&self, point: SealPoint) -> Message {
        Message::Reject(Reject::new(
            RejectCode::StaleEpoch,
            format!(
                "seal for epoch {} but epoch {} is admitted",
                point.epoch,
                lock(&self.admission).record().epoch
            ),
        ))
    }

    fn seal_fenced(&self, point: SealPoint) -> Message {
        // Half the control timeout: the sealer waits for the answer with
        // its own read timeout (the same config value on a closure's node),
        // so a refusal that says how far this replica got arrives before
        // the sealer gives up on the connection instead.
        let deadline = Instant::now() + self.s.control_timeout / 2;
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
        let Ok(record) = a.plan_seal(point.epoch) else {
            drop(a);
            return self.stale_seal(point);
        };
        if let Err(e) = epoch::store(&self.s.epoch_file, &record) {
            return Message::Reject(Reject::new(RejectCode::Internal, e.to_string()));
        }
        a.sealed(record);
        tracing::info!(epoch = point.epoch, tail = point.tail, "stream sealed");
        Message::Sealed(point)
    }
}
