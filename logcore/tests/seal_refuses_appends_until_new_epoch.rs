//! Sealing persists a seal record and refuses appends (also after reopen)
//! until a newer epoch begins; epochs never go back; records carry their
//! epoch and the scan enforces it.

mod common;

use logcore::{AppendError, EpochError, Log, LogState, RecordKind, RegionKind, SealError};

#[test]
fn seal_refuses_appends_until_new_epoch() {
    let (_d, path, log) = common::new_log(1 << 16);
    log.append(b"e1").unwrap();
    let seal = log.seal().unwrap();
    assert_eq!(seal.0, 2);
    assert!(matches!(
        log.append(b"late"),
        Err(AppendError::Sealed { epoch: 1 })
    ));
    assert_eq!(log.control().state(), LogState::Sealed);
    assert!(matches!(
        log.seal(),
        Err(SealError::Append(AppendError::Sealed { epoch: 1 }))
    ));
    drop(log);

    let log = Log::open(&path, RegionKind::File).unwrap();
    let e = log.append(b"late").unwrap_err();
    assert!(e.to_string().contains("sealed at epoch 1"), "{e}");
    assert!(matches!(
        log.begin_epoch(1),
        Err(EpochError::NotNewer {
            current: 1,
            asked: 1
        })
    ));
    log.begin_epoch(2).unwrap();
    let l = log.append(b"e2").unwrap();
    log.persist_to(l).unwrap();
    drop(log);

    let bytes = std::fs::read(&path).unwrap();
    let img = logcore::Image::parse(&bytes).unwrap();
    let recs: Vec<_> = img
        .scan()
        .unwrap()
        .map(|r| r.unwrap())
        .map(|r| (r.lsn.0, r.kind, r.epoch))
        .collect();
    assert_eq!(
        recs,
        vec![
            (1, RecordKind::Data, 1),
            (2, RecordKind::Seal, 1),
            (3, RecordKind::Data, 2)
        ]
    );
}
