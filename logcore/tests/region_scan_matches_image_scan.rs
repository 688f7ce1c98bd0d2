//! A mapped region scanned by copying (`Image::read`, `Scan::next_record`)
//! yields exactly what a byte image of it yields in place (`Image::parse`,
//! the iterator): the same records, payloads and stop, for payloads that
//! fit the header's cache line (copied with it) and larger ones, across a
//! wrap of the ring.

mod common;

use logcore::{Image, Region, RegionKind};

#[test]
fn region_scan_matches_image_scan() {
    let (_dir, path, log) = common::new_log(4096 + 64 * 1024);
    let mut seed = 0u64;
    let mut starts = std::collections::VecDeque::new();
    // Fill past one lap so the ring wraps with padding, reclaiming only the
    // oldest records so that most of a ring stays to be scanned.
    let cap = log.geometry().capacity;
    // Bounded: each lap takes about 100 records.
    for _ in 0..5000 {
        let (head, tail) = (log.head().pos, log.tail().pos);
        if seed > 0 && head / cap != tail / cap && tail - head > cap / 2 {
            break; // the live records straddle the ring end
        }
        seed += 1;
        let p = common::payload(seed, if seed.is_multiple_of(3) { 2000 } else { 32 });
        let a = match log.append_record(&p) {
            Ok(a) => a,
            Err(logcore::AppendError::Full { .. }) => {
                log.persist_all().unwrap();
                for _ in 0..10 {
                    starts.pop_front();
                }
                log.advance_head(starts[0]).unwrap();
                log.append_record(&p).unwrap()
            }
            Err(e) => panic!("{e}"),
        };
        starts.push_back(a.end - logcore::record_len(p.len() as u64));
        if seed.is_multiple_of(7) {
            log.persist_all().unwrap();
        }
    }
    log.persist_all().unwrap();
    drop(log);

    let region = Region::open(&path, RegionKind::File).unwrap();
    let mut bytes = vec![0u8; region.len()];
    region.read_at(0, &mut bytes);

    let img = Image::parse(&bytes).unwrap();
    let mut in_place = img.scan().unwrap();
    let want: Vec<_> = in_place
        .by_ref()
        .map(|r| {
            let r = r.unwrap();
            (r.lsn, r.pos, r.kind, r.epoch, r.crc, r.payload.to_vec())
        })
        .collect();

    let live = Image::read(&region).unwrap();
    assert_eq!(live.superblock(), img.superblock());
    assert_eq!(live.control(), img.control());
    let mut copied = live.scan().unwrap();
    let mut got = Vec::new();
    while let Some(r) = copied.next_record() {
        let r = r.unwrap();
        got.push((r.lsn, r.pos, r.kind, r.epoch, r.crc, r.payload.to_vec()));
    }
    assert!(want.len() > 100, "{} records", want.len());
    assert!(
        want.iter().any(|r| r.2 == logcore::RecordKind::Padding),
        "the ring wrapped"
    );
    assert!(want.iter().any(|r| r.5.len() <= 32) && want.iter().any(|r| r.5.len() > 32));
    assert_eq!(got, want);
    assert_eq!(copied.stop(), in_place.stop());
    assert_eq!(copied.cursor(), in_place.cursor());
    assert_eq!(live.verify().unwrap(), img.verify().unwrap());
}
