//! A control connection on which every message the peer sends must arrive
//! whole within a bound, however it paces its bytes.
//!
//! A socket read timeout bounds each `read()`: a peer that sends one byte
//! just inside it keeps a session (its slot and thread) for as long as it
//! likes. [`Paced`] turns the bound into a deadline per message: it starts
//! at the first read after the replica last wrote (the control protocol
//! alternates: the replica waits for a message, answers it, waits for the
//! next), and each read waits only for what is left of it. Writes keep the
//! socket's own write timeout.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A `TcpStream` whose peer has `within` to deliver each message.
#[derive(Debug)]
pub(super) struct Paced {
    stream: TcpStream,
    within: Duration,
    /// Set while waiting for a message: when it must have arrived.
    until: Option<Instant>,
}

impl Paced {
    /// Wraps `stream` (its write timeout already set).
    pub(super) fn new(stream: TcpStream, within: Duration) -> Self {
        Paced {
            stream,
            within,
            until: None,
        }
    }

    /// From the next message on, the peer has `within` for each.
    pub(super) fn set_within(&mut self, within: Duration) {
        self.within = within;
        self.until = None;
    }
}

impl Read for Paced {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let within = self.within;
        let until = *self.until.get_or_insert_with(|| Instant::now() + within);
        let late = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer did not send a whole message within {within:?}"),
            )
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(late());
        }
        self.stream.set_read_timeout(Some(left))?;
        match self.stream.read(buf) {
            // The socket's timeout was what was left of the deadline: it
            // passed. (Linux reports an expired read timeout as WouldBlock,
            // other systems as TimedOut; callers see one kind and a reason.)
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(late())
            }
            r => r,
        }
    }
}

impl Write for Paced {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // An answer: the next read waits for a new message.
        self.until = None;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (s, c)
    }

    #[test]
    fn a_slow_drip_is_cut_at_the_message_deadline_not_per_byte() {
        let (s, mut c) = pair();
        let within = Duration::from_millis(400);
        let mut p = Paced::new(s, within);
        // One byte every 100 ms: each read() waits far less than the bound.
        let dripper = std::thread::spawn(move || {
            for _ in 0..40 {
                if c.write_all(&[0x54]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let t = Instant::now();
        let mut buf = [0u8; 64];
        let e = p.read_exact(&mut buf).unwrap_err();
        let took = t.elapsed();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(
            took < Duration::from_millis(1500),
            "cut after {took:?}; a per-read timeout would have let the drip run ~4 s"
        );
        assert!(took >= within, "cut early: {took:?}");
        drop(p);
        dripper.join().unwrap();
    }

    #[test]
    fn each_answer_gives_the_peer_a_new_bound() {
        let (s, mut c) = pair();
        let mut p = Paced::new(s, Duration::from_millis(300));
        let peer = std::thread::spawn(move || {
            let mut got = [0u8; 1];
            for i in 0..4u8 {
                // Each message arrives 200 ms after the replica's answer:
                // within the bound, though the four take 800 ms together.
                std::thread::sleep(Duration::from_millis(200));
                c.write_all(&[i, i]).unwrap();
                c.read_exact(&mut got).unwrap();
                assert_eq!(got[0], i);
            }
        });
        for i in 0..4u8 {
            let mut m = [0u8; 2];
            p.read_exact(&mut m).unwrap();
            assert_eq!(m, [i, i]);
            p.write_all(&[i]).unwrap();
        }
        peer.join().unwrap();
    }

    #[test]
    fn a_new_bound_applies_from_the_next_message() {
        let (s, mut c) = pair();
        let mut p = Paced::new(s, Duration::from_millis(100));
        p.set_within(Duration::from_secs(5));
        let peer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            c.write_all(b"late but in time").unwrap();
        });
        let mut m = [0u8; 16];
        p.read_exact(&mut m).unwrap();
        assert_eq!(&m, b"late but in time");
        peer.join().unwrap();
    }
}
