//! Garbage, truncated, out-of-order and silent peers end the handshake with
//! a typed error (never a panic or an unbounded wait), and the replica tells
//! the peer why when it can.
//!
//! Protocol-only tests over a Unix socket pair (no RDMA).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use fabric::auth::{AllowList, PreSharedKey};
use fabric::wire::handshake::{self, ReplicaExpectation};
use fabric::wire::{
    Channel, ChannelError, Geometry, HandshakeError, Hello, Message, MessageType, PersistenceMode,
    RejectCode, WireError, WriterName,
};

const GEOMETRY: Geometry = Geometry {
    ring_offset_bytes: 0,
    ring_capacity_bytes: 1 << 16,
    region_len_bytes: 1 << 16,
};

fn expectation() -> ReplicaExpectation {
    ReplicaExpectation {
        log_uuid: Some([1; 16]),
        geometry: GEOMETRY,
        persistence: PersistenceMode::Apm,
        admitted_epoch: 1,
        sealed: false,
    }
}

fn hello() -> Hello {
    Hello {
        writer: WriterName::new("host-a").unwrap(),
        log_uuid: [1; 16],
        epoch: 1,
        geometry: GEOMETRY,
        persistence: PersistenceMode::Apm,
    }
}

/// Runs the replica side against raw bytes from `peer`; returns the
/// replica's error and the reply frames the peer could read.
fn replica_against(peer_bytes: &[u8], close_after: bool) -> (HandshakeError, Vec<Message>) {
    let (mut peer, r) = UnixStream::pair().unwrap();
    r.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let replica = thread::spawn(move || {
        let mut allow = AllowList::new();
        allow.insert(
            WriterName::new("host-a").unwrap(),
            PreSharedKey::from_bytes(vec![7; 32]).unwrap(),
        );
        match handshake::authenticate(Channel::new(r), &expectation(), &allow) {
            Ok(_) => panic!("garbage was authenticated"),
            Err(e) => e,
        }
    });
    peer.write_all(peer_bytes).unwrap();
    if close_after {
        peer.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let err = replica.join().unwrap();
    // Collect whatever the replica answered.
    peer.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut replies = Vec::new();
    let mut ch = Channel::new(peer);
    while let Ok(m) = ch.recv() {
        replies.push(m);
    }
    (err, replies)
}

fn reject_code(replies: &[Message]) -> Option<RejectCode> {
    replies.iter().find_map(|m| match m {
        Message::Reject(r) => Some(r.code),
        _ => None,
    })
}

#[test]
fn http_request_is_a_bad_magic_and_gets_a_reject() {
    let (e, replies) = replica_against(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert!(
        matches!(e, HandshakeError::Channel { source: ChannelError::Wire(WireError::BadMagic { got }), .. } if &got == b"GET "),
        "{e}"
    );
    assert_eq!(reject_code(&replies), Some(RejectCode::Malformed));
}

#[test]
fn truncated_hello_then_close_is_reported_with_the_byte_count() {
    let frame = Message::Hello(hello()).to_frame();
    let (e, _) = replica_against(&frame[..30], true);
    assert!(
        matches!(
            e,
            HandshakeError::Channel {
                step: "waiting for Hello",
                source: ChannelError::Closed { got: 30 }
            }
        ),
        "{e}"
    );
}

#[test]
fn truncated_hello_then_silence_times_out() {
    let frame = Message::Hello(hello()).to_frame();
    let start = Instant::now();
    let (e, _) = replica_against(&frame[..30], false);
    assert!(
        matches!(
            e,
            HandshakeError::Channel {
                source: ChannelError::TimedOut { op: "receive" },
                ..
            }
        ),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "bounded by the socket timeout"
    );
}

#[test]
fn hostile_length_is_refused_before_reading_the_body() {
    let mut frame = Message::Ready.to_frame();
    frame[6..8].copy_from_slice(&MessageType::Hello.code().to_le_bytes());
    frame[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (e, replies) = replica_against(&frame, false);
    assert!(
        matches!(
            e,
            HandshakeError::Channel {
                source: ChannelError::Wire(WireError::BodyTooLong { len: u32::MAX, .. }),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(reject_code(&replies), Some(RejectCode::Malformed));
}

#[test]
fn newer_protocol_version_gets_an_unsupported_version_reject() {
    let mut frame = Message::Hello(hello()).to_frame();
    frame[4..6].copy_from_slice(&2u16.to_le_bytes());
    let (e, replies) = replica_against(&frame, false);
    assert!(
        e.to_string()
            .contains("unsupported control-protocol version 2 (this build speaks version 1)"),
        "{e}"
    );
    assert_eq!(reject_code(&replies), Some(RejectCode::UnsupportedVersion));
}

#[test]
fn a_retired_persist_frame_gets_a_malformed_reject_naming_its_type() {
    // What an old peer's TCP `Persist` (type 10, a 16-byte range) looked like.
    let mut frame = Message::Seal(fabric::wire::SealPoint { epoch: 1, tail: 64 }).to_frame();
    frame[6..8].copy_from_slice(&10u16.to_le_bytes());
    let (e, replies) = replica_against(&frame, false);
    assert!(
        matches!(
            e,
            HandshakeError::Channel {
                source: ChannelError::Wire(WireError::UnknownMessageType { got: 10 }),
                ..
            }
        ),
        "{e}"
    );
    let reason = replies
        .iter()
        .find_map(|m| match m {
            Message::Reject(r) if r.code == RejectCode::Malformed => Some(r.message().to_owned()),
            _ => None,
        })
        .expect("a Malformed reject");
    assert!(
        reason.starts_with("unknown message type 10: ") && reason.contains("retired"),
        "{reason}"
    );
}

#[test]
fn out_of_order_message_is_unexpected() {
    let frame = Message::StatusRequest.to_frame();
    let (e, replies) = replica_against(&frame, false);
    assert!(
        matches!(
            e,
            HandshakeError::Unexpected {
                expected: MessageType::Hello,
                got: MessageType::StatusRequest
            }
        ),
        "{e}"
    );
    assert_eq!(reject_code(&replies), Some(RejectCode::UnexpectedMessage));
}

#[test]
fn invalid_field_in_hello_names_it() {
    let mut frame = Message::Hello(hello()).to_frame();
    frame[16 + 48] = 9; // persistence
    let (e, replies) = replica_against(&frame, false);
    assert_eq!(
        e.to_string(),
        "handshake waiting for Hello: malformed control message: invalid Hello.persistence: \
         must be 1 (apm) or 2 (gpspm), got 9"
    );
    assert_eq!(reject_code(&replies), Some(RejectCode::Malformed));
}

#[test]
fn writer_facing_a_silent_replica_times_out() {
    let (w, _r) = UnixStream::pair().unwrap();
    w.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let key = PreSharedKey::from_bytes(vec![7; 32]).unwrap();
    let e = handshake::begin(Channel::new(w), hello(), &key).unwrap_err();
    assert!(
        matches!(
            e,
            HandshakeError::Channel {
                step: "waiting for Challenge",
                source: ChannelError::TimedOut { .. }
            }
        ),
        "{e}"
    );
}

#[test]
fn writer_facing_a_closed_replica_reports_it() {
    let (w, r) = UnixStream::pair().unwrap();
    drop(r);
    let key = PreSharedKey::from_bytes(vec![7; 32]).unwrap();
    let e = handshake::begin(Channel::new(w), hello(), &key).unwrap_err();
    assert!(matches!(e, HandshakeError::Channel { .. }), "{e}");
}
