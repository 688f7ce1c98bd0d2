//! The control-channel byte layout (as documented in
//! `docs/control-channel.md`) and the decoder's typed errors.

use fabric::wire::message::{ACCEPT_LEN, HELLO_FIXED_LEN};
use fabric::wire::{
    Accept, Challenge, Connect, Geometry, Hello, Message, MessageType, PersistenceMode, Proof,
    QpEndpoint, Reject, RejectCode, RemoteRegion, SealPoint, Status, WireError, WriterName,
    HEADER_LEN, MAX_BODY_LEN, RESERVED_CODES,
};

fn hello() -> Hello {
    Hello {
        writer: WriterName::new("host-a").unwrap(),
        log_uuid: [0x11; 16],
        epoch: 7,
        geometry: Geometry {
            ring_offset_bytes: 4096,
            ring_capacity_bytes: 1 << 20,
            region_len_bytes: (1 << 20) + 4096,
        },
        persistence: PersistenceMode::Gpspm,
    }
}

fn endpoint() -> QpEndpoint {
    QpEndpoint {
        qpn: 0x12_3456,
        lid: 0x0102,
        gid: [0xfe; 16],
        psn: 0xab_cdef,
    }
}

fn accept() -> Accept {
    Accept {
        endpoint: endpoint(),
        region: RemoteRegion {
            addr: 0x7f00_0000_1000,
            rkey: 0xdead_beef,
            len: (1 << 20) + 4096,
        },
        durable_tail: 123_456,
        epoch: 7,
        mac: [0x5a; 32],
    }
}

/// One valid instance of every message type.
fn samples() -> Vec<Message> {
    vec![
        Message::Hello(hello()),
        Message::Challenge(Challenge { nonce: [3; 32] }),
        Message::Proof(Proof {
            client_nonce: [4; 32],
            mac: [5; 32],
        }),
        Message::Accept(accept()),
        Message::Connect(Connect {
            endpoint: endpoint(),
            mac: [6; 32],
        }),
        Message::Ready,
        Message::Reject(Reject::new(
            RejectCode::GeometryMismatch,
            "geometry mismatch: ring capacity writer=1 replica=2",
        )),
        Message::StatusRequest,
        Message::Status(Status {
            durable_tail: 1,
            head: 0,
            applied_lsn: 2,
            epoch: 3,
            sealed: true,
        }),
        Message::Seal(SealPoint {
            epoch: 7,
            tail: 999,
        }),
        Message::Sealed(SealPoint {
            epoch: 7,
            tail: 999,
        }),
    ]
}

fn decode(frame: &[u8]) -> Result<Message, WireError> {
    Message::decode_frame(frame).map(|(m, used)| {
        assert_eq!(used, frame.len());
        m
    })
}

#[test]
fn every_message_round_trips() {
    let samples = samples();
    assert_eq!(samples.len(), MessageType::ALL.len(), "one sample per type");
    for m in samples {
        let frame = m.to_frame();
        assert_eq!(decode(&frame).unwrap(), m);
    }
}

#[test]
fn header_layout() {
    let frame = Message::Challenge(Challenge { nonce: [9; 32] }).to_frame();
    assert_eq!(&frame[0..4], b"TGCC");
    assert_eq!(&frame[4..6], &1u16.to_le_bytes(), "version");
    assert_eq!(&frame[6..8], &2u16.to_le_bytes(), "type Challenge = 2");
    assert_eq!(&frame[8..12], &32u32.to_le_bytes(), "body length");
    assert_eq!(&frame[12..16], &[0; 4], "reserved");
    assert_eq!(frame.len(), HEADER_LEN + 32);
}

#[test]
fn hello_layout() {
    let f = Message::Hello(hello()).to_frame();
    let b = &f[HEADER_LEN..];
    assert_eq!(b.len(), HELLO_FIXED_LEN + 6);
    assert_eq!(&b[0..16], &[0x11; 16], "log_uuid");
    assert_eq!(&b[16..24], &7u64.to_le_bytes(), "epoch");
    assert_eq!(&b[24..32], &4096u64.to_le_bytes(), "ring_offset");
    assert_eq!(&b[32..40], &(1u64 << 20).to_le_bytes(), "ring_capacity");
    assert_eq!(
        &b[40..48],
        &((1u64 << 20) + 4096).to_le_bytes(),
        "region_len"
    );
    assert_eq!(b[48], 2, "persistence gpspm");
    assert_eq!(b[49], 6, "name_len");
    assert_eq!(&b[50..52], &[0, 0], "reserved");
    assert_eq!(&b[52..], b"host-a");
}

