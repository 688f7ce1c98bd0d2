//! Write-ahead commits through `Wal` and replay through `Apply`: the state
//! rebuilt from a checkpoint after reopen equals the state before; a
//! checkpoint that was reclaimed or lies past the tail is refused.

mod common;

use logcore::{Apply, Log, Lsn, RegionKind, ReplayError, Wal};

/// Sums the first byte of every payload; refuses payload [0xFF].
#[derive(Debug, Default, PartialEq, Eq)]
struct Sum {
    total: u64,
    applied: Vec<u64>,
}

impl Apply for Sum {
    type Error = String;
    fn apply(&mut self, lsn: Lsn, payload: &[u8]) -> Result<(), String> {
        if payload == [0xFF] {
            return Err("0xFF is not a number".into());
        }
        self.total += u64::from(payload[0]);
        self.applied.push(lsn.0);
        Ok(())
    }
}

#[test]
fn replay_from_checkpoint_rebuilds_state() {
    let (_d, path, log) = common::new_log(1 << 16);
    let mut wal = Wal::recover(log, Sum::default(), Lsn::FIRST).unwrap();
    for i in 1..=50u8 {
        wal.commit(&[i]).unwrap();
    }
    assert!(matches!(
        wal.commit(&[0xFF]),
        Err(logcore::CommitError::Apply { lsn: Lsn(51), .. })
    ));
    let before = wal.state().total;
    let (log, _) = wal.into_parts();
    drop(log);

    // Full replay refuses LSN 51, as commit did: the state machine must be
    // total over what it accepted into the log.
    let mut log = Log::open(&path, RegionKind::File).unwrap();
    let mut s = Sum::default();
    assert!(matches!(
        log.replay(Lsn::FIRST, &mut s),
        Err(ReplayError::Apply { lsn: Lsn(51), .. })
    ));
    assert_eq!(s.total, before);

    // Checkpoint holding LSNs 1..=20: replay from 21.
    let mut s = Sum {
        total: (1..=20).sum(),
        applied: vec![],
    };
    let _ = log.replay(Lsn(21), &mut s);
    assert_eq!(s.total, before);
    assert_eq!(s.applied.first(), Some(&21));

    assert!(matches!(
        log.replay(Lsn(99), &mut Sum::default()),
        Err(ReplayError::CheckpointAhead {
            next_lsn: Lsn(52),
            ..
        })
    ));
    let p = log.persisted();
    log.advance_head(p.pos).unwrap();
    let e = log.replay(Lsn(10), &mut Sum::default()).unwrap_err();
    assert!(
        matches!(e, ReplayError::CheckpointReclaimed { head: Lsn(52), .. }),
        "{e}"
    );
    assert!(e.to_string().contains("restore a newer checkpoint"));
}
