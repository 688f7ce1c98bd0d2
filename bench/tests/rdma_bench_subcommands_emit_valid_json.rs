//! Each tg-bench subcommand, run briefly against a real tg-replica, writes
//! JSON that bench/schema/tg-bench.schema.json accepts and a well-formed,
//! non-empty SVG; `load` prints strictly increasing `committed N` lines.
//! Progress on a pipe is plain lines, and `--quiet` silences stderr.
//! perftest's flags work: `-d` picks the device over the config's, and
//! `--json -` puts the JSON alone on stdout and the table on stderr.

mod common;

use std::path::Path;

use common::schema::{check, tg_bench_schema};
use common::svg::check_svg;
use common::{free_port, rdma_device, scratch, tg_bench, write_config, Replica};
use serde_json::{json, Value};

fn ok(args: &[&str]) -> (String, String) {
    let out = tg_bench(args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "tg-bench {args:?} failed:\n{stderr}\n{stdout}"
    );
    (stdout, stderr)
}

fn valid_json(path: &Path, kind: &str) -> Value {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let errors = check(&tg_bench_schema(), &v);
    assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    assert_eq!(v["kind"], kind);
    v
}

fn valid_svg(path: &Path, must_contain: &[&str]) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.len() > 1000, "{} is nearly empty", path.display());
    check_svg(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for s in must_contain {
        assert!(text.contains(s), "{} lacks {s:?}", path.display());
    }
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn rdma_bench_subcommands_emit_valid_json() {
    let dir = scratch("subcommands");
    let port = free_port();
    let cfg = write_config(&dir, &rdma_device(), port, 16 << 20);
    let _replica = Replica::start(&dir, &cfg, port);
    let cfg = cfg.to_str().unwrap();
    let f = |name: &str| dir.join(name).to_str().unwrap().to_owned();

    // latency: two sizes, a few iterations.
    let (table, progress) = ok(&[
        "latency",
        "--config",
        cfg,
        "--sizes",
        "8,4096",
        "--iterations",
        "40",
        "--warmup",
        "5",
        "--json",
        &f("latency.json"),
        "--plot",
        &f("latency.svg"),
    ]);
    assert!(table.contains("tailguard commit µs"), "{table}");
    assert!(table.contains("  4096 B |"), "{table}");
    assert!(
        !progress.contains('\r'),
        "progress on a pipe must be plain lines: {progress:?}"
    );
    assert!(progress.contains("latency 8 B done"), "{progress}");
    let v = valid_json(&dir.join("latency.json"), "latency");
    let sizes: Vec<u64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["size_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [8, 4096]);
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["tailguard_commit"]["count"], 40);
        assert_eq!(r["raw_read"]["count"], 40);
    }
    for r in v["results"].as_array().unwrap() {
        for op in ["tailguard_commit", "raw_write_read", "raw_read"] {
            let s = &r[op];
            let (mean, stdev) = (
                s["mean_ns"].as_f64().unwrap(),
                s["stdev_ns"].as_f64().unwrap(),
            );
            let (min, max) = (s["min_ns"].as_f64().unwrap(), s["max_ns"].as_f64().unwrap());
            assert!(
                min <= mean && mean <= max,
                "{op}: mean outside min..max: {s}"
            );
            assert!(stdev >= 0.0 && stdev <= max - min, "{op}: {s}");
        }
    }
    valid_svg(
        &dir.join("latency.svg"),
        &[
            "tailguard commit",
            "raw WRITE+READ",
            "raw READ",
            "4096 B records",
            "machine:",
        ],
    );

    // perftest's spelling against a config naming a device that does not
    // exist: the run works only if -d replaced it. `--json -`: stdout is
    // the document alone, the table went to stderr.
    let dev = rdma_device();
    let yaml = std::fs::read_to_string(cfg).unwrap();
    let bogus = yaml.replace(
        &format!("device:\n  name: {dev}\n"),
        "device:\n  name: tgnosuchdev9\n",
    );
    assert_ne!(bogus, yaml, "write_config's device line moved");
    let bogus_cfg = dir.join("bogus-device.yaml");
    std::fs::write(&bogus_cfg, bogus).unwrap();
    let (doc, err) = ok(&[
        "latency",
        "-c",
        bogus_cfg.to_str().unwrap(),
        "-d",
        &dev,
        "-i",
        "1",
        "-s",
        "64",
        "-n",
        "30",
        "--warmup",
        "3",
        "--json",
        "-",
    ]);
    let v: Value = serde_json::from_str(&doc)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{doc}"));
    let errors = check(&tg_bench_schema(), &v);
    assert!(errors.is_empty(), "--json -: {errors:#?}");
    assert_eq!(v["environment"]["device"], json!(dev), "{v}");
    assert_eq!(v["environment"]["device_port"], 1, "{v}");
    assert_eq!(v["parameters"]["sizes"], json!([64]), "{v}");
    assert_eq!(v["parameters"]["iterations"], 30, "{v}");
    assert_eq!(v["results"][0]["tailguard_commit"]["count"], 30, "{v}");
    assert!(
        err.contains("tailguard commit µs"),
        "table not on stderr: {err}"
    );
    assert!(err.contains("avg") && err.contains("stdev"), "{err}");
    assert!(err.contains("     64 B |"), "{err}");

    // throughput: 2 thread counts x 2 batches, short points.
    let (table, _) = ok(&[
        "throughput",
        "--config",
        cfg,
        "--threads",
        "1,2",
        "--batch",
        "1,4",
        "-s",
        "64",
        "-D",
        "0.3",
        "--json",
        &f("throughput.json"),
        "--plot",
        &f("throughput.svg"),
    ]);
    assert!(table.contains("raw WRITE bandwidth of the link"), "{table}");
    let v = valid_json(&dir.join("throughput.json"), "throughput");
    assert_eq!(v["parameters"]["seconds"], 0.3, "-D is --seconds: {v}");
    assert_eq!(v["parameters"]["size_bytes"], 64, "{v}");
    assert_eq!(v["results"]["points"].as_array().unwrap().len(), 4);
    assert!(v["results"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["commits"].as_u64().unwrap() > 0));
    // Every commit is covered by some ship, and one thread cannot share
    // its ships: 1 commit per ship exactly; more threads may coalesce.
    for p in v["results"]["points"].as_array().unwrap() {
        let (commits, ships) = (p["commits"].as_u64().unwrap(), p["ships"].as_u64().unwrap());
        assert!(ships >= 1 && ships <= commits, "{p}");
        if p["threads"] == 1 {
            assert_eq!(ships, commits, "one thread ships once per commit: {p}");
        }
    }
    valid_svg(
        &dir.join("throughput.svg"),
        &["commits/s", "appender threads", "raw WRITE bandwidth"],
    );

    // load: committed LSNs strictly increase, one line per record.
    let (lines, _) = ok(&[
        "load",
        "--config",
        cfg,
        "--records",
        "150",
        "--seed",
        "7",
        "--json",
        &f("load.json"),
    ]);
    let lsns: Vec<u64> = lines
        .lines()
        .map(|l| {
            l.strip_prefix("committed ")
                .unwrap_or_else(|| panic!("bad line {l:?}"))
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(lsns.len(), 150);
    assert!(
        lsns.windows(2).all(|w| w[0] < w[1]),
        "not strictly increasing: {lsns:?}"
    );
    let v = valid_json(&dir.join("load.json"), "load");
    assert_eq!(v["results"]["last_lsn"].as_u64(), lsns.last().copied());

    // --quiet: nothing on stderr when all goes well; the log reopened and
    // went on where the previous run stopped.
    let (more, quiet) = ok(&[
        "load",
        "--config",
        cfg,
        "--records",
        "5",
        "--quiet",
        "--json",
        &f("load2.json"),
    ]);
    assert_eq!(quiet, "", "--quiet printed: {quiet}");
    let first: u64 = more
        .lines()
        .next()
        .unwrap()
        .strip_prefix("committed ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(first > *lsns.last().unwrap(), "{first} after {lsns:?}");
    let v = valid_json(&dir.join("load2.json"), "load");
    assert_eq!(
        v["replayed"]["last_lsn"].as_u64(),
        lsns.last().copied(),
        "{v}"
    );
    assert_eq!(v["replayed"]["was_sealed"], false, "{v}");

    // takeover: two short tails, two runs each, pre-established vs cold.
    let (table, _) = ok(&[
        "takeover",
        "--config",
        cfg,
        "--tails",
        "1,20",
        "--iterations",
        "2",
        "--json",
        &f("takeover.json"),
    ]);
    assert!(table.contains("pre-established µs"), "{table}");
    let v = valid_json(&dir.join("takeover.json"), "takeover");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    for (p, tail) in r.iter().zip([1u64, 20]) {
        assert_eq!(p["tail_records"].as_u64(), Some(tail), "{p}");
        assert_eq!(p["pre_established"]["count"], 2, "{p}");
        assert_eq!(p["cold"]["count"], 2, "{p}");
        // A cold agent opens the device and connects first: never faster.
        assert!(p["cold_over_pre_p50"].as_f64().unwrap() > 1.0, "{p}");
    }

    std::fs::remove_dir_all(&dir).unwrap();
}
