//! A record larger than half the ring is refused with the limit in the
//! message; the log is unchanged.

mod common;

use logcore::AppendError;

#[test]
fn oversize_record_is_rejected() {
    let (_dir, _path, log) = common::new_log(4096 + 8192);
    let max = log.max_payload();
    assert_eq!(max, 4096 - 32);
    let before = log.tail();
    let big = vec![1u8; max as usize + 1];
    let e = log.append(&big).unwrap_err();
    assert!(
        matches!(e, AppendError::RecordTooLarge { len_bytes, max_bytes } if len_bytes == max + 1 && max_bytes == max),
        "{e}"
    );
    assert!(e.to_string().contains("split it or create a larger log"));
    assert!(matches!(
        log.append_batch(&[b"ok", &big]),
        Err(AppendError::RecordTooLarge { .. })
    ));
    assert!(matches!(
        log.append_batch(&[]),
        Err(AppendError::EmptyBatch)
    ));
    assert_eq!(log.tail(), before);
    // The largest allowed record fits even at an awkward ring offset.
    log.append(&[0u8; 100]).unwrap();
    log.append(&vec![2u8; max as usize]).unwrap();
}
