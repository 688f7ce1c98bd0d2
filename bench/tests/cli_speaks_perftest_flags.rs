//! perftest's flags work as RDMA people type them: `-s/--size`,
//! `-n/--iters` and `-D/--duration` reach the options they stand for,
//! `-d/--ib-dev`, `-i/--ib-port` and `-x/--gid-index` override the config's
//! device and are refused, naming the flag, where the config's value would
//! be; `--json -` is stdout. Needs no device.

mod common;

use common::{assert_one_line_error, scratch, tg_bench, write_config};

/// Each perftest spelling lands in the option it stands for: the refusal
/// names that option and echoes the value given.
#[test]
fn perftest_spellings_reach_the_options_they_stand_for() {
    // The config does not exist: flag checks come before it is read.
    let cfg = ["--config", "/nonexistent/tailguard.yaml"];
    let cases: &[(&[&str], &str)] = &[
        (
            &["latency", "-s", "0"],
            "-s/--sizes: 0 bytes is out of range",
        ),
        (
            &["latency", "--size", "8,200000"],
            "-s/--sizes: 200000 bytes is out of range",
        ),
        (
            &["latency", "-n", "0"],
            "-n/--iterations must be 1..=10000000, got 0",
        ),
        (
            &["latency", "--iters", "20000000"],
            "-n/--iterations must be 1..=10000000, got 20000000",
        ),
        (
            &["throughput", "-D", "0.05"],
            "-D/--seconds 0.05: must be 0.1..=3600",
        ),
        (
            &["throughput", "--duration", "5000"],
            "-D/--seconds 5000: must be 0.1..=3600",
        ),
        (
            &["throughput", "-s", "0"],
            "-s/--size: 0 bytes is out of range",
        ),
        (&["takeover", "-n", "0"], "-n/--iterations at least 1"),
        (&["takeover", "--iters", "0"], "-n/--iterations at least 1"),
        (
            &["takeover", "-s", "200000"],
            "-s/--size: 200000 bytes is out of range",
        ),
    ];
    for (args, what) in cases {
        let mut a = args.to_vec();
        a.extend_from_slice(&cfg);
        let out = tg_bench(&a);
        assert_one_line_error(&out, what);
        assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    }

    // Good values in perftest's spelling pass every flag check: the run
    // gets as far as reading the (missing) config.
    for args in [
        &[
            "latency", "-s", "64", "-n", "10", "-d", "mlx5_0", "-i", "1", "-x", "3",
        ][..],
        &[
            "latency",
            "--size=64",
            "--iters=10",
            "--ib-dev=rxe0",
            "--ib-port=2",
            "--gid-index=0",
        ],
        &[
            "throughput",
            "-s",
            "64",
            "-D",
            "0.5",
            "-d",
            "mlx5_0",
            "-i",
            "1",
            "-x",
            "1",
        ],
        &["throughput", "--duration=2"],
        &["takeover", "-s", "64", "-n", "3", "-x", "1"],
        &[
            "load",
            "--records",
            "1",
            "-d",
            "mlx5_0",
            "-i",
            "1",
            "-x",
            "0",
        ],
    ] {
        let mut a = args.to_vec();
        a.extend_from_slice(&cfg);
        assert_one_line_error(
            &tg_bench(&a),
            "cannot read config /nonexistent/tailguard.yaml",
        );
    }

    // A value that is not a number is clap's usage error, naming the flag.
    for (args, flag) in [
        (&["latency", "-i", "one"][..], "--ib-port <PORT>"),
        (&["latency", "-i", "99999999999"], "--ib-port <PORT>"),
        (&["latency", "--gid-index=-1"], "--gid-index <INDEX>"),
        (&["latency", "-n", "many"], "--iterations <N>"),
        (&["throughput", "-D", "long"], "--seconds <SECONDS>"),
    ] {
        let out = tg_bench(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: want {flag:?} in {err}");
    }
}

/// `-d`, `-i` and `-x` go through the config's own validation, so they
/// have its bounds, and a refusal names the flag and the setting it
/// replaced, before the device or the log is touched.
#[test]
fn device_overrides_are_checked_like_the_config_and_named_by_their_flag() {
    let dir = scratch("perftest-device");
    let cfg = write_config(&dir, "tgnosuchdev9", common::free_port(), 1 << 20);
    let cfg_s = cfg.to_str().unwrap();
    let cases: &[(&[&str], String)] = &[
        (
            &["latency", "-i", "0"],
            format!("-i/--ib-port: must be 1..=255, got 0 (it overrides device.port in {cfg_s})"),
        ),
        (
            &["throughput", "--ib-port", "256"],
            "-i/--ib-port: must be 1..=255, got 256".into(),
        ),
        (
            &["latency", "-x", "256"],
            format!(
                "-x/--gid-index: must be 0..=255, got 256 (it overrides device.gid-index in {cfg_s})"
            ),
        ),
        (
            &["load", "--records", "1", "-d", "mlx5/0"],
            "-d/--ib-dev: must be 1..=64 bytes without '/', got \"mlx5/0\" (it overrides device.name"
                .into(),
        ),
        (
            &["takeover", "-d", "", "-x", "300"],
            "-d/--ib-dev: must be 1..=64 bytes without '/', got \"\"".into(),
        ),
    ];
    for (args, what) in cases {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--config", cfg_s]);
        let err = assert_one_line_error(&tg_bench(&a), what);
        if args.contains(&"300") {
            // Both flags' problems, in the one line.
            assert!(
                err.contains("-x/--gid-index: must be 0..=255, got 300"),
                "{err}"
            );
        }
        assert!(
            !dir.join("host.log").exists(),
            "{args:?}: a refused override created the log"
        );
    }

    // Good overrides pass validation and reach the device: the one named
    // by -d, not the config's (on a machine with RDMA the error names it;
    // without, it says how to get a device).
    let out = tg_bench(&[
        "latency",
        "-s",
        "8",
        "-n",
        "1",
        "-d",
        "tgnosuchdev8",
        "-i",
        "2",
        "-x",
        "1",
        "--config",
        cfg_s,
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let what = if err.contains("no RDMA") {
        "rdma link add"
    } else {
        "RDMA device 'tgnosuchdev8' not found"
    };
    assert_one_line_error(&out, what);
    assert!(
        !err.contains("tgnosuchdev9"),
        "the config's device was used: {err}"
    );
    assert!(
        !dir.join("host.log").exists(),
        "created the log before the device"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--json -` is accepted as stdout (not refused as a file name without
/// `.json`), keeps stdout clean, and is refused for `load`, whose stdout is
/// its `committed LSN` lines. `--json FILE` is still checked as a file.
#[test]
fn json_dash_means_stdout() {
    let dir = scratch("perftest-json");
    let cfg = write_config(&dir, "tgnosuchdev9", common::free_port(), 1 << 20);
    let cfg_s = cfg.to_str().unwrap();
    for sub in [
        &["latency", "-n", "1"][..],
        &["throughput", "-D", "0.1"],
        &["takeover"],
    ] {
        let mut a = sub.to_vec();
        a.extend_from_slice(&["--json", "-", "--config", cfg_s]);
        let out = tg_bench(&a);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        // Past every output check, as far as opening the device.
        assert!(!err.contains("--json"), "{sub:?}: --json - refused: {err}");
        let what = if err.contains("no RDMA") {
            "rdma link add"
        } else {
            "RDMA device 'tgnosuchdev9' not found"
        };
        assert_one_line_error(&out, what);
        assert!(
            out.stdout.is_empty(),
            "{sub:?}: a failed run printed on stdout"
        );
    }
    assert_one_line_error(
        &tg_bench(&["load", "--records", "1", "--json", "-", "--config", cfg_s]),
        "--json -: load prints its `committed LSN` lines on stdout; write the JSON to a file",
    );
    assert_one_line_error(
        &tg_bench(&["latency", "--json", "lat.txt", "--config", cfg_s]),
        "--json lat.txt: the file name must end in .json",
    );
    let out = tg_bench(&["latency", "--json", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("- for stdout"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("host.log").exists());

    // --help says where the table goes then.
    let help = String::from_utf8(tg_bench(&["latency", "--help"]).stdout).unwrap();
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("--json <FILE.json|->"), "{help}");
    assert!(
        flat.contains("with `-` to stdout: stdout then holds the JSON alone, and the table goes to stderr (nowhere with --quiet)"),
        "{help}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
