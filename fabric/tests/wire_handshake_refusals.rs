//! Writers that should not get in are refused with a reason naming the
//! field, the replica reports a typed refusal, and the replica never sends an
//! `Accept` (the only message carrying the rkey) to them.
//!
//! Protocol-only tests over a Unix socket pair (no RDMA).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use fabric::auth::{AllowList, PreSharedKey};
use fabric::wire::handshake::{self, Refusal, ReplicaExpectation};
use fabric::wire::{
    Accept, Challenge, Channel, Geometry, HandshakeError, Hello, Message, MessageType,
    PersistenceMode, QpEndpoint, RejectCode, RemoteRegion, WriterName,
};

const GEOMETRY: Geometry = Geometry {
    ring_offset_bytes: 4096,
    ring_capacity_bytes: 1 << 20,
    region_len_bytes: 1 << 21,
};
const UUID: [u8; 16] = [0x42; 16];
const REPLICA_QP: QpEndpoint = QpEndpoint {
    qpn: 0x111,
    lid: 0,
    gid: [1; 16],
    psn: 0x1234,
};
const WRITER_QP: QpEndpoint = QpEndpoint {
    qpn: 0x222,
    lid: 0,
    gid: [2; 16],
    psn: 0x5678,
};
const REGION: RemoteRegion = RemoteRegion {
    addr: 0x7000_0000,
    rkey: 0xabcd,
    len: 1 << 21,
};

fn key(b: u8) -> PreSharedKey {
    PreSharedKey::from_bytes(vec![b; 32]).unwrap()
}

fn hello() -> Hello {
    Hello {
        writer: WriterName::new("host-a").unwrap(),
        log_uuid: UUID,
        epoch: 5,
        geometry: GEOMETRY,
        persistence: PersistenceMode::Apm,
    }
}

fn expectation() -> ReplicaExpectation {
    ReplicaExpectation {
        log_uuid: Some(UUID),
        geometry: GEOMETRY,
        persistence: PersistenceMode::Apm,
        admitted_epoch: 5,
        sealed: false,
    }
}

/// A stream that records everything written to it.
struct Recorder {
    inner: UnixStream,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sent.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn types_sent(bytes: &[u8]) -> Vec<MessageType> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (m, used) = Message::decode_frame(rest).expect("replica sent valid frames");
        out.push(m.message_type());
        rest = &rest[used..];
    }
    out
}

struct Outcome {
    writer: HandshakeError,
    replica: HandshakeError,
    replica_sent: Vec<MessageType>,
}

/// Runs a full handshake attempt: the replica with `expect` and an
/// allow-list holding host-a → key 7; the writer with `hello` and `writer_key`.
fn attempt(hello: Hello, writer_key: PreSharedKey, expect: ReplicaExpectation) -> Outcome {
    let (w, r) = UnixStream::pair().unwrap();
    for s in [&w, &r] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let sent = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        inner: r,
        sent: Arc::clone(&sent),
    };
    let replica = thread::spawn(move || {
        let mut allow = AllowList::new();
        allow.insert(WriterName::new("host-a").unwrap(), key(7));
        match handshake::authenticate(Channel::new(recorder), &expect, &allow) {
            Ok(auth) => match auth.accept(REPLICA_QP, REGION, 0) {
                Ok(c) => panic!(
                    "writer should not be admitted, got {:?}",
                    c.writer_endpoint()
                ),
                Err(e) => e,
            },
            Err(e) => e,
        }
    });
    let writer = match handshake::begin(Channel::new(w), hello, &writer_key) {
        Ok(a) => match a.connect(WRITER_QP) {
            Ok(_) => panic!("writer should not be admitted"),
            Err(e) => e,
        },
        Err(e) => e,
    };
    let replica = replica.join().unwrap();
    let replica_sent = types_sent(&sent.lock().unwrap());
    Outcome {
        writer,
        replica,
        replica_sent,
    }
}

fn assert_rejected(e: &HandshakeError, code: RejectCode, text: &str) {
    match e {
        HandshakeError::Rejected { code: c, message } => {
            assert_eq!(*c, code, "{message}");
            assert_eq!(message, text);
        }
        other => panic!("expected Rejected({code:?}), got {other}"),
    }
}

