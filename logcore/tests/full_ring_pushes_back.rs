//! A full ring returns `AppendError::Full` with the numbers, overwrites
//! nothing, and accepts appends again once the head advances.

mod common;

use logcore::AppendError;

#[test]
fn full_ring_pushes_back() {
    let (_dir, path, log) = common::new_log(4096 + 4096);
    let p = [7u8; 500]; // 576-byte records: 7 fit in 4096
    let mut lsns = Vec::new();
    let err = loop {
        match log.append(&p) {
            Ok(l) => lsns.push(l),
            Err(e) => break e,
        }
    };
    assert_eq!(lsns.len(), 7);
    match &err {
        AppendError::Full {
            needed_bytes,
            free_bytes,
            head,
            tail,
        } => {
            assert!(needed_bytes > free_bytes);
            assert_eq!(*head, 0);
            assert_eq!(*tail, 7 * 576);
        }
        e => panic!("expected Full, got {e}"),
    }
    assert!(err.to_string().contains("advance the head"), "{err}");
    let persisted = log.persist_all().unwrap();
    // Batch of two must not fit either and must write nothing.
    assert!(matches!(
        log.append_batch(&[&p, &p]),
        Err(AppendError::Full { .. })
    ));
    assert_eq!(log.tail(), persisted);
    log.advance_head(persisted.pos).unwrap();
    let a = log.append_batch(&[&p, &p]).unwrap();
    assert_eq!(a.lsn.0, 9);
    log.persist_to(a.lsn).unwrap();
    drop(log);
    let recs = common::records_of(&std::fs::read(&path).unwrap());
    assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![8, 9]);
}
