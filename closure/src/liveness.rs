//! Judging the host: dead (its pidfd fires: immediate), hung (its heartbeat
//! word stops moving for longer than the bound), or gone cleanly (the log's
//! state says clean shutdown: no takeover).

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use logcore::{Control, LogState};

use crate::error::ClosureError;
use crate::sys;

/// What one look at the host found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Running and (if it beats) beating.
    Alive,
    /// The host process exited without closing its log.
    Died,
    /// The heartbeat has not moved for `stale_ms`.
    Hung {
        /// How long it has been still.
        stale_ms: u64,
    },
    /// The host closed its log cleanly: nothing to take over.
    CleanShutdown,
    /// The log is already sealed (another closure, or the host itself).
    Sealed,
    /// Another process now writes the log (the host was restarted under
    /// a new pid): this watch is stale and must re-arm.
    Replaced {
        /// The new writer's pid.
        pid: u32,
    },
}

/// Watches one host process through its pidfd and the log's control block.
#[derive(Debug)]
pub struct Watch {
    pid: u32,
    /// `None` when the host was already gone at arming.
    pidfd: Option<OwnedFd>,
    heartbeat_timeout: Duration,
    last_beat: u64,
    last_change: Instant,
    /// Whether the heartbeat moved while watched: a host that never beats
    /// is judged by its pid only.
    beats: bool,
}

impl Watch {
    /// Arms on the writer pid recorded in the control block.
    ///
    /// # Errors
    /// [`ClosureError::Pidfd`] when the pidfd cannot be opened (other than
    /// the host having exited already, which [`Watch::check`] reports as
    /// [`Verdict::Died`]).
    pub fn arm(control: &Control<'_>, heartbeat_timeout: Duration) -> Result<Self, ClosureError> {
        let pid = control.host_pid();
        let pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => None,
            Err(source) => return Err(ClosureError::Pidfd { pid, source }),
        };
        Ok(Watch {
            pid,
            pidfd,
            heartbeat_timeout,
            last_beat: control.heartbeat(),
            last_change: Instant::now(),
            beats: false,
        })
    }

    /// The watched pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the host has beaten while watched.
    #[must_use]
    pub fn beats(&self) -> bool {
        self.beats
    }

    /// Sends SIGKILL to the watched host (through its pidfd: never to a
    /// process that reused its pid) and waits up to `wait` for it to be
    /// gone. Returns whether it is.
    ///
    /// # Errors
    /// The signal could not be sent (other than the host being gone).
    pub fn kill(&self, wait: Duration) -> std::io::Result<bool> {
        let Some(fd) = &self.pidfd else {
            return Ok(true);
        };
        match sys::pidfd_kill(fd) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(true),
            r => r?,
        }
        sys::wait_readable(fd, u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
    }

    /// Waits up to `wait` for the host to die, then judges it. Death wakes
    /// the wait at once. Allocates nothing.
    ///
    /// # Errors
    /// [`ClosureError::Poll`].
    pub fn check(
        &mut self,
        control: &Control<'_>,
        wait: Duration,
    ) -> Result<Verdict, ClosureError> {
        let exited = match &self.pidfd {
            None => true,
            Some(fd) => sys::wait_readable(fd, u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
                .map_err(ClosureError::Poll)?,
        };
        // The state first: a host that shut down cleanly and then exited
        // is not a takeover.
        match control.state() {
            LogState::CleanShutdown => return Ok(Verdict::CleanShutdown),
            LogState::Sealed => return Ok(Verdict::Sealed),
            _ => {}
        }
        let pid = control.host_pid();
        if pid != self.pid {
            return Ok(Verdict::Replaced { pid });
        }
        if exited {
            return Ok(Verdict::Died);
        }
        let beat = control.heartbeat();
        let now = Instant::now();
        if beat != self.last_beat {
            self.last_beat = beat;
            self.last_change = now;
            self.beats = true;
            return Ok(Verdict::Alive);
        }
        let still = now.duration_since(self.last_change);
        if self.beats && still > self.heartbeat_timeout {
            return Ok(Verdict::Hung {
                stale_ms: u64::try_from(still.as_millis()).unwrap_or(u64::MAX),
            });
        }
        Ok(Verdict::Alive)
    }
}
