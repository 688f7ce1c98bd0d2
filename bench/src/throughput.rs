//! `tg-bench throughput`: commits/s and MB/s for 1..N appender threads and
//! a batch-size sweep (records per commit), against the raw WRITE bandwidth
//! of the same link.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fabric::mirror::{Probe, MAX_PROBE_LEN};
use fabric::replicated::ReplicatedLog;
use serde_json::{json, Value};

use crate::progress::Progress;

/// One (threads, batch) point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    pub(crate) threads: usize,
    pub(crate) batch: usize,
    pub(crate) commits: u64,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    /// Ships (WRITEs + one flush) posted to the first replica during the
    /// point: commits per ship is how much group commit coalesced.
    pub(crate) ships: u64,
}

impl Point {
    pub(crate) fn commits_per_s(&self) -> f64 {
        self.commits as f64 / self.seconds
    }
    pub(crate) fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }
    pub(crate) fn commits_per_ship(&self) -> f64 {
        self.commits as f64 / self.ships.max(1) as f64
    }
}

pub(crate) fn run(
    rl: &ReplicatedLog,
    threads: &[usize],
    batches: &[usize],
    size: u32,
    duration: Duration,
    progress: &mut Progress,
) -> Result<Vec<Point>, String> {
    let payload = vec![0xa5_u8; size as usize];
    let wire = logcore::record_len(u64::from(size));
    let total_points = threads.len() * batches.len();
    let mut out = Vec::with_capacity(total_points);
    for &batch in batches {
        for &t in threads {
            let commits = AtomicU64::new(0);
            let records = AtomicU64::new(0);
            let stop = AtomicBool::new(false);
            let failed: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
            let ships_before = ships(rl);
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..t {
                    s.spawn(|| {
                        while !stop.load(Ordering::Relaxed) {
                            let mut last = None;
                            for _ in 0..batch {
                                match rl.append(&payload) {
                                    Ok(a) => last = Some(a.lsn),
                                    Err(e) => {
                                        *failed.lock().unwrap() = Some(format!("append: {e}"));
                                        stop.store(true, Ordering::Relaxed);
                                        return;
                                    }
                                }
                            }
                            if let Err(e) = rl.commit(last.expect("batch >= 1")) {
                                *failed.lock().unwrap() = Some(format!("commit: {e}"));
                                stop.store(true, Ordering::Relaxed);
                                return;
                            }
                            commits.fetch_add(1, Ordering::Relaxed);
                            records.fetch_add(batch as u64, Ordering::Relaxed);
                        }
                    });
                }
                // Sleep in short steps so the progress line moves and a
                // failed appender ends the point early.
                let step = Duration::from_millis(100);
                while start.elapsed() < duration && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(step.min(duration.saturating_sub(start.elapsed())));
                    progress.update(|| {
                        format!(
                            "throughput point {}/{}: {t} thread(s) x batch {batch}: {:.1}/{:.1} s, {} commits",
                            out.len() + 1,
                            total_points,
                            start.elapsed().as_secs_f64().min(duration.as_secs_f64()),
                            duration.as_secs_f64(),
                            commits.load(Ordering::Relaxed)
                        )
                    });
                }
                stop.store(true, Ordering::Relaxed);
            });
            if let Some(e) = failed.into_inner().unwrap() {
                return Err(e);
            }
            let seconds = start.elapsed().as_secs_f64();
            let records = records.into_inner();
            let ships = ships(rl) - ships_before;
            let p = Point {
                threads: t,
                batch,
                commits: commits.into_inner(),
                records,
                bytes: records * wire,
                seconds,
                ships,
            };
            progress.milestone(&format!(
                "throughput point {}/{total_points}: {t} thread(s) x batch {batch}: {:.0} commits/s, {:.2} commits per ship",
                out.len() + 1,
                p.commits_per_s(),
                p.commits_per_ship()
            ));
            out.push(p);
        }
    }
    Ok(out)
}

/// Ships posted to the first replica so far.
fn ships(rl: &ReplicatedLog) -> u64 {
    rl.status().first().map_or(0, |r| r.ships)
}

/// Raw WRITE bandwidth of the link: back-to-back WRITE+READ of the largest
/// probe size on the same queue pair, MB/s.
pub(crate) fn raw_write_mb_per_s(rl: &ReplicatedLog, duration: Duration) -> Result<f64, String> {
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < duration {
        rl.probe(0, Probe::WriteRead, MAX_PROBE_LEN)
            .map_err(|e| e.to_string())?;
        bytes += u64::from(MAX_PROBE_LEN);
    }
    Ok(bytes as f64 / start.elapsed().as_secs_f64() / 1e6)
}

pub(crate) fn table(points: &[Point], raw_mb_s: f64) -> String {
    let base = |batch: usize| {
        points
            .iter()
            .find(|p| p.threads == 1 && p.batch == batch)
            .map_or(1.0, Point::commits_per_s)
    };
    let mut s = String::from(
        "threads | batch | commits/s | records/s |   MB/s | vs 1 thread | commits/ship | vs raw WRITE\n",
    );
    s.push_str("--------+-------+-----------+-----------+--------+-------------+--------------+-------------\n");
    for p in points {
        s.push_str(&format!(
            "{:>7} | {:>5} | {:>9.0} | {:>9.0} | {:>6.1} | {:>10.2}x | {:>12.2} | {:>11.1}%\n",
            p.threads,
            p.batch,
            p.commits_per_s(),
            p.records as f64 / p.seconds,
            p.mb_per_s(),
            p.commits_per_s() / base(p.batch),
            p.commits_per_ship(),
            100.0 * p.mb_per_s() / raw_mb_s.max(f64::MIN_POSITIVE),
        ));
    }
    s.push_str(&format!(
        "raw WRITE bandwidth of the link: {raw_mb_s:.1} MB/s ({} KiB WRITE+READ back to back on the same QP)\n",
        MAX_PROBE_LEN / 1024
    ));
    s
}

pub(crate) fn json(points: &[Point], raw_mb_s: f64) -> Value {
    json!({
        "raw_write_mb_per_s": raw_mb_s,
        "points": points.iter().map(|p| json!({
            "threads": p.threads, "batch": p.batch, "commits": p.commits, "records": p.records,
            "bytes": p.bytes, "seconds": p.seconds, "commits_per_s": p.commits_per_s(), "mb_per_s": p.mb_per_s(),
            "ships": p.ships, "commits_per_ship": p.commits_per_ship(),
        })).collect::<Vec<_>>(),
    })
}
