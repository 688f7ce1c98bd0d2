//! The logging setup every binary shares (tg-ops): a bad `--log-format` or
//! log filter is refused before anything runs, exit 2, with what to write
//! instead. Host tier: refused before any device or config is touched.

use std::process::Command;

fn replica(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tg-replica"));
    c.args(args).env_remove("TG_LOG").env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn a_bad_filter_from_each_source_is_refused_and_named() {
    let cfg = ["status", "--config", "/nonexistent/tailguard.yaml"];
    for (args, env, named) in [
        (
            vec!["--log", "warn,replica=loud"],
            vec![],
            "--log: invalid log filter",
        ),
        (
            vec![],
            vec![("TG_LOG", "replica=loud")],
            "TG_LOG: invalid log filter",
        ),
        (
            vec![],
            vec![("RUST_LOG", "replica=loud")],
            "RUST_LOG: invalid log filter",
        ),
    ] {
        let args: Vec<&str> = args.into_iter().chain(cfg).collect();
        let out = replica(&args, &env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(err.contains(named), "{err}");
        assert!(err.contains("warn,replica=debug"), "no example in: {err}");
    }
    // TG_LOG wins over RUST_LOG: a good TG_LOG hides a bad RUST_LOG, and the
    // command goes on to its own error (the missing config, exit 1).
    let out = replica(&cfg, &[("TG_LOG", "debug"), ("RUST_LOG", "replica=loud")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/tailguard.yaml"), "{err}");
    assert!(!err.contains('\x1b'), "ANSI into a pipe: {err:?}");
}

#[test]
fn an_unknown_log_format_lists_the_ones_there_are() {
    let out = replica(
        &[
            "status",
            "--log-format",
            "xml",
            "--config",
            "/nonexistent.yaml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("possible values: text, json"), "{err}");
}
