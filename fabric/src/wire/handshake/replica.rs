//! The replica's side of the handshake: [`authenticate`] → [`Authenticated`]
//! → [`Connecting`] → [`Admitted`]. The rkey can only be sent from
//! [`Authenticated`], which exists only after the writer's proof verified.

use std::fmt;
use std::io::{Read, Write};

use super::{recv, send, HandshakeError, LABEL_ACCEPT, LABEL_CONNECT, LABEL_PROOF};
use crate::auth::{random_nonce, AllowList, PreSharedKey};
use crate::wire::channel::Channel;
use crate::wire::frame::MessageType;
use crate::wire::message::{
    accept_signed_bytes, endpoint_bytes, hello_body, Accept, Challenge, Geometry, Hello, Message,
    PersistenceMode, QpEndpoint, Reject, RejectCode, RemoteRegion, WriterName, NONCE_LEN,
};

/// What the replica admits: its own log identity and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaExpectation {
    /// The log UUID of the replica's region; `None` for a fresh region that
    /// takes the first admitted writer's UUID (the caller records it).
    pub log_uuid: Option<[u8; 16]>,
    /// The replica region's geometry.
    pub geometry: Geometry,
    /// The replica's persistence mode.
    pub persistence: PersistenceMode,
    /// The highest epoch admitted so far (from the epoch file); writers with a
    /// lower epoch are fenced.
    pub admitted_epoch: u64,
    /// Whether the stream is sealed at `admitted_epoch` (then only a newer
    /// epoch is admitted).
    pub sealed: bool,
}

/// Why the replica refused a writer. The `Display` text is what the replica
/// logs; the `Reject` sent names the field too, except for authentication
/// failures, whose wire reason does not say whether the name or the key was
/// wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The writer's name is not on the allow-list.
    UnknownWriter {
        /// The name in the `Hello`.
        writer: WriterName,
    },
    /// The writer's proof MAC does not verify under its key.
    BadProof {
        /// The writer.
        writer: WriterName,
    },
    /// The writer's `Connect` MAC does not verify.
    BadConnect {
        /// The writer.
        writer: WriterName,
    },
    /// The log UUIDs differ.
    UuidMismatch {
        /// The writer's.
        writer: [u8; 16],
        /// The replica's.
        replica: [u8; 16],
    },
    /// The geometries differ in `field`.
    GeometryMismatch {
        /// `"ring offset"`, `"ring capacity"` or `"region length"`.
        field: &'static str,
        /// The writer's value in bytes.
        writer: u64,
        /// The replica's value in bytes.
        replica: u64,
    },
    /// The persistence modes differ.
    PersistenceMismatch {
        /// The writer's.
        writer: PersistenceMode,
        /// The replica's.
        replica: PersistenceMode,
    },
    /// The writer's epoch is older than the admitted one: it is fenced.
    StaleEpoch {
        /// The writer's.
        writer: u64,
        /// The replica's admitted epoch.
        admitted: u64,
    },
    /// The stream is sealed at the writer's epoch.
    Sealed {
        /// The sealed epoch.
        epoch: u64,
    },
    /// The caller refused after authentication (e.g. QP creation failed).
    Caller {
        /// The code sent.
        code: RejectCode,
        /// The reason sent.
        message: String,
    },
}

