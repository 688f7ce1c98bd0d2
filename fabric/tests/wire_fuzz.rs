//! Property tests of the control-channel decoder: it never panics on any
//! input, every frame it accepts is the canonical encoding of what it
//! returned (so MACs over re-encoded fields cover exactly the bytes sent),
//! and every valid message round-trips.

use std::io::{self, Cursor, Read, Write};

use fabric::wire::{
    Accept, Challenge, Channel, ChannelError, Connect, Geometry, Hello, Message, PersistenceMode,
    Proof, QpEndpoint, Reject, RejectCode, RemoteRegion, SealPoint, Status, WriterName, HEADER_LEN,
};
use proptest::prelude::*;

fn writer_name() -> impl Strategy<Value = WriterName> {
    "[A-Za-z0-9._-]{1,64}".prop_map(|s| WriterName::new(s).unwrap())
}

fn geometry() -> impl Strategy<Value = Geometry> {
    (0u64..1 << 30, 1u64..1 << 30, 0u64..1 << 40).prop_map(|(off, cap, slack)| Geometry {
        ring_offset_bytes: off * 64,
        ring_capacity_bytes: cap * 64,
        region_len_bytes: off * 64 + cap * 64 + slack,
    })
}

fn endpoint() -> impl Strategy<Value = QpEndpoint> {
    (
        2u32..1 << 24,
        any::<u16>(),
        any::<[u8; 16]>(),
        0u32..1 << 24,
    )
        .prop_map(|(qpn, lid, gid, psn)| QpEndpoint { qpn, lid, gid, psn })
}

fn region() -> impl Strategy<Value = RemoteRegion> {
    (0u64..u64::MAX / 2, any::<u32>(), 1u64..u64::MAX / 2)
        .prop_map(|(addr, rkey, len)| RemoteRegion { addr, rkey, len })
}

fn reject_code() -> impl Strategy<Value = RejectCode> {
    (1u16..=u16::MAX).prop_map(|c| RejectCode::from_code(c).unwrap())
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            writer_name(),
            any::<[u8; 16]>(),
            any::<u64>(),
            geometry(),
            any::<bool>()
        )
            .prop_filter_map("uuid zero", |(writer, log_uuid, epoch, geometry, apm)| {
                (log_uuid != [0; 16]).then(|| {
                    let persistence = if apm {
                        PersistenceMode::Apm
                    } else {
                        PersistenceMode::Gpspm
                    };
                    Message::Hello(Hello {
                        writer,
                        log_uuid,
                        epoch,
                        geometry,
                        persistence,
                    })
                })
            }),
        any::<[u8; 32]>().prop_map(|nonce| Message::Challenge(Challenge { nonce })),
        (any::<[u8; 32]>(), any::<[u8; 32]>())
            .prop_map(|(client_nonce, mac)| Message::Proof(Proof { client_nonce, mac })),
        (
            endpoint(),
            region(),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>()
        )
            .prop_map(
                |(endpoint, region, durable_tail, epoch, mac)| Message::Accept(Accept {
                    endpoint,
                    region,
                    durable_tail,
                    epoch,
                    mac
                })
            ),
        (endpoint(), any::<[u8; 32]>())
            .prop_map(|(endpoint, mac)| Message::Connect(Connect { endpoint, mac })),
        Just(Message::Ready),
        (reject_code(), ".{0,300}").prop_map(|(c, m)| Message::Reject(Reject::new(c, m))),
        Just(Message::StatusRequest),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(d, a, e, s)| {
            Message::Status(Status {
                durable_tail: d,
                head: 0,
                applied_lsn: a,
                epoch: e,
                sealed: s,
            })
        }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(epoch, tail)| Message::Seal(SealPoint { epoch, tail })),
        (any::<u64>(), any::<u64>())
            .prop_map(|(epoch, tail)| Message::Sealed(SealPoint { epoch, tail })),
    ]
}

/// If `bytes` decodes, its first `used` bytes must be exactly the encoding
/// of the decoded message.
fn check_canonical(bytes: &[u8]) {
    if let Ok((m, used)) = Message::decode_frame(bytes) {
        assert_eq!(
            m.to_frame(),
            &bytes[..used],
            "accepted a non-canonical frame: {m:?}"
        );
    }
}

/// A stream that reads from fixed bytes and discards writes.
struct Replay(Cursor<Vec<u8>>);

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_canonical(&bytes);
    }

    #[test]
    fn arbitrary_bodies_with_valid_headers_never_panic(
        ty in 1u16..=13, // 10 and 11 are reserved: they must fail cleanly too
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut frame = Vec::new();
        frame.extend_from_slice(b"TGCC");
        frame.extend_from_slice(&1u16.to_le_bytes());
        frame.extend_from_slice(&ty.to_le_bytes());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(&body);
        check_canonical(&frame);
    }

    #[test]
    fn valid_messages_round_trip(m in message()) {
        let frame = m.to_frame();
        let (back, used) = Message::decode_frame(&frame).unwrap();
        prop_assert_eq!(used, frame.len());
        prop_assert_eq!(back, m);
    }

    #[test]
    fn mutated_frames_never_panic(
        m in message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 0..8),
        mode in 0u8..3,
    ) {
        let mut frame = m.to_frame();
        for (at, byte) in &flips {
            let i = at.index(frame.len());
            frame[i] ^= byte;
        }
        match mode {
            0 => frame.truncate(cut.index(frame.len() + 1)),
            1 => frame.extend_from_slice(&extra),
            _ => {}
        }
        check_canonical(&frame);
    }

    #[test]
    fn channel_recv_never_panics_and_poisons_on_error(
        stream in proptest::collection::vec(any::<u8>(), 0..300),
        valid_first in any::<bool>(),
        m in message(),
    ) {
        let mut bytes = if valid_first { m.to_frame() } else { Vec::new() };
        bytes.extend_from_slice(&stream);
        let mut ch = Channel::new(Replay(Cursor::new(bytes)));
        if valid_first {
            prop_assert_eq!(ch.recv().unwrap(), m);
        }
        // A bounded number of further receives: each consumes at least a
        // header or fails and poisons.
        for _ in 0..(stream.len() / HEADER_LEN + 2) {
            match ch.recv() {
                Ok(_) => {}
                Err(ChannelError::Poisoned) => break,
                Err(_) => {
                    prop_assert!(matches!(ch.recv(), Err(ChannelError::Poisoned)));
                    break;
                }
            }
        }
    }
}
