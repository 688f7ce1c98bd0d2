//! Replay into a state machine, and the write-ahead commit API.

use crate::error::{CommitError, ReplayError};
use crate::layout::{Cursor, Lsn, RecordKind};
use crate::log::Log;

/// A deterministic state machine driven by the log.
///
/// The same method applies a record at commit time ([`Wal::commit`]) and
/// during recovery ([`Log::replay`]), so the state after a crash is the state
/// before it. It must therefore be deterministic and must accept, during
/// replay, every record it accepted at commit time.
pub trait Apply {
    /// Why a record was refused.
    type Error;

    /// Applies the data record `lsn`.
    ///
    /// # Errors
    /// The state machine's own refusal.
    fn apply(&mut self, lsn: Lsn, payload: &[u8]) -> Result<(), Self::Error>;
}

impl Log {
    /// Applies every persisted data record with LSN `>= from` (the first
    /// LSN the checkpointed state does not contain) to `state`, in LSN order.
    /// Returns the persisted tail: the LSN the next record will get.
    ///
    /// # Errors
    /// [`ReplayError::CheckpointReclaimed`] if `from` is behind the head,
    /// [`ReplayError::CheckpointAhead`] if past the tail, a scan error, or
    /// the state machine's refusal.
    pub fn replay<A: Apply>(
        &mut self,
        from: Lsn,
        state: &mut A,
    ) -> Result<Cursor, ReplayError<A::Error>> {
        let head = self.head();
        let (mut scan, persisted) = match self.scan_persisted() {
            Ok(x) => x,
            // The geometry was validated at open; reaching this would be a
            // bug, but report rather than panic.
            Err(_) => {
                return Err(ReplayError::CheckpointAhead {
                    checkpoint: from,
                    next_lsn: head.lsn,
                })
            }
        };
        if from < head.lsn {
            return Err(ReplayError::CheckpointReclaimed {
                checkpoint: from,
                head: head.lsn,
            });
        }
        if from > persisted.lsn {
            return Err(ReplayError::CheckpointAhead {
                checkpoint: from,
                next_lsn: persisted.lsn,
            });
        }
        while let Some(rec) = scan.next_record() {
            let rec = rec.map_err(ReplayError::Scan)?;
            if rec.pos >= persisted.pos {
                break;
            }
            if rec.kind == RecordKind::Data && rec.lsn >= from {
                state
                    .apply(rec.lsn, rec.payload)
                    .map_err(|source| ReplayError::Apply {
                        lsn: rec.lsn,
                        source,
                    })?;
            }
        }
        Ok(persisted)
    }
}

/// A log and the state it protects: the only way to change the state is
/// [`Wal::commit`], which logs, persists, and only then applies. Write-ahead
/// order cannot be got wrong because the state is never handed out mutably.
#[derive(Debug)]
pub struct Wal<S> {
    log: Log,
    state: S,
}

impl<S: Apply> Wal<S> {
    /// Recovers `state` (checkpointed up to, not including, `checkpoint`)
    /// by replaying the log, then wraps both.
    ///
    /// # Errors
    /// As [`Log::replay`].
    pub fn recover(
        mut log: Log,
        mut state: S,
        checkpoint: Lsn,
    ) -> Result<Self, ReplayError<S::Error>> {
        log.replay(checkpoint, &mut state)?;
        Ok(Self { log, state })
    }

    /// Logs `payload`, waits until it is durable, then applies it.
    ///
    /// # Errors
    /// [`CommitError::Append`] / [`CommitError::Persist`]: the state is
    /// unchanged. [`CommitError::Apply`]: the record is durable and replay
    /// will offer it again.
    pub fn commit(&mut self, payload: &[u8]) -> Result<Lsn, CommitError<S::Error>> {
        let lsn = self.log.append(payload).map_err(CommitError::Append)?;
        self.log.persist_to(lsn).map_err(CommitError::Persist)?;
        self.state
            .apply(lsn, payload)
            .map_err(|source| CommitError::Apply { lsn, source })?;
        Ok(lsn)
    }

    /// Read-only view of the state.
    #[must_use]
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The log (for heartbeat, head advance, positions).
    #[must_use]
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Takes the parts back (e.g. to checkpoint the state).
    #[must_use]
    pub fn into_parts(self) -> (Log, S) {
        (self.log, self.state)
    }
}
