//! Asking for `fsdax` on a filesystem without DAX (tmpfs, ext4 on a disk)
//! gives `MapSyncUnsupported` with the remedy, while `auto` falls back to a
//! plain file with msync persistence.

use logcore::{CreateOptions, Log, OpenError, Persistence, Region, RegionError, RegionKind};

#[test]
fn fsdax_without_dax_mount_is_refused() {
    for dir in [std::env::temp_dir(), "/dev/shm".into()] {
        if !dir.is_dir() {
            continue;
        }
        let dir = tempfile::tempdir_in(dir).unwrap();
        let path = dir.path().join("fsdax.log");
        let opts = CreateOptions {
            kind: RegionKind::FsDax,
            ..CreateOptions::default()
        };
        let e = Log::create(&path, 1 << 16, &opts).unwrap_err();
        match &e {
            OpenError::Region(RegionError::MapSyncUnsupported { source, .. }) => {
                assert!(matches!(
                    source.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EINVAL)
                ));
            }
            e => panic!("expected MapSyncUnsupported, got {e}"),
        }
        assert!(e.to_string().contains("mount it with dax"), "{e}");
        let r = Region::open(&path, RegionKind::Auto).unwrap();
        assert_eq!(r.kind(), RegionKind::File);
        assert_eq!(r.persistence(), Persistence::Msync);
    }
}
