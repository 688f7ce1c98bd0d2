//! `tg-replica promote` on a real region file (host tier: it needs no RDMA
//! device): refused while the stream is unsealed (the primary may hold
//! records the replica lacks), refused on a replica that never mirrored a
//! log; on a sealed replica it begins the next epoch on the region, which
//! then opens as a primary log holding every record, and the epoch file
//! records the new, unsealed epoch; `--force` promotes an unsealed one.

use std::path::Path;
use std::process::{Command, Output};

use logcore::{CreateOptions, Log, RegionKind};
use replica::epoch::{self, EpochState};

const REGION_LEN: u64 = 1 << 20;

fn config(dir: &Path) -> std::path::PathBuf {
    testkit::write_key(&dir.join("host-a.key"), 7);
    let yaml = format!(
        "log:\n  path: {dir}/unused.log\n  size-bytes: {REGION_LEN}\ndevice:\n  name: rxe0\n\
         persistence: apm\nreplica:\n  listen: 127.0.0.1:1\n  region: {dir}/replica.region\n\
         \x20 epoch-file: epoch\n  allow:\n    - name: host-a\n      key-file: host-a.key\n",
        dir = dir.display()
    );
    let cfg = dir.join("tailguard.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    cfg
}

fn promote(cfg: &Path, force: bool) -> Output {
    let mut c = Command::new(testkit::bin("tg-replica"));
    c.args(["promote", "--config"]).arg(cfg);
    if force {
        c.arg("--force");
    }
    c.output().unwrap()
}

/// A replica region holding 100 records of a log at epoch 1.
fn mirrored(dir: &Path) -> ([u8; 16], logcore::Cursor) {
    let log = Log::create(
        dir.join("replica.region"),
        REGION_LEN,
        &CreateOptions {
            kind: RegionKind::File,
            ..CreateOptions::default()
        },
    )
    .unwrap();
    for i in 0..100u32 {
        log.append(&i.to_le_bytes().repeat(20)).unwrap();
    }
    let tail = log.persist_all().unwrap();
    let uuid = log.superblock().uuid;
    (uuid, tail)
}

#[test]
fn promote_needs_a_seal_or_force_and_begins_the_next_epoch() {
    let dir = testkit::scratch("promote");
    let cfg = config(&dir);
    let (uuid, tail) = mirrored(&dir);
    let epoch_file = dir.join("epoch");

    // Never admitted a writer: nothing to promote.
    let out = promote(&cfg, false);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("never mirrored a log"),
        "{out:?}"
    );

    // Admitted epoch 1, not sealed: refused, and nothing changes.
    let unsealed = EpochState {
        epoch: 1,
        sealed: false,
        uuid: Some(uuid),
    };
    epoch::store(&epoch_file, &unsealed).unwrap();
    let out = promote(&cfg, false);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not sealed") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(epoch::load(&epoch_file).unwrap(), unsealed);

    // Sealed: promoted to epoch 2.
    epoch::store(
        &epoch_file,
        &EpochState {
            sealed: true,
            ..unsealed
        },
    )
    .unwrap();
    let out = promote(&cfg, false);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("epoch 2"), "{said}");
    assert_eq!(
        epoch::load(&epoch_file).unwrap(),
        EpochState {
            epoch: 2,
            sealed: false,
            uuid: Some(uuid)
        }
    );
    let log = Log::open(dir.join("replica.region"), RegionKind::File).unwrap();
    assert_eq!(log.epoch(), 2);
    assert_eq!(log.superblock().uuid, uuid, "the same log, promoted");
    assert!(
        log.persisted().pos >= tail.pos,
        "promotion lost records: {:?} < {:?}",
        log.persisted(),
        tail
    );
    let records = testkit::dump(&dir.join("replica.region"), false);
    assert_eq!(
        records.iter().filter(|d| d.kind == "data").count(),
        100,
        "every mirrored record is in the promoted log"
    );
    drop(log);

    // Unsealed again (a new primary ran at epoch 2, then vanished without
    // a closure): only --force promotes, to epoch 3.
    let out = promote(&cfg, false);
    assert!(!out.status.success());
    let out = promote(&cfg, true);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(epoch::load(&epoch_file).unwrap().epoch, 3);
    std::fs::remove_dir_all(dir).unwrap();
}
