//! `advance_head` only accepts record boundaries at or before the persisted
//! tail and never moves back; `persist_to` refuses an LSN never appended.
//! Every refusal leaves the head where it was.

mod common;

use logcore::{HeadError, Lsn, PersistError};

#[test]
fn head_moves_only_forward_over_persisted_records() {
    let (_d, _path, log) = common::new_log(1 << 16);
    let a = log.append_record(&[1u8; 100]).unwrap(); // [0, 192)
    let b = log.append_record(&[2u8; 10]).unwrap(); // [192, 256)
    let e = log.advance_head(a.end).unwrap_err();
    assert!(
        matches!(
            e,
            HeadError::BeyondPersisted {
                pos: 192,
                persisted_tail: 0
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("persist first"));

    let e = log.persist_to(Lsn(3)).unwrap_err();
    assert!(
        matches!(
            e,
            PersistError::NotAppended {
                lsn: Lsn(3),
                next_lsn: Lsn(3)
            }
        ),
        "{e}"
    );
    log.persist_to(b.lsn).unwrap();

    let e = log.advance_head(64).unwrap_err(); // inside record A's payload
    assert!(matches!(e, HeadError::NotRecordBoundary { pos: 64 }), "{e}");
    let e = log.advance_head(100).unwrap_err(); // not even aligned
    assert!(
        matches!(e, HeadError::NotRecordBoundary { pos: 100 }),
        "{e}"
    );
    assert_eq!(log.head().pos, 0);

    let h = log.advance_head(a.end).unwrap();
    assert_eq!((h.pos, h.lsn), (192, Lsn(2)));
    assert_eq!(
        log.control().head().unwrap(),
        h,
        "head is persisted in the control block"
    );
    let e = log.advance_head(0).unwrap_err();
    assert!(
        matches!(e, HeadError::Backwards { pos: 0, head: 192 }),
        "{e}"
    );
    let h = log.advance_head(b.end).unwrap();
    assert_eq!((h.pos, h.lsn), (256, Lsn(3)));
}
