//! A region too small for superblock + control block + minimum ring is
//! refused at create and at open, with the minimum in the message.

use logcore::{CreateOptions, LayoutError, Log, OpenError, RegionKind};

#[test]
fn region_too_small_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.log");
    let opts = CreateOptions {
        kind: RegionKind::File,
        ..CreateOptions::default()
    };
    let e = Log::create(&path, 6000, &opts).unwrap_err();
    match &e {
        OpenError::Layout {
            source:
                LayoutError::TooSmall {
                    len_bytes,
                    min_bytes,
                },
            ..
        } => {
            assert_eq!((*len_bytes, *min_bytes), (6000, 8192));
        }
        e => panic!("expected TooSmall, got {e}"),
    }
    assert!(e.to_string().contains("use a larger region"), "{e}");
    assert!(e.to_string().contains("small.log"), "{e}");

    std::fs::write(&path, [0u8; 100]).unwrap();
    let e = Log::open(&path, RegionKind::Auto).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Layout {
                source: LayoutError::TooSmall { .. },
                ..
            }
        ),
        "{e}"
    );
}
