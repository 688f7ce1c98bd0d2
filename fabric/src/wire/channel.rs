//! Framed messages over any byte stream.
//!
//! A [`Channel`] owns a stream (a `TcpStream` in production, a `UnixStream`
//! in tests) and a bounded buffer. It adds no timeouts of its own: **every
//! blocking read and write is bounded by the timeouts the caller sets on the
//! stream** (`TcpStream::set_read_timeout` / `set_write_timeout`) before
//! handing it over. A stream without a read timeout lets a silent peer stall
//! the handshake forever; the replica daemon and the writer must set one
//! (the config's `control-timeout-ms`). A timed-out read is reported as
//! [`ChannelError::TimedOut`].
//!
//! After any receive error the stream may be mid-frame, so the channel is
//! poisoned: every later call fails with [`ChannelError::Poisoned`] and the
//! caller must drop the connection.

use std::fmt;
use std::io::{self, Read, Write};

use super::error::WireError;
use super::frame::{FrameHeader, HEADER_LEN, MAX_BODY_LEN};
use super::message::Message;

/// Why a message could not be sent or received.
#[derive(Debug)]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer closed the connection (end of stream before a whole frame).
    Closed {
        /// Bytes of the frame received before the end.
        got: usize,
    },
    /// A read or write hit the stream's timeout.
    TimedOut {
        /// `"send"` or `"receive"`.
        op: &'static str,
    },
    /// Any other I/O error.
    Io {
        /// `"send"` or `"receive"`.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The bytes received are not a valid frame.
    Wire(WireError),
    /// An earlier receive failed mid-frame; the connection must be dropped.
    Poisoned,
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Closed { got: 0 } => f.write_str("peer closed the control connection"),
            ChannelError::Closed { got } => {
                write!(
                    f,
                    "peer closed the control connection mid-frame after {got} bytes"
                )
            }
            ChannelError::TimedOut { op } => write!(
                f,
                "control connection {op} timed out (the socket's timeout; see control-timeout-ms)"
            ),
            ChannelError::Io { op, source } => {
                write!(f, "control connection {op} failed: {source}")
            }
            ChannelError::Wire(e) => write!(f, "malformed control message: {e}"),
            ChannelError::Poisoned => {
                f.write_str("control connection unusable after an earlier receive error")
            }
        }
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChannelError::Io { source, .. } => Some(source),
            ChannelError::Wire(e) => Some(e),
            _ => None,
        }
    }
}

impl From<WireError> for ChannelError {
    fn from(e: WireError) -> Self {
        ChannelError::Wire(e)
    }
}

fn io_error(op: &'static str, e: io::Error) -> ChannelError {
    match e.kind() {
        // A socket read timeout surfaces as WouldBlock on Linux, TimedOut elsewhere.
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ChannelError::TimedOut { op },
        _ => ChannelError::Io { op, source: e },
    }
}

/// A control connection: framed, validated messages over a byte stream.
pub struct Channel<S> {
    stream: S,
    buf: Vec<u8>,
    poisoned: bool,
}

impl<S: fmt::Debug> fmt::Debug for Channel<S> {
    // The buffer is left out: it may hold the last Accept (with the rkey).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("stream", &self.stream)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> Channel<S> {
    /// Wraps a connected stream whose read/write timeouts are already set.
    pub fn new(stream: S) -> Self {
        Channel {
            stream,
            buf: Vec::with_capacity(HEADER_LEN + 256),
            poisoned: false,
        }
    }

    /// Sends one message (a single `write_all` of the whole frame, then flush).
    pub fn send(&mut self, message: &Message) -> Result<(), ChannelError> {
        if self.poisoned {
            return Err(ChannelError::Poisoned);
        }
        self.buf.clear();
        message.encode(&mut self.buf);
        let r = self
            .stream
            .write_all(&self.buf)
            .and_then(|()| self.stream.flush());
        r.map_err(|e| {
            self.poisoned = true;
            io_error("send", e)
        })
    }

    /// Sends even if an earlier receive poisoned the channel: the write side
    /// is still in frame, and a peer may want to read why we give up (e.g. a
    /// [`Reject::malformed`](super::Reject::malformed) for a frame that did
    /// not decode). The channel stays poisoned for receiving.
    pub fn send_unpoisoned(&mut self, message: &Message) -> Result<(), ChannelError> {
        let was = std::mem::replace(&mut self.poisoned, false);
        let r = self.send(message);
        self.poisoned |= was;
        r
    }

    /// Receives one message. Reads the 16-byte header, validates it (so a
    /// body longer than [`MAX_BODY_LEN`] is refused before it is read), then
    /// reads exactly the body and decodes it.
    pub fn recv(&mut self) -> Result<Message, ChannelError> {
        if self.poisoned {
            return Err(ChannelError::Poisoned);
        }
        let r = self.recv_inner();
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    fn recv_inner(&mut self) -> Result<Message, ChannelError> {
        let mut header = [0u8; HEADER_LEN];
        read_full(&mut self.stream, &mut header, 0)?;
        let h = FrameHeader::decode(&header)?;
        debug_assert!(h.body_len <= MAX_BODY_LEN);
        let body_len = h.body_len as usize;
        self.buf.clear();
        self.buf.resize(body_len, 0);
        read_full(&mut self.stream, &mut self.buf, HEADER_LEN)?;
        Ok(Message::decode_body(h.message, &self.buf)?)
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably (e.g. to change its timeouts).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// `read_exact` that tells a clean close from a timeout and counts bytes.
fn read_full<S: Read>(stream: &mut S, buf: &mut [u8], already: usize) -> Result<(), ChannelError> {
    let mut filled = 0;
    // Bounded: each iteration fills at least one byte or returns, except when
    // a signal interrupted the read (retried, as `read_exact` does).
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(ChannelError::Closed {
                    got: already + filled,
                })
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error("receive", e)),
        }
    }
    Ok(())
}
