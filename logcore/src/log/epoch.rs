//! Sealing an epoch and beginning the next.

use super::{lock, Log};
use crate::error::{EpochError, PersistError, SealError};
use crate::layout::{LogState, Lsn, RecordKind};

impl Log {
    /// Appends and persists a seal record for the current epoch and marks
    /// the log sealed: no more appends until [`Log::begin_epoch`].
    ///
    /// # Errors
    /// Append or persist failure.
    pub fn seal(&self) -> Result<Lsn, SealError> {
        let lsn = {
            let mut st = lock(&self.append);
            let a = self.append_locked(&mut st, &[(&[], self.salt)], RecordKind::Seal)?;
            st.sealed = true;
            a.lsn
        };
        self.persist_to(lsn)?;
        self.control()
            .set_state(LogState::Sealed, self.pid)
            .map_err(|source| PersistError::Io {
                offset: crate::layout::CONTROL_OFFSET as u64,
                len_bytes: 64,
                source,
            })?;
        Ok(lsn)
    }

    /// Moves to a newer epoch (after fencing by the replication layer) and
    /// re-opens a sealed log for appends.
    ///
    /// # Errors
    /// [`EpochError::NotNewer`] unless `epoch` is greater than the current.
    pub fn begin_epoch(&self, epoch: u32) -> Result<(), EpochError> {
        let mut st = lock(&self.append);
        if epoch <= st.epoch {
            return Err(EpochError::NotNewer {
                current: st.epoch,
                asked: epoch,
            });
        }
        let io = |source| {
            EpochError::Persist(PersistError::Io {
                offset: crate::layout::CONTROL_OFFSET as u64,
                len_bytes: 64,
                source,
            })
        };
        self.control().set_epoch(epoch).map_err(io)?;
        self.control()
            .set_state(LogState::Running, self.pid)
            .map_err(io)?;
        st.epoch = epoch;
        st.sealed = false;
        Ok(())
    }
}
