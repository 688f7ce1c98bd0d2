//! `tg-bench takeover`: how long the closure needs to make a log tail of N
//! records durable on every replica, with its pre-established resources,
//! next to a cold agent that must open the device, register the log and
//! connect before shipping the same tail, in the same run.
//!
//! Per tail length and iteration: the benchmark (the host) appends N
//! records and persists them locally without replicating them; a standby
//! (`closure::standby::Standby`, armed beforehand, untimed) ships them:
//! status round trip + WRITEs + flush per replica (timed: "pre-established").
//! Then a fresh standby is prepared and ships the same range again from the
//! same start (timed from nothing: "cold"). Rewriting the range writes the
//! same bytes. Finally the host commits, so the next tail starts durable.
//! One closure identity is connected at a time (the warm standby is
//! dropped before the cold one connects).

use std::path::Path;
use std::time::{Duration, Instant};

use closure::options::ClosureOptions;
use closure::standby::{ShipFrom, Standby};
use fabric::config::Config;
use fabric::replicated::ReplicatedLog;
use serde_json::{json, Value};

/// One tail length's figures, in nanoseconds.
pub(crate) struct Point {
    tail_records: u64,
    tail_bytes: u64,
    pre_ns: Vec<u64>,
    cold_ns: Vec<u64>,
}

fn median(v: &[u64]) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s[s.len() / 2]
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn run(
    cfg: &Config,
    cfg_path: &Path,
    rl: &ReplicatedLog,
    tails: &[u64],
    iterations: u64,
    size: u32,
    progress: bool,
) -> Result<Vec<Point>, String> {
    if cfg.required_acks().is_none() {
        return Err(format!(
            "{}: takeover needs `commit: sync` (with async the host's own shipper races the closure)",
            cfg_path.display()
        ));
    }
    let opts = ClosureOptions::from_config(cfg, cfg_path).map_err(|e| e.to_string())?;
    let payload = vec![0x5a_u8; size as usize];
    // The replicas hold everything so far.
    let first = rl.append(&payload).map_err(|e| format!("append: {e}"))?;
    rl.commit(first.lsn).map_err(|e| format!("commit: {e}"))?;
    let wait = Duration::from_secs(5);
    let mut points = Vec::new();
    for &n in tails {
        let mut p = Point {
            tail_records: n,
            tail_bytes: 0,
            pre_ns: Vec::new(),
            cold_ns: Vec::new(),
        };
        for _ in 0..iterations {
            let before = rl.log().persisted().pos;
            let mut warm = Standby::prepare(&opts, wait).map_err(|e| e.to_string())?;
            let mut last = first.lsn;
            for _ in 0..n {
                last = rl.append(&payload).map_err(|e| format!("append: {e}"))?.lsn;
            }
            let tail = rl.log().persist_all().map_err(|e| e.to_string())?.pos;
            p.tail_bytes = tail - before;
            let mut seen = Vec::new();
            let t = Instant::now();
            warm.ship(tail, ShipFrom::ReplicaStatus, &mut seen)
                .map_err(|e| e.to_string())?;
            p.pre_ns.push(ns(t.elapsed()));
            drop(warm);

            let t = Instant::now();
            let mut cold = Standby::prepare(&opts, wait).map_err(|e| e.to_string())?;
            cold.ship(tail, ShipFrom::At(before), &mut seen)
                .map_err(|e| e.to_string())?;
            p.cold_ns.push(ns(t.elapsed()));
            drop(cold);
            rl.commit(last).map_err(|e| format!("commit: {e}"))?;
        }
        if progress {
            eprintln!(
                "tg-bench: tail {n} records: pre-established {} us, cold {} us (medians)",
                median(&p.pre_ns) / 1000,
                median(&p.cold_ns) / 1000
            );
        }
        points.push(p);
    }
    Ok(points)
}

pub(crate) fn table(points: &[Point]) -> String {
    let mut s = format!(
        "{:>12} {:>12} {:>18} {:>12} {:>8}\n",
        "tail (recs)", "bytes", "pre-estab. (us)", "cold (us)", "cold/pre"
    );
    for p in points {
        let (pre, cold) = (median(&p.pre_ns), median(&p.cold_ns));
        s.push_str(&format!(
            "{:>12} {:>12} {:>18.1} {:>12.1} {:>8.1}\n",
            p.tail_records,
            p.tail_bytes,
            pre as f64 / 1000.0,
            cold as f64 / 1000.0,
            cold as f64 / pre.max(1) as f64
        ));
    }
    s
}

pub(crate) fn json(points: &[Point]) -> Value {
    Value::Array(
        points
            .iter()
            .map(|p| {
                json!({
                    "tail_records": p.tail_records,
                    "tail_bytes": p.tail_bytes,
                    "pre_established_ns": p.pre_ns,
                    "cold_ns": p.cold_ns,
                    "pre_established_median_ns": median(&p.pre_ns),
                    "cold_median_ns": median(&p.cold_ns),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_reports_the_ratio_of_medians() {
        let p = Point {
            tail_records: 1,
            tail_bytes: 128,
            pre_ns: vec![10_000, 12_000, 11_000],
            cold_ns: vec![1_100_000, 900_000, 1_000_000],
        };
        let t = table(&[p]);
        assert!(t.contains("11.0"), "{t}");
        assert!(t.contains("1000.0"), "{t}");
        assert!(t.contains("90.9"), "{t}");
    }
}
