//! Latency summaries from HDR histograms, in nanoseconds.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// A histogram of nanoseconds, 1 ns to 100 s at 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// The figures RDMA people quote: perftest's t_min, t_typical (p50),
/// 99% and 99.9%, t_max, t_avg and t_stdev.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) count: u64,
    pub(crate) min_ns: u64,
    pub(crate) p50_ns: u64,
    pub(crate) p90_ns: u64,
    pub(crate) p99_ns: u64,
    pub(crate) p999_ns: u64,
    pub(crate) max_ns: u64,
    /// Arithmetic mean, from the histogram's buckets (each sample counted
    /// at the middle of its bucket: exact below 2048 ns, within 0.1% above).
    pub(crate) mean_ns: f64,
    /// Population standard deviation (divided by the count, as perftest
    /// does), from the same buckets.
    pub(crate) stdev_ns: f64,
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
            mean_ns: h.mean(),
            stdev_ns: h.stdev(),
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "count": self.count, "min_ns": self.min_ns, "p50_ns": self.p50_ns, "p90_ns": self.p90_ns,
            "p99_ns": self.p99_ns, "p999_ns": self.p999_ns, "max_ns": self.max_ns,
            "mean_ns": self.mean_ns, "stdev_ns": self.stdev_ns,
        })
    }
}

/// `12.3` µs from nanoseconds.
pub(crate) fn us(ns: u64) -> String {
    us_f64(ns as f64)
}

/// `12.3` µs from a fractional number of nanoseconds (a mean, a deviation).
pub(crate) fn us_f64(ns: f64) -> String {
    format!("{:.1}", ns / 1000.0)
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
        // 1..=1000 µs: mean 500.5 µs, population deviation
        // sqrt((1000^2 - 1) / 12) = 288.67 µs, within the histogram's 0.1%.
        assert!((s.mean_ns - 500_500.0).abs() < 500.0, "{s:?}");
        assert!((s.stdev_ns - 288_675.0).abs() < 300.0, "{s:?}");
    }

    #[test]
    fn mean_and_stdev_match_a_hand_computed_sample() {
        // 2, 4, 4, 4, 5, 5, 7, 9 ns: sum 40, mean 5; squared deviations
        // 9+1+1+1+0+0+4+16 = 32, / 8 = 4, stdev 2 (population, as perftest).
        // Below 2048 ns every value is its own bucket, so these are exact.
        let mut h = histogram();
        for v in [2, 4, 4, 4, 5, 5, 7, 9] {
            h.record(v).unwrap();
        }
        let s = Summary::of(&h);
        assert_eq!(s.mean_ns, 5.0, "{s:?}");
        assert_eq!(s.stdev_ns, 2.0, "{s:?}");
        let j = s.json();
        assert_eq!(j["mean_ns"].as_f64(), Some(5.0), "{j}");
        assert_eq!(j["stdev_ns"].as_f64(), Some(2.0), "{j}");

        // One value: no spread.
        let mut one = histogram();
        one.record(1500).unwrap();
        let s = Summary::of(&one);
        assert_eq!((s.mean_ns, s.stdev_ns), (1500.0, 0.0), "{s:?}");

        // Two values in the µs range: 10 and 30 µs, mean 20, stdev 10,
        // within the 0.1% bucket width.
        let mut two = histogram();
        two.record(10_000).unwrap();
        two.record(30_000).unwrap();
        let s = Summary::of(&two);
        assert!((s.mean_ns - 20_000.0).abs() < 20.0, "{s:?}");
        assert!((s.stdev_ns - 10_000.0).abs() < 20.0, "{s:?}");
        assert_eq!(us_f64(s.mean_ns), "20.0");
    }
}
