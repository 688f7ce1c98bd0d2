//! apm and gpspm, sync and async: each combination mirrors a stream that
//! wraps the ring several times, and the replica's image holds exactly the
//! records the host appended.

mod common;

use common::{dump, hex, payload, Node, Shape};

fn run(persistence: &'static str, commit: &'static str) {
    let mut node = Node::new(
        &format!("{persistence}-{commit}"),
        Shape {
            persistence,
            commit,
            log_size: 1 << 20,
            region: None,
            // Several ships in flight (apm; gpspm ships one at a time
            // whatever this says).
            ships_in_flight: 4,
            idle_session_ms: None,
        },
    );
    node.start_replica();
    let log = node.writer();
    let seed = u64::from(persistence.len() as u32 * 31 + commit.len() as u32);
    let mut last = None;
    let mut appended = std::collections::BTreeMap::new();
    for i in 0..8_000u64 {
        let p = payload(seed, i);
        let a = log.append(&p).unwrap_or_else(|e| panic!("append {i}: {e}"));
        appended.insert(a.lsn.0, p);
        last = Some(a.lsn);
        if i % 4 == 3 {
            log.commit(a.lsn).unwrap_or_else(|e| {
                panic!(
                    "{persistence}/{commit} commit {i}: {e}\n{}",
                    node.replica_log()
                )
            });
        }
    }
    let persisted = log.commit(last.unwrap()).unwrap();
    let cap = log.log().geometry().capacity;
    assert!(
        persisted.pos > 3 * cap,
        "wraps the ring: {} bytes in a {cap}-byte ring",
        persisted.pos
    );
    node.wait_replica_durable(persisted.pos);
    drop(log);
    node.kill_replica();
    let replica = dump(&node.replica_region());
    let data: Vec<_> = replica.iter().filter(|d| d.kind == "data").collect();
    assert!(
        data.len() > 100,
        "the replica keeps history: {} records",
        data.len()
    );
    for d in &data {
        assert_eq!(d.payload, hex(&appended[&d.lsn]), "LSN {} differs", d.lsn);
    }
    assert_eq!(data.last().unwrap().lsn, *appended.keys().last().unwrap());
    println!(
        "{persistence}/{commit}: {} bytes, {:.1} laps, replica holds {} records",
        persisted.pos,
        persisted.pos as f64 / cap as f64,
        data.len()
    );
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn gpspm_sync() {
    run("gpspm", "sync");
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn apm_async() {
    run("apm", "async");
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn gpspm_async() {
    run("gpspm", "async");
}
