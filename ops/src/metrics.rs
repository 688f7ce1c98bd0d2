//! Metrics in the OpenMetrics text format, served over a minimal HTTP
//! listener (off unless a daemon's config names an address).
//!
//! - [`Endpoint::serve`] answers `GET /metrics` with the registry (after
//!   calling a refresh hook that sets the gauges read from the daemon's
//!   state), and `GET` of any extra path it was given (a daemon's
//!   `/status` JSON), one connection at a time, each bounded by a timeout.
//! - [`AtomicHistogram`]: a histogram whose `observe` is a few relaxed
//!   atomic adds (no lock), for the commit path; the `prometheus-client`
//!   histogram takes a lock per observation.
//!
//! Names follow Prometheus conventions: a `tg_` prefix, base units in the
//! name (`_bytes`, `_seconds`), `_total` on counters (added by the
//! encoder).

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use prometheus_client;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The content type of `/metrics` for a scraper that asks for OpenMetrics
/// (Prometheus does).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of `/metrics` otherwise (curl, `promtool check
/// metrics`): Prometheus's classic text format.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long one scrape may take to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest request head read (a scrape sends a few hundred bytes).
const MAX_REQUEST: usize = 8 << 10;

/// An extra path and what it answers: (content type, body).
pub type Page = Box<dyn Fn() -> (&'static str, String) + Send>;

/// A running metrics listener; dropping it stops it.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the blocking accept; it sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, CLIENT_TIMEOUT);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Endpoint {
    /// Binds `listen` (`HOST:PORT`) and serves on a thread of its own:
    /// `/metrics` is `registry` encoded after `refresh()`; each of `pages`
    /// is its function's answer.
    ///
    /// # Errors
    /// The bind's, with the address named.
    pub fn serve(
        listen: &str,
        registry: Registry,
        refresh: Box<dyn Fn() + Send>,
        pages: Vec<(&'static str, Page)>,
    ) -> io::Result<Endpoint> {
        let listener = TcpListener::bind(listen)
            .map_err(|e| io::Error::new(e.kind(), format!("metrics listener on {listen}: {e}")))?;
        let mut addr = listener.local_addr()?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("tg-metrics".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    if let Err(e) = answer(stream, &registry, &*refresh, &pages) {
                        tracing::debug!(error = %e, "metrics request failed");
                    }
                }
            })?;
        tracing::info!(%addr, "metrics served at http://{addr}/metrics");
        // A wildcard bind is woken through loopback.
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Ok(Endpoint {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (loopback for a wildcard bind).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Encodes `registry` as OpenMetrics text (ends with `# EOF`).
#[must_use]
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String does not fail");
    out
}

fn answer(
    mut stream: TcpStream,
    registry: &Registry,
    refresh: &dyn Fn(),
    pages: &[(&'static str, Page)],
) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_owned(),
        )
    } else if path == "/metrics" {
        refresh();
        let om = encode(registry);
        if wants_openmetrics(&head) {
            ("200 OK", OPENMETRICS, om)
        } else {
            ("200 OK", CLASSIC, to_classic(&om))
        }
    } else if let Some((_, page)) = pages.iter().find(|(p, _)| *p == path) {
        let (ctype, body) = page();
        ("200 OK", ctype, body)
    } else {
        let mut known = String::from("/metrics");
        for (p, _) in pages {
            let _ = write!(known, " {p}");
        }
        (
            "404 Not Found",
            "text/plain",
            format!("no {path}; try {known}\n"),
        )
    };
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        resp.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&resp)?;
    stream.flush()
}

