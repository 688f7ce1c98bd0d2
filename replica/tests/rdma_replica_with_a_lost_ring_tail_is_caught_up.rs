//! The replica's ring loses what follows some record while tg-replica is
//! down (as a power-off with the ring not persistent would): the control
//! block still records the old durable tail. The restarted replica finds
//! the records end earlier, reports that as its durable tail (status too),
//! and the host re-ships from there, so at the end the replica's image
//! equals the host's record for record.

mod common;

use common::{dump, payload, Node, Shape};
use logcore::Image;

fn commit(log: &fabric::replicated::ReplicatedLog, seed: u64, from: u64, n: u64) {
    for i in from..from + n {
        let a = log.append(&payload(seed, i)).expect("append");
        log.commit(a.lsn)
            .expect("commit must wait for the replica, not fail");
    }
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn a_replica_whose_ring_lost_records_is_caught_up_by_the_host() {
    let mut node = Node::new(
        "lost-ring-tail",
        Shape {
            log_size: 8 << 20,
            ..Shape::default()
        },
    );
    node.start_replica();
    let log = node.writer();
    let seed = 7;
    commit(&log, seed, 0, 400);
    let before = log.log().persisted();
    node.wait_replica_durable(before.pos);
    node.kill_replica();

    // Zero the replica's ring from record 150 (LSN 151) to the ring's end;
    // superblock and control block are kept.
    let region = node.replica_region();
    let mut bytes = std::fs::read(&region).unwrap();
    let img = Image::parse(&bytes).unwrap();
    assert_eq!(
        img.control().persisted,
        before,
        "the replica recorded it all"
    );
    let g = img.superblock().geometry;
    let r = img.scan().unwrap().nth(150).unwrap().unwrap();
    let lost = logcore::Cursor {
        pos: r.pos,
        lsn: r.lsn,
    };
    assert!(before.pos < g.capacity, "no wrap: one zeroed range");
    let off = g.region_offset(lost.pos) as usize;
    bytes[off..(g.ring_offset + g.capacity) as usize].fill(0);
    std::fs::write(&region, &bytes).unwrap();

    node.start_replica();
    let st = node.replica_status();
    assert_eq!(
        st["durable_tail"].as_u64(),
        Some(lost.pos),
        "the restarted replica reports where its records end: {st}"
    );
    assert_eq!(st["next_lsn"].as_u64(), Some(lost.lsn.0), "{st}");
    assert!(
        st["damage"].is_null(),
        "tg-replica recorded the intact tail at start: {st}"
    );
    let rlog = node.replica_log();
    assert!(
        rlog.contains(&format!(
            "the control block records the durable tail at {} (next LSN {}), but the records end at {} (next LSN {})",
            before.pos, before.lsn.0, lost.pos, lost.lsn.0
        )),
        "the start warns with both tails: {rlog}"
    );

    // The next commits reconnect; the host re-ships from the intact tail.
    commit(&log, seed, 400, 400);
    let persisted = log.log().persisted();
    node.wait_replica_durable(persisted.pos);
    drop(log);
    node.kill_replica();
    let host = dump(&node.dir.join("host.log"));
    let replica = dump(&region);
    assert_eq!(host.len(), replica.len(), "as many records on both");
    for (h, r) in host.iter().zip(&replica) {
        assert_eq!(h, r, "record at position {} differs", h.pos);
    }
    assert_eq!(replica.last().map(|d| d.lsn), Some(persisted.lsn.0 - 1));
    println!(
        "replica lost LSN {}..{} (positions {}..{}); restarted at {}, host re-shipped; {} records equal on both",
        lost.lsn.0,
        before.lsn.0 - 1,
        lost.pos,
        before.pos,
        lost.pos,
        replica.len()
    );
}
