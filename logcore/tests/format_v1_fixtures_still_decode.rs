//! Format stability: images written by format version 1 (committed under
//! `tests/fixtures/`) still decode to the same records, the same tail and
//! the same verdicts. A change that breaks this is a format change: bump
//! `FORMAT_VERSION` and keep reading v1.
//!
//! Regenerate (only when intentionally changing the fixtures):
//! `TG_REGEN_FIXTURES=1 cargo test -p logcore --test format_v1_fixtures_still_decode`.

mod common;

use std::path::PathBuf;

use logcore::{
    CreateOptions, Image, Log, Lsn, RecordFault, RecordKind, RegionKind, ScanError, StopReason,
};

const UUID: [u8; 16] = *b"tailguard-fixtur";
/// Payload seeds chosen so the live range ends a lap with padding.
const SEED_BASE: u64 = 1000;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// 80 records in an 8 KiB ring (wrapped, with padding), reclaimed to just
/// before the last lap boundary, then 2 appended but not persisted.
fn write_wrapped(path: &std::path::Path) {
    let opts = CreateOptions {
        kind: RegionKind::File,
        uuid: Some(UUID),
        overwrite: true,
        ..Default::default()
    };
    let log = Log::create(path, 4096 + 8192, &opts).unwrap();
    let mut bounds = Vec::new();
    for i in 0..80u64 {
        let p = common::payload(SEED_BASE + i, 300);
        let a = loop {
            match log.append_record(&p) {
                Ok(a) => break a,
                Err(_) => {
                    log.persist_all().unwrap();
                    let to = bounds
                        .iter()
                        .copied()
                        .find(|&b| b > log.head().pos)
                        .unwrap();
                    log.advance_head(to).unwrap();
                }
            }
        };
        bounds.push(a.end);
    }
    let t = log.persist_all().unwrap();
    // Keep the last lap boundary (and its padding) inside the live range.
    let lap = t.pos - t.pos % 8192;
    let h = bounds
        .iter()
        .copied()
        .filter(|&b| b < lap && b >= log.head().pos)
        .last();
    let h = h.unwrap_or_else(|| panic!("lap {lap} head {:?} tail {t:?}", log.head()));
    log.advance_head(h).unwrap();
    log.append(b"unpersisted-1").unwrap();
    log.append(b"unpersisted-2").unwrap();
    std::mem::forget(log);
}

fn regenerate() {
    let dir = fixture("");
    std::fs::create_dir_all(&dir).unwrap();
    write_wrapped(&fixture("v1-wrapped.img"));
    // Same log with one payload bit flipped in the first live data record.
    let mut b = std::fs::read(fixture("v1-wrapped.img")).unwrap();
    let img = Image::parse(&b).unwrap();
    let first = img
        .scan()
        .unwrap()
        .map(|r| r.unwrap())
        .find(|r| r.kind == RecordKind::Data)
        .unwrap();
    let off = (img.superblock().geometry.region_offset(first.pos) + 40) as usize;
    b[off] ^= 0x04;
    std::fs::write(fixture("v1-corrupt-before-tail.img"), &b).unwrap();
    // Same log with the last (unpersisted) record torn.
    let mut b = std::fs::read(fixture("v1-wrapped.img")).unwrap();
    let img = Image::parse(&b).unwrap();
    let s = img.verify().unwrap();
    let last = s.stop.at.pos - 64; // "unpersisted-2" takes one 64-byte line
    let off = (img.superblock().geometry.region_offset(last) + 33) as usize;
    b[off] ^= 0xff;
    std::fs::write(fixture("v1-torn-tail.img"), &b).unwrap();
}

#[test]
fn format_v1_fixtures_still_decode() {
    if std::env::var("TG_REGEN_FIXTURES").is_ok() {
        regenerate();
    }
    let wrapped = std::fs::read(fixture("v1-wrapped.img")).unwrap();
    let img = Image::parse(&wrapped).unwrap();
    assert_eq!(img.superblock().uuid, UUID);
    assert_eq!(img.superblock().geometry.capacity, 8192);
    let c = *img.control();
    let recs: Vec<_> = img.scan().unwrap().map(|r| r.unwrap()).collect();
    let data: Vec<_> = recs.iter().filter(|r| r.kind == RecordKind::Data).collect();
    // Every record from the head to the persisted tail, then the two
    // unpersisted ones, with the payloads they were written with.
    assert_eq!(data.first().unwrap().lsn, c.head.lsn);
    assert_eq!(data.last().unwrap().lsn, Lsn(82));
    for r in &data {
        let want = match r.lsn.0 {
            81 => b"unpersisted-1".to_vec(),
            82 => b"unpersisted-2".to_vec(),
            n => common::payload(SEED_BASE + n - 1, 300),
        };
        assert_eq!(r.payload, &want[..], "LSN {}", r.lsn);
    }
    assert!(
        recs.iter().any(|r| r.kind == RecordKind::Padding),
        "fixture covers padding"
    );
    assert!(c.head.pos > 8192, "fixture covers a wrapped ring");
    let s = img.verify().unwrap();
    assert_eq!(s.stop.at.lsn, Lsn(83));
    // After the tail lie bytes of an earlier lap: they must end the scan.
    assert!(
        matches!(s.stop.reason, StopReason::Fault(_)),
        "{:?}",
        s.stop
    );

    let bad = std::fs::read(fixture("v1-corrupt-before-tail.img")).unwrap();
    let img = Image::parse(&bad).unwrap();
    match img.verify() {
        Err(ScanError::CorruptBeforeTail {
            pos,
            lsn,
            fault: RecordFault::ChecksumMismatch { .. },
            ..
        }) => {
            let first = data.first().unwrap();
            assert_eq!((pos, lsn), (first.pos, first.lsn));
        }
        other => panic!("expected CorruptBeforeTail, got {other:?}"),
    }

    let torn = std::fs::read(fixture("v1-torn-tail.img")).unwrap();
    let img = Image::parse(&torn).unwrap();
    let s = img.verify().unwrap();
    assert_eq!(
        s.stop.at.lsn,
        Lsn(82),
        "torn unpersisted record ends the log"
    );
    assert!(matches!(
        s.stop.reason,
        StopReason::Fault(RecordFault::ChecksumMismatch { .. })
    ));
}
