//! The signals a daemon answers, as flags its loops poll (nothing runs in
//! a signal handler but an atomic store):
//!
//! - SIGTERM and SIGINT ask it to stop cleanly ([`Signals::stopping`]); a
//!   second one while it stops ends the process at once (exit 130), for an
//!   operator whose clean stop hangs.
//! - SIGHUP asks it to reread what it can without a restart
//!   ([`Signals::take_reload`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Exit status of a process ended by a second SIGTERM or SIGINT.
pub const FORCED_EXIT: i32 = 130;

/// The daemon's signal flags.
#[derive(Debug, Clone)]
pub struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers (SIGHUP's only if `reload`; a daemon with
    /// nothing to reread keeps SIGHUP's default, which ends it).
    ///
    /// # Errors
    /// The OS error from `sigaction`.
    pub fn install(reload: bool) -> io::Result<Self> {
        let s = Signals::unhooked();
        for sig in [SIGTERM, SIGINT] {
            // Registered first: on a second signal the flag is already set,
            // so this exits before the flag handler runs again.
            signal_hook::flag::register_conditional_shutdown(
                sig,
                FORCED_EXIT,
                Arc::clone(&s.stop),
            )?;
            signal_hook::flag::register(sig, Arc::clone(&s.stop))?;
        }
        if reload {
            signal_hook::flag::register(SIGHUP, Arc::clone(&s.reload))?;
        }
        Ok(s)
    }

    /// Flags no signal sets (for embedding and tests: call
    /// [`request_stop`](Self::request_stop) and
    /// [`request_reload`](Self::request_reload) instead).
    #[must_use]
    pub fn unhooked() -> Self {
        Signals {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether a stop was asked for.
    #[must_use]
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether a reload was asked for since the last call (clears it).
    #[must_use]
    pub fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::Relaxed)
    }

    /// Asks for a stop, as SIGTERM does.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Asks for a reload, as SIGHUP does.
    pub fn request_reload(&self) {
        self.reload.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_set_the_flags_and_a_reload_is_taken_once() {
        let s = Signals::unhooked();
        assert!(!s.stopping());
        assert!(!s.take_reload());
        s.request_reload();
        assert!(s.take_reload());
        assert!(!s.take_reload(), "a reload is taken once");
        s.clone().request_stop();
        assert!(s.stopping(), "clones share the flags");
    }

    #[test]
    fn real_sighup_and_sigterm_set_the_flags() {
        let s = Signals::install(true).unwrap();
        assert!(!s.take_reload());
        signal_hook::low_level::raise(SIGHUP).unwrap();
        assert!(s.take_reload(), "SIGHUP asks for a reload");
        assert!(!s.stopping(), "SIGHUP is not a stop");
        signal_hook::low_level::raise(SIGTERM).unwrap();
        assert!(s.stopping(), "SIGTERM asks for a stop");
        // (A second SIGTERM would end this test process: not raised.)
    }
}
