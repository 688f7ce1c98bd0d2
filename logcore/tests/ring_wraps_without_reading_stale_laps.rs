//! A small ring lapped many times: every reopen finds exactly the records
//! between head and tail, never a stale record from an earlier lap, and
//! padding at the ring end does not consume LSNs.

mod common;

use logcore::{Log, Lsn, RecordKind, RegionKind};

#[test]
fn ring_wraps_without_reading_stale_laps() {
    // 8 KiB ring: 4096 (metadata) + 8192.
    let (_dir, path, log) = common::new_log(4096 + 8192);
    let cap = log.geometry().capacity;
    assert_eq!(cap, 8192);
    let mut live: std::collections::VecDeque<(u64, u64, Vec<u8>)> = Default::default();
    let mut log = Some(log);
    for i in 0..2000u64 {
        let l = log.as_ref().unwrap();
        let p = common::payload(i, 900);
        let a = loop {
            match l.append_record(&p) {
                Ok(a) => break a,
                Err(logcore::AppendError::Full { .. }) => {
                    // Reclaim the oldest record: the head moves to the next.
                    l.persist_all().unwrap();
                    let (_, _, _) = live.pop_front().unwrap();
                    let next = live.front().map_or(l.tail().pos, |r| r.0);
                    l.advance_head(next).unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        };
        let rec_pos = a.end - logcore::record_len(p.len() as u64);
        live.push_back((rec_pos, a.lsn.0, p));
        assert_eq!(a.lsn, Lsn(i + 1), "padding must not consume LSNs");
        if i % 97 == 0 {
            // Reopen mid-stream (clean close).
            drop(log.take());
            log = Some(Log::open(&path, RegionKind::File).unwrap());
            let bytes = std::fs::read(&path).unwrap();
            let got = common::records_of(&bytes);
            let want: Vec<_> = live.iter().map(|(_, l, p)| (*l, p.clone())).collect();
            assert_eq!(got, want, "after {i} appends");
        }
    }
    let l = log.take().unwrap();
    assert!(l.tail().pos > 20 * cap, "the ring was lapped many times");
    drop(l);
    let bytes = std::fs::read(&path).unwrap();
    let img = logcore::Image::parse(&bytes).unwrap();
    let kinds: Vec<_> = img.scan().unwrap().map(|r| r.unwrap().kind).collect();
    assert!(kinds
        .iter()
        .all(|k| matches!(k, RecordKind::Data | RecordKind::Padding)));
}