fn uuid_hex(u: &[u8; 16]) -> String {
    u.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownWriter { writer } => {
                write!(f, "writer {writer:?} is not on the allow-list")
            }
            Refusal::BadProof { writer } => {
                write!(f, "writer {writer:?} failed the key proof (wrong key)")
            }
            Refusal::BadConnect { writer } => {
                write!(
                    f,
                    "writer {writer:?} sent a Connect whose MAC does not verify"
                )
            }
            Refusal::UuidMismatch { writer, replica } => write!(
                f,
                "log UUID mismatch: writer={} replica={}",
                uuid_hex(writer),
                uuid_hex(replica)
            ),
            Refusal::GeometryMismatch {
                field,
                writer,
                replica,
            } => {
                write!(
                    f,
                    "geometry mismatch: {field} writer={writer} replica={replica}"
                )
            }
            Refusal::PersistenceMismatch { writer, replica } => {
                write!(
                    f,
                    "persistence mode mismatch: writer={writer} replica={replica}"
                )
            }
            Refusal::StaleEpoch { writer, admitted } => write!(
                f,
                "stale epoch: writer={writer} replica admitted={admitted}; this writer is fenced"
            ),
            Refusal::Sealed { epoch } => write!(f, "stream is sealed at epoch {epoch}"),
            Refusal::Caller { code, message } => write!(f, "{code}: {message}"),
        }
    }
}

impl Refusal {
    /// The code a `Reject` for this refusal carries.
    #[must_use]
    pub fn code(&self) -> RejectCode {
        match self {
            Refusal::UnknownWriter { .. }
            | Refusal::BadProof { .. }
            | Refusal::BadConnect { .. } => RejectCode::AuthFailed,
            Refusal::UuidMismatch { .. } => RejectCode::UuidMismatch,
            Refusal::GeometryMismatch { .. } => RejectCode::GeometryMismatch,
            Refusal::PersistenceMismatch { .. } => RejectCode::PersistenceMismatch,
            Refusal::StaleEpoch { .. } => RejectCode::StaleEpoch,
            Refusal::Sealed { .. } => RejectCode::Sealed,
            Refusal::Caller { code, .. } => *code,
        }
    }

