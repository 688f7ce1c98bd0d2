//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use logcore::{CreateOptions, Log, RegionKind};

/// A fresh plain-file log of `size` bytes in a temp dir (kept alive by the
/// returned guard).
pub fn new_log(size: u64) -> (tempfile::TempDir, PathBuf, Log) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("test.log");
    let opts = CreateOptions {
        kind: RegionKind::File,
        ..CreateOptions::default()
    };
    let log = Log::create(&path, size, &opts).expect("create log");
    (dir, path, log)
}

/// Leaves `log` held by a live process that never writes (a hung writer):
/// its control block says running under that process's pid, and this
/// process lets go of the log without closing it. Kill the returned child
/// to end the "hang".
pub fn hand_to_hung_writer(log: Log) -> std::process::Child {
    let hung = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    log.control()
        .set_state(logcore::LogState::Running, hung.id())
        .expect("set state");
    std::mem::forget(log);
    hung
}

/// Deterministic payload for a seed: length 1..=max_len, xorshift bytes.
pub fn payload(seed: u64, max_len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = 1 + (next() % max_len as u64) as usize;
    (0..len).map(|_| next() as u8).collect()
}

/// Collects (lsn, payload) of every data record in a whole-region image.
pub fn records_of(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let img = logcore::Image::parse(bytes).expect("parse image");
    img.scan()
        .expect("scan")
        .map(|r| r.expect("record"))
        .filter(|r| r.kind == logcore::RecordKind::Data)
        .map(|r| (r.lsn.0, r.payload.to_vec()))
        .collect()
}