#[test]
fn accept_layout() {
    let f = Message::Accept(accept()).to_frame();
    let b = &f[HEADER_LEN..];
    assert_eq!(b.len(), ACCEPT_LEN);
    assert_eq!(&b[0..4], &0x12_3456u32.to_le_bytes(), "qpn");
    assert_eq!(&b[4..6], &0x0102u16.to_le_bytes(), "lid");
    assert_eq!(&b[6..8], &[0, 0], "reserved");
    assert_eq!(&b[8..24], &[0xfe; 16], "gid");
    assert_eq!(&b[24..28], &0xab_cdefu32.to_le_bytes(), "psn");
    assert_eq!(&b[28..32], &[0; 4], "reserved");
    assert_eq!(&b[32..40], &0x7f00_0000_1000u64.to_le_bytes(), "addr");
    assert_eq!(&b[40..44], &0xdead_beefu32.to_le_bytes(), "rkey");
    assert_eq!(&b[44..48], &[0; 4], "reserved");
    assert_eq!(&b[48..56], &((1u64 << 20) + 4096).to_le_bytes(), "len");
    assert_eq!(&b[56..64], &123_456u64.to_le_bytes(), "durable_tail");
    assert_eq!(&b[64..72], &7u64.to_le_bytes(), "epoch");
    assert_eq!(&b[72..104], &[0x5a; 32], "mac");
}

/// The exact bytes of one frame of every type, recorded from the encoder
/// before the codec was rewritten around named field offsets: the format
/// must not drift. Each line is 16 bytes; the first is the header.
#[test]
fn every_frame_keeps_its_recorded_bytes() {
    let golden: Vec<(Message, &[&str])> = vec![
        (
            Message::Hello(hello()),
            &[
                "54474343010001003a00000000000000",
                "11111111111111111111111111111111",
                "07000000000000000010000000000000",
                "00001000000000000010100000000000",
                "02060000686f73742d61",
            ],
        ),
        (
            Message::Challenge(Challenge { nonce: [3; 32] }),
            &[
                "54474343010002002000000000000000",
                "03030303030303030303030303030303",
                "03030303030303030303030303030303",
            ],
        ),
        (
            Message::Proof(Proof {
                client_nonce: [4; 32],
                mac: [5; 32],
            }),
            &[
                "54474343010003004000000000000000",
                "04040404040404040404040404040404",
                "04040404040404040404040404040404",
                "05050505050505050505050505050505",
                "05050505050505050505050505050505",
            ],
        ),
        (
            Message::Accept(accept()),
            &[
                "54474343010004006800000000000000",
                "5634120002010000fefefefefefefefe",
                "fefefefefefefefeefcdab0000000000",
                "00100000007f0000efbeadde00000000",
                "001010000000000040e2010000000000",
                "07000000000000005a5a5a5a5a5a5a5a",
                "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
                "5a5a5a5a5a5a5a5a",
            ],
        ),
        (
            Message::Connect(Connect {
                endpoint: endpoint(),
                mac: [6; 32],
            }),
            &[
                "54474343010005004000000000000000",
                "5634120002010000fefefefefefefefe",
                "fefefefefefefefeefcdab0000000000",
                "06060606060606060606060606060606",
                "06060606060606060606060606060606",
            ],
        ),
        (Message::Ready, &["54474343010006000000000000000000"]),
        (
            Message::Reject(Reject::new(
                RejectCode::GeometryMismatch,
                "geometry mismatch",
            )),
            &[
                "54474343010007001500000000000000",
                "0500110067656f6d65747279206d6973",
                "6d61746368",
            ],
        ),
        (
            Message::StatusRequest,
            &["54474343010008000000000000000000"],
        ),
        (
            Message::Status(Status {
                durable_tail: 0x0102_0304_0506_0708,
                head: 0x0102,
                applied_lsn: 0x1122_3344,
                epoch: 3,
                sealed: true,
            }),
            &[
                "54474343010009002800000000000000",
                "08070605040302014433221100000000",
                "03000000000000000100000000000000",
                "0201000000000000",
            ],
        ),
        (
            Message::Seal(SealPoint {
                epoch: 7,
                tail: 0x0999,
            }),
            &[
                "5447434301000c001000000000000000",
                "07000000000000009909000000000000",
            ],
        ),
        (
            Message::Sealed(SealPoint {
                epoch: 8,
                tail: 0x0aaa,
            }),
            &[
                "5447434301000d001000000000000000",
                "0800000000000000aa0a000000000000",
            ],
        ),
    ];
    assert_eq!(golden.len(), MessageType::ALL.len(), "one frame per type");
    for (m, lines) in golden {
        let hex: String = m.to_frame().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, lines.concat(), "{:?} frame bytes", m.message_type());
        let frame: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(decode(&frame).unwrap(), m, "{:?} decodes", m.message_type());
    }
}

