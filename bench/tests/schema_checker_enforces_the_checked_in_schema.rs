//! The hand-written checker the device test relies on really enforces
//! bench/schema/tg-bench.schema.json: a minimal valid document of each kind
//! passes, and each kind of breakage is caught. Needs no device.

mod common;

use common::schema::{check, tg_bench_schema};
use serde_json::{json, Value};

fn summary() -> Value {
    json!({"count": 10, "min_ns": 1000, "p50_ns": 2000, "p90_ns": 3000, "p99_ns": 4000, "p999_ns": 5000, "max_ns": 6000,
           "mean_ns": 2250.5, "stdev_ns": 812.25})
}

fn environment() -> Value {
    json!({
        "tailguard_version": "0.1.0", "kernel": "6.1.0", "cpu": null, "cpus": 2, "device": "rxe0", "device_port": 1, "gid_index": null,
        "persistence": "apm", "commit": "Sync", "log_size_bytes": 1048576, "log_region": "File",
        "replicas": [{"name": "r0", "control": "127.0.0.1:7471"}],
    })
}

fn latency() -> Value {
    json!({
        "kind": "latency", "environment": environment(),
        "parameters": {"sizes": [8], "iterations": 10, "warmup": 0},
        "results": [{
            "size_bytes": 8, "wire_bytes": 40, "tailguard_commit": summary(), "raw_write_read": summary(),
            "raw_read": summary(), "ratio_p50_commit_to_write_read": 1.5, "ratio_p99_commit_to_write_read": 2.0,
            "cdf_us": {"tailguard_commit": [[1.0, 0.5], [2.0, 1.0]], "raw_write_read": [[1.0, 1.0]], "raw_read": [[0.5, 1.0]]},
        }],
    })
}

/// A way to break a valid document.
type Breakage = Box<dyn Fn(&mut Value)>;

#[test]
fn valid_documents_pass_and_broken_ones_are_caught() {
    let schema = tg_bench_schema();
    let l = latency();
    assert_eq!(check(&schema, &l), Vec::<String>::new());
    // A GID index chosen with -x is an integer where the default is null.
    let mut with_gid = l.clone();
    with_gid["environment"]["gid_index"] = json!(3);
    assert_eq!(check(&schema, &with_gid), Vec::<String>::new());
    let t = json!({
        "kind": "throughput", "environment": environment(),
        "parameters": {"threads": [1, 2], "batch": [1], "size_bytes": 64, "seconds": 0.5},
        "results": {"raw_write_mb_per_s": 100.0, "points": [{"threads": 1, "batch": 1, "commits": 5, "records": 5,
            "bytes": 480, "seconds": 0.5, "commits_per_s": 10.0, "mb_per_s": 0.001, "ships": 4, "commits_per_ship": 1.25}]},
    });
    assert_eq!(check(&schema, &t), Vec::<String>::new());
    let ld = json!({
        "kind": "load", "environment": environment(), "parameters": {"records": 3, "rate": null, "seed": 1},
        "replayed": {"records": 0, "first_lsn": null, "last_lsn": null, "bytes": 0, "foreign": 0, "micros": 5, "was_sealed": false},
        "takeover": "not configured (no `closure:` section)",
        "results": {"records": 3, "first_lsn": 0, "last_lsn": 2, "payload_bytes": 100, "seconds": 0.1,
            "records_per_s": 30.0, "commit": summary()},
    });
    assert_eq!(check(&schema, &ld), Vec::<String>::new());
    let mut tk = json!({
        "kind": "takeover", "environment": environment(),
        "parameters": {"tails": [1, 100], "iterations": 3, "size_bytes": 64},
        "results": [{"tail_records": 1, "tail_bytes": 128, "pre_established": summary(), "cold": summary(),
            "cold_over_pre_p50": 80.5}],
    });
    assert_eq!(check(&schema, &tk), Vec::<String>::new());
    tk["results"][0].as_object_mut().unwrap().remove("cold");
    assert!(
        !check(&schema, &tk).is_empty(),
        "a takeover result without its cold figures must be refused"
    );

    let broken: Vec<(&str, Breakage)> = vec![
        (
            "missing key",
            Box::new(|v| {
                v["results"][0].as_object_mut().unwrap().remove("cdf_us");
            }),
        ),
        (
            "wrong type",
            Box::new(|v| v["parameters"]["iterations"] = json!("ten")),
        ),
        (
            "float for integer",
            Box::new(|v| v["results"][0]["tailguard_commit"]["p99_ns"] = json!(1.5)),
        ),
        (
            "below minimum",
            Box::new(|v| v["environment"]["cpus"] = json!(0)),
        ),
        ("empty array", Box::new(|v| v["results"] = json!([]))),
        (
            "bad CDF point",
            Box::new(|v| v["results"][0]["cdf_us"]["raw_read"] = json!([[1.0]])),
        ),
        ("unknown kind", Box::new(|v| v["kind"] = json!("latencies"))),
        (
            "summary without its mean",
            Box::new(|v| {
                v["results"][0]["raw_read"]
                    .as_object_mut()
                    .unwrap()
                    .remove("mean_ns");
            }),
        ),
        (
            "summary without its standard deviation",
            Box::new(|v| {
                v["results"][0]["tailguard_commit"]
                    .as_object_mut()
                    .unwrap()
                    .remove("stdev_ns");
            }),
        ),
        (
            "negative standard deviation",
            Box::new(|v| v["results"][0]["raw_write_read"]["stdev_ns"] = json!(-1.0)),
        ),
        (
            "mean as a string",
            Box::new(|v| v["results"][0]["tailguard_commit"]["mean_ns"] = json!("2.2 us")),
        ),
        (
            "environment without its port",
            Box::new(|v| {
                v["environment"]
                    .as_object_mut()
                    .unwrap()
                    .remove("device_port");
            }),
        ),
        (
            "fractional GID index",
            Box::new(|v| v["environment"]["gid_index"] = json!(1.5)),
        ),
    ];
    for (what, breakit) in broken {
        let mut v = l.clone();
        breakit(&mut v);
        assert!(!check(&schema, &v).is_empty(), "{what} not caught");
    }
}
