//! One control session: authenticate and admit the writer, then answer its
//! requests (`StatusRequest`, `Seal`) in order until it closes the channel.
//!
//! Each message of the handshake must arrive within the control timeout,
//! and an admitted writer must send a request at least every
//! `idle-session-ms` (a live writer asks for status every second; a writer
//! whose host lost power never closes its connection): otherwise its
//! session ends and its queue pair is dropped.

use std::net::TcpStream;

use fabric::wire::handshake::{self, HandshakeError};
use fabric::wire::{Channel, ChannelError, Message, Reject, RejectCode, Status};

use super::paced::Paced;
use super::{lock, Inner, Open};

/// How a control connection ended, if not cleanly.
#[derive(Debug)]
pub(super) enum Ended {
    /// Before admission: any peer can cause it (its log line is throttled).
    Handshake {
        /// The `tg_replica_refusals_total` reason.
        reason: &'static str,
        /// What happened.
        message: String,
    },
    /// An admitted writer's session.
    Session(String),
}

impl Inner {
    /// Serves one control connection; `hid` is its entry among the
    /// handshakes in progress, left once it is admitted or refused.
    pub(super) fn session(&self, stream: TcpStream, hid: u64) -> Result<(), Ended> {
        let closer = stream.try_clone();
        let admitted = self.handshake(stream);
        lock(&self.pending).leave(hid);
        let (id, writer, mut channel) = admitted.map_err(|e| Ended::Handshake {
            reason: refusal_reason(&e),
            message: e.to_string(),
        })?;
        // What a shutdown or a reload closes this session with.
        match closer {
            Ok(c) => lock(&self.open).push(Open {
                id,
                writer: writer.clone(),
                closer: c,
            }),
            Err(e) => {
                tracing::warn!(writer = %writer, error = %e, "cannot hold the session's socket: a shutdown waits for its next request")
            }
        }
        // Admitted: serve requests until the writer closes the channel.
        channel.get_mut().set_within(self.s.idle_session);
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
                Err(ChannelError::TimedOut { .. }) => {
                    break Err(format!(
                        "writer {writer} sent no request for {:?} (a live writer asks for \
                         status every second; its host may have lost power): ending its \
                         session and dropping its queue pair (replica.idle-session-ms)",
                        self.s.idle_session
                    ));
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        lock(&self.open).retain(|o| o.id != id);
        self.release(id);
        tracing::info!(writer = %writer, "writer disconnected");
        result.map_err(Ended::Session)
    }

    /// Authenticates and admits the peer: the admitted writer's id and name
    /// and its channel, or why not.
    fn handshake(
        &self,
        stream: TcpStream,
    ) -> Result<(u64, String, Channel<Paced>), HandshakeError> {
        // (Paced bounds every read and write by its deadline.)
        let _ = stream.set_write_timeout(Some(self.s.control_timeout));
        let _ = stream.set_nodelay(true);
        let paced = Paced::new(stream, self.s.control_timeout);
        let expect = self.expectation(&lock(&self.admission));
        let allow = self.allow();
        let auth = handshake::authenticate(Channel::new(paced), &expect, &allow)?;
        self.admit(auth)
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

/// The `reason` label of `tg_replica_refusals_total` for a handshake that
/// did not admit its peer.
pub(super) fn refusal_reason(e: &HandshakeError) -> &'static str {
    match e {
        HandshakeError::Refused(r) => match r.code() {
            RejectCode::AuthFailed => "auth_failed",
            RejectCode::UuidMismatch => "uuid_mismatch",
            RejectCode::GeometryMismatch => "geometry_mismatch",
            RejectCode::PersistenceMismatch => "persistence_mismatch",
            RejectCode::StaleEpoch => "stale_epoch",
            RejectCode::Sealed => "sealed",
            RejectCode::Internal => "internal",
            RejectCode::UnsupportedVersion => "unsupported_version",
            RejectCode::Malformed | RejectCode::UnexpectedMessage => "malformed",
            _ => "other",
        },
        HandshakeError::Channel { .. } => "channel",
        HandshakeError::Unexpected { .. } => "malformed",
        _ => "other",
    }
}
