//! The mirror keeps a replica's ring byte-identical to the primary's across
//! many wraps, in both persistence modes, and never reports durable what it
//! did not flush.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric::mirror::{Mirror, MirrorError};
use fabric::transport::OsClock;
use fabric::verbs::{
    Access, AlignedBuf, Context, MemoryRegion, PreparedQp, ProtectionDomain, QpConfig, QueuePair,
    RingPlacement, VerbsPath,
};
use fabric::wire::PersistenceMode;

const CAPACITY: u64 = 256 << 10;
const LOCAL_RING_OFF: u64 = 4096;
const REMOTE_RING_OFF: u64 = 8192;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The byte a log would hold at logical position `pos`.
fn byte_at(seed: u64, pos: u64) -> u8 {
    let x = (pos ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8
}

struct Rig {
    pd: ProtectionDomain,
    local: Arc<MemoryRegion<AlignedBuf>>,
    replica: MemoryRegion<memmap2::MmapRaw>,
    ring: RingPlacement,
}

/// The rig and its two connected QPs (writer, target).
fn rig() -> (Rig, QueuePair, QueuePair) {
    let ctx = Context::open(&common::rdma_device(), 1).unwrap();
    let pd = ProtectionDomain::new(&ctx).unwrap();
    // The writer may keep 4 ships in flight (the pipelined tests below).
    let writer_qp = QpConfig {
        ships_in_flight: 4,
        ..QpConfig::default()
    };
    let a = PreparedQp::new(&pd, writer_qp).unwrap();
    let b = PreparedQp::new(&pd, QpConfig::default()).unwrap();
    let (ea, eb) = (a.endpoint().unwrap(), b.endpoint().unwrap());
    let writer = a.connect(eb, Access::LOCAL_WRITE).unwrap();
    let target = b.connect(ea, Access::REPLICA).unwrap();
    let local = Arc::new(
        MemoryRegion::register(
            &pd,
            AlignedBuf::new((LOCAL_RING_OFF + CAPACITY) as usize),
            Access::LOCAL_WRITE,
        )
        .unwrap(),
    );
    let replica =
        MemoryRegion::register(&pd, common::map_devdax(2 << 20), Access::REPLICA).unwrap();
    replica
        .write_at(0, &vec![0u8; (REMOTE_RING_OFF + CAPACITY) as usize])
        .unwrap();
    let ring = RingPlacement {
        local_offset: LOCAL_RING_OFF,
        remote_offset: REMOTE_RING_OFF,
        capacity: CAPACITY,
    };
    (
        Rig {
            pd,
            local,
            replica,
            ring,
        },
        writer,
        target,
    )
}

/// Appends `[from, to)` of the deterministic stream into the local ring.
fn append(rig: &Rig, seed: u64, from: u64, to: u64) {
    let ring = logcore::Geometry {
        ring_offset: 0,
        capacity: CAPACITY,
    };
    for piece in ring.pieces(from, to) {
        let (off, len) = (piece.ring_offset, piece.len);
        let start = from
            + if off == from % CAPACITY {
                0
            } else {
                CAPACITY - from % CAPACITY
            };
        let bytes: Vec<u8> = (0..len).map(|i| byte_at(seed, start + i)).collect();
        rig.local
            .write_at((LOCAL_RING_OFF + off) as usize, &bytes)
            .unwrap();
    }
}

/// Checks that the replica's ring holds the last `CAPACITY` bytes before `durable`.
fn check_replica(rig: &Rig, seed: u64, durable: u64) {
    let lo = durable.saturating_sub(CAPACITY);
    let mut buf = vec![0u8; CAPACITY as usize];
    rig.replica
        .read_at(REMOTE_RING_OFF as usize, &mut buf)
        .unwrap();
    for pos in lo..durable {
        let got = buf[(pos % CAPACITY) as usize];
        assert_eq!(
            got,
            byte_at(seed, pos),
            "replica byte at logical position {pos} (durable {durable})"
        );
    }
}

fn stream(rig: &Rig, mirror: &mut Mirror<VerbsPath<AlignedBuf>>, seed: u64, total: u64) {
    let mut x = seed | 1;
    let mut pos = mirror.durable();
    while pos < total {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1442695040888963407);
        // 64 B .. 96 KiB steps, so some ranges wrap and some are tiny (inline).
        let step = (64 + (x >> 40) % (96 << 10)).min(total - pos);
        append(rig, seed, pos, pos + step);
        assert_eq!(mirror.ship(pos + step).unwrap(), pos + step);
        pos += step;
        assert_eq!(mirror.durable(), pos);
        check_replica(rig, seed, pos);
    }
}

