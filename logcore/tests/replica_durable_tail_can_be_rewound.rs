//! A replica that finds its recorded durable tail past its last intact
//! record lowers it with `Control::rewind_mirror_durable`; `record_mirror`
//! cannot (a reader takes the slot with the larger position). The lowered
//! tail is what a reader of the live block and of the image sees, and the
//! tail moves forward again as usual afterwards.

mod common;

use logcore::{Control, ControlSnapshot, Cursor, Lsn, MirrorProgress, Region, RegionKind};

#[test]
fn replica_durable_tail_can_be_rewound() {
    let (_d, path, log) = common::new_log(4096 + 65536);
    let mut ends = Vec::new();
    for i in 0..20u64 {
        log.append(&common::payload(i, 200)).unwrap();
        ends.push(log.persist_all().unwrap());
    }
    let (head, tail) = (log.head(), log.persisted());
    drop(log);
    let region = Region::open(&path, RegionKind::File).unwrap();
    let c = Control::new(&region).unwrap();
    assert_eq!(c.persisted_tail().unwrap(), tail);
    let back = ends[4];
    let (epoch, incarnation) = (c.epoch(), c.incarnation());
    let mirror = |durable: Cursor| MirrorProgress {
        head,
        durable,
        epoch,
        incarnation,
    };
    // The forward-only path leaves the larger tail in place.
    c.record_mirror(&mirror(back)).unwrap();
    assert_eq!(
        c.persisted_tail().unwrap(),
        tail,
        "record_mirror cannot lower it"
    );

    c.rewind_mirror_durable(back).unwrap();
    assert_eq!(c.persisted_tail().unwrap(), back);
    assert_eq!(c.head().unwrap(), head, "the head is left alone");
    let mut bytes = vec![0u8; region.len()];
    region.read_at(0, &mut bytes);
    let snap = ControlSnapshot::decode(&bytes).unwrap();
    assert_eq!(snap.persisted, back);

    // Rewinding to the head (nothing intact) works, and so does moving on.
    let c = Control::new(&region).unwrap();
    c.rewind_mirror_durable(head).unwrap();
    assert_eq!(c.persisted_tail().unwrap(), head);
    c.record_mirror(&mirror(ends[9])).unwrap();
    assert_eq!(c.persisted_tail().unwrap(), ends[9]);
    assert!(ends[9].lsn > Lsn::FIRST);
}

#[test]
#[should_panic(expected = "behind the head")]
fn rewinding_behind_the_head_is_a_bug() {
    let (_d, path, log) = common::new_log(4096 + 65536);
    for i in 0..10u64 {
        log.append(&common::payload(i, 200)).unwrap();
    }
    let t = log.persist_all().unwrap();
    log.advance_head(t.pos).unwrap();
    drop(log);
    let region = Region::open(&path, RegionKind::File).unwrap();
    let c = Control::new(&region).unwrap();
    let _ = c.rewind_mirror_durable(Cursor {
        pos: 0,
        lsn: Lsn::FIRST,
    });
}