/// `GET path` from a daemon's metrics listener at `addr`: the body of a
/// `200` answer (each step bounded by `timeout`). For `tg-replica status`
/// and `tg-closure status`.
///
/// # Errors
/// Why nothing usable answered, as a sentence.
pub fn fetch(addr: &str, path: &str, timeout: Duration) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr} does not resolve: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr} does not resolve"))?;
    let mut conn = TcpStream::connect_timeout(&sock, timeout).map_err(|e| e.to_string())?;
    let _ = conn.set_read_timeout(Some(timeout));
    let _ = conn.set_write_timeout(Some(timeout));
    let mut resp = Vec::new();
    conn.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .and_then(|()| conn.take(16 << 20).read_to_end(&mut resp))
        .map_err(|e| e.to_string())?;
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.lines().next().unwrap_or("");
    // (A server may answer an HTTP/1.0 request as HTTP/1.0: Go's does.)
    let code = status.split(' ').nth(1);
    if !status.starts_with("HTTP/1.") || code != Some("200") {
        return Err(format!("answered {status:?}, not a tailguard daemon's 200"));
    }
    Ok(body.to_owned())
}

/// Whether the request's `Accept` header asks for OpenMetrics.
fn wants_openmetrics(head: &str) -> bool {
    head.lines().skip(1).any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("accept") && v.contains("application/openmetrics-text")
        })
    })
}

/// OpenMetrics text as Prometheus's classic text format: a counter's
/// `HELP` and `TYPE` name its `_total` samples, and there is no `# EOF`.
/// (The encoder writes no `UNIT` lines and no `_created` samples here.)
#[must_use]
pub fn to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            if let Some(h) = help.replace(line) {
                out.push_str(h);
                out.push('\n');
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let total = kind == "counter" && !name.ends_with("_total");
            if let Some(h) = help.take() {
                match (
                    total,
                    h.strip_prefix("# HELP ").and_then(|r| r.split_once(' ')),
                ) {
                    (true, Some((n, text))) => {
                        let _ = writeln!(out, "# HELP {n}_total {text}");
                    }
                    _ => {
                        out.push_str(h);
                        out.push('\n');
                    }
                }
            }
            if total {
                let _ = writeln!(out, "# TYPE {name}_total {kind}");
            } else {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        if let Some(h) = help.take() {
            out.push_str(h);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Reads up to the blank line ending a request head (bounded).
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head over 8 KiB",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A histogram of durations in seconds whose [`observe`](Self::observe)
/// takes no lock: a relaxed add to its bucket, its count and its sum.
/// A scrape may see a count and a sum from slightly different moments,
/// which Prometheus's rate() tolerates.
#[derive(Debug, Clone)]
pub struct AtomicHistogram {
    inner: Arc<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    /// Upper bounds in seconds, ascending; the last bucket (+Inf) is
    /// implicit.
    bounds: Box<[f64]>,
    /// One count per bound, and one for +Inf.
    counts: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    /// With `bounds` (seconds, ascending) and a +Inf bucket.
    ///
    /// # Panics
    /// If `bounds` is not strictly ascending.
    #[must_use]
    pub fn new(bounds: &[f64]) -> Self {
        assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "histogram bounds must ascend"
        );
        AtomicHistogram {
            inner: Arc::new(Buckets {
                bounds: bounds.into(),
                counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                count: AtomicU64::new(0),
                sum_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Bounds for RDMA latencies: 1 µs to about 4 s, doubling.
    #[must_use]
    pub fn latency() -> Self {
        let bounds: Vec<f64> = (0..22).map(|i| 1e-6 * f64::from(1u32 << i)).collect();
        AtomicHistogram::new(&bounds)
    }

    /// Counts one observation of `d`.
    pub fn observe(&self, d: Duration) {
        let b = &self.inner;
        let secs = d.as_secs_f64();
        let i = b.bounds.partition_point(|&ub| ub < secs);
        b.counts[i].fetch_add(1, Ordering::Relaxed);
        b.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        b.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many observations.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let b = &self.inner;
        let buckets: Vec<(f64, u64)> = b
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(b.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' sum, so the two always agree.
        let count = buckets.iter().map(|(_, n)| n).sum();
        #[allow(clippy::cast_precision_loss)]
        let sum = b.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests;
