//! A real tg-replica refuses a wrong key, a wrong geometry, a wrong log
//! UUID, garbage and truncated handshakes, each with an error naming the
//! problem, while it keeps serving the admitted writer; a writer with a
//! newer epoch fences the older one, whose next commit fails as stale and
//! whose bytes never reach the replica.

mod common;

use std::time::Duration;

use common::{dump, hex, payload, Node, Shape};
use fabric::replicated::{CommitError, ReplicatedLog};
use logcore::{Control, CreateOptions, Log, LogState, Region, RegionKind};

fn expect_refused(
    node: &Node,
    log: Log,
    tweak: impl FnOnce(&mut fabric::replicated::ReplicationOptions),
    needle: &str,
) {
    let mut o = node.options();
    o.commit_timeout = Duration::from_millis(500);
    tweak(&mut o);
    let w = ReplicatedLog::open(log, o).unwrap();
    let a = w.append(b"must never reach the replica").unwrap();
    match w.commit(a.lsn) {
        Err(e @ CommitError::NotEnoughAcks { .. }) => {
            let msg = e.to_string();
            println!("refused as expected: {msg}");
            assert!(
                msg.to_lowercase().contains(needle),
                "expected {needle:?} in: {msg}"
            );
        }
        other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
    }
}

fn commit_some(
    w: &ReplicatedLog,
    seed: u64,
    n: u64,
    into: &mut std::collections::BTreeMap<u64, Vec<u8>>,
) {
    for i in 0..n {
        let p = payload(seed, i);
        let a = w.append(&p).unwrap();
        into.insert(a.lsn.0, p);
        w.commit(a.lsn).unwrap();
    }
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn refusals_and_fencing() {
    let mut node = Node::new("refuse", Shape::default());
    node.start_replica();
    let a = node.writer();
    let mut ours = std::collections::BTreeMap::new();
    commit_some(&a, 1, 50, &mut ours);
    let size = node.shape.log_size;
    let fresh = |name: &str, size: u64| {
        Log::create(node.dir.join(name), size, &CreateOptions::default()).unwrap()
    };

    // Wrong key (on a log of the right shape).
    common::write_key(&node.dir.join("wrong.key"), 99);
    let wrong_key = fabric::auth::PreSharedKey::load(node.dir.join("wrong.key")).unwrap();
    expect_refused(
        &node,
        fresh("k.log", size),
        |o| o.replicas[0].key = wrong_key,
        "authentication",
    );
    commit_some(&a, 2, 10, &mut ours);
    // Wrong geometry: this log's UUID at twice the size.
    let uuid = a.log().superblock().uuid;
    let doubled = Log::create(
        node.dir.join("g.log"),
        size * 2,
        &CreateOptions {
            uuid: Some(uuid),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    expect_refused(&node, doubled, |_| {}, "geometry");
    commit_some(&a, 3, 10, &mut ours);
    // Another log (UUID) of the same shape.
    expect_refused(&node, fresh("u.log", size), |_| {}, "uuid");
    commit_some(&a, 4, 10, &mut ours);
    // Garbage and a truncated Hello: the replica answers (or closes) and lives on.
    let reply = common::poke(node.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        reply.is_empty() || reply.starts_with(&fabric::wire::MAGIC),
        "reply to garbage: {reply:02x?}"
    );
    let hello = fabric::wire::Message::Hello(fabric::wire::Hello {
        writer: fabric::wire::WriterName::new("host-a").unwrap(),
        log_uuid: [3; 16],
        epoch: 1,
        geometry: fabric::settings::log_geometry(size).unwrap(),
        persistence: fabric::wire::PersistenceMode::Apm,
    })
    .to_frame();
    let _ = common::poke(node.port, &hello[..hello.len() / 2]);
    commit_some(&a, 5, 10, &mut ours);
    assert!(
        node.replica.as_mut().unwrap().try_wait().unwrap().is_none(),
        "tg-replica must survive: {}",
        node.replica_log()
    );

    // A newer epoch of the same log (a restarted host) fences the old writer.
    std::fs::copy(node.dir.join("host.log"), node.dir.join("host2.log")).unwrap();
    {
        let r = Region::open(node.dir.join("host2.log"), RegionKind::File).unwrap();
        Control::new(&r)
            .unwrap()
            .set_state(LogState::CleanShutdown, 0)
            .unwrap();
    }
    let b_log = Log::open(node.dir.join("host2.log"), RegionKind::File).unwrap();
    b_log.begin_epoch(2).unwrap();
    let b = ReplicatedLog::open(b_log, node.options()).unwrap();
    let mut theirs = std::collections::BTreeMap::new();
    commit_some(&b, 6, 20, &mut theirs);
    // The old writer's next record is refused: its QP was fenced, its
    // reconnect is a stale epoch.
    let stale = a.append(b"written by a fenced writer").unwrap();
    let t = std::time::Instant::now();
    let r = a.commit(stale.lsn);
    // The fenced QP drops the writer's packets: it learns at its transport
    // retry budget or its op timeout (5 s), then is refused as stale at
    // once; it must not wait out the 20 s commit timeout.
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "a stale epoch is final: fail fast, not after the commit timeout ({:?})",
        t.elapsed()
    );
    match r {
        Err(e) => {
            let msg = e.to_string();
            println!("fenced as expected: {msg}");
            assert!(
                msg.contains("stale epoch") || msg.to_lowercase().contains("epoch"),
                "{msg}"
            );
        }
        Ok(_) => panic!("a fenced writer's commit must fail"),
    }
    let persisted = b.log().persisted().pos;
    node.wait_replica_durable(persisted);
    drop(b);
    node.kill_replica();
    let st = node.replica_status();
    assert_eq!(st["epoch"], 2);
    for d in dump(&node.replica_region())
        .iter()
        .filter(|d| d.kind == "data")
    {
        let want = if d.epoch == 2 {
            theirs.get(&d.lsn)
        } else {
            ours.get(&d.lsn)
        };
        let want = want.unwrap_or_else(|| {
            panic!(
                "replica holds LSN {} (epoch {}) nobody committed",
                d.lsn, d.epoch
            )
        });
        assert_eq!(d.payload, hex(want), "LSN {} epoch {}", d.lsn, d.epoch);
        assert_ne!(d.payload, hex(b"written by a fenced writer"));
        assert_ne!(d.payload, hex(b"must never reach the replica"));
    }
    assert!(
        node.replica_log()
            .contains("fencing writer: a newer epoch is admitted"),
        "{}",
        node.replica_log()
    );
}
