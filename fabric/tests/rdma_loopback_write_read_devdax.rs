//! The harness end to end on a real device: two RC queue pairs on one RDMA
//! device (loopback), a memory region on an mmap of a devdax device, RDMA
//! WRITE then RDMA READ of the same bytes, data checked on the target side
//! and in what the READ returned.

mod common;

use std::time::Duration;

use fabric::verbs::{
    Access, AlignedBuf, Context, MemoryRegion, Op, PreparedQp, ProtectionDomain, QpConfig,
    QueuePair, VerbsError,
};

const TIMEOUT: Duration = Duration::from_secs(10);
const PMEM_LEN: usize = 4 << 20; // two 2 MiB devdax pages

struct Pair {
    writer: QueuePair,
    target: QueuePair,
}

fn connect_pair(pd: &ProtectionDomain) -> Pair {
    let a = PreparedQp::new(pd, QpConfig::default()).expect("create writer QP");
    let b = PreparedQp::new(pd, QpConfig::default()).expect("create target QP");
    let (ea, eb) = (a.endpoint().unwrap(), b.endpoint().unwrap());
    assert_ne!(ea.qpn, eb.qpn);
    Pair {
        writer: a.connect(eb, Access::LOCAL_WRITE).expect("connect writer"),
        target: b.connect(ea, Access::REPLICA).expect("connect target"),
    }
}

#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn write_then_read_lands_in_devdax() {
    let dev = common::rdma_device();
    let ctx = Context::open(&dev, 1).expect("open device");
    println!("device {} link {:?}", ctx.name(), ctx.link_layer());
    let pd = ProtectionDomain::new(&ctx).unwrap();
    let mut pair = connect_pair(&pd);

    let pmem = MemoryRegion::register(&pd, common::map_devdax(PMEM_LEN), Access::REPLICA)
        .expect("register devdax mapping");
    let staging =
        MemoryRegion::register(&pd, AlignedBuf::new(1 << 20), Access::LOCAL_WRITE).unwrap();
    let remote = pmem.remote();
    assert_eq!(remote.len, PMEM_LEN as u64);

    let seed = common::fresh_seed();
    // (target offset, length): inline-sized, one page, spanning the 2 MiB page boundary.
    let cases = [(64usize, 64usize), (8192, 4096), ((2 << 20) - 1000, 3000)];
    for (i, &(off, len)) in cases.iter().enumerate() {
        let data = common::pattern(seed + i as u64, len);
        pmem.write_at(off, &vec![0u8; len]).unwrap(); // the check must not pass on stale bytes
        staging.write_at(0, &data).unwrap();
        let read_back = 512 << 10;
        staging.write_at(read_back, &vec![0u8; len]).unwrap();

        let dst = remote.slice(off as u64, len as u32).unwrap();
        pair.writer
            .execute(
                &[
                    Op::Write {
                        src: staging.slice(0, len).unwrap(),
                        dst,
                    },
                    Op::Read {
                        dst: staging.slice(read_back, len).unwrap(),
                        src: dst,
                    },
                ],
                TIMEOUT,
            )
            .unwrap_or_else(|e| panic!("WRITE+READ of {len} bytes at {off}: {e}"));

        let mut on_target = vec![0u8; len];
        pmem.read_at(off, &mut on_target).unwrap();
        assert!(
            on_target == data,
            "target bytes differ at offset {off} (len {len})"
        );
        let mut read = vec![0u8; len];
        staging.read_at(read_back, &mut read).unwrap();
        assert!(
            read == data,
            "READ returned different bytes at offset {off} (len {len})"
        );
        println!("ok: {len} B at devdax offset {off} written, read back, checked on target");
    }
    // The target QP stays unused but alive: the peer of an RC connection.
    assert!(!pair.target.is_broken());
}

