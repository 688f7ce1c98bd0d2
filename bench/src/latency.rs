//! `tg-bench latency`: commit latency per record size, one outstanding
//! commit, next to the raw link on the same queue pair in the same run.

use std::time::Instant;

use fabric::mirror::Probe;
use fabric::replicated::ReplicatedLog;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::progress::Progress;
use crate::stats::{cdf, histogram, us, Summary};

/// One size's three histograms.
pub(crate) struct SizeRun {
    pub(crate) size: u32,
    pub(crate) wire_len: u32,
    pub(crate) tailguard: Histogram<u64>,
    pub(crate) write_read: Histogram<u64>,
    pub(crate) read: Histogram<u64>,
}

/// Measures `sizes`: per iteration one commit of a `size`-byte record, one
/// raw WRITE (the record's on-wire length) + READ flush, and one raw READ of
/// `size` bytes, interleaved so drift hits all three alike. Warm-up
/// iterations are not recorded.
pub(crate) fn run(
    rl: &ReplicatedLog,
    sizes: &[u32],
    iterations: u64,
    warmup: u64,
    progress: &mut Progress,
) -> Result<Vec<SizeRun>, String> {
    let mut out = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let payload = vec![0x5a_u8; size as usize];
        let wire_len =
            u32::try_from(logcore::record_len(u64::from(size))).map_err(|_| "record too large")?;
        let mut r = SizeRun {
            size,
            wire_len,
            tailguard: histogram(),
            write_read: histogram(),
            read: histogram(),
        };
        let total = warmup + iterations;
        for i in 0..total {
            progress.update(|| {
                format!(
                    "latency {size} B ({}/{}): iteration {}/{total}",
                    out.len() + 1,
                    sizes.len(),
                    i + 1
                )
            });
            let t = Instant::now();
            let a = rl
                .append(&payload)
                .map_err(|e| format!("append of {size} bytes: {e}"))?;
            rl.commit(a.lsn).map_err(|e| format!("commit: {e}"))?;
            let tg = t.elapsed();
            let t = Instant::now();
            rl.probe(0, Probe::WriteRead, wire_len)
                .map_err(|e| e.to_string())?;
            let wr = t.elapsed();
            let t = Instant::now();
            rl.probe(0, Probe::Read, size.max(8))
                .map_err(|e| e.to_string())?;
            let rd = t.elapsed();
            if i >= warmup {
                for (h, d) in [
                    (&mut r.tailguard, tg),
                    (&mut r.write_read, wr),
                    (&mut r.read, rd),
                ] {
                    h.saturating_record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
                }
            }
        }
        progress.milestone(&format!(
            "latency {size} B done ({}/{} sizes, {iterations} iterations, p50 {} µs)",
            out.len() + 1,
            sizes.len(),
            us(r.tailguard.value_at_quantile(0.5))
        ));
        out.push(r);
    }
    Ok(out)
}

pub(crate) fn table(runs: &[SizeRun]) -> String {
    let mut s = String::new();
    s.push_str("size     | tailguard commit µs              | raw WRITE+READ µs       | raw READ µs | commit/raw\n");
    s.push_str("         |   p50    p90    p99  p99.9    max |   p50    p99  p99.9     |   p50   p99 | p50   p99\n");
    s.push_str("---------+---------------------------------+-------------------------+-------------+-----------\n");
    for r in runs {
        let (t, w, d) = (
            Summary::of(&r.tailguard),
            Summary::of(&r.write_read),
            Summary::of(&r.read),
        );
        s.push_str(&format!(
            "{:>6} B | {:>6} {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6}     | {:>5} {:>5} | {:>4.2} {:>5.2}\n",
            r.size,
            us(t.p50_ns),
            us(t.p90_ns),
            us(t.p99_ns),
            us(t.p999_ns),
            us(t.max_ns),
            us(w.p50_ns),
            us(w.p99_ns),
            us(w.p999_ns),
            us(d.p50_ns),
            us(d.p99_ns),
            t.p50_ns as f64 / w.p50_ns.max(1) as f64,
            t.p99_ns as f64 / w.p99_ns.max(1) as f64,
        ));
    }
    s
}

pub(crate) fn json(runs: &[SizeRun]) -> Value {
    Value::Array(
        runs.iter()
            .map(|r| {
                let (t, w, d) = (
                    Summary::of(&r.tailguard),
                    Summary::of(&r.write_read),
                    Summary::of(&r.read),
                );
                json!({
                    "size_bytes": r.size,
                    "wire_bytes": r.wire_len,
                    "tailguard_commit": t.json(),
                    "raw_write_read": w.json(),
                    "raw_read": d.json(),
                    "ratio_p50_commit_to_write_read": t.p50_ns as f64 / w.p50_ns.max(1) as f64,
                    "ratio_p99_commit_to_write_read": t.p99_ns as f64 / w.p99_ns.max(1) as f64,
                    "cdf_us": {
                        "tailguard_commit": cdf(&r.tailguard),
                        "raw_write_read": cdf(&r.write_read),
                        "raw_read": cdf(&r.read),
                    },
                })
            })
            .collect(),
    )
}
