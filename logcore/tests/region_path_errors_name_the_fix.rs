//! Paths that cannot be a region give typed errors naming the path and the
//! fix: a directory, a character device that is not devdax, a kind that does
//! not match the path, and a read-only mapping handed to the writer.

mod common;

use logcore::{Access, Log, OpenError, Region, RegionError, RegionKind};

#[test]
fn region_path_errors_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let e = Region::open_with(dir.path(), RegionKind::Auto, Access::ReadOnly).unwrap_err();
    assert!(matches!(e, RegionError::UnsupportedPath { .. }), "{e}");
    assert!(e.to_string().contains("/dev/daxX.Y"), "{e}");

    // /dev/null is a character device but not device-dax: no sysfs size.
    let e = Region::open_with("/dev/null", RegionKind::Auto, Access::ReadOnly).unwrap_err();
    match &e {
        RegionError::DevDaxSysfs { sysfs, .. } => {
            assert!(sysfs.starts_with("/sys/dev/char/"), "{}", sysfs.display());
        }
        e => panic!("expected DevDaxSysfs, got {e}"),
    }
    assert!(
        e.to_string().contains("ndctl create-namespace -m devdax"),
        "{e}"
    );

    let e = Region::open_with("/dev/null", RegionKind::File, Access::ReadOnly).unwrap_err();
    assert!(
        matches!(e, RegionError::KindMismatch { asked: "file", .. }),
        "{e}"
    );

    let (_d, path, log) = common::new_log(1 << 16);
    drop(log);
    let ro = Region::open_with(&path, RegionKind::File, Access::ReadOnly).unwrap();
    let e = Log::from_region(ro).unwrap_err();
    assert!(
        matches!(e, OpenError::Region(RegionError::ReadOnly { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("Access::ReadWrite"), "{e}");
}