    fn wire_message(&self) -> String {
        match self {
            // Do not tell an unauthenticated peer whether the name exists.
            Refusal::UnknownWriter { .. } | Refusal::BadProof { .. } => {
                "writer not admitted: unknown name or wrong key".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// Tells the peer why (best effort) and returns the error.
fn refuse<S: Read + Write>(ch: &mut Channel<S>, refusal: Refusal) -> HandshakeError {
    let _ = ch.send(&Message::Reject(Reject::new(
        refusal.code(),
        refusal.wire_message(),
    )));
    HandshakeError::Refused(refusal)
}

/// Runs the replica's side up to authentication: receives the `Hello`,
/// sends a fresh challenge, verifies the writer's proof in constant time with
/// the key the allow-list pairs with its name, then checks the log UUID,
/// geometry, persistence mode and epoch against `expect`. Detailed mismatch
/// reasons are sent only to authenticated writers.
///
/// An unknown name still gets a challenge (and then the same rejection as a
/// wrong key), so names cannot be probed. Reads are bounded by the stream's
/// read timeout (set it before).
pub fn authenticate<S: Read + Write>(
    mut channel: Channel<S>,
    expect: &ReplicaExpectation,
    allow: &AllowList,
) -> Result<Authenticated<S>, HandshakeError> {
    let hello = recv(
        &mut channel,
        "waiting for Hello",
        MessageType::Hello,
        |m| match m {
            Message::Hello(h) => Some(h),
            _ => None,
        },
    )?;
    let server_nonce = random_nonce().map_err(HandshakeError::Nonce)?;
    send(
        &mut channel,
        "sending Challenge",
        &Message::Challenge(Challenge {
            nonce: server_nonce,
        }),
    )?;
    let proof = recv(
        &mut channel,
        "waiting for Proof",
        MessageType::Proof,
        |m| match m {
            Message::Proof(p) => Some(p),
            _ => None,
        },
    )?;
    let Some(key) = allow.key(&hello.writer) else {
        return Err(refuse(
            &mut channel,
            Refusal::UnknownWriter {
                writer: hello.writer,
            },
        ));
    };
    let hello_bytes = hello_body(&hello);
    if !key.verify(
        &[
            LABEL_PROOF,
            &server_nonce,
            &hello_bytes,
            &proof.client_nonce,
        ],
        &proof.mac,
    ) {
        return Err(refuse(
            &mut channel,
            Refusal::BadProof {
                writer: hello.writer,
            },
        ));
    }
    // Authenticated from here on.
    if let Some(err) = check_against(&hello, expect) {
        return Err(refuse(&mut channel, err));
    }
    Ok(Authenticated {
        channel,
        key: key.clone(),
        newer_epoch: hello.epoch > expect.admitted_epoch,
        hello,
        hello_bytes,
        server_nonce,
        client_nonce: proof.client_nonce,
    })
}

fn check_against(hello: &Hello, expect: &ReplicaExpectation) -> Option<Refusal> {
    if let Some(uuid) = expect.log_uuid {
        if uuid != hello.log_uuid {
            return Some(Refusal::UuidMismatch {
                writer: hello.log_uuid,
                replica: uuid,
            });
        }
    }
    let (w, r) = (hello.geometry, expect.geometry);
    for (field, writer, replica) in [
        ("ring offset", w.ring_offset_bytes, r.ring_offset_bytes),
        (
            "ring capacity",
            w.ring_capacity_bytes,
            r.ring_capacity_bytes,
        ),
        ("region length", w.region_len_bytes, r.region_len_bytes),
    ] {
        if writer != replica {
            return Some(Refusal::GeometryMismatch {
                field,
                writer,
                replica,
            });
        }
    }
    if hello.persistence != expect.persistence {
        return Some(Refusal::PersistenceMismatch {
            writer: hello.persistence,
            replica: expect.persistence,
        });
    }
    if hello.epoch < expect.admitted_epoch {
        return Some(Refusal::StaleEpoch {
            writer: hello.epoch,
            admitted: expect.admitted_epoch,
        });
    }
    if expect.sealed && hello.epoch == expect.admitted_epoch {
        return Some(Refusal::Sealed { epoch: hello.epoch });
    }
    None
}

/// The writer proved its key and its log matches. Before calling
/// [`accept`](Self::accept), the caller must, in this order: if
/// [`is_newer_epoch`](Self::is_newer_epoch), persist the new epoch and fence
/// every QP of older epochs (error state, access revoked); then create the
/// QP for this writer.
#[derive(Debug)]
pub struct Authenticated<S> {
    channel: Channel<S>,
    key: PreSharedKey,
    hello: Hello,
    hello_bytes: Vec<u8>,
    server_nonce: [u8; NONCE_LEN],
    client_nonce: [u8; NONCE_LEN],
    newer_epoch: bool,
}

impl<S: Read + Write> Authenticated<S> {
    /// The writer's `Hello` (name, UUID, epoch, geometry, mode).
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The authenticated writer's name.
    pub fn writer(&self) -> &WriterName {
        &self.hello.writer
    }

    /// Whether the writer's epoch is newer than the admitted one (so older
    /// writers must be fenced before [`accept`](Self::accept)).
    pub fn is_newer_epoch(&self) -> bool {
        self.newer_epoch
    }

    /// Sends the `Accept` (the replica's QP, the region with its rkey, the
    /// durable tail, the writer's epoch, and the replica's MAC), then waits
    /// for the writer's `Connect` and verifies its MAC.
    ///
    /// `region.len` must equal the geometry's region length.
    pub fn accept(
        mut self,
        endpoint: QpEndpoint,
        region: RemoteRegion,
        durable_tail: u64,
    ) -> Result<Connecting<S>, HandshakeError> {
        let invalid = |(field, reason)| HandshakeError::InvalidArgument { field, reason };
        endpoint.validate().map_err(invalid)?;
        region.validate().map_err(invalid)?;
        if region.len != self.hello.geometry.region_len_bytes {
            return Err(HandshakeError::InvalidArgument {
                field: "region.len",
                reason: format!(
                    "must equal the geometry's region length {}, got {}",
                    self.hello.geometry.region_len_bytes, region.len
                ),
            });
        }
        let mut accept = Accept {
            endpoint,
            region,
            durable_tail,
            epoch: self.hello.epoch,
            mac: [0; 32],
        };
        let signed = accept_signed_bytes(&accept);
        accept.mac = self.key.mac(&[
            LABEL_ACCEPT,
            &self.server_nonce,
            &self.client_nonce,
            &self.hello_bytes,
            &signed,
        ]);
        send(
            &mut self.channel,
            "sending Accept",
            &Message::Accept(accept),
        )?;
        let connect = recv(
            &mut self.channel,
            "waiting for Connect",
            MessageType::Connect,
            |m| match m {
                Message::Connect(c) => Some(c),
                _ => None,
            },
        )?;
        let ep = endpoint_bytes(&connect.endpoint);
        if !self.key.verify(
            &[
                LABEL_CONNECT,
                &self.server_nonce,
                &self.client_nonce,
                &self.hello_bytes,
                &signed,
                &ep,
            ],
            &connect.mac,
        ) {
            let writer = self.hello.writer.clone();
            return Err(refuse(&mut self.channel, Refusal::BadConnect { writer }));
        }
        Ok(Connecting {
            channel: self.channel,
            hello: self.hello,
            writer_endpoint: connect.endpoint,
        })
    }

    /// Refuses the writer with one of the handshake's own reasons, decided
    /// by the caller after authentication (e.g. its admission rules saw the
    /// epoch sealed, or the log named, since the expectation was taken).
    pub fn refuse(mut self, refusal: Refusal) -> HandshakeError {
        refuse(&mut self.channel, refusal)
    }

    /// Refuses the writer after authentication (e.g. the QP could not be
    /// created), sending `code` and `message`.
    pub fn reject(mut self, code: RejectCode, message: impl Into<String>) -> HandshakeError {
        refuse(
            &mut self.channel,
            Refusal::Caller {
                code,
                message: message.into(),
            },
        )
    }
}

/// The writer sent its QP endpoint. Connect the replica's QP to
/// [`writer_endpoint`](Self::writer_endpoint), then call [`ready`](Self::ready).
#[derive(Debug)]
pub struct Connecting<S> {
    channel: Channel<S>,
    hello: Hello,
    writer_endpoint: QpEndpoint,
}

impl<S: Read + Write> Connecting<S> {
    /// The writer's queue pair (authenticated by the `Connect` MAC).
    pub fn writer_endpoint(&self) -> QpEndpoint {
        self.writer_endpoint
    }

    /// The writer's `Hello`.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Tells the writer the replica's QP is connected: it may post.
    pub fn ready(mut self) -> Result<Admitted<S>, HandshakeError> {
        send(&mut self.channel, "sending Ready", &Message::Ready)?;
        Ok(Admitted {
            channel: self.channel,
            hello: self.hello,
            writer_endpoint: self.writer_endpoint,
        })
    }

    /// Refuses the writer (e.g. connecting the QP failed).
    pub fn reject(mut self, code: RejectCode, message: impl Into<String>) -> HandshakeError {
        refuse(
            &mut self.channel,
            Refusal::Caller {
                code,
                message: message.into(),
            },
        )
    }
}

/// An admitted writer. The channel stays open for `StatusRequest` and
/// `Seal`.
#[derive(Debug)]
pub struct Admitted<S> {
    channel: Channel<S>,
    hello: Hello,
    writer_endpoint: QpEndpoint,
}

impl<S> Admitted<S> {
    /// The writer's `Hello`.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The admitted epoch.
    pub fn epoch(&self) -> u64 {
        self.hello.epoch
    }

    /// The writer's queue pair.
    pub fn writer_endpoint(&self) -> QpEndpoint {
        self.writer_endpoint
    }

    /// The control channel, for post-handshake messages.
    pub fn channel_mut(&mut self) -> &mut Channel<S> {
        &mut self.channel
    }

    /// Unwraps the control channel.
    pub fn into_channel(self) -> Channel<S> {
        self.channel
    }
}
