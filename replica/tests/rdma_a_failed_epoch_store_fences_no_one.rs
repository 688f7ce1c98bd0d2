//! A real tg-replica that cannot write its epoch file refuses the newer
//! writer and changes nothing: the admitted writer keeps committing on its
//! queue pair, and the newer epoch is not taken until it is stored. Once the
//! file can be written, the newer writer is admitted, the epoch is on disk
//! and the older writer is fenced.
//!
//! Before the admission rules took a record only once stored, the failed
//! store fenced the older writer and raised the epoch in memory; the next
//! attempt at that epoch was then admitted on the old rkey without any
//! store, leaving the epoch file at the fenced epoch (a restarted replica
//! would have admitted it again).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{dump, hex, payload, Node, Shape};
use fabric::replicated::ReplicatedLog;
use logcore::{Control, Log, LogState, Region, RegionKind};

fn commit_some(w: &ReplicatedLog, seed: u64, n: u64, into: &mut BTreeMap<u64, Vec<u8>>) {
    for i in 0..n {
        let p = payload(seed, i);
        let a = w.append(&p).unwrap();
        into.insert(a.lsn.0, p);
        w.commit(a.lsn)
            .unwrap_or_else(|e| panic!("commit of LSN {}: {e}", a.lsn.0));
    }
}

/// A copy of the host's log, reopened at epoch 2 (a restarted host).
fn restarted_host(node: &Node, name: &str, commit_timeout: Duration) -> ReplicatedLog {
    let path = node.dir.join(name);
    std::fs::copy(node.dir.join("host.log"), &path).unwrap();
    {
        let r = Region::open(&path, RegionKind::File).unwrap();
        Control::new(&r)
            .unwrap()
            .set_state(LogState::CleanShutdown, 0)
            .unwrap();
    }
    let log = Log::open(&path, RegionKind::File).unwrap();
    log.begin_epoch(2).unwrap();
    let mut o = node.options();
    o.commit_timeout = commit_timeout;
    ReplicatedLog::open(log, o).unwrap()
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn a_failed_epoch_store_fences_no_one_and_is_retried() {
    let mut node = Node::new("epoch-store", Shape::default());
    node.start_replica();
    let epoch_file = node.dir.join("epoch");
    let stored = || replica::epoch::load(&epoch_file).unwrap().epoch;
    let a = node.writer();
    let mut ours = BTreeMap::new();
    commit_some(&a, 1, 20, &mut ours);
    assert_eq!(stored(), 1);

    // The epoch file's temporary file cannot be created (a directory is in
    // its place; root is not stopped by permissions).
    let blocker = epoch_file.with_extension("tmp");
    std::fs::create_dir(&blocker).unwrap();

    // A restarted host at epoch 2 is refused, naming the epoch file.
    let b = restarted_host(&node, "host2.log", Duration::from_secs(2));
    let lsn = b
        .append(b"refused: the epoch could not be recorded")
        .unwrap()
        .lsn;
    match b.commit(lsn) {
        Err(e) => {
            let msg = e.to_string();
            println!("refused while the epoch file cannot be written: {msg}");
            assert!(msg.contains("epoch file"), "{msg}");
        }
        Ok(_) => panic!("admitted at an epoch the replica could not record"),
    }
    drop(b);
    // Nothing changed: the epoch-1 writer commits on its queue pair.
    commit_some(&a, 3, 20, &mut ours);
    assert_eq!(stored(), 1);
    let log = node.replica_log();
    assert!(!log.contains("fencing writer"), "{log}");

    // The file can be written again: the next epoch-2 writer is admitted
    // once its epoch is stored.
    std::fs::remove_dir(&blocker).unwrap();
    let b = restarted_host(&node, "host3.log", Duration::from_secs(20));
    let mut theirs = BTreeMap::new();
    commit_some(&b, 4, 20, &mut theirs);
    assert_eq!(stored(), 2, "admitted at epoch 2 without recording it");
    let stale = a.append(b"written by a fenced writer").unwrap();
    assert!(a.commit(stale.lsn).is_err(), "epoch 1 must be fenced now");
    assert!(
        node.replica_log()
            .contains("fencing writer: a newer epoch is admitted"),
        "{}",
        node.replica_log()
    );

    node.wait_replica_durable(b.log().persisted().pos);
    drop(b);
    node.kill_replica();
    assert_eq!(node.replica_status()["epoch"], 2);
    let data: Vec<_> = dump(&node.replica_region())
        .into_iter()
        .filter(|d| d.kind == "data")
        .collect();
    for d in &data {
        let want = if d.epoch == 2 { &theirs } else { &ours };
        let want = want.get(&d.lsn).unwrap_or_else(|| {
            panic!(
                "replica holds LSN {} (epoch {}) nobody committed",
                d.lsn, d.epoch
            )
        });
        assert_eq!(d.payload, hex(want), "LSN {} epoch {}", d.lsn, d.epoch);
    }
    assert!(
        data.iter().filter(|d| d.epoch == 2).count() == theirs.len(),
        "every epoch-2 record is on the replica"
    );
}