fn assert_no_rkey_sent(o: &Outcome) {
    assert_eq!(
        o.replica_sent,
        [MessageType::Challenge, MessageType::Reject],
        "only a challenge and a reject may reach a refused writer"
    );
}

#[test]
fn wrong_key_is_refused_without_telling_which() {
    let o = attempt(hello(), key(8), expectation());
    assert_rejected(
        &o.writer,
        RejectCode::AuthFailed,
        "writer not admitted: unknown name or wrong key",
    );
    assert!(
        matches!(&o.replica, HandshakeError::Refused(Refusal::BadProof { writer }) if writer.as_str() == "host-a")
    );
    assert_no_rkey_sent(&o);
}

#[test]
fn unknown_writer_gets_the_same_answer_as_a_wrong_key() {
    let h = Hello {
        writer: WriterName::new("intruder").unwrap(),
        ..hello()
    };
    let o = attempt(h, key(7), expectation());
    assert_rejected(
        &o.writer,
        RejectCode::AuthFailed,
        "writer not admitted: unknown name or wrong key",
    );
    assert!(matches!(
        &o.replica,
        HandshakeError::Refused(Refusal::UnknownWriter { .. })
    ));
    assert_eq!(
        o.replica.to_string(),
        "refused the peer: writer \"intruder\" is not on the allow-list"
    );
    assert_no_rkey_sent(&o);
}

#[test]
fn geometry_mismatch_names_the_field_and_both_values() {
    let mut h = hello();
    h.geometry.ring_capacity_bytes = 1 << 19;
    let o = attempt(h, key(7), expectation());
    assert_rejected(
        &o.writer,
        RejectCode::GeometryMismatch,
        "geometry mismatch: ring capacity writer=524288 replica=1048576",
    );
    assert!(matches!(
        &o.replica,
        HandshakeError::Refused(Refusal::GeometryMismatch {
            field: "ring capacity",
            ..
        })
    ));
    assert_no_rkey_sent(&o);

    let mut h = hello();
    h.geometry.ring_offset_bytes = 8192;
    let o = attempt(h, key(7), expectation());
    assert_rejected(
        &o.writer,
        RejectCode::GeometryMismatch,
        "geometry mismatch: ring offset writer=8192 replica=4096",
    );
}

#[test]
fn uuid_mismatch_is_refused() {
    let h = Hello {
        log_uuid: [0x43; 16],
        ..hello()
    };
    let o = attempt(h, key(7), expectation());
    assert_rejected(
        &o.writer,
        RejectCode::UuidMismatch,
        "log UUID mismatch: writer=43434343434343434343434343434343 replica=42424242424242424242424242424242",
    );
    assert_no_rkey_sent(&o);
}

#[test]
fn persistence_mismatch_is_refused() {
    let h = Hello {
        persistence: PersistenceMode::Gpspm,
        ..hello()
    };
    let o = attempt(h, key(7), expectation());
    assert_rejected(
        &o.writer,
        RejectCode::PersistenceMismatch,
        "persistence mode mismatch: writer=gpspm replica=apm",
    );
    assert_no_rkey_sent(&o);
}

#[test]
fn stale_epoch_is_fenced() {
    let h = Hello {
        epoch: 4,
        ..hello()
    };
    let o = attempt(h, key(7), expectation());
    assert_rejected(
        &o.writer,
        RejectCode::StaleEpoch,
        "stale epoch: writer=4 replica admitted=5; this writer is fenced",
    );
    assert!(matches!(
        &o.replica,
        HandshakeError::Refused(Refusal::StaleEpoch {
            writer: 4,
            admitted: 5
        })
    ));
    assert_no_rkey_sent(&o);
}

#[test]
fn sealed_epoch_is_refused() {
    let o = attempt(
        hello(),
        key(7),
        ReplicaExpectation {
            sealed: true,
            ..expectation()
        },
    );
    assert_rejected(&o.writer, RejectCode::Sealed, "stream is sealed at epoch 5");
    assert_no_rkey_sent(&o);
}

