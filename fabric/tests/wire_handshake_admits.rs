//! A writer on the allow-list with the right key, log and epoch is admitted:
//! both sides learn each other's QP endpoint, the writer learns the region
//! and durable tail, and the channel stays usable for control messages.
//!
//! These run the protocol over a Unix socket pair or TCP on 127.0.0.1 (real
//! sockets, no RDMA: the QP endpoints are plain values here).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use fabric::auth::{AllowList, PreSharedKey};
use fabric::wire::handshake::{self, ReplicaExpectation};
use fabric::wire::{
    Channel, Geometry, Hello, Message, PersistenceMode, QpEndpoint, RemoteRegion, Status,
    WriterName,
};

const GEOMETRY: Geometry = Geometry {
    ring_offset_bytes: 4096,
    ring_capacity_bytes: 1 << 20,
    region_len_bytes: (1 << 20) + 4096,
};
const UUID: [u8; 16] = [0x42; 16];

fn key() -> PreSharedKey {
    PreSharedKey::from_bytes(vec![7u8; 32]).unwrap()
}

fn hello(epoch: u64) -> Hello {
    Hello {
        writer: WriterName::new("host-a").unwrap(),
        log_uuid: UUID,
        epoch,
        geometry: GEOMETRY,
        persistence: PersistenceMode::Apm,
    }
}

fn expectation(admitted_epoch: u64) -> ReplicaExpectation {
    ReplicaExpectation {
        log_uuid: Some(UUID),
        geometry: GEOMETRY,
        persistence: PersistenceMode::Apm,
        admitted_epoch,
        sealed: false,
    }
}

fn allow() -> AllowList {
    let mut a = AllowList::new();
    a.insert(WriterName::new("host-a").unwrap(), key());
    a
}

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
    len: (1 << 20) + 4096,
};

/// Runs the replica side to admission, then answers one StatusRequest.
fn replica<S: Read + Write>(stream: S, expect: ReplicaExpectation) -> (bool, QpEndpoint) {
    let auth = handshake::authenticate(Channel::new(stream), &expect, &allow()).unwrap();
    assert_eq!(auth.writer().as_str(), "host-a");
    let newer = auth.is_newer_epoch();
    // Here the replica daemon fences older epochs and creates its QP.
    let connecting = auth.accept(REPLICA_QP, REGION, 8192).unwrap();
    let writer_qp = connecting.writer_endpoint();
    // Here it connects its QP to writer_qp.
    let mut admitted = connecting.ready().unwrap();
    assert_eq!(admitted.writer_endpoint(), writer_qp);
    let ch = admitted.channel_mut();
    assert_eq!(ch.recv().unwrap(), Message::StatusRequest);
    let status = Status {
        durable_tail: 8192,
        head: 0,
        applied_lsn: 17,
        epoch: admitted.epoch(),
        sealed: false,
    };
    admitted
        .channel_mut()
        .send(&Message::Status(status))
        .unwrap();
    (newer, writer_qp)
}

fn writer<S: Read + Write>(stream: S, epoch: u64) -> Status {
    let accepted = handshake::begin(Channel::new(stream), hello(epoch), &key()).unwrap();
    assert_eq!(accepted.replica_endpoint(), REPLICA_QP);
    assert_eq!(accepted.region(), REGION);
    assert_eq!(accepted.durable_tail(), 8192);
    assert_eq!(accepted.epoch(), epoch);
    // Here the writer connects its QP to the replica's.
    let mut est = accepted.connect(WRITER_QP).unwrap();
    assert_eq!(est.local_endpoint(), WRITER_QP);
    let ch = est.channel_mut();
    ch.send(&Message::StatusRequest).unwrap();
    match ch.recv().unwrap() {
        Message::Status(s) => s,
        other => panic!("expected Status, got {other:?}"),
    }
}

fn timeouts(s: &UnixStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
}

#[test]
fn writer_is_admitted_and_both_sides_learn_the_endpoints() {
    let (w, r) = UnixStream::pair().unwrap();
    timeouts(&w);
    timeouts(&r);
    let replica = thread::spawn(move || replica(r, expectation(3)));
    let status = writer(w, 3);
    let (newer, writer_qp) = replica.join().unwrap();
    assert!(
        !newer,
        "same epoch as admitted: a reconnect, nothing to fence"
    );
    assert_eq!(writer_qp, WRITER_QP);
    assert_eq!(
        status,
        Status {
            durable_tail: 8192,
            head: 0,
            applied_lsn: 17,
            epoch: 3,
            sealed: false
        }
    );
}

#[test]
fn newer_epoch_is_admitted_and_flagged_for_fencing() {
    let (w, r) = UnixStream::pair().unwrap();
    timeouts(&w);
    timeouts(&r);
    let replica = thread::spawn(move || replica(r, expectation(3)));
    writer(w, 4);
    assert!(
        replica.join().unwrap().0,
        "epoch 4 > admitted 3: the caller must fence epoch 3"
    );
}

#[test]
fn fresh_replica_without_a_uuid_admits_the_first_log() {
    let (w, r) = UnixStream::pair().unwrap();
    let expect = ReplicaExpectation {
        log_uuid: None,
        ..expectation(0)
    };
    let replica = thread::spawn(move || replica(r, expect));
    writer(w, 1);
    replica.join().unwrap();
}

#[test]
fn handshake_over_tcp_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let replica = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        replica(s, expectation(1))
    });
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    let status = writer(s, 1);
    assert_eq!(status.epoch, 1);
    replica.join().unwrap();
}

#[test]
fn sealed_replica_admits_a_newer_epoch() {
    let (w, r) = UnixStream::pair().unwrap();
    timeouts(&w);
    timeouts(&r);
    let expect = ReplicaExpectation {
        sealed: true,
        ..expectation(3)
    };
    let replica = thread::spawn(move || replica(r, expect));
    writer(w, 4);
    assert!(replica.join().unwrap().0);
}
