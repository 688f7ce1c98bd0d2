//! A control block whose position pairs are torn in both slots, or whose head
//! lies past its persisted tail, and a superblock with impossible geometry,
//! are refused with typed layout errors instead of being scanned.

mod common;

use logcore::{LayoutError, Log, OpenError, RegionKind, CONTROL_OFFSET};

fn open_err(path: &std::path::Path) -> LayoutError {
    match Log::open(path, RegionKind::File).unwrap_err() {
        OpenError::Layout { source, .. } => source,
        e => panic!("expected a layout error, got {e}"),
    }
}

#[test]
fn damaged_control_block_is_rejected() {
    let (_d, path, log) = common::new_log(1 << 16);
    log.append(b"x").unwrap();
    drop(log);
    let good = std::fs::read(&path).unwrap();

    // Head pair (control offset 256): both slots' check words zeroed.
    let mut b = good.clone();
    for slot in [256 + 16, 256 + 24 + 16] {
        let o = CONTROL_OFFSET + slot;
        b[o..o + 8].fill(0);
    }
    std::fs::write(&path, &b).unwrap();
    let e = open_err(&path);
    assert_eq!(
        e,
        LayoutError::ControlTorn {
            pair: "head",
            offset: 512
        }
    );
    assert!(e.to_string().contains("restore the region from a replica"));

    // Swap the head and persisted-tail pairs: each slot stays valid, but
    // the head (pos 64) now lies after the persisted tail (pos 0).
    let mut b = good.clone();
    let (p, h) = (CONTROL_OFFSET + 128, CONTROL_OFFSET + 256);
    b[h..h + 48].copy_from_slice(&good[p..p + 48]);
    b[p..p + 48].copy_from_slice(&good[h..h + 48]);
    std::fs::write(&path, &b).unwrap();
    match open_err(&path) {
        LayoutError::ControlInconsistent {
            head: 64,
            persisted_tail: 0,
            ..
        } => {}
        e => panic!("expected ControlInconsistent, got {e}"),
    }

    // Superblock claiming a capacity that is not a multiple of 64 (with a
    // correct checksum, so only the geometry rule catches it).
    let mut b = good.clone();
    b[64..72].copy_from_slice(&5000u64.to_le_bytes());
    let crc = crc32c::crc32c(&b[..124]);
    b[124..128].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    match open_err(&path) {
        LayoutError::BadGeometry {
            field: "ring_capacity",
            value: 5000,
            ..
        } => {}
        e => panic!("expected BadGeometry, got {e}"),
    }
}