fn mirror(
    rig: &Rig,
    qp: QueuePair,
    mode: PersistenceMode,
    timeout: Duration,
) -> Mirror<VerbsPath<AlignedBuf>> {
    let path = VerbsPath::new(
        qp,
        Arc::clone(&rig.local),
        rig.replica.remote(),
        rig.ring,
        mode == PersistenceMode::Gpspm,
    )
    .unwrap();
    Mirror::new("replica-a", path, OsClock, CAPACITY, 0, mode, timeout)
}

#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn apm_mirror_is_byte_identical_across_wraps() {
    let (rig, writer, _target) = rig();
    let mut m = mirror(&rig, writer, PersistenceMode::Apm, TIMEOUT);
    let seed = common::fresh_seed();
    stream(&rig, &mut m, seed, 5 * CAPACITY + 12345);
    println!(
        "apm: shipped {} bytes = {:.1} ring laps",
        m.durable(),
        m.durable() as f64 / CAPACITY as f64
    );
}

#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn gpspm_mirror_is_persisted_by_the_replica_cpu() {
    let (rig, writer, target) = rig();
    let mut responder = fabric::gpspm::GpspmResponder::new(target, &rig.pd).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let (stop, ranges) = (Arc::clone(&stop), Arc::clone(&ranges));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let r = responder.serve_one(Duration::from_millis(50), |from, to| {
                    ranges.lock().unwrap().push((from, to));
                    Ok::<(), String>(())
                });
                r.expect("responder");
            }
        })
    };
    let mut m = mirror(&rig, writer, PersistenceMode::Gpspm, TIMEOUT);
    let seed = common::fresh_seed();
    stream(&rig, &mut m, seed, 3 * CAPACITY + 777);
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    // The replica CPU was asked to persist every byte, in order, once.
    let ranges = ranges.lock().unwrap();
    let mut expect = 0;
    for &(from, to) in ranges.iter() {
        assert_eq!(from, expect, "persist requests must be contiguous");
        assert!(to > from);
        expect = to;
    }
    assert_eq!(expect, m.durable());
    println!(
        "gpspm: {} persist requests covered {} bytes",
        ranges.len(),
        expect
    );
}

#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn a_range_longer_than_the_ring_is_refused_and_nothing_is_reported_durable() {
    let (rig, writer, _target) = rig();
    let mut m = mirror(&rig, writer, PersistenceMode::Apm, TIMEOUT);
    append(&rig, 1, 0, 4096);
    m.ship(4096).unwrap();
    let err = m
        .ship(4096 + CAPACITY + 1)
        .expect_err("longer than the ring");
    assert!(matches!(err, MirrorError::RangeTooLarge { .. }), "{err}");
    assert!(
        err.to_string().contains("replica-a"),
        "errors name the replica: {err}"
    );
    assert_eq!(m.durable(), 4096);
    assert!(!m.is_broken(), "a refused range must not break the QP");
}

#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn gpspm_without_a_persist_reply_times_out_and_stays_not_durable() {
    let (rig, writer, target) = rig();
    let mut responder = fabric::gpspm::GpspmResponder::new(target, &rig.pd).unwrap();
    let server = std::thread::spawn(move || {
        // The replica cannot persist: it must not reply.
        let r = responder.serve_one(Duration::from_secs(5), |_, _| Err("media error"));
        assert!(r.is_err(), "the failing persist is reported on the replica");
        responder
    });
    let mut m = mirror(
        &rig,
        writer,
        PersistenceMode::Gpspm,
        Duration::from_millis(800),
    );
    append(&rig, 2, 0, 1000);
    let err = m.ship(1000).expect_err("no reply, no durability");
    assert!(err.to_string().contains("replica-a"), "{err}");
    assert_eq!(
        m.durable(),
        0,
        "nothing may be reported durable without the reply"
    );
    drop(server.join().unwrap());
}

/// Ships posted without waiting (several in flight on the QP) land in
/// order and make exactly the completed ones durable: the replica holds
/// every byte up to the reported durable position, across wraps.
#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn apm_ships_in_flight_complete_in_order_across_wraps() {
    let (rig, writer, _target) = rig();
    let mut m = mirror(&rig, writer, PersistenceMode::Apm, TIMEOUT);
    let seed = common::fresh_seed();
    let total = 4 * CAPACITY + 999;
    let (mut x, mut pos, mut most) = (seed | 1, 0u64, 0usize);
    while pos < total {
        // Post as many as the mirror takes, then reap a little.
        while m.can_post() && pos < total {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1442695040888963407);
            let step = (64 + (x >> 40) % (24 << 10)).min(total - pos);
            // Never more than a ring ahead of what is durable.
            if pos + step - m.durable() > CAPACITY {
                break;
            }
            append(&rig, seed, pos, pos + step);
            m.post(pos + step).unwrap();
            pos += step;
            assert_eq!(m.posted(), pos);
            most = most.max(m.in_flight());
        }
        let d = m.reap().unwrap();
        assert!(d <= m.posted());
        // Everything reported durable is on the replica (it may hold more).
        check_replica(&rig, seed, d);
    }
    assert_eq!(m.drain().unwrap(), total);
    assert_eq!(m.in_flight(), 0);
    check_replica(&rig, seed, total);
    assert!(
        most > 1,
        "several ships must have been in flight at once (at most {most})"
    );
    // A synchronous ship after pipelined ones continues at the right place.
    append(&rig, seed, total, total + 100);
    assert_eq!(m.ship(total + 100).unwrap(), total + 100);
    check_replica(&rig, seed, total + 100);
    println!("apm pipelined: {total} bytes, up to {most} ships in flight");
}

