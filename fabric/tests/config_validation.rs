//! Each validation rule of the writer's part of `Config::validate` reports
//! the field path and the bound; parse errors carry the file and line. (The
//! `replica` and `closure` sections' rules are tested in their crates.)

use std::path::{Path, PathBuf};

use fabric::config::{CommitPolicy, Config, ConfigError, QpConfig, ValidatedConfig};
use fabric::verbs::Mtu;

/// A valid writer-side config; tests replace one line at a time.
const BASE: &str = "\
name: host-a
log:
  path: /var/lib/tailguard/host-a.log
  size-bytes: 67108864
device:
  name: rxe0
qp:
  path-mtu: 1024
commit:
  policy: sync
  acks: 1
replicas:
  - name: r0
    control: 10.0.0.2:7471
    key-file: /k/r0.key
  - name: r1
    control: 10.0.0.3:7471
    key-file: /k/r1.key
";

/// A valid replica-side config (its `replica` section is the replica
/// crate's: here it only gives the node a role).
const REPLICA: &str = "\
log:
  size-bytes: 67108864
device:
  netdev: eth0
replica:
  listen: 0.0.0.0:7471
  region: /dev/dax0.0
  epoch-file: /var/lib/tailguard/epoch
  allow:
    - name: host-a
      key-file: /k/a.key
";

/// Parses and validates as a writer does (the other sections unchecked).
fn load(yaml: &str) -> Result<ValidatedConfig, ConfigError> {
    Config::from_yaml_str(yaml)
}

fn load_file(path: &Path) -> Result<ValidatedConfig, ConfigError> {
    Config::from_yaml_file(path)
}

fn with(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "test bug: {from:?} not in base");
    base.replacen(from, to, 1)
}

/// Expects validation to fail with exactly this "field: message" among its issues.
fn expect_issue(yaml: &str, expected: &str) {
    match load(yaml) {
        Ok(_) => panic!("expected `{expected}`, config was accepted:\n{yaml}"),
        Err(ConfigError::Invalid { errors, .. }) => {
            let all: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            assert!(
                all.iter().any(|m| m == expected),
                "expected `{expected}`, got {all:#?}"
            );
        }
        Err(e) => panic!("expected a validation error `{expected}`, got: {e}"),
    }
}

#[test]
fn base_configs_are_valid() {
    let c = load(BASE).unwrap();
    assert_eq!(c.qp, QpConfig::default());
    assert_eq!(c.device.port, 1);
    assert_eq!(c.control_timeout_ms, 5000);
    load(REPLICA).unwrap();
}

#[test]
fn qp_defaults_are_the_canonical_ones() {
    // Bounded RNR retry (7 would retry forever) and a RoCE-safe MTU; the
    // config takes them from `verbs::QpConfig::default()`, so a queue pair
    // built without a config gets the same.
    let q = QpConfig::default();
    assert_eq!(
        (q.path_mtu, q.max_inline, q.rnr_retry),
        (1024, 64, 6),
        "{q:?}"
    );
    let v = fabric::verbs::QpConfig::default();
    let c = load(BASE).unwrap().qp_config();
    assert_eq!(c, v, "a config without `qp` builds the verbs defaults");
}

#[test]
fn control_port_zero_names_the_replica_index() {
    expect_issue(
        &with(BASE, "10.0.0.3:7471", "10.0.0.3:0"),
        "replicas[1].control: port must be 1..=65535, got 0",
    );
}

#[test]
fn control_address_shapes() {
    expect_issue(
        &with(BASE, "10.0.0.2:7471", "10.0.0.2"),
        "replicas[0].control: expected HOST:PORT, got \"10.0.0.2\"",
    );
    expect_issue(
        &with(BASE, "10.0.0.2:7471", "fd00::2:7471"),
        "replicas[0].control: IPv6 hosts must be bracketed, as [ADDR]:PORT, got \"fd00::2:7471\"",
    );
    expect_issue(
        &with(BASE, "10.0.0.2:7471", "\":7471\""),
        "replicas[0].control: host is empty in \":7471\"",
    );
    expect_issue(
        &with(BASE, "10.0.0.2:7471", "10.0.0.2:http"),
        "replicas[0].control: port must be a number 1..=65535, got \"http\"",
    );
    load(&with(BASE, "10.0.0.2:7471", "\"[fd00::2]:7471\"")).unwrap();
    load(&with(BASE, "10.0.0.2:7471", "r0.example:7471")).unwrap();
}

