//! `tg-bench latency`: commit latency per record size, one outstanding
//! commit, next to the raw link on the same queue pair in the same run.

use std::time::Instant;

use fabric::mirror::Probe;
use fabric::replicated::ReplicatedLog;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::progress::Progress;
use crate::stats::{cdf, histogram, us, us_f64, Summary};

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
            // Outside the timed sections: drawing costs no measured time.
            progress.update(|| {
                let step = if i < warmup {
                    format!("warm-up {}/{warmup}", i + 1)
                } else {
                    format!("iteration {}/{iterations}", i - warmup + 1)
                };
                format!(
                    "latency {size} B ({}/{}): {step}",
                    out.len() + 1,
                    sizes.len()
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

/// Width of one number column of the table.
const COL: usize = 8;

pub(crate) fn table(runs: &[SizeRun]) -> String {
    // Groups: (title, column names); every column is COL wide plus a space.
    // Mean and standard deviation (perftest's t_avg, t_stdev) beside the
    // percentiles of the two figures the ratio compares; the JSON has them
    // for the raw READ too.
    let groups: [(&str, &[&str]); 4] = [
        (
            "tailguard commit µs",
            &["p50", "p90", "p99", "p99.9", "max", "avg", "stdev"],
        ),
        (
            "raw WRITE+READ µs",
            &["p50", "p99", "p99.9", "avg", "stdev"],
        ),
        ("raw READ µs", &["p50", "p99"]),
        ("commit ÷ raw W+R", &["p50", "p99"]),
    ];
    let width = |cols: usize| cols * (COL + 1);
    let mut top = format!("{:>9} |", "size");
    let mut names = format!("{:>9} |", "");
    let mut rule = format!("{}+", "-".repeat(10));
    for (title, cols) in groups {
        top.push_str(&format!(" {title:<w$}|", w = width(cols.len()) - 1));
        for c in cols {
            names.push_str(&format!("{c:>COL$} "));
        }
        names.push('|');
        rule.push_str(&format!("{}+", "-".repeat(width(cols.len()))));
    }
    let mut s = format!("{top}\n{names}\n{rule}\n");
    for r in runs {
        let (t, w, d) = (
            Summary::of(&r.tailguard),
            Summary::of(&r.write_read),
            Summary::of(&r.read),
        );
        let mut line = format!("{:>7} B |", r.size);
        let mut cells = |vals: &[String]| {
            for v in vals {
                line.push_str(&format!("{v:>COL$} "));
            }
            line.push('|');
        };
        let spread = |x: &Summary| [x.mean_ns, x.stdev_ns].map(us_f64);
        cells(
            &[
                [t.p50_ns, t.p90_ns, t.p99_ns, t.p999_ns, t.max_ns]
                    .map(us)
                    .as_slice(),
                &spread(&t),
            ]
            .concat(),
        );
        cells(
            &[
                [w.p50_ns, w.p99_ns, w.p999_ns].map(us).as_slice(),
                &spread(&w),
            ]
            .concat(),
        );
        cells(&[d.p50_ns, d.p99_ns].map(us));
        cells(&[
            format!("{:.2}", t.p50_ns as f64 / w.p50_ns.max(1) as f64),
            format!("{:.2}", t.p99_ns as f64 / w.p99_ns.max(1) as f64),
        ]);
        s.push_str(&line);
        s.push('\n');
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_line_up_with_large_values() {
        let mut r = SizeRun {
            size: 65536,
            wire_len: 65568,
            tailguard: histogram(),
            write_read: histogram(),
            read: histogram(),
        };
        for v in [5_000_000, 970_000_000] {
            r.tailguard.record(v).unwrap();
            r.write_read.record(v / 2).unwrap();
            r.read.record(v / 3).unwrap();
        }
        let t = table(std::slice::from_ref(&r));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        // Every row has its `|` separators in the same columns, and the
        // rule its `+` there.
        let at = |l: &str, sep: char| {
            l.chars()
                .enumerate()
                .filter(|c| c.1 == sep)
                .map(|c| c.0)
                .collect::<Vec<_>>()
        };
        let header = at(lines[0], '|');
        assert_eq!(at(lines[1], '|'), header, "\n{t}");
        assert_eq!(at(lines[2], '+'), header, "\n{t}");
        assert_eq!(at(lines[3], '|'), header, "\n{t}");
        assert!(lines[3].contains("970457.1"), "{t}");
        // avg and stdev sit right after max: (5 ms + 970 ms) / 2 = 487.5 ms
        // and 482.5 ms (within the histogram's 0.1% bucket width). A row
        // splits as `65536 B | p50 p90 p99 p99.9 max avg stdev | ...`.
        let header_cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            &header_cells[1..9],
            ["p50", "p90", "p99", "p99.9", "max", "avg", "stdev", "|"],
            "{t}"
        );
        let row: Vec<&str> = lines[3].split_whitespace().collect();
        let (avg, stdev): (f64, f64) = (row[8].parse().unwrap(), row[9].parse().unwrap());
        assert!((avg - 487_500.0).abs() < 1000.0, "avg {avg}\n{t}");
        assert!((stdev - 482_500.0).abs() < 1000.0, "stdev {stdev}\n{t}");
        let j = json(&[r]);
        assert!(
            j[0]["tailguard_commit"]["mean_ns"].as_f64().unwrap() > 4.8e8,
            "{j}"
        );
        assert!(
            j[0]["raw_read"]["stdev_ns"].as_f64().unwrap() > 1.5e8,
            "{j}"
        );
    }
}
