//! Latency summaries from HDR histograms, in nanoseconds.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// A histogram of nanoseconds, 1 ns to 100 s at 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// The figures RDMA people quote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) count: u64,
    pub(crate) min_ns: u64,
    pub(crate) p50_ns: u64,
    pub(crate) p90_ns: u64,
    pub(crate) p99_ns: u64,
    pub(crate) p999_ns: u64,
    pub(crate) max_ns: u64,
}

impl Summary {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        Summary {
            count: h.len(),
            min_ns: h.min(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "count": self.count, "min_ns": self.min_ns, "p50_ns": self.p50_ns, "p90_ns": self.p90_ns,
            "p99_ns": self.p99_ns, "p999_ns": self.p999_ns, "max_ns": self.max_ns,
        })
    }
}

/// `12.3` µs from nanoseconds.
pub(crate) fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// The CDF points of a histogram (latency µs, cumulative fraction), for plots:
/// 5 points per halving of the remaining fraction, so the tail (p99, p99.9)
/// is drawn as finely as the body without one point per sample.
pub(crate) fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    h.iter_quantiles(5)
        .map(|v| {
            (
                v.value_iterated_to() as f64 / 1000.0,
                v.quantile_iterated_to(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_the_histogram() {
        let mut h = histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let s = Summary::of(&h);
        assert_eq!(s.count, 1000);
        assert_eq!(s.min_ns, 1000);
        assert!((499_000..=501_000).contains(&s.p50_ns), "{s:?}");
        assert!((989_000..=991_000).contains(&s.p99_ns), "{s:?}");
        assert!(s.max_ns >= 999_000);
        assert_eq!(us(12_345), "12.3");
        assert!(cdf(&h).last().unwrap().1 > 0.999);
    }
}