#[test]
fn device_needs_exactly_one_selector() {
    expect_issue(
        &with(BASE, "  name: rxe0\n", "  port: 1\n"),
        "device: set exactly one of `name`, `netdev` or `ip` to select the device, got 0",
    );
    expect_issue(
        &with(BASE, "  name: rxe0\n", "  name: rxe0\n  ip: 10.0.0.1\n"),
        "device: set exactly one of `name`, `netdev` or `ip` to select the device, got 2",
    );
    load(&with(BASE, "  name: rxe0\n", "  ip: \"fd00::1\"\n")).unwrap();
}

#[test]
fn device_numeric_bounds() {
    expect_issue(
        &with(BASE, "  name: rxe0\n", "  name: rxe0\n  port: 0\n"),
        "device.port: must be 1..=255, got 0",
    );
    expect_issue(
        &with(BASE, "  name: rxe0\n", "  name: rxe0\n  gid-index: 300\n"),
        "device.gid-index: must be 0..=255, got 300",
    );
    expect_issue(
        &with(
            BASE,
            "  name: rxe0\n",
            "  name: rxe0\n  service-level: 16\n",
        ),
        "device.service-level: must be 0..=15, got 16",
    );
    expect_issue(
        &with(BASE, "  name: rxe0\n", "  name: rxe0\n  hop-limit: 0\n"),
        "device.hop-limit: must be 1..=255, got 0",
    );
    expect_issue(
        &with(BASE, "  name: rxe0\n", "  name: rxe/0\n"),
        "device.name: must be 1..=64 bytes without '/', got \"rxe/0\"",
    );
}

#[test]
fn grh_settings_are_roce_only() {
    expect_issue(
        &with(
            BASE,
            "  name: rxe0\n",
            "  name: mlx5_0\n  link-layer: infiniband\n  traffic-class: 106\n",
        ),
        "device.traffic-class: applies only to link-layer `roce` (GRH), not `infiniband`",
    );
    load(&with(
        BASE,
        "  name: rxe0\n",
        "  name: rxe0\n  link-layer: roce\n  traffic-class: 106\n",
    ))
    .unwrap();
}

#[test]
fn qp_bounds() {
    let qp = |line: &str| with(BASE, "  path-mtu: 1024\n", &format!("  {line}\n"));
    expect_issue(
        &qp("path-mtu: 1000"),
        "qp.path-mtu: must be one of 256, 512, 1024, 2048, 4096, got 1000",
    );
    expect_issue(&qp("timeout: 0"), "qp.timeout: must be 1..=31, got 0");
    expect_issue(
        &qp("retry-count: 8"),
        "qp.retry-count: must be 0..=7, got 8",
    );
    expect_issue(&qp("rnr-retry: 7"), "qp.rnr-retry: must be 0..=6, got 7");
    expect_issue(
        &qp("min-rnr-timer: 32"),
        "qp.min-rnr-timer: must be 1..=31, got 32",
    );
    expect_issue(
        &qp("max-send-wr: 0"),
        "qp.max-send-wr: must be 1..=32768, got 0",
    );
    expect_issue(
        &qp("max-recv-wr: 40000"),
        "qp.max-recv-wr: must be 1..=32768, got 40000",
    );
    expect_issue(
        &qp("max-inline: 2048"),
        "qp.max-inline: must be 0..=1024, got 2048",
    );
    expect_issue(
        &qp("max-rd-atomic: 0"),
        "qp.max-rd-atomic: must be 1..=255, got 0",
    );
    expect_issue(
        &qp("ships-in-flight: 0"),
        "qp.ships-in-flight: must be 1..=8, got 0",
    );
    expect_issue(
        &qp("ships-in-flight: 9"),
        "qp.ships-in-flight: must be 1..=8, got 9",
    );
    expect_issue(
        &qp("ships-in-flight: 8\n  max-rd-atomic: 4"),
        "qp.ships-in-flight: 8 ships need as many READ flushes in flight, but qp.max-rd-atomic \
         is 4: lower ships-in-flight or raise max-rd-atomic",
    );
    expect_issue(
        &qp("ships-in-flight: 4\n  max-send-wr: 12"),
        "qp.ships-in-flight: 4 ships take up to 16 send-queue entries, but qp.max-send-wr is \
         12: lower ships-in-flight or raise max-send-wr",
    );
    // 8 with room for it is valid; the default is 1 (one at a time).
    let eight = load(&qp("ships-in-flight: 8")).expect("ships-in-flight: 8");
    assert_eq!(eight.qp.ships_in_flight, 8);
    let default = load(BASE).unwrap();
    assert_eq!(default.qp.ships_in_flight, 1);
}

