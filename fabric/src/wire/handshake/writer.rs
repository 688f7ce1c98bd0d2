//! The writer's side of the handshake: [`begin`] → [`Accepted`] → [`Established`].

use std::io::{Read, Write};

use super::{recv, send, HandshakeError, LABEL_ACCEPT, LABEL_CONNECT, LABEL_PROOF};
use crate::auth::{random_nonce, PreSharedKey};
use crate::wire::channel::Channel;
use crate::wire::frame::MessageType;
use crate::wire::message::{
    accept_signed_bytes, endpoint_bytes, hello_body, Accept, Connect, Hello, Message, Proof,
    QpEndpoint, Reject, RejectCode, RemoteRegion, NONCE_LEN,
};

/// Runs the writer's side up to the replica's `Accept`: sends `hello`,
/// answers the challenge with a MAC under `key`, receives the `Accept` and
/// checks it (the replica's MAC, its epoch and region length against the
/// `Hello`). The caller then connects its QP to
/// [`Accepted::replica_endpoint`] and calls [`Accepted::connect`].
///
/// Reads are bounded by the stream's read timeout (set it before).
pub fn begin<S: Read + Write>(
    mut channel: Channel<S>,
    hello: Hello,
    key: &PreSharedKey,
) -> Result<Accepted<S>, HandshakeError> {
    hello
        .geometry
        .validate()
        .map_err(|(field, reason)| HandshakeError::InvalidArgument { field, reason })?;
    if hello.log_uuid == [0; 16] {
        return Err(HandshakeError::InvalidArgument {
            field: "log_uuid",
            reason: "must not be all zero".to_owned(),
        });
    }
    let client_nonce = random_nonce().map_err(HandshakeError::Nonce)?;
    let hello_bytes = hello_body(&hello);

    send(
        &mut channel,
        "sending Hello",
        &Message::Hello(hello.clone()),
    )?;
    let challenge = recv(
        &mut channel,
        "waiting for Challenge",
        MessageType::Challenge,
        |m| match m {
            Message::Challenge(c) => Some(c),
            _ => None,
        },
    )?;
    let server_nonce = challenge.nonce;
    let mac = key.mac(&[LABEL_PROOF, &server_nonce, &hello_bytes, &client_nonce]);
    send(
        &mut channel,
        "sending Proof",
        &Message::Proof(Proof { client_nonce, mac }),
    )?;

    let accept = recv(
        &mut channel,
        "waiting for Accept",
        MessageType::Accept,
        |m| match m {
            Message::Accept(a) => Some(a),
            _ => None,
        },
    )?;
    let signed = accept_signed_bytes(&accept);
    if !key.verify(
        &[
            LABEL_ACCEPT,
            &server_nonce,
            &client_nonce,
            &hello_bytes,
            &signed,
        ],
        &accept.mac,
    ) {
        let _ = channel.send(&Message::Reject(Reject::new(
            RejectCode::AuthFailed,
            "Accept MAC does not verify: replica does not hold this writer's key",
        )));
        return Err(HandshakeError::ReplicaNotAuthenticated);
    }
    let mismatch = if accept.epoch != hello.epoch {
        Some(("epoch", hello.epoch, accept.epoch))
    } else if accept.region.len != hello.geometry.region_len_bytes {
        Some((
            "region.len",
            hello.geometry.region_len_bytes,
            accept.region.len,
        ))
    } else {
        None
    };
    if let Some((field, writer, replica)) = mismatch {
        let _ = channel.send(&Message::Reject(Reject::new(
            RejectCode::GeometryMismatch,
            format!("Accept contradicts Hello: {field} writer={writer} replica={replica}"),
        )));
        return Err(HandshakeError::AcceptMismatch {
            field,
            writer,
            replica,
        });
    }
    Ok(Accepted {
        channel,
        key: key.clone(),
        hello,
        hello_bytes,
        server_nonce,
        client_nonce,
        accept,
    })
}

/// The replica accepted and authenticated itself; the writer now knows where
/// to write. Create and connect the local QP, then [`connect`](Self::connect).
#[derive(Debug)]
pub struct Accepted<S> {
    channel: Channel<S>,
    key: PreSharedKey,
    hello: Hello,
    hello_bytes: Vec<u8>,
    server_nonce: [u8; NONCE_LEN],
    client_nonce: [u8; NONCE_LEN],
    accept: Accept,
}

impl<S: Read + Write> Accepted<S> {
    /// The replica's queue pair, to connect the writer's QP to.
    pub fn replica_endpoint(&self) -> QpEndpoint {
        self.accept.endpoint
    }

    /// The replica's region (address, rkey, length).
    pub fn region(&self) -> RemoteRegion {
        self.accept.region
    }

    /// The replica's durable tail: catch up from here.
    pub fn durable_tail(&self) -> u64 {
        self.accept.durable_tail
    }

    /// The epoch the replica admitted us at (equals the `Hello`'s).
    pub fn epoch(&self) -> u64 {
        self.accept.epoch
    }

    /// The `Hello` this handshake sent.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Sends the writer's QP endpoint (authenticated) and waits for `Ready`,
    /// which the replica sends once its QP is connected to ours.
    pub fn connect(mut self, endpoint: QpEndpoint) -> Result<Established<S>, HandshakeError> {
        endpoint
            .validate()
            .map_err(|(field, reason)| HandshakeError::InvalidArgument { field, reason })?;
        let signed = accept_signed_bytes(&self.accept);
        let ep = endpoint_bytes(&endpoint);
        let mac = self.key.mac(&[
            LABEL_CONNECT,
            &self.server_nonce,
            &self.client_nonce,
            &self.hello_bytes,
            &signed,
            &ep,
        ]);
        send(
            &mut self.channel,
            "sending Connect",
            &Message::Connect(Connect { endpoint, mac }),
        )?;
        recv(
            &mut self.channel,
            "waiting for Ready",
            MessageType::Ready,
            |m| matches!(m, Message::Ready).then_some(()),
        )?;
        Ok(Established {
            channel: self.channel,
            accept: self.accept,
            local: endpoint,
        })
    }

    /// Gives up (e.g. the local QP could not be connected), telling the replica why.
    pub fn abort(mut self, code: RejectCode, message: &str) {
        let _ = self
            .channel
            .send(&Message::Reject(Reject::new(code, message)));
    }
}

/// The handshake completed: both QPs are connected, the writer may post.
/// The channel stays open for `Status` and `Seal` messages.
#[derive(Debug)]
pub struct Established<S> {
    channel: Channel<S>,
    accept: Accept,
    local: QpEndpoint,
}

impl<S> Established<S> {
    /// The replica's queue pair.
    pub fn replica_endpoint(&self) -> QpEndpoint {
        self.accept.endpoint
    }

    /// The writer's queue pair as sent.
    pub fn local_endpoint(&self) -> QpEndpoint {
        self.local
    }

    /// The replica's region (address, rkey, length).
    pub fn region(&self) -> RemoteRegion {
        self.accept.region
    }

    /// The replica's durable tail at admission.
    pub fn durable_tail(&self) -> u64 {
        self.accept.durable_tail
    }

    /// The admitted epoch.
    pub fn epoch(&self) -> u64 {
        self.accept.epoch
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