#[test]
fn retired_persist_types_are_unknown_with_a_clear_error() {
    assert_eq!(RESERVED_CODES, [10, 11]);
    let good = Message::Seal(SealPoint { epoch: 1, tail: 64 }).to_frame();
    for code in RESERVED_CODES {
        assert!(
            MessageType::from_code(code).is_err(),
            "type {code} is reserved"
        );
        let mut f = good.clone();
        set(&mut f, 6, &code.to_le_bytes());
        let e = decode(&f).unwrap_err();
        assert_eq!(e, WireError::UnknownMessageType { got: code });
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("unknown message type {code}: "))
                && text.contains("retired")
                && text.contains("RDMA SEND"),
            "{text}"
        );
    }
    let other = WireError::UnknownMessageType { got: 99 }.to_string();
    assert!(
        other.contains("unknown message type 99") && other.contains("same tailguard release"),
        "{other}"
    );
}

#[test]
fn rkey_is_redacted_in_debug_output() {
    let text = format!("{:?}", accept());
    assert!(
        !text.contains("3735928559") && !text.to_lowercase().contains("deadbeef"),
        "{text}"
    );
}

fn set(frame: &mut [u8], at: usize, bytes: &[u8]) {
    frame[at..at + bytes.len()].copy_from_slice(bytes);
}

#[test]
fn header_errors() {
    let good = Message::Ready.to_frame();

    let mut f = good.clone();
    set(&mut f, 0, b"HTTP");
    assert_eq!(decode(&f), Err(WireError::BadMagic { got: *b"HTTP" }));

    let mut f = good.clone();
    set(&mut f, 4, &2u16.to_le_bytes());
    assert_eq!(
        decode(&f),
        Err(WireError::UnsupportedVersion {
            got: 2,
            supported: 1
        })
    );

    let mut f = good.clone();
    set(&mut f, 6, &99u16.to_le_bytes());
    assert_eq!(decode(&f), Err(WireError::UnknownMessageType { got: 99 }));

    let mut f = good.clone();
    set(&mut f, 8, &(MAX_BODY_LEN + 1).to_le_bytes());
    assert_eq!(
        decode(&f),
        Err(WireError::BodyTooLong {
            len: MAX_BODY_LEN + 1,
            max: MAX_BODY_LEN
        })
    );

    let mut f = good.clone();
    set(&mut f, 12, &[1, 0, 0, 0]);
    assert!(matches!(
        decode(&f),
        Err(WireError::InvalidField {
            message: None,
            field: "reserved",
            ..
        })
    ));

    assert_eq!(
        decode(&good[..10]),
        Err(WireError::TruncatedHeader {
            needed: 16,
            got: 10
        })
    );
}

#[test]
fn length_errors_name_the_message() {
    let f = Message::Challenge(Challenge { nonce: [1; 32] }).to_frame();
    // Header says 32, only 20 body bytes present.
    assert_eq!(
        Message::decode_frame(&f[..HEADER_LEN + 20]),
        Err(WireError::Truncated {
            message: MessageType::Challenge,
            needed: 32,
            got: 20
        })
    );
    // A body shorter than the layout, consistently announced.
    assert_eq!(
        Message::decode_body(MessageType::Accept, &[0; 50]),
        Err(WireError::Truncated {
            message: MessageType::Accept,
            needed: ACCEPT_LEN,
            got: 50
        })
    );
    assert_eq!(
        Message::decode_body(MessageType::Ready, &[0; 1]),
        Err(WireError::TrailingBytes {
            message: MessageType::Ready,
            expected: 0,
            got: 1
        })
    );
    let mut body = Vec::new();
    Message::Hello(hello()).encode_body(&mut body);
    body.push(b'x');
    assert_eq!(
        Message::decode_body(MessageType::Hello, &body),
        Err(WireError::TrailingBytes {
            message: MessageType::Hello,
            expected: HELLO_FIXED_LEN + 6,
            got: HELLO_FIXED_LEN + 7
        })
    );
}

/// Decodes a mutated body of `m` and returns the failing field.
fn bad_field(m: &Message, mutate: impl FnOnce(&mut Vec<u8>)) -> (&'static str, String) {
    let mut body = Vec::new();
    m.encode_body(&mut body);
    mutate(&mut body);
    match Message::decode_body(m.message_type(), &body) {
        Err(WireError::InvalidField { field, reason, .. }) => (field, reason),
        other => panic!("expected InvalidField, got {other:?}"),
    }
}