#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn two_writes_and_a_flush_in_one_post() {
    let ctx = Context::open(&common::rdma_device(), 1).unwrap();
    let pd = ProtectionDomain::new(&ctx).unwrap();
    let mut pair = connect_pair(&pd);
    let pmem = MemoryRegion::register(&pd, common::map_devdax(PMEM_LEN), Access::REPLICA).unwrap();
    let staging =
        MemoryRegion::register(&pd, AlignedBuf::new(64 << 10), Access::LOCAL_WRITE).unwrap();
    let remote = pmem.remote();

    // A range that wraps a ring: its tail at the end of the region, its head at the start.
    let data = common::pattern(common::fresh_seed(), 8192);
    staging.write_at(0, &data).unwrap();
    let end = PMEM_LEN - 4096;
    pmem.write_at(end, &[0u8; 4096]).unwrap();
    pmem.write_at(0, &[0u8; 4096]).unwrap();
    pair.writer
        .execute(
            &[
                Op::Write {
                    src: staging.slice(0, 4096).unwrap(),
                    dst: remote.slice(end as u64, 4096).unwrap(),
                },
                Op::Write {
                    src: staging.slice(4096, 4096).unwrap(),
                    dst: remote.slice(0, 4096).unwrap(),
                },
                Op::Read {
                    dst: staging.slice(32 << 10, 8).unwrap(),
                    src: remote.slice(4088, 8).unwrap(),
                },
            ],
            TIMEOUT,
        )
        .unwrap();
    let mut got = vec![0u8; 4096];
    pmem.read_at(end, &mut got).unwrap();
    assert!(got[..] == data[..4096], "first piece differs");
    pmem.read_at(0, &mut got).unwrap();
    assert!(got[..] == data[4096..], "second piece differs");
    let mut flushed = [0u8; 8];
    staging.read_at(32 << 10, &mut flushed).unwrap();
    assert_eq!(
        flushed[..],
        data[8184..],
        "the flush READ must see the last written bytes"
    );
}

#[test]
#[ignore = "rdma: needs an RDMA device and devdax; ci/test runs it in the rxe VM"]
fn wrong_rkey_fails_with_a_typed_error_and_breaks_the_qp() {
    let ctx = Context::open(&common::rdma_device(), 1).unwrap();
    let pd = ProtectionDomain::new(&ctx).unwrap();
    let mut pair = connect_pair(&pd);
    let pmem = MemoryRegion::register(&pd, common::map_devdax(PMEM_LEN), Access::REPLICA).unwrap();
    let staging = MemoryRegion::register(&pd, AlignedBuf::new(4096), Access::LOCAL_WRITE).unwrap();
    pmem.write_at(0, &[0u8; 512]).unwrap();
    let mut bad = pmem.remote();
    bad.rkey ^= 0x5a5a_0000;
    staging.write_at(0, &[0xee; 512]).unwrap();
    let err = pair
        .writer
        .execute(
            &[Op::Write {
                src: staging.slice(0, 512).unwrap(),
                dst: bad.slice(0, 512).unwrap(),
            }],
            TIMEOUT,
        )
        .expect_err("a WRITE with a wrong rkey must fail");
    match &err {
        VerbsError::Completion {
            status_str,
            op_index,
            ..
        } => {
            assert_eq!(*op_index, 0);
            println!("refused as expected: {err}");
            assert!(!status_str.is_empty());
        }
        other => panic!("expected a completion error, got {other:?}"),
    }
    assert!(pair.writer.is_broken());
    let mut target = [1u8; 512];
    pmem.read_at(0, &mut target).unwrap();
    assert!(
        target.iter().all(|&b| b == 0),
        "nothing may be written with a wrong rkey"
    );
    // A broken QP refuses further work with its own error.
    let again = pair.writer.execute(
        &[Op::Write {
            src: staging.slice(0, 8).unwrap(),
            dst: pmem.remote().slice(0, 8).unwrap(),
        }],
        TIMEOUT,
    );
    assert!(
        matches!(again, Err(VerbsError::QpBroken { .. })),
        "got {again:?}"
    );
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn slices_outside_a_region_are_refused_before_posting() {
    let ctx = Context::open(&common::rdma_device(), 1).unwrap();
    let pd = ProtectionDomain::new(&ctx).unwrap();
    let mr = MemoryRegion::register(&pd, AlignedBuf::new(4096), Access::LOCAL_WRITE).unwrap();
    assert!(matches!(
        mr.slice(4000, 200),
        Err(VerbsError::OutOfBounds { .. })
    ));
    assert!(matches!(
        mr.slice(0, 0),
        Err(VerbsError::InvalidRequest { .. })
    ));
    assert!(matches!(
        mr.remote().slice(4096, 1),
        Err(VerbsError::OutOfBounds { .. })
    ));
    assert!(matches!(
        mr.read_at(4095, &mut [0u8; 2]),
        Err(VerbsError::OutOfBounds { .. })
    ));
    let ro = MemoryRegion::register(&pd, AlignedBuf::new(4096), Access::REMOTE_READ);
    let ro = ro.expect("local-read-only registration");
    let mut pair = connect_pair(&pd);
    let err = pair.writer.execute(
        &[Op::Read {
            dst: ro.slice(0, 8).unwrap(),
            src: mr.remote().slice(0, 8).unwrap(),
        }],
        TIMEOUT,
    );
    assert!(
        matches!(err, Err(VerbsError::InvalidRequest { .. })),
        "got {err:?}"
    );
    assert!(
        !pair.writer.is_broken(),
        "a refused request must not break the QP"
    );
}
