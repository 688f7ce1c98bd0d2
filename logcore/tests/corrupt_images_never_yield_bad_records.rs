//! Property test of the decoder: random bit flips, byte smears and
//! truncations of a real log image (wrapped ring, padding, several
//! incarnations). Whatever the damage, parsing and scanning never panic,
//! never read out of bounds, and never return a record whose CRC32C (checked
//! here independently) fails or whose header disagrees with its place.

mod common;

use logcore::{crc_salt, Image, RecordKind, ScanConfig, HEADER_LEN};
use proptest::prelude::*;
use std::sync::OnceLock;

/// A log image that lapped its 8 KiB ring and was reopened twice.
fn pristine() -> &'static Vec<u8> {
    static IMG: OnceLock<Vec<u8>> = OnceLock::new();
    IMG.get_or_init(|| {
        let (_d, path, mut log) = common::new_log(4096 + 8192);
        let mut seed = 0;
        for _round in 0..3 {
            for _ in 0..40 {
                seed += 1;
                let p = common::payload(seed, 600);
                if log.append(&p).is_err() {
                    let t = log.persist_all().unwrap();
                    log.advance_head(t.pos).unwrap();
                    log.append(&p).unwrap();
                }
            }
            log.persist_all().unwrap();
            drop(log);
            log = logcore::Log::open(&path, logcore::RegionKind::File).unwrap();
        }
        // Leave some appended-but-unpersisted records after the tail.
        for _ in 0..3 {
            seed += 1;
            let _ = log.append(&common::payload(seed, 300));
        }
        std::mem::forget(log); // crash: no clean shutdown
        std::fs::read(&path).unwrap()
    })
}

/// Independent check of everything a returned record claims.
fn check_scan(bytes: &[u8], cfg: ScanConfig) {
    let Ok(scan) = logcore::Scan::new(bytes, cfg) else {
        return;
    };
    let g = cfg.geometry;
    for rec in scan {
        let Ok(r) = rec else { break };
        let off = (g.ring_offset + r.pos % g.capacity) as usize;
        let hdr = &bytes[off..off + HEADER_LEN];
        let mut payload_crc = cfg.salt;
        if r.kind != RecordKind::Padding {
            let body = &bytes[off + HEADER_LEN..off + HEADER_LEN + r.payload.len()];
            assert_eq!(body, r.payload, "payload is the bytes after the header");
            payload_crc = crc32c::crc32c_append(cfg.salt, body);
        }
        let crc = crc32c::crc32c_append(payload_crc, &hdr[4..]);
        let stored = u32::from_le_bytes(hdr[0..4].try_into().unwrap());
        assert_eq!(
            crc, stored,
            "returned record at pos {} fails its CRC",
            r.pos
        );
        assert_eq!(u64::from_le_bytes(hdr[24..32].try_into().unwrap()), r.pos);
        assert_eq!(u64::from_le_bytes(hdr[16..24].try_into().unwrap()), r.lsn.0);
        assert!(r.end() <= cfg.start.pos + g.capacity);
    }
    check_copying_scan_agrees(bytes, cfg);
}

/// The copying scan (`next_record`, what a mapped region is read with)
/// returns what the in-place iterator returns, error and stop included.
fn check_copying_scan_agrees(bytes: &[u8], cfg: ScanConfig) {
    type Seen = Result<(u64, u64, RecordKind, Vec<u8>), logcore::ScanError>;
    let (Ok(mut in_place), Ok(mut copying)) = (
        logcore::Scan::new(bytes, cfg),
        logcore::Scan::over(bytes, cfg),
    ) else {
        return;
    };
    let a: Vec<Seen> = in_place
        .by_ref()
        .map(|r| r.map(|r| (r.pos, r.lsn.0, r.kind, r.payload.to_vec())))
        .collect();
    let mut b: Vec<Seen> = Vec::new();
    while let Some(r) = copying.next_record() {
        b.push(r.map(|r| (r.pos, r.lsn.0, r.kind, r.payload.to_vec())));
    }
    assert_eq!(a, b);
    assert_eq!(in_place.stop(), copying.stop());
    assert_eq!(in_place.cursor(), copying.cursor());
}

fn check_image(bytes: &[u8]) {
    let Ok(img) = Image::parse(bytes) else { return };
    let cfg = ScanConfig::for_image(img.superblock(), img.control());
    check_scan(bytes, cfg);
    let _ = img.verify();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn bit_flips_never_yield_bad_records(
        flips in proptest::collection::vec((0usize..12288, 0u8..8), 1..16),
    ) {
        let mut b = pristine().clone();
        for (off, bit) in flips {
            let i = off % b.len();
            b[i] ^= 1 << bit;
        }
        check_image(&b);
    }

    #[test]
    fn smears_and_truncations_never_yield_bad_records(
        at in 0usize..12288,
        len in 0usize..600,
        fill in any::<u8>(),
        cut in proptest::option::of(0usize..12288),
    ) {
        let mut b = pristine().clone();
        let end = (at + len).min(b.len());
        b[at.min(end)..end].fill(fill);
        if let Some(c) = cut {
            b.truncate(c);
        }
        check_image(&b);
    }

    #[test]
    fn arbitrary_configs_over_arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
        ring_offset in 0u64..4096,
        capacity in 0u64..4096,
        start in 0u64..10_000,
        lsn in 0u64..5,
        tail in 0u64..20_000,
    ) {
        let cfg = ScanConfig {
            geometry: logcore::Geometry { ring_offset, capacity },
            salt: crc_salt(&[0; 16]),
            start: logcore::Cursor { pos: start, lsn: logcore::Lsn(lsn) },
            persisted_tail: tail,
            max_epoch: u32::MAX,
            incarnation: None,
        };
        check_scan(&bytes, cfg);
        check_image(&bytes);
    }
}

#[test]
fn pristine_image_scans_to_its_tail() {
    let b = pristine();
    let img = Image::parse(b).unwrap();
    let s = img.verify().unwrap();
    assert!(s.records > 10);
    assert!(
        s.stop.at.pos > img.control().persisted.pos,
        "unpersisted records were found too"
    );
}