#[test]
fn caller_can_refuse_after_authentication() {
    let (w, r) = UnixStream::pair().unwrap();
    let replica = thread::spawn(move || {
        let mut allow = AllowList::new();
        allow.insert(WriterName::new("host-a").unwrap(), key(7));
        let auth = handshake::authenticate(Channel::new(r), &expectation(), &allow).unwrap();
        auth.reject(RejectCode::Internal, "cannot create QP: out of memory")
    });
    let e = handshake::begin(Channel::new(w), hello(), &key(7)).unwrap_err();
    assert_rejected(
        &e,
        RejectCode::Internal,
        "replica internal error: cannot create QP: out of memory",
    );
    assert!(matches!(
        replica.join().unwrap(),
        HandshakeError::Refused(Refusal::Caller { .. })
    ));
}

/// An impostor replica that does not hold the key cannot produce a valid
/// Accept; the writer refuses it and never sends its endpoint.
#[test]
fn writer_refuses_an_impostor_replica() {
    let (w, r) = UnixStream::pair().unwrap();
    let impostor = thread::spawn(move || {
        let mut ch = Channel::new(r);
        assert!(matches!(ch.recv().unwrap(), Message::Hello(_)));
        ch.send(&Message::Challenge(Challenge { nonce: [9; 32] }))
            .unwrap();
        assert!(matches!(ch.recv().unwrap(), Message::Proof(_)));
        let accept = Accept {
            endpoint: REPLICA_QP,
            region: REGION,
            durable_tail: 0,
            epoch: 5,
            mac: [0; 32],
        };
        ch.send(&Message::Accept(accept)).unwrap();
        ch.recv().unwrap()
    });
    let e = handshake::begin(Channel::new(w), hello(), &key(7)).unwrap_err();
    assert!(matches!(e, HandshakeError::ReplicaNotAuthenticated), "{e}");
    match impostor.join().unwrap() {
        Message::Reject(r) => assert_eq!(r.code, RejectCode::AuthFailed),
        other => panic!("writer should answer with a Reject, got {other:?}"),
    }
}

/// A Connect whose MAC does not verify (e.g. an on-path attacker swapping in
/// its own QP) is refused and the replica does not send Ready.
#[test]
fn replica_refuses_a_forged_connect() {
    let (w, r) = UnixStream::pair().unwrap();
    let replica = thread::spawn(move || {
        let mut allow = AllowList::new();
        allow.insert(WriterName::new("host-a").unwrap(), key(7));
        let auth = handshake::authenticate(Channel::new(r), &expectation(), &allow).unwrap();
        auth.accept(REPLICA_QP, REGION, 0).unwrap_err()
    });
    // A writer that authenticates properly, then sends a Connect with a wrong MAC.
    let mut ch = Channel::new(w);
    let accepted = {
        // Run the legitimate steps by hand to be able to forge the last one.
        let h = hello();
        ch.send(&Message::Hello(h.clone())).unwrap();
        let Message::Challenge(c) = ch.recv().unwrap() else {
            panic!("expected Challenge")
        };
        let client_nonce = [3u8; 32];
        let mut hello_body = Vec::new();
        Message::Hello(h).encode_body(&mut hello_body);
        let mac = key(7).mac(&[handshake::LABEL_PROOF, &c.nonce, &hello_body, &client_nonce]);
        ch.send(&Message::Proof(fabric::wire::Proof { client_nonce, mac }))
            .unwrap();
        ch.recv().unwrap()
    };
    assert!(matches!(accepted, Message::Accept(_)));
    let forged = QpEndpoint {
        qpn: 0x999,
        ..WRITER_QP
    };
    ch.send(&Message::Connect(fabric::wire::Connect {
        endpoint: forged,
        mac: [1; 32],
    }))
    .unwrap();
    match ch.recv().unwrap() {
        Message::Reject(r) => assert_eq!(r.code, RejectCode::AuthFailed),
        other => panic!("expected a Reject, got {other:?}"),
    }
    assert!(matches!(
        replica.join().unwrap(),
        HandshakeError::Refused(Refusal::BadConnect { .. })
    ));
}
