//! Progress on stderr for long runs. On a terminal one line is redrawn in
//! place (at most every 100 ms, so a fast loop does not flood the tty); on
//! a pipe or file only the milestones are printed, one plain line each, so
//! CI logs stay readable. `--quiet` turns both off. No dependency: a
//! carriage return and "erase line" (`ESC [ K`) are all a progress line needs.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often a terminal line may be redrawn.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct Progress {
    enabled: bool,
    tty: bool,
    last_draw: Option<Instant>,
    /// A line is on the terminal without its newline yet.
    open_line: bool,
}

impl Progress {
    /// `enabled` is `!--quiet`.
    pub(crate) fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            tty: std::io::stderr().is_terminal(),
            last_draw: None,
            open_line: false,
        }
    }

    /// A transient status ("8 B: 1200/2000"): redrawn in place on a
    /// terminal (rate-limited), not printed at all otherwise.
    pub(crate) fn update(&mut self, msg: impl FnOnce() -> String) {
        if !self.enabled || !self.tty {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < REDRAW_INTERVAL)
        {
            return;
        }
        self.last_draw = Some(now);
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[Ktg-bench: {}", msg());
        let _ = e.flush();
        self.open_line = true;
    }

    /// A milestone ("8 B done"): replaces the transient line on a terminal,
    /// a plain line otherwise.
    pub(crate) fn milestone(&mut self, msg: &str) {
        if !self.enabled {
            return;
        }
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K");
        }
        let _ = writeln!(e, "tg-bench: {msg}");
        self.open_line = false;
        self.last_draw = None;
    }

    /// Clears a transient line before the results go to stdout.
    pub(crate) fn finish(&mut self) {
        if self.open_line {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.open_line = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