/// A replica QP fenced (error state) under ships in flight: reaping fails
/// naming the replica, nothing in flight is reported durable, and further
/// posts are refused.
#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn ships_in_flight_on_a_fenced_queue_pair_are_never_reported_durable() {
    let (rig, writer, mut target) = rig();
    let mut m = mirror(&rig, writer, PersistenceMode::Apm, Duration::from_secs(3));
    append(&rig, 3, 0, 4096);
    m.post(4096).unwrap();
    assert_eq!(m.drain().unwrap(), 4096);
    target.set_error().unwrap();
    append(&rig, 3, 4096, 3 * 4096);
    m.post(2 * 4096).unwrap();
    m.post(3 * 4096).unwrap();
    let err = loop {
        match m.reap() {
            Ok(d) => assert_eq!(d, 4096, "a ship to a fenced QP completed"),
            Err(e) => break e,
        }
        std::thread::yield_now();
    };
    assert!(err.to_string().contains("replica-a"), "{err}");
    assert_eq!(m.durable(), 4096, "nothing in flight may count as durable");
    assert_eq!(m.in_flight(), 0);
    assert!(m.is_broken());
    assert!(m.post(4 * 4096).is_err(), "a broken mirror takes no ships");
}

/// Posting past the in-flight bound or past a ring beyond what is durable
/// is refused with an error naming the replica, and changes nothing: the
/// ships already posted still complete.
#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn posts_past_the_bound_or_the_ring_are_refused_and_change_nothing() {
    let (rig, writer, _target) = rig();
    let mut m = mirror(&rig, writer, PersistenceMode::Apm, TIMEOUT);
    let seed = common::fresh_seed();
    append(&rig, seed, 0, 5 * 1024);
    // Nothing is reaped in between, so all four stay counted in flight.
    for k in 1..=4 {
        m.post(k * 1024).unwrap();
    }
    assert!(!m.can_post());
    let err = m
        .post(5 * 1024)
        .expect_err("a fifth ship past the bound of 4");
    assert!(
        err.to_string().contains("replica-a") && err.to_string().contains("at most 4"),
        "{err}"
    );
    assert_eq!((m.posted(), m.in_flight()), (4 * 1024, 4));
    assert_eq!(m.drain().unwrap(), 4 * 1024);
    let err = m
        .post(4 * 1024 + CAPACITY + 1)
        .expect_err("longer than the ring beyond what is durable");
    assert!(matches!(err, MirrorError::RangeTooLarge { .. }), "{err}");
    assert_eq!(
        (m.durable(), m.posted(), m.in_flight()),
        (4 * 1024, 4 * 1024, 0)
    );
    assert!(!m.is_broken());
    check_replica(&rig, seed, 4 * 1024);
}

/// A ship in flight past the op timeout (the target was fenced, so no
/// response comes) fails as a timeout naming the replica, before the
/// transport's own retries give up; nothing in flight counts as durable.
#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn a_ship_in_flight_past_the_op_timeout_fails_and_is_not_durable() {
    let (rig, writer, mut target) = rig();
    let timeout = Duration::from_millis(30);
    let mut m = mirror(&rig, writer, PersistenceMode::Apm, timeout);
    append(&rig, 4, 0, 2 * 4096);
    m.post(4096).unwrap();
    assert_eq!(m.drain().unwrap(), 4096);
    target.set_error().unwrap();
    m.post(2 * 4096).unwrap();
    let start = std::time::Instant::now();
    let err = loop {
        match m.reap() {
            Ok(d) => assert_eq!(d, 4096, "a ship to a fenced QP completed"),
            Err(e) => break e,
        }
        assert!(start.elapsed() < TIMEOUT, "no error within {TIMEOUT:?}");
        std::thread::yield_now();
    };
    assert!(
        matches!(
            err,
            MirrorError::Verbs {
                source: fabric::verbs::VerbsError::Timeout { .. },
                ..
            }
        ),
        "expected the op timeout (the QP's retries take ~0.5 s): {err}"
    );
    assert!(err.to_string().contains("replica-a"), "{err}");
    assert_eq!((m.durable(), m.in_flight()), (4096, 0));
    assert!(m.is_broken(), "the QP was moved to the error state");
}
