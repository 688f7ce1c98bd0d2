//! A region holding something else, or a log whose superblock was damaged,
//! is refused with a typed error; `create` refuses to overwrite a log.

mod common;

use logcore::{CreateOptions, LayoutError, Log, OpenError, RegionKind};

#[test]
fn foreign_superblock_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign");
    std::fs::write(&path, vec![0xABu8; 1 << 16]).unwrap();
    let e = Log::open(&path, RegionKind::File).unwrap_err();
    assert!(
        matches!(e, OpenError::Layout { source: LayoutError::ForeignMagic { found }, .. } if found == [0xAB; 8]),
        "{e}"
    );
    assert!(e.to_string().contains("tg-log create"), "{e}");

    // A log with one flipped superblock bit.
    let (_d, path, log) = common::new_log(1 << 16);
    drop(log);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[60] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let e = Log::open(&path, RegionKind::File).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Layout {
                source: LayoutError::SuperblockChecksum { .. },
                ..
            }
        ),
        "{e}"
    );
    bytes[60] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let opts = CreateOptions {
        kind: RegionKind::File,
        ..CreateOptions::default()
    };
    let e = Log::create(&path, 1 << 16, &opts).unwrap_err();
    assert!(matches!(e, OpenError::AlreadyFormatted { .. }), "{e}");
    assert!(e.to_string().contains("--force"));
    Log::open(&path, RegionKind::File).unwrap();
}
