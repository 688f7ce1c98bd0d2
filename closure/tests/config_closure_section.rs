//! The `closure:` section: defaults, every bound and cross-field rule
//! reported with its field path, relative key paths resolved, the checked
//! form the daemon and the host's heartbeat run with.

use std::time::Duration;

use closure::config::{ClosureSection, HostConfig};
use fabric::config::ConfigError;

const BASE: &str = "\
name: host-a
log:
  path: /var/lib/tailguard/host-a.log
  size-bytes: 67108864
device:
  name: rxe0
replicas:
  - name: r0
    control: 10.0.0.2:7471
    key-file: /k/r0.key
closure:
  name: host-a-closure
  key-file: /k/closure.key
  cores: [3]
";

fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "test bug: {from:?} not in base");
    BASE.replacen(from, to, 1)
}

/// The closure section of a valid config.
fn section(yaml: &str) -> ClosureSection {
    HostConfig::from_yaml_str(yaml)
        .unwrap()
        .closure
        .clone()
        .unwrap()
}

fn expect_issue(yaml: &str, expected: &str) {
    match HostConfig::from_yaml_str(yaml) {
        Ok(_) => panic!("expected `{expected}`, config was accepted:\n{yaml}"),
        Err(ConfigError::Invalid { errors, .. }) => {
            let all: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            assert!(
                all.iter().any(|m| m == expected),
                "expected `{expected}`, got {all:#?}"
            );
        }
        Err(e) => panic!("expected a validation error, got {e}"),
    }
}

#[test]
fn defaults_apply() {
    let c = section(BASE);
    assert_eq!(c.name, "host-a-closure");
    assert_eq!(c.cores, vec![3]);
    assert_eq!(c.heartbeat_timeout_ms, 1000);
    assert_eq!(c.heartbeat_interval_ms, 100);
    assert_eq!(c.poll_interval_ms, 10);
    assert_eq!(c.keepalive_ms, 1000);
    assert_eq!(c.restart, None);
    assert_eq!(c.realtime_priority, None);
    assert!(c.kill_hung_host);
}

#[test]
fn the_checked_section_carries_typed_bounds_and_the_heartbeat() {
    let y = format!("{BASE}  heartbeat-interval-ms: 50\n  heartbeat-timeout-ms: 400\n");
    let cfg = HostConfig::from_yaml_str(&y).unwrap();
    let c = cfg.closure().unwrap();
    assert_eq!(c.name.as_str(), "host-a-closure");
    assert_eq!(
        c.log_path,
        std::path::PathBuf::from("/var/lib/tailguard/host-a.log")
    );
    assert_eq!(c.heartbeat_timeout, Duration::from_millis(400));
    assert_eq!(c.poll_interval, Duration::from_millis(10));
    let beat = c.heartbeat();
    assert_eq!(beat.every, Duration::from_millis(50));
    assert_eq!(beat.closure_timeout, Duration::from_millis(400));
}

