//! logcore benchmark (harness = false; std::time + HDR histograms).
//!
//! Scenarios, single process, run with `cargo bench -p logcore`:
//!
//! 1. append+persist latency: one thread, `append` then `persist_to` of that
//!    LSN (one commit = one record), 64 B and 4 KiB payloads, on a plain file
//!    in `$TMPDIR` (msync to the disk) and on tmpfs (`/dev/shm`, msync of
//!    page-cache memory). The head is advanced when the ring is full, as the
//!    replication layer would. Percentiles from an HDR histogram (ns).
//! 2. group commit: two threads doing the same with 64 B records on tmpfs
//!    (commits per second).
//! 3. recovery scan throughput: a full 256 MiB ring on tmpfs, filled with
//!    4 KiB (and 64 B) records; `Image::verify` over the mapped region (warm
//!    page cache; each record is copied out of the mapping, then checked),
//!    and `Log::open` (mmap + page faults + scan + control block persist).
//!    Target >= 2 GB/s.
//!
//! Environment: TG_BENCH_ITERS (default 5000 per latency scenario),
//! TG_BENCH_SCAN_MB (default 256).

use std::path::Path;
use std::time::Instant;

use hdrhistogram::Histogram;
use logcore::{AppendError, CreateOptions, Image, Log, Region, RegionKind};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn append_retry(log: &Log, p: &[u8]) -> logcore::Lsn {
    loop {
        match log.append(p) {
            Ok(l) => return l,
            Err(AppendError::Full { .. }) => {
                let t = log.persisted();
                log.advance_head(t.pos).expect("advance head");
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn latency(dir: &Path, label: &str, size: usize, iters: u64) {
    let path = dir.join(format!("tg-bench-{}-{size}.log", std::process::id()));
    let opts = CreateOptions {
        kind: RegionKind::File,
        overwrite: true,
        ..Default::default()
    };
    let log = Log::create(&path, 64 << 20, &opts).expect("create");
    let payload = vec![0xA5u8; size];
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    for _ in 0..iters / 10 {
        let l = append_retry(&log, &payload);
        log.persist_to(l).unwrap();
    }
    let start = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        let l = append_retry(&log, &payload);
        log.persist_to(l).unwrap();
        h.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    let total = start.elapsed();
    println!(
        "append+persist {label:<28} {size:>5} B  n={iters:<6} p50={:>8.2}us p90={:>8.2}us p99={:>8.2}us p99.9={:>8.2}us max={:>9.2}us  ({:.0} commits/s)",
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.9) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3,
        iters as f64 / total.as_secs_f64()
    );
    drop(log);
    let _ = std::fs::remove_file(&path);
}

fn group_commit(dir: &Path, threads: u64, iters: u64) {
    let path = dir.join(format!("tg-bench-gc-{}.log", std::process::id()));
    let opts = CreateOptions {
        kind: RegionKind::File,
        overwrite: true,
        ..Default::default()
    };
    let log = Log::create(&path, 64 << 20, &opts).expect("create");
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let log = &log;
            s.spawn(move || {
                let p = [7u8; 64];
                for _ in 0..iters {
                    let l = append_retry(log, &p);
                    log.persist_to(l).unwrap();
                }
            });
        }
    });
    let el = start.elapsed();
    println!(
        "group commit tmpfs {threads} threads x {iters} x 64 B: {:.0} commits/s",
        (threads * iters) as f64 / el.as_secs_f64()
    );
    drop(log);
    let _ = std::fs::remove_file(&path);
}

fn scan(dir: &Path, mb: u64, payload_len: usize) {
    let path = dir.join(format!("tg-bench-scan-{}.log", std::process::id()));
    let opts = CreateOptions {
        kind: RegionKind::File,
        overwrite: true,
        ..Default::default()
    };
    let log = Log::create(&path, 4096 + (mb << 20), &opts).expect("create");
    let p = vec![0x5Au8; payload_len];
    // Fill the whole ring: append until Full, never advancing the head.
    let mut n = 0u64;
    let batch: Vec<&[u8]> = vec![&p; 64];
    loop {
        match log.append_batch(&batch) {
            Ok(_) => n += 64,
            Err(AppendError::Full { .. }) => match log.append(&p) {
                Ok(_) => n += 1,
                Err(_) => break,
            },
            Err(e) => panic!("{e}"),
        }
    }
    log.persist_all().unwrap();
    let used = log.tail().pos - log.head().pos;
    drop(log);

    let region = Region::open(&path, RegionKind::File).unwrap();
    // Read as a live region is: every record copied out, then checked.
    let img = Image::read(&region).unwrap();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let s = img.verify().unwrap();
        let el = t.elapsed().as_secs_f64();
        assert_eq!(s.records, n);
        best = best.min(el);
    }
    println!(
        "recovery scan (Image::verify, warm) {mb} MiB ring, {payload_len:>4} B records: {n} records, {:.1} ms, {:.2} GB/s",
        best * 1e3,
        used as f64 / best / 1e9
    );
    drop(region);

    let mut best_open = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let log = Log::open(&path, RegionKind::File).unwrap();
        let el = t.elapsed().as_secs_f64();
        assert_eq!(log.recovery().records, n);
        best_open = best_open.min(el);
        drop(log);
    }
    println!(
        "recovery (Log::open: mmap+faults+scan)  {mb} MiB ring, {payload_len:>4} B records: {:.1} ms, {:.2} GB/s",
        best_open * 1e3,
        used as f64 / best_open / 1e9
    );
    let _ = std::fs::remove_file(&path);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: keep
    // that run short so it only proves the benchmark works.
    let quick = !std::env::args().any(|a| a == "--bench");
    let iters = env_u64("TG_BENCH_ITERS", if quick { 50 } else { 5000 });
    let mb = env_u64("TG_BENCH_SCAN_MB", if quick { 4 } else { 256 });
    let tmp = std::env::temp_dir();
    let shm = Path::new("/dev/shm");
    println!("flush method: {}", logcore::flush_method().name());
    for size in [64, 4096] {
        latency(
            &tmp,
            &format!("plain file ({})", tmp.display()),
            size,
            iters,
        );
        if shm.is_dir() {
            latency(shm, "tmpfs (/dev/shm)", size, iters);
        }
    }
    if shm.is_dir() {
        group_commit(shm, 2, iters);
    }
    let scan_dir = if shm.is_dir() { shm } else { &tmp };
    scan(scan_dir, mb, 4096);
    scan(scan_dir, mb, 64);
}
