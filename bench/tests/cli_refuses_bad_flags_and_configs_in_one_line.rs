//! Bad flags and bad configs end with one line on stderr saying what to do
//! and exit 1, before anything touches a device or the log. Needs no device.

mod common;

use common::{assert_one_line_error, scratch, tg_bench, write_config};

#[test]
fn out_of_range_flags_are_refused_before_the_config_is_read() {
    // The config does not exist: each flag check must come first.
    let cfg = ["--config", "/nonexistent/tailguard.yaml"];
    let cases: &[(&[&str], &str)] = &[
        (
            &["latency", "--sizes", "0"],
            "--sizes: 0 bytes is out of range: use 1..=",
        ),
        (
            &["latency", "--sizes", "8,200000"],
            "--sizes: 200000 bytes is out of range",
        ),
        (
            &["latency", "--iterations", "0"],
            "--iterations must be 1..=",
        ),
        (
            &["latency", "--iterations", "99999999999"],
            "--iterations must be 1..=",
        ),
        (
            &["latency", "--plot", "latency.png"],
            "--plot latency.png: the file name must end in .svg",
        ),
        (
            &["latency", "--json", "/nonexistent/dir/x.json"],
            "folder /nonexistent/dir does not exist",
        ),
        (
            &["throughput", "--threads", "0"],
            "--threads: each count must be 1..=64",
        ),
        (
            &["throughput", "--threads", "65"],
            "--threads: each count must be 1..=64",
        ),
        (
            &["throughput", "--batch", "0"],
            "--batch: each batch must be 1..=4096",
        ),
        (
            &["throughput", "--seconds", "0"],
            "--seconds 0: must be 0.1..=3600",
        ),
        (
            &["throughput", "--size", "0"],
            "--size: 0 bytes is out of range",
        ),
        (
            &["throughput", "--plot", "/nonexistent/t.svg"],
            "folder /nonexistent does not exist",
        ),
        (&["load", "--records", "0"], "--records must be 1..="),
        (
            &["load", "--records", "10", "--rate=-1"],
            "--rate must be a positive number",
        ),
        (
            &["takeover", "--tails", "0"],
            "--tails must be at least 1 record each",
        ),
        (
            &["takeover", "--iterations", "0"],
            "--iterations at least 1",
        ),
    ];
    for (args, what) in cases {
        let mut a = args.to_vec();
        a.extend_from_slice(&cfg);
        assert_one_line_error(&tg_bench(&a), what);
    }
}

#[test]
fn unknown_flags_and_missing_values_are_usage_errors() {
    for args in [
        &["latency", "--bogus"][..],
        &["load"],
        &["latency", "--sizes", "eight"],
        &["nosuch"],
    ] {
        let out = tg_bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{err}");
    }
}

#[test]
fn a_missing_unparsable_or_invalid_config_is_one_line() {
    let dir = scratch("bad-config");
    let missing = dir.join("missing.yaml");
    let err = assert_one_line_error(
        &tg_bench(&["latency", "--config", missing.to_str().unwrap()]),
        "cannot read config",
    );
    assert!(err.contains("pass --config FILE"), "{err}");

    let garbage = dir.join("garbage.yaml");
    std::fs::write(&garbage, "bogus: [\n").unwrap();
    let err = assert_one_line_error(
        &tg_bench(&["throughput", "--config", garbage.to_str().unwrap()]),
        "garbage.yaml",
    );
    assert!(err.contains("configs/rxe-loopback.yaml"), "{err}");

    // Parses, but the ring is below the smallest log: the field is named,
    // and nothing was created.
    let small = write_config(&dir, "rxe0", 1, 1 << 16);
    assert_one_line_error(
        &tg_bench(&["latency", "--config", small.to_str().unwrap()]),
        "log.size-bytes: must be",
    );
    assert!(
        !dir.join("host.log").exists(),
        "a refused run created the log"
    );
    let cfg = write_config(&dir, "rxe0", 1, 1 << 20);

    // Parses, but a value is out of bounds: validation names the field.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("acks: 1", "acks: 0");
    let invalid = dir.join("invalid.yaml");
    std::fs::write(&invalid, text).unwrap();
    assert_one_line_error(
        &tg_bench(&[
            "load",
            "--records",
            "1",
            "--config",
            invalid.to_str().unwrap(),
        ]),
        "acks",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_documents_every_flag() {
    let top = String::from_utf8(tg_bench(&["--help"]).stdout).unwrap();
    for sub in ["latency", "throughput", "takeover", "load"] {
        assert!(top.contains(sub), "tg-bench --help lacks {sub}: {top}");
    }
    let flags: &[(&str, &[&str])] = &[
        (
            "latency",
            &[
                "--config",
                "--json",
                "--quiet",
                "--verbose",
                "--ib-dev",
                "--ib-port",
                "--gid-index",
                "--sizes",
                "--iterations",
                "--warmup",
                "--plot",
            ],
        ),
        (
            "throughput",
            &[
                "--config",
                "--json",
                "--quiet",
                "--verbose",
                "--ib-dev",
                "--ib-port",
                "--gid-index",
                "--threads",
                "--batch",
                "--size",
                "--seconds",
                "--plot",
            ],
        ),
        (
            "load",
            &[
                "--config",
                "--json",
                "--quiet",
                "--verbose",
                "--ib-dev",
                "--ib-port",
                "--gid-index",
                "--records",
                "--rate",
                "--seed",
            ],
        ),
        (
            "takeover",
            &[
                "--config",
                "--json",
                "--quiet",
                "--verbose",
                "--ib-dev",
                "--ib-port",
                "--gid-index",
                "--tails",
                "--iterations",
                "--size",
            ],
        ),
    ];
    for (sub, want) in flags {
        let out = tg_bench(&[sub, "--help"]);
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        for flag in *want {
            assert!(
                described(&help, flag),
                "{sub} {flag} has no description: {help}"
            );
        }
    }
}

/// Whether `flag` appears in `help` with a description: clap prints
/// `  -c, --flag <VALUE>  doc` in short help and the doc on the next line in
/// long help.
fn described(help: &str, flag: &str) -> bool {
    let lines: Vec<&str> = help.lines().collect();
    let Some(i) = lines.iter().position(|l| {
        l.trim_start().starts_with('-')
            && l.split_whitespace()
                .any(|w| w.trim_end_matches(',').trim_end_matches("...") == flag)
    }) else {
        return false;
    };
    let after = lines[i]
        .split_once(flag)
        .map_or("", |(_, r)| r)
        .trim_start();
    let after = match after.strip_prefix('<') {
        Some(r) => r.split_once('>').map_or("", |(_, r)| r),
        None => after,
    }
    .trim();
    let next = lines.get(i + 1).map_or("", |l| l.trim());
    !after.is_empty() || (!next.is_empty() && !next.starts_with('-'))
}
