//! What a daemon tells systemd (`sd_notify(3)`'s protocol, written here:
//! one datagram to `$NOTIFY_SOCKET`): `READY=1` when it serves, `STATUS=`
//! lines, `STOPPING=1`, and `WATCHDOG=1` from the loop whose progress
//! matters. Outside systemd (`NOTIFY_SOCKET` unset) every call does
//! nothing.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// Where to send notifications: `$NOTIFY_SOCKET`, if set.
#[derive(Debug, Clone)]
pub struct Notifier {
    to: Option<String>,
}

impl Notifier {
    /// From the environment (`NOTIFY_SOCKET`).
    #[must_use]
    pub fn from_env() -> Self {
        Notifier {
            to: std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    /// Nowhere: every call does nothing.
    #[must_use]
    pub fn none() -> Self {
        Notifier { to: None }
    }

    /// To `socket` (a path, or `@name` for an abstract socket).
    #[must_use]
    pub fn to(socket: impl Into<String>) -> Self {
        Notifier {
            to: Some(socket.into()),
        }
    }

    /// Whether a service manager listens.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.to.is_some()
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines). Returns whether
    /// anything was sent.
    ///
    /// # Errors
    /// The socket's.
    pub fn send(&self, state: &str) -> io::Result<bool> {
        let Some(to) = &self.to else {
            return Ok(false);
        };
        let addr = if let Some(name) = to.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else {
            SocketAddr::from_pathname(to)?
        };
        let sock = UnixDatagram::unbound()?;
        let n = sock.send_to_addr(state.as_bytes(), &addr)?;
        if n != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("NOTIFY_SOCKET {to}: sent {n} of {} bytes", state.len()),
            ));
        }
        Ok(true)
    }

    /// [`send`](Self::send), a failure logged as a warning (a daemon does
    /// not stop because its service manager went away).
    pub fn tell(&self, state: &str) {
        if let Err(e) = self.send(state) {
            tracing::warn!(error = %e, state, "cannot notify the service manager (NOTIFY_SOCKET)");
        }
    }
}

/// systemd's watchdog (`WatchdogSec=`): [`tick`](Self::tick) from the loop
/// that must keep running sends `WATCHDOG=1` every half period.
#[derive(Debug)]
pub struct Watchdog {
    notifier: Notifier,
    every: Option<Duration>,
    next: Instant,
}

impl Watchdog {
    /// From the environment: `WATCHDOG_USEC` (and `WATCHDOG_PID`, if set,
    /// naming this process).
    #[must_use]
    pub fn from_env(notifier: Notifier) -> Self {
        let for_me = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|p| p.parse() == Ok(std::process::id()));
        let usec = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_me);
        Watchdog::every(notifier, usec.map(Duration::from_micros))
    }

    /// Pets `notifier` within `period` (half of it apart); `None`: never.
    #[must_use]
    pub fn every(notifier: Notifier, period: Option<Duration>) -> Self {
        let every = period.filter(|_| notifier.enabled()).map(|p| p / 2);
        Watchdog {
            notifier,
            every,
            next: Instant::now(),
        }
    }

    /// Sends `WATCHDOG=1` if half a period passed since the last one.
    pub fn tick(&mut self) {
        let Some(every) = self.every else {
            return;
        };
        let now = Instant::now();
        if now >= self.next {
            self.notifier.tell("WATCHDOG=1");
            self.next = now + every;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(name: &str) -> (std::path::PathBuf, UnixDatagram) {
        let dir = std::env::temp_dir().join(format!("tg-ops-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (path, sock)
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn a_notification_reaches_a_path_socket() {
        let (path, sock) = listener("path");
        let n = Notifier::to(path.to_str().unwrap());
        assert!(n.send("READY=1\nSTATUS=serving").unwrap());
        assert_eq!(recv(&sock), "READY=1\nSTATUS=serving");
    }

    #[test]
    fn a_notification_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("tg-ops-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(Notifier::to(format!("@{name}")).send("STOPPING=1").unwrap());
        assert_eq!(recv(&sock), "STOPPING=1");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_a_missing_one_is_an_error() {
        assert!(!Notifier { to: None }.send("READY=1").unwrap());
        let e = Notifier::to("/nonexistent/tg-notify").send("READY=1");
        assert!(e.is_err(), "a socket that is not there: {e:?}");
    }

    #[test]
    fn the_watchdog_pets_at_most_every_half_period() {
        let (path, sock) = listener("watchdog");
        let mut w = Watchdog::every(
            Notifier::to(path.to_str().unwrap()),
            Some(Duration::from_secs(3600)),
        );
        w.tick();
        w.tick();
        assert_eq!(recv(&sock), "WATCHDOG=1");
        sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        assert!(
            sock.recv(&mut buf).is_err(),
            "a second tick within half the period sends nothing"
        );
        let mut off = Watchdog::every(Notifier { to: None }, Some(Duration::from_millis(1)));
        off.tick();
    }
}
