//! A log file that was truncated (region shorter than its superblock says)
//! is refused with the field, expected and found values.

mod common;

use logcore::{LayoutError, Log, OpenError, RegionKind};

#[test]
fn geometry_mismatch_is_rejected() {
    let (_d, path, log) = common::new_log(1 << 20);
    log.append(b"x").unwrap();
    drop(log);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(1 << 19).unwrap();
    drop(f);
    let e = Log::open(&path, RegionKind::File).unwrap_err();
    match &e {
        OpenError::Layout {
            source:
                LayoutError::GeometryMismatch {
                    field,
                    expected,
                    got,
                },
            ..
        } => {
            assert_eq!(*field, "region_len");
            assert_eq!((*expected, *got), (1 << 19, 1 << 20));
        }
        e => panic!("expected GeometryMismatch, got {e}"),
    }
    assert!(e.to_string().contains("resized"), "{e}");
}
