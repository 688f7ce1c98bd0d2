//! A real Prometheus server (Debian's `prometheus`, started here with a
//! generated config) scrapes a host (`tg-bench load` with
//! `metrics-listen`), its replica (`replica.metrics-listen`) and its
//! closure (`closure.metrics-listen`) on real verbs during a load:
//!
//! - `promtool check metrics` passes on every endpoint's output;
//! - every target is up, and while the load runs the closure is armed, the
//!   replica has two sessions (the host and its closure) and the host's
//!   link is up;
//! - once the load is done (the host holds its log open), Prometheus's
//!   figures equal what the processes report themselves: commits and
//!   commit-latency observations equal the `committed` lines of `tg-bench
//!   load`, the replica's durable tail equals `tg-replica status` and the
//!   host's persisted tail, the host's lag is 0 bytes, and the bytes
//!   shipped cover the log;
//! - `tg-replica status` and `tg-closure status` show the live daemons:
//!   both writers at their epoch, takeover armed with the replica's link up.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{bin, Node};
use testkit::Lines;

const RECORDS: u64 = 3000;
const RATE: u64 = 300;

/// Kills a child when dropped (Prometheus, the host, the closure).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    tg_ops::metrics::fetch(addr, path, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query: each result's labels and value.
fn query(prom: &str, q: &str) -> Vec<(serde_json::Value, f64)> {
    let body = http_get(prom, &format!("/api/v1/query?query={}", urlencode(q)));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "query {q}: {v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let val: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
            (r["metric"].clone(), val)
        })
        .collect()
}

/// The one value of `q`, once Prometheus has it.
fn one(prom: &str, q: &str) -> Option<f64> {
    match query(prom, q).as_slice() {
        [(_, v)] => Some(*v),
        _ => None,
    }
}