#[test]
fn commit_policy_bounds() {
    expect_issue(
        &with(BASE, "acks: 1", "acks: 3"),
        "commit.acks: must be 1..=2 (the number of replicas), got 3",
    );
    expect_issue(
        &with(BASE, "acks: 1", "acks: 0"),
        "commit.acks: must be 1..=2 (the number of replicas), got 0",
    );
    let asynchronous = with(
        BASE,
        "  policy: sync\n  acks: 1\n",
        "  policy: async\n  max-lag-bytes: 0\n",
    );
    expect_issue(
        &asynchronous,
        "commit.max-lag-bytes: must be 64..=1099511627776, got 0",
    );
    let ok = load(&asynchronous.replace("max-lag-bytes: 0", "max-lag-bytes: 1048576")).unwrap();
    assert_eq!(
        ok.commit,
        CommitPolicy::Async {
            max_lag_bytes: 1 << 20
        }
    );
    assert_eq!(ok.required_acks(), None);
    let all = load(&with(BASE, "  acks: 1\n", "")).unwrap();
    assert_eq!(
        all.required_acks(),
        Some(2),
        "sync without acks waits for every replica"
    );
}

#[test]
fn names_are_checked_and_unique() {
    expect_issue(
        &with(BASE, "name: host-a\n", ""),
        "name: required when `replicas` is set (the writer's name on their allow-lists)",
    );
    expect_issue(
        &with(BASE, "name: host-a\n", "name: \"host a\"\n"),
        "name: may contain only ASCII letters, digits, '.', '_' and '-', found byte 0x20, got \"host a\"",
    );
    expect_issue(
        &with(BASE, "name: r1\n", "name: r0\n"),
        "replicas[1].name: duplicate replica name \"r0\"",
    );
    // Two names for one tg-replica would each count an ack.
    expect_issue(
        &with(BASE, "control: 10.0.0.3:7471\n", "control: 10.0.0.2:7471\n"),
        "replicas[1].control: 10.0.0.2:7471 is also the control address of replica \"r0\": one tg-replica would count twice toward the acks; list each replica once",
    );
}

#[test]
fn node_must_have_a_role() {
    let yaml = "log:\n  size-bytes: 1048576\ndevice:\n  name: rxe0\n";
    expect_issue(
        yaml,
        "replicas: neither `replicas` (writer side) nor `replica` (replica side) is set: this node would do nothing",
    );
}

#[test]
fn control_timeout_bounds() {
    expect_issue(
        &format!("{BASE}control-timeout-ms: 10\n"),
        "control-timeout-ms: must be 100..=600000, got 10",
    );
}