#[test]
fn hello_fields_are_validated() {
    let h = Message::Hello(hello());
    assert_eq!(bad_field(&h, |b| b[0..16].fill(0)).0, "log_uuid");
    assert_eq!(
        bad_field(&h, |b| b[24] = 1),
        ("ring_offset", "must be a multiple of 64, got 4097".into())
    );
    assert_eq!(bad_field(&h, |b| b[32..40].fill(0)).0, "ring_capacity");
    assert_eq!(
        bad_field(&h, |b| b[40..48].copy_from_slice(&4096u64.to_le_bytes())).0,
        "region_len"
    );
    assert_eq!(
        bad_field(&h, |b| b[48] = 3),
        ("persistence", "must be 1 (apm) or 2 (gpspm), got 3".into())
    );
    assert_eq!(bad_field(&h, |b| b[49] = 0).0, "name_len");
    assert_eq!(bad_field(&h, |b| b[49] = 65).0, "name_len");
    assert_eq!(bad_field(&h, |b| b[50] = 1).0, "reserved");
    assert_eq!(bad_field(&h, |b| b[53] = b' ').0, "name");
    assert_eq!(bad_field(&h, |b| b[53] = 0xc3).0, "name");
}

#[test]
fn endpoint_region_and_other_fields_are_validated() {
    let a = Message::Accept(accept());
    assert_eq!(
        bad_field(&a, |b| b[0..4].copy_from_slice(&1u32.to_le_bytes())).0,
        "endpoint.qpn"
    );
    assert_eq!(bad_field(&a, |b| b[3] = 1).0, "endpoint.qpn");
    assert_eq!(bad_field(&a, |b| b[27] = 1).0, "endpoint.psn");
    assert_eq!(bad_field(&a, |b| b[6] = 1).0, "endpoint.reserved");
    assert_eq!(bad_field(&a, |b| b[44] = 1).0, "reserved");
    assert_eq!(bad_field(&a, |b| b[48..56].fill(0)).0, "region_len");
    assert_eq!(bad_field(&a, |b| b[32..40].fill(0xff)).0, "region_len");

    let r = Message::Reject(Reject::new(RejectCode::StaleEpoch, "old"));
    assert_eq!(bad_field(&r, |b| b[0..2].fill(0)).0, "code");
    assert_eq!(bad_field(&r, |b| b[4] = 0xff).0, "message");
    assert_eq!(
        bad_field(&r, |b| b[5] = b'\n'),
        ("message", "contains control character 0xa".into())
    );
    assert_eq!(
        bad_field(&r, |b| b[2..4].copy_from_slice(&2000u16.to_le_bytes())).0,
        "message_len"
    );

    let s = Message::Status(Status {
        durable_tail: 1,
        head: 0,
        applied_lsn: 1,
        epoch: 1,
        sealed: false,
    });
    assert_eq!(bad_field(&s, |b| b[24] = 2).0, "sealed");
    assert_eq!(bad_field(&s, |b| b[31] = 2).0, "reserved");
    assert_eq!(
        bad_field(&s, |b| b[32..40].copy_from_slice(&5u64.to_le_bytes())),
        ("head", "must not pass durable_tail 1, got 5".into())
    );
}

#[test]
fn reject_reasons_lose_control_characters() {
    let r = Reject::new(RejectCode::Internal, "line one\nline two\x1b[31m");
    assert_eq!(r.message(), "line one line two [31m");
}

#[test]
fn unknown_reject_codes_are_kept() {
    let m = Message::Reject(Reject::new(RejectCode::Other(500), "from the future"));
    let back = decode(&m.to_frame()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn reject_messages_are_cut_at_a_char_boundary() {
    let long = "é".repeat(600); // 1200 bytes
    let r = Reject::new(RejectCode::Internal, long);
    assert_eq!(r.message().len(), 1024);
    let m = Message::Reject(r);
    assert_eq!(decode(&m.to_frame()).unwrap(), m);
}

#[test]
fn decode_errors_read_well() {
    let e = WireError::InvalidField {
        message: Some(MessageType::Hello),
        field: "ring_capacity",
        reason: "must be a non-zero multiple of 64, got 0".into(),
    };
    assert_eq!(
        e.to_string(),
        "invalid Hello.ring_capacity: must be a non-zero multiple of 64, got 0"
    );
    assert!(WireError::BadMagic { got: *b"GET " }
        .to_string()
        .contains("does not speak the tailguard control protocol"));
}
