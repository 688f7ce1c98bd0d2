//! Four threads append and persist concurrently: LSNs are unique and dense,
//! each thread's records are in its own order, persist_to(lsn) covers lsn
//! when it returns, and the reopened log holds exactly what was appended.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use logcore::{Log, RegionKind};

#[test]
fn concurrent_appenders_group_commit() {
    let (_d, path, log) = common::new_log(4 << 20);
    let all = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (log, all) = (&log, &all);
            s.spawn(move || {
                let mut mine = Vec::new();
                for k in 0..500u64 {
                    let p = common::payload((t << 32) | k, 300);
                    let lsn = log.append(&p).unwrap();
                    if k % 10 == 0 {
                        let d = log.persist_to(lsn).unwrap();
                        assert!(d.lsn > lsn, "persist_to returned before covering {lsn}");
                        assert!(log.control().persisted_tail().unwrap().lsn > lsn);
                    }
                    mine.push((lsn.0, p));
                }
                assert!(mine.windows(2).all(|w| w[0].0 < w[1].0));
                let mut all = all.lock().unwrap();
                for (l, p) in mine {
                    assert!(all.insert(l, p).is_none(), "duplicate LSN {l}");
                }
            });
        }
    });
    log.persist_all().unwrap();
    drop(log);
    let all = all.into_inner().unwrap();
    assert_eq!(
        all.keys().copied().collect::<Vec<_>>(),
        (1..=2000).collect::<Vec<_>>()
    );
    let log = Log::open(&path, RegionKind::File).unwrap();
    assert_eq!(log.recovery().records, 2000);
    drop(log);
    let got: BTreeMap<_, _> = common::records_of(&std::fs::read(&path).unwrap())
        .into_iter()
        .collect();
    assert_eq!(got, all);
}