#[test]
fn metrics_listen_is_off_by_default_and_must_be_host_port() {
    assert_eq!(load(BASE).unwrap().metrics_listen, None);
    let on = load(&format!("{BASE}metrics-listen: 127.0.0.1:9464\n")).unwrap();
    assert_eq!(on.metrics_listen.as_deref(), Some("127.0.0.1:9464"));
    let e = load(&format!("{BASE}metrics-listen: 9464\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("metrics-listen"), "{e}");
}

#[test]
fn foreign_sections_are_left_to_their_owners() {
    // A writer does not judge the replica's or the closure's settings (their
    // crates do, when tg-replica or tg-closure reads the file) ...
    let foreign =
        format!("{BASE}replica:\n  listen: nowhere\n  bogus: 1\nclosure:\n  cores: [3, 3]\n");
    let c = load(&foreign).expect("foreign sections are not the writer's to check");
    assert!(c.replica.is_some() && c.closure.is_some());
    // ... but a misspelt section name is nobody's, and refused.
    let e = load(&format!("{BASE}replicaa:\n  listen: x\n")).unwrap_err();
    assert!(
        matches!(&e, ConfigError::Parse { line: Some(19), .. }),
        "{e}"
    );
}

#[test]
fn the_validated_config_carries_narrowed_values() {
    let c = load(&with(
        BASE,
        "  name: rxe0\n",
        "  name: rxe0\n  port: 2\n  service-level: 3\n  hop-limit: 9\n",
    ))
    .unwrap();
    assert_eq!(c.port(), 2);
    assert_eq!(c.writer_name().map(|w| w.as_str()), Some("host-a"));
    let qp = c.qp_config();
    assert_eq!(qp.path_mtu, Mtu::Mtu1024);
    assert_eq!(qp.service_level, 3);
    assert_eq!(qp.hop_limit, 9);
    assert_eq!(u32::from(qp.rnr_retry), c.qp.rnr_retry);
    assert_eq!(qp.max_inline, c.qp.max_inline);
    assert!(load(REPLICA).unwrap().writer_name().is_none());
}

#[test]
fn all_issues_are_reported_at_once() {
    let yaml = with(
        &with(BASE, "10.0.0.3:7471", "10.0.0.3:0"),
        "path-mtu: 1024",
        "path-mtu: 1",
    );
    let Err(ConfigError::Invalid { errors, .. }) = load(&yaml) else {
        panic!("expected validation errors");
    };
    assert!(
        errors.has_field("replicas[1].control") && errors.has_field("qp.path-mtu"),
        "{errors}"
    );
}

#[test]
fn unknown_keys_and_bad_values_are_parse_errors_with_a_line() {
    for (yaml, line) in [
        (
            with(
                BASE,
                "  path-mtu: 1024\n",
                "  path-mtu: 1024\n  pathmtu: 4096\n",
            ),
            9,
        ),
        (format!("{BASE}persistence: fast\n"), 19),
        (with(BASE, "  policy: sync\n", "  policy: eventually\n"), 10),
    ] {
        match load(&yaml) {
            Err(ConfigError::Parse {
                line: Some(l),
                message,
                ..
            }) => {
                assert_eq!(l, line, "wrong line for: {message}");
            }
            other => panic!("expected a parse error at line {line}, got {other:?}"),
        }
    }
}

#[test]
fn duplicate_keys_are_rejected() {
    let yaml = format!("{BASE}name: host-b\n");
    assert!(
        matches!(load(&yaml), Err(ConfigError::Parse { .. })),
        "{yaml}"
    );
}

#[test]
fn file_errors_carry_path_and_line_and_relative_paths_resolve() {
    let dir = std::env::temp_dir().join(format!("tg-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yaml");
    std::fs::write(
        &good,
        with(BASE, "key-file: /k/r0.key", "key-file: keys/r0.key"),
    )
    .unwrap();
    let c = load_file(&good).unwrap();
    assert_eq!(c.replicas[0].key_file, dir.join("keys/r0.key"));
    assert_eq!(c.replicas[1].key_file, PathBuf::from("/k/r1.key"));

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, format!("{BASE}bogus: 1\n")).unwrap();
    let e = load_file(&bad).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{}:19:", bad.display())),
        "{text}"
    );

    let invalid = dir.join("invalid.yaml");
    std::fs::write(&invalid, with(BASE, "10.0.0.3:7471", "10.0.0.3:0")).unwrap();
    let text = load_file(&invalid).unwrap_err().to_string();
    assert_eq!(
        text,
        format!(
            "{}: replicas[1].control: port must be 1..=65535, got 0",
            invalid.display()
        )
    );

    let missing = dir.join("missing.yaml");
    let text = load_file(&missing).unwrap_err().to_string();
    assert!(text.contains("missing.yaml"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn log_size_and_path_are_checked() {
    expect_issue(
        &with(BASE, "size-bytes: 67108864", "size-bytes: 4096"),
        "log.size-bytes: must be 1048576..=1099511627776, got 4096",
    );
    expect_issue(
        &with(BASE, "size-bytes: 67108864", "size-bytes: 67108865"),
        "log.size-bytes: must be a multiple of 4096, got 67108865",
    );
    expect_issue(
        &with(BASE, "  path: /var/lib/tailguard/host-a.log\n", ""),
        "log.path: required when `replicas` is set (the writer's local log)",
    );
    // The replica side needs only the size.
    load(REPLICA).expect("replica config without log.path");
}
