//! One control session: authenticate and admit the writer, then answer its
//! requests (`StatusRequest`, `Seal`) in order until it closes the channel.

use std::net::TcpStream;

use fabric::wire::handshake;
use fabric::wire::{Channel, ChannelError, Message, Reject, RejectCode, Status};

use super::{lock, Inner};

impl Inner {
    pub(super) fn session(&self, stream: TcpStream) -> Result<(), String> {
        let t = Some(self.s.control_timeout);
        stream
            .set_read_timeout(t)
            .and_then(|()| stream.set_write_timeout(t))
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let expect = self.expectation(&lock(&self.admission));
        let auth = handshake::authenticate(Channel::new(stream), &expect, &self.s.allow)
            .map_err(|e| e.to_string())?;
        let (id, writer, mut channel) = self.admit(auth)?;
        // Admitted: serve requests until the writer closes the channel.
        let _ = channel.get_ref().set_read_timeout(None);
        let result = loop {
            match channel.recv() {
                Ok(Message::StatusRequest) => {
                    let st = self.status();
                    if let Err(e) = channel.send(&Message::Status(st)) {
                        break Err(e.to_string());
                    }
                }
                Ok(Message::Seal(point)) => {
                    let reply = self.seal(point);
                    if let Err(e) = channel.send(&reply) {
                        break Err(e.to_string());
                    }
                }
                Ok(other) => {
                    let _ = channel.send(&Message::Reject(Reject::new(
                        RejectCode::Malformed,
                        format!("unexpected {:?} after admission", other.message_type()),
                    )));
                    break Err(format!("unexpected message {:?}", other.message_type()));
                }
                Err(ChannelError::Wire(e)) => {
                    // A frame this build does not know (e.g. the retired
                    // TCP Persist, type 10): tell the peer why, best effort.
                    let _ = channel.send_unpoisoned(&Message::Reject(Reject::malformed(&e)));
                    break Err(format!("malformed control message: {e}"));
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        self.release(id);
        tracing::info!(writer = %writer, "writer disconnected");
        result
    }

    /// The replica's progress, as a `Status` reply.
    fn status(&self) -> Status {
        let r = lock(&self.admission).record();
        let p = self.replay.get();
        Status {
            durable_tail: p.map_or(0, |p| p.cursor.pos),
            applied_lsn: p.map_or(0, |p| p.digest.last_lsn),
            head: p.map_or(0, |p| p.head.pos),
            epoch: r.epoch,
            sealed: r.sealed,
        }
    }
}
