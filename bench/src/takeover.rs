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

use closure::config::ValidatedHostConfig;
use closure::options::ClosureOptions;
use closure::standby::{ShipFrom, Standby};
use fabric::replicated::ReplicatedLog;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::stats::{histogram, us, us_f64, Summary};

/// One tail length's figures: HDR histograms of nanoseconds.
pub(crate) struct Point {
    tail_records: u64,
    tail_bytes: u64,
    pre: Histogram<u64>,
    cold: Histogram<u64>,
}

impl Point {
    fn ratio_p50(&self) -> f64 {
        self.cold.value_at_quantile(0.5) as f64 / self.pre.value_at_quantile(0.5).max(1) as f64
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn run(
    cfg: &ValidatedHostConfig,
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
            pre: histogram(),
            cold: histogram(),
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
            ship_all(&mut warm, tail, ShipFrom::ReplicaStatus, &mut seen)?;
            p.pre.saturating_record(ns(t.elapsed()));
            drop(warm);

            let t = Instant::now();
            let mut cold = Standby::prepare(&opts, wait).map_err(|e| e.to_string())?;
            ship_all(&mut cold, tail, ShipFrom::At(before), &mut seen)?;
            p.cold.saturating_record(ns(t.elapsed()));
            drop(cold);
            rl.commit(last).map_err(|e| format!("commit: {e}"))?;
        }
        if progress {
            eprintln!(
                "tg-bench: tail {n} records: pre-established {} us, cold {} us (p50)",
                us(p.pre.value_at_quantile(0.5)),
                us(p.cold.value_at_quantile(0.5))
            );
        }
        points.push(p);
    }
    Ok(points)
}

pub(crate) fn table(points: &[Point]) -> String {
    let mut s = format!(
        "{:>11} {:>10} | {:>45} | {:>45} | {:>8}\n{:>11} {:>10} | {:>8} {:>8} {:>9} {:>8} {:>8} | {:>8} {:>8} {:>9} {:>8} {:>8} | {:>8}\n",
        "tail (recs)", "bytes", "pre-established µs", "cold µs", "cold/pre",
        "", "", "p50", "p90", "max", "avg", "stdev", "p50", "p90", "max", "avg", "stdev", "p50",
    );
    for p in points {
        let (pre, cold) = (Summary::of(&p.pre), Summary::of(&p.cold));
        s.push_str(&format!(
            "{:>11} {:>10} | {:>8} {:>8} {:>9} {:>8} {:>8} | {:>8} {:>8} {:>9} {:>8} {:>8} | {:>8.1}\n",
            p.tail_records,
            p.tail_bytes,
            us(pre.p50_ns),
            us(pre.p90_ns),
            us(pre.max_ns),
            us_f64(pre.mean_ns),
            us_f64(pre.stdev_ns),
            us(cold.p50_ns),
            us(cold.p90_ns),
            us(cold.max_ns),
            us_f64(cold.mean_ns),
            us_f64(cold.stdev_ns),
            p.ratio_p50()
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
                    "pre_established": Summary::of(&p.pre).json(),
                    "cold": Summary::of(&p.cold).json(),
                    "cold_over_pre_p50": p.ratio_p50(),
                })
            })
            .collect(),
    )
}

/// Ships the tail to every replica; a benchmark round with one missed is
/// not a measurement, so any replica missed is the round's error.
fn ship_all(
    standby: &mut Standby,
    to: u64,
    from: ShipFrom,
    seen: &mut Vec<(String, u64)>,
) -> Result<(), String> {
    let mut missed = Vec::new();
    standby
        .ship(to, from, seen, &mut missed)
        .map_err(|e| e.to_string())?;
    match missed.first() {
        None => Ok(()),
        Some((replica, why)) => Err(format!("shipping the tail to replica {replica}: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(v: &[u64]) -> Histogram<u64> {
        let mut h = histogram();
        for &x in v {
            h.record(x).unwrap();
        }
        h
    }

    #[test]
    fn table_and_json_report_percentiles_and_the_ratio_of_medians() {
        let p = Point {
            tail_records: 1,
            tail_bytes: 128,
            pre: hist(&[10_000, 12_000, 11_000]),
            cold: hist(&[1_100_000, 900_000, 1_000_000]),
        };
        let t = table(std::slice::from_ref(&p));
        // p50 11 us vs 1000 us (3 significant digits); max 12 us / 1100 us.
        assert!(t.contains("11.0"), "{t}");
        assert!(t.contains("12.0"), "{t}");
        assert!(t.contains("1000.4") || t.contains("1000.0"), "{t}");
        assert!(t.contains("1100."), "{t}");
        assert!(t.contains("90.9") || t.contains("91.0"), "{t}");
        // avg and stdev after max: pre 11.0 and 0.8 µs (10, 11, 12 µs),
        // cold 1000.x and 81.x µs (0.9, 1.0, 1.1 ms).
        let row: Vec<&str> = t.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(row[..3], ["1", "128", "|"], "{t}");
        assert_eq!(row[6..9], ["11.0", "0.8", "|"], "{t}");
        assert!(row[12].starts_with("100"), "cold avg {}: {t}", row[12]);
        assert!(row[13].starts_with("81."), "cold stdev {}: {t}", row[13]);
        let j = json(std::slice::from_ref(&p));
        assert_eq!(j[0]["pre_established"]["count"], 3);
        assert_eq!(j[0]["cold"]["count"], 3);
        // Each sample counts at its bucket's middle (8 ns wide here).
        let mean = j[0]["pre_established"]["mean_ns"].as_f64().unwrap();
        assert!((mean - 11_000.0).abs() < 8.0, "{mean}");
        let r = j[0]["cold_over_pre_p50"].as_f64().unwrap();
        assert!((r - 90.9).abs() < 0.2, "{r}");
    }
}
