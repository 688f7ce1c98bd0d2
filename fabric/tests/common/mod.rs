//! Shared set-up for fabric's device tests.
//!
//! Device tests are `#[ignore = "rdma: ..."]` so that a host without RDMA
//! lists them as ignored with the reason; `ci/test` runs them for real in the
//! rxe VM. Run by hand with an RDMA device:
//! `TG_RDMA_DEVICE=rxe0 TG_PMEM_DEVDAX=/dev/dax0.0 cargo test -p fabric -- --ignored`.
#![allow(dead_code, unreachable_pub)]

use std::fs::OpenOptions;

/// The device named by `TG_RDMA_DEVICE`; panics (fails the test) without it.
pub fn rdma_device() -> String {
    std::env::var("TG_RDMA_DEVICE").unwrap_or_else(|_| {
        panic!(
            "this test needs an RDMA device: set TG_RDMA_DEVICE (e.g. rxe0 after ci/rxe-up IFACE), \
             or run ci/test, which runs it in the rxe VM"
        )
    })
}

/// `len` bytes of the devdax device named by `TG_PMEM_DEVDAX`, mapped shared.
pub fn map_devdax(len: usize) -> memmap2::MmapRaw {
    let path = std::env::var("TG_PMEM_DEVDAX").unwrap_or_else(|_| {
        panic!("this test needs a devdax device: set TG_PMEM_DEVDAX=/dev/daxX.Y, or run ci/test")
    });
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
    memmap2::MmapOptions::new()
        .len(len)
        .map_raw(&f)
        .unwrap_or_else(|e| panic!("mmap {len} bytes of {path}: {e}"))
}

/// Deterministic bytes from a seed (xorshift64*), so every run checks data
/// it has not seen before when the seed changes.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// A seed that differs between runs.
pub fn fresh_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
        ^ u64::from(std::process::id())
}
