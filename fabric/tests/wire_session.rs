//! After the handshake, the writer's status and seal requests get
//! exactly their answer; a reply to another request or a `Reject` is an
//! error. Protocol-only, over a Unix socket pair.

use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use fabric::wire::session::{request_seal, request_status};
use fabric::wire::{
    Channel, Message, MessageType, Reject, RejectCode, SealPoint, SessionError, Status,
};

/// A scripted replica: answers each request with the next reply.
fn scripted(replies: Vec<Message>) -> (Channel<UnixStream>, thread::JoinHandle<Vec<Message>>) {
    let (w, r) = UnixStream::pair().unwrap();
    w.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let replica = thread::spawn(move || {
        let mut ch = Channel::new(r);
        let mut seen = Vec::new();
        for reply in replies {
            seen.push(ch.recv().unwrap());
            ch.send(&reply).unwrap();
        }
        seen
    });
    (Channel::new(w), replica)
}

#[test]
fn status_and_seal_round_trip() {
    let status = Status {
        durable_tail: 4096,
        head: 0,
        applied_lsn: 9,
        epoch: 2,
        sealed: false,
    };
    let seal = SealPoint {
        epoch: 2,
        tail: 8192,
    };
    let (mut ch, replica) = scripted(vec![Message::Status(status), Message::Sealed(seal)]);
    assert_eq!(request_status(&mut ch).unwrap(), status);
    assert_eq!(request_seal(&mut ch, seal).unwrap(), seal);
    assert_eq!(
        replica.join().unwrap(),
        [Message::StatusRequest, Message::Seal(seal)]
    );
}

#[test]
fn a_sealed_for_another_epoch_is_an_error() {
    let (mut ch, replica) = scripted(vec![Message::Sealed(SealPoint { epoch: 3, tail: 0 })]);
    let e = request_seal(&mut ch, SealPoint { epoch: 2, tail: 0 }).unwrap_err();
    assert!(
        matches!(
            e,
            SessionError::Mismatch {
                field: "epoch",
                sent: 2,
                got: 3
            }
        ),
        "{e}"
    );
    replica.join().unwrap();
}

#[test]
fn rejects_and_wrong_replies_are_reported() {
    let (mut ch, replica) = scripted(vec![Message::Reject(Reject::new(
        RejectCode::StaleEpoch,
        "fenced by epoch 3",
    ))]);
    let e = request_status(&mut ch).unwrap_err();
    assert_eq!(
        e.to_string(),
        "replica ended the session: stale epoch: fenced by epoch 3"
    );
    replica.join().unwrap();

    let (mut ch, replica) = scripted(vec![Message::Ready]);
    let e = request_status(&mut ch).unwrap_err();
    assert!(
        matches!(
            e,
            SessionError::Unexpected {
                expected: MessageType::Status,
                got: MessageType::Ready
            }
        ),
        "{e}"
    );
    replica.join().unwrap();
}
