//! A replica formats its own (larger) region with the primary's UUID and
//! ring capacity; copying the primary's ring bytes into it (what the RDMA
//! mirror does) gives an image the replica scans to the same records, even
//! though its own control block has never heard of them. A capacity that
//! does not fit the region is refused.

mod common;

use logcore::{CreateOptions, Image, LayoutError, Log, OpenError, RegionKind, Scan, ScanConfig};

#[test]
fn replica_mirror_of_the_ring_scans_the_same() {
    let (_d, ppath, primary) = common::new_log(4096 + 65536);
    let mut want = Vec::new();
    for i in 0..300u64 {
        let p = common::payload(i, 400);
        let a = match primary.append_record(&p) {
            Ok(a) => a,
            Err(_) => {
                let t = primary.persist_all().unwrap();
                primary.advance_head(t.pos).unwrap();
                want.clear();
                primary.append_record(&p).unwrap()
            }
        };
        want.push((a.lsn.0, p));
    }
    let head = primary.head();
    let sb = primary.superblock().clone();
    primary.persist_all().unwrap();
    drop(primary);

    let dir = tempfile::tempdir().unwrap();
    let rpath = dir.path().join("replica.log");
    let opts = CreateOptions {
        kind: RegionKind::File,
        uuid: Some(sb.uuid),
        capacity: Some(sb.geometry.capacity),
        ..CreateOptions::default()
    };
    let replica = Log::create(&rpath, 1 << 20, &opts).unwrap();
    assert_eq!(replica.geometry(), sb.geometry);
    drop(replica);
    let e = Log::create(
        &rpath,
        1 << 20,
        &CreateOptions {
            capacity: Some(2 << 20),
            overwrite: true,
            ..opts.clone()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Layout {
                source: LayoutError::GeometryMismatch {
                    field: "ring_capacity",
                    ..
                },
                ..
            }
        ),
        "{e}"
    );
    let replica = Log::create(
        &rpath,
        1 << 20,
        &CreateOptions {
            overwrite: true,
            ..opts
        },
    )
    .unwrap();
    drop(replica);

    // The mirror: ring bytes only, same offsets.
    let pbytes = std::fs::read(&ppath).unwrap();
    let mut rbytes = std::fs::read(&rpath).unwrap();
    let g = sb.geometry;
    let ring = g.ring_offset as usize..(g.ring_offset + g.capacity) as usize;
    rbytes[ring.clone()].copy_from_slice(&pbytes[ring]);

    let img = Image::parse(&rbytes).unwrap();
    // The replica scans from the head the primary told it about.
    let cfg = ScanConfig {
        start: head,
        persisted_tail: head.pos,
        incarnation: None,
        ..ScanConfig::for_image(img.superblock(), img.control())
    };
    let got: Vec<_> = Scan::new(&rbytes, cfg)
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|r| r.kind == logcore::RecordKind::Data)
        .map(|r| (r.lsn.0, r.payload.to_vec()))
        .collect();
    assert_eq!(got, want);
}
