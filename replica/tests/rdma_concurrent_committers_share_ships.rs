//! Four threads append and commit through one `ReplicatedLog` at once
//! (group commit, several ships in flight on the queue pair): every commit
//! that returned is durable on the replica, `tg-log dump` of the replica's
//! image equals the host's record for record, and commits shared ships.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use common::{dump, hex, payload, Node, Shape};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 1_500;

#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn one_ship_at_a_time() {
    concurrent_commits_are_all_durable_and_in_order_on_the_replica(1);
}

#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn several_ships_in_flight() {
    concurrent_commits_are_all_durable_and_in_order_on_the_replica(4);
}

fn concurrent_commits_are_all_durable_and_in_order_on_the_replica(ships_in_flight: u32) {
    let mut node = Node::new(
        &format!("concurrent-{ships_in_flight}"),
        Shape {
            region: Some(common::devdax()),
            // 6,000 records of ~800 bytes fit without reclaiming: every
            // committed record stays on both sides to be compared.
            log_size: 16 << 20,
            ships_in_flight,
            ..Shape::default()
        },
    );
    node.start_replica();
    let log = node.writer();
    let seed = 0xc0_4c_11;
    // LSN -> payload, and per thread the LSNs whose commit returned.
    let appended = Mutex::new(BTreeMap::new());
    let committed = Mutex::new(Vec::new());
    let ships_before = log.status()[0].ships;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (log, appended, committed) = (&log, &appended, &committed);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let p = payload(seed, t * PER_THREAD + i);
                    let a = log.append(&p).expect("append");
                    appended.lock().unwrap().insert(a.lsn.0, p);
                    let c = log.commit(a.lsn).expect("commit");
                    assert!(c.lsn > a.lsn, "commit returned before covering its record");
                    // What commit promised: durable on the replica now.
                    let durable = log.status()[0].durable;
                    assert!(
                        durable >= a.end,
                        "commit of LSN {} returned with the replica durable only to {durable} < {}",
                        a.lsn,
                        a.end
                    );
                    committed.lock().unwrap().push(a.lsn.0);
                }
            });
        }
    });
    let commits = THREADS * PER_THREAD;
    let ships = log.status()[0].ships - ships_before;
    println!(
        "ships-in-flight {ships_in_flight}: {commits} commits from {THREADS} threads in {ships} ships ({:.2} commits per ship)",
        commits as f64 / ships as f64
    );
    assert!(
        ships >= 1 && ships <= commits,
        "{ships} ships for {commits} commits"
    );
    let persisted = log.log().persisted();
    node.wait_replica_durable(persisted.pos);
    drop(log);
    node.kill_replica();

    let appended = appended.into_inner().unwrap();
    let committed = committed.into_inner().unwrap();
    assert_eq!(committed.len() as u64, commits);
    let host = dump(&node.dir.join("host.log"));
    let replica = dump(&node.replica_region());
    let host_by_pos: BTreeMap<u64, &common::Dumped> = host.iter().map(|d| (d.pos, d)).collect();
    let replica_lsns: std::collections::BTreeSet<u64> = replica
        .iter()
        .filter(|d| d.kind == "data")
        .map(|d| d.lsn)
        .collect();
    for d in &replica {
        let h = host_by_pos.get(&d.pos).unwrap_or_else(|| {
            panic!(
                "replica record at {} (LSN {}) is not in the host log",
                d.pos, d.lsn
            )
        });
        assert_eq!(*h, d, "record at {} (LSN {}) differs", d.pos, d.lsn);
        if d.kind == "data" {
            assert_eq!(
                d.payload,
                hex(&appended[&d.lsn]),
                "payload of LSN {}",
                d.lsn
            );
        }
    }
    // Nothing was reclaimed: every committed LSN is on the replica.
    for lsn in &committed {
        assert!(
            replica_lsns.contains(lsn),
            "committed LSN {lsn} is missing on the replica"
        );
    }
}