/// Waits (bounded) until `q` has one value satisfying `ok`; returns it.
fn wait_value(prom: &str, q: &str, within: Duration, ok: impl Fn(f64) -> bool, node: &Node) -> f64 {
    let end = Instant::now() + within;
    loop {
        let v = one(prom, q);
        if let Some(v) = v.filter(|&v| ok(v)) {
            return v;
        }
        assert!(
            Instant::now() < end,
            "Prometheus never had the awaited value of {q} (last {v:?}) in {within:?}\n{}",
            node.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn promtool_check(addr: &str, what: &str) {
    let text = http_get(addr, "/metrics");
    assert!(
        text.contains("# TYPE tg_"),
        "{what}: no tailguard metrics:\n{text}"
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; ci/setup installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics on {what} ({addr}): {}\n{}{}\n--- output\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "rdma: needs an RDMA device (TG_RDMA_DEVICE), real processes and Prometheus; runs in the rxe VM"]
fn rdma_prometheus_scrapes_every_daemon() {
    let ports: Vec<u16> = (0..4).map(|_| testkit::free_port()).collect();
    let (host_m, replica_m, closure_m, prom_port) = (
        format!("127.0.0.1:{}", ports[0]),
        format!("127.0.0.1:{}", ports[1]),
        format!("127.0.0.1:{}", ports[2]),
        ports[3],
    );
    let mut node = Node::new("prometheus", &format!("  metrics-listen: {closure_m}\n"));
    let yaml = std::fs::read_to_string(&node.cfg_path).unwrap();
    let yaml = yaml
        .replacen(
            "name: host-a\n",
            &format!("name: host-a\nmetrics-listen: {host_m}\n"),
            1,
        )
        .replacen(
            "  epoch-file: epoch\n",
            &format!("  epoch-file: epoch\n  metrics-listen: {replica_m}\n"),
            1,
        );
    assert!(
        yaml.contains(&replica_m) && yaml.contains(&host_m),
        "{yaml}"
    );
    std::fs::write(&node.cfg_path, &yaml).unwrap();
    node.start_replica();

    let mut host = Command::new(bin("tg-bench"));
    host.args(["-v", "-v", "load", "--quiet", "--config"])
        .arg(&node.cfg_path)
        .args([
            "--records",
            &RECORDS.to_string(),
            "--rate",
            &RATE.to_string(),
        ])
        .args(["--seed", "77", "--hold-ms", "120000"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(node.dir.join("host.err")).unwrap());
    let mut host = Killed(host.spawn().unwrap());
    let host_out = Lines::new(host.0.stdout.take().unwrap());
    node.first_commit(&host_out);
    let (closure, closure_out) = node.start_closure_serving();
    let _closure = Killed(closure);
    node.armed(&closure_out, Duration::from_secs(60));

    // Prometheus, scraping the three every second.
    let prom_cfg = node.dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
             \x20 - job_name: host\n    static_configs: [{{targets: ['{host_m}']}}]\n\
             \x20 - job_name: replica\n    static_configs: [{{targets: ['{replica_m}']}}]\n\
             \x20 - job_name: closure\n    static_configs: [{{targets: ['{closure_m}']}}]\n"
        ),
    )
    .unwrap();
    let prom = format!("127.0.0.1:{prom_port}");
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                node.dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(node.dir.join("prometheus.err")).unwrap())
            .spawn()
            .expect("prometheus (Debian's prometheus package; ci/setup installs it)"),
    );
    let end = Instant::now() + Duration::from_secs(120);
    while tg_ops::metrics::fetch(&prom, "/-/ready", Duration::from_secs(2)).is_err() {
        assert!(
            Instant::now() < end,
            "Prometheus not ready in 120 s: {}",
            node.log("prometheus.err")
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    for (addr, what) in [
        (&host_m, "host"),
        (&replica_m, "replica"),
        (&closure_m, "closure"),
    ] {
        promtool_check(addr, what);
    }

    // Every target up; the load running with takeover armed.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let up = query(&prom, "up");
        if up.len() == 3 && up.iter().all(|(_, v)| *v == 1.0) {
            break;
        }
        assert!(
            Instant::now() < end,
            "targets not all up in 60 s: {up:?}\n{}",
            node.log("prometheus.err")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_value(
        &prom,
        "tg_closure_armed",
        Duration::from_secs(10),
        |v| v == 1.0,
        &node,
    );
    wait_value(
        &prom,
        "tg_replica_sessions",
        Duration::from_secs(10),
        |v| v == 2.0,
        &node,
    );
    wait_value(
        &prom,
        "tg_host_replica_up{replica=\"r0\"}",
        Duration::from_secs(10),
        |v| v == 1.0,
        &node,
    );
    assert_eq!(
        one(&prom, "tg_closure_state{state=\"armed\"}"),
        Some(1.0),
        "the armed state is the current one"
    );

    // The load finishes; the host holds its log open.
    // (first_commit consumed the first line.)
    let mut committed = 1u64;
    let end = Instant::now() + Duration::from_secs(RECORDS / RATE * 10 + 60);
    while committed < RECORDS {
        assert!(
            Instant::now() < end,
            "load stuck at {committed} commits\n{}",
            node.logs()
        );
        if let Some(l) = host_out.wait_for("committed ", Duration::from_secs(1), |_| {}) {
            assert!(l.starts_with("committed "));
            committed += 1;
        }
    }
    let commits = RECORDS;
    let n = |v: u64| v as f64;
    wait_value(
        &prom,
        "tg_host_commits_total",
        Duration::from_secs(30),
        |v| v == n(commits),
        &node,
    );
    assert_eq!(
        one(&prom, "tg_host_commit_latency_seconds_count"),
        Some(n(commits)),
        "one latency observation per commit"
    );
    assert_eq!(one(&prom, "tg_host_commit_failures_total"), Some(0.0));
    let p99 = one(
        &prom,
        "histogram_quantile(0.99, tg_host_commit_latency_seconds_bucket)",
    )
    .unwrap();
    assert!(p99 > 0.0 && p99 < 10.0, "p99 commit latency {p99} s");
    let persisted = wait_value(
        &prom,
        "tg_host_persisted_tail_bytes",
        Duration::from_secs(5),
        |v| v > 0.0,
        &node,
    );
    assert_eq!(
        one(&prom, "tg_host_replica_lag_bytes{replica=\"r0\"}"),
        Some(0.0),
        "under sync every commit is durable on r0 before it returns"
    );
    assert_eq!(
        one(&prom, "tg_host_replica_durable_bytes{replica=\"r0\"}"),
        Some(persisted)
    );
    let shipped = one(&prom, "tg_host_replica_shipped_bytes_total{replica=\"r0\"}").unwrap();
    assert!(
        shipped >= persisted,
        "shipped {shipped} bytes, the log holds {persisted}"
    );
    let ships = one(&prom, "tg_host_replica_ships_total{replica=\"r0\"}").unwrap();
    assert!(
        ships >= 1.0 && ships <= n(commits),
        "{ships} ships for {commits} commits"
    );
    // The replica's own view, through Prometheus and through its status.
    let durable = wait_value(
        &prom,
        "tg_replica_durable_tail_bytes",
        Duration::from_secs(30),
        |v| v == persisted,
        &node,
    );
    let status = node.replica_status();
    assert_eq!(status["durable_tail"].as_f64(), Some(durable), "{status}");
    assert_eq!(
        one(&prom, "tg_replica_epoch"),
        status["epoch"].as_f64(),
        "{status}"
    );
    assert_eq!(one(&prom, "tg_replica_sealed"), Some(0.0));
    let applied_at = one(&prom, "tg_replica_last_applied_timestamp_seconds").unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        applied_at > now - 600.0 && applied_at <= now + 5.0,
        "last applied at {applied_at}, now {now}"
    );
    // tg-replica status asks the daemon: both writers at the admitted epoch.
    let daemon = &status["daemon"];
    assert_eq!(daemon["running"], true, "{status}");
    let mut writers: Vec<(String, u64)> = daemon["writers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap().to_owned(),
                w["epoch"].as_u64().unwrap(),
            )
        })
        .collect();
    writers.sort();
    let epoch = status["epoch"].as_u64().unwrap();
    assert_eq!(
        writers,
        [
            ("host-a".to_owned(), epoch),
            ("host-a-closure".to_owned(), epoch)
        ],
        "{status}"
    );
    // tg-closure status: armed, the daemon armed, r0's link up.
    let out = Command::new(bin("tg-closure"))
        .args(["status", "--json", "--config"])
        .arg(&node.cfg_path)
        .output()
        .unwrap();
    let cs: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("tg-closure status --json: {e}: {:?}", out));
    assert!(out.status.success(), "{cs}");
    assert_eq!(cs["armed"], true, "{cs}");
    assert_eq!(
        cs["host_pid"].as_u64(),
        Some(u64::from(host.0.id())),
        "{cs}"
    );
    assert_eq!(cs["daemon"]["state"], "armed", "{cs}");
    assert_eq!(cs["daemon"]["replicas"][0]["replica"], "r0", "{cs}");
    assert_eq!(cs["daemon"]["replicas"][0]["up"], true, "{cs}");
    assert!(
        cs["daemon"]["replicas"][0]["last_keepalive_unix"]
            .as_f64()
            .unwrap()
            > now - 60.0,
        "{cs}"
    );
    assert_eq!(
        one(&prom, "tg_closure_host_pid"),
        Some(f64::from(host.0.id())),
        "the closure watches this host"
    );
    drop(host);
}