#[test]
fn realtime_priority_is_bounded() {
    for bad in [0, 100] {
        expect_issue(
            &format!("{BASE}  realtime-priority: {bad}\n"),
            &format!("closure.realtime-priority: must be 1..=99, got {bad}"),
        );
    }
    let y = format!("{BASE}  realtime-priority: 50\n  kill-hung-host: false\n");
    let c = section(&y);
    assert_eq!(c.realtime_priority, Some(50));
    assert!(!c.kill_hung_host);
    // Past a u8: a type error naming the key, not a silent wrap.
    let e = HostConfig::from_yaml_str(&format!("{BASE}  realtime-priority: 300\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("realtime-priority"), "{e}");
}

#[test]
fn restart_is_an_argv_list() {
    let y = format!("{BASE}  restart: [systemctl, restart, host-a.service]\n");
    let c = section(&y);
    assert_eq!(
        c.restart.unwrap(),
        ["systemctl", "restart", "host-a.service"]
    );
}

#[test]
fn closure_name_must_differ_from_the_host() {
    expect_issue(
        &with("name: host-a-closure", "name: host-a"),
        "closure.name: must differ from the host's `name` (\"host-a\"): the closure is a distinct writer on the replicas",
    );
}

#[test]
fn closure_name_is_a_writer_name() {
    let y = with("name: host-a-closure", "name: \"bad name\"");
    let e = HostConfig::from_yaml_str(&y).unwrap_err().to_string();
    assert!(e.contains("closure.name"), "{e}");
}

#[test]
fn closure_needs_the_writer_side() {
    let y = with(
        "replicas:\n  - name: r0\n    control: 10.0.0.2:7471\n    key-file: /k/r0.key\n",
        "replica:\n  listen: 0.0.0.0:7471\n  region: /r\n  epoch-file: /e\n  allow:\n    - name: x\n      key-file: /k\n",
    );
    expect_issue(
        &y,
        "closure: needs the writer side (`replicas`): the closure ships the host's log to them",
    );
}

#[test]
fn empty_key_file_is_refused() {
    expect_issue(
        &with("key-file: /k/closure.key", "key-file: \"\""),
        "closure.key-file: must not be empty",
    );
}

#[test]
fn cores_are_bounded_and_unique() {
    expect_issue(
        &with("cores: [3]", "cores: [3, 3]"),
        "closure.cores[1]: duplicate core 3",
    );
    expect_issue(
        &with("cores: [3]", "cores: [4096]"),
        "closure.cores[0]: must be 0..=1023, got 4096",
    );
}

#[test]
fn heartbeat_timeout_must_cover_two_beats() {
    let y = format!("{BASE}  heartbeat-interval-ms: 500\n  heartbeat-timeout-ms: 600\n");
    expect_issue(
        &y,
        "closure.heartbeat-timeout-ms: must be at least twice heartbeat-interval-ms (500), got 600: a healthy host would be judged hung",
    );
}

#[test]
fn intervals_are_bounded() {
    expect_issue(
        &format!("{BASE}  poll-interval-ms: 0\n"),
        "closure.poll-interval-ms: must be 1..=10000, got 0",
    );
    expect_issue(
        &format!("{BASE}  keepalive-ms: 1\n"),
        "closure.keepalive-ms: must be 10..=600000, got 1",
    );
    expect_issue(
        &format!("{BASE}  heartbeat-timeout-ms: 5\n  heartbeat-interval-ms: 1\n"),
        "closure.heartbeat-timeout-ms: must be 10..=600000, got 5",
    );
}

#[test]
fn empty_restart_command_is_refused() {
    expect_issue(
        &format!("{BASE}  restart: []\n"),
        "closure.restart: must have 1..=64 arguments (the program first), got 0; leave it out to run nothing",
    );
    expect_issue(
        &format!("{BASE}  restart: [\"\"]\n"),
        "closure.restart[0]: must be non-empty and contain no NUL byte",
    );
}

#[test]
fn unknown_closure_keys_are_errors() {
    let e = HostConfig::from_yaml_str(&format!("{BASE}  cpus: [1]\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cpus"), "{e}");
}

#[test]
fn relative_key_file_is_resolved_against_the_config() {
    let dir = std::env::temp_dir().join(format!("tg-cfg-closure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.yaml");
    std::fs::write(
        &path,
        with("key-file: /k/closure.key", "key-file: closure.key"),
    )
    .unwrap();
    let cfg = HostConfig::from_yaml_file(&path).unwrap();
    let c = cfg.closure.as_ref().unwrap();
    assert_eq!(c.key_file, dir.join("closure.key"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn metrics_listen_is_off_by_default_and_checked() {
    assert_eq!(section(BASE).metrics_listen, None);
    let y = format!("{BASE}  metrics-listen: 127.0.0.1:9472\n");
    assert_eq!(
        section(&y).metrics_listen.as_deref(),
        Some("127.0.0.1:9472")
    );
    let bad = format!("{BASE}  metrics-listen: nowhere\n");
    let e = HostConfig::from_yaml_str(&bad).unwrap_err().to_string();
    assert!(e.contains("closure.metrics-listen"), "{e}");
}
