//! The `replica:` section: every rule reported with its field path, and
//! relative paths resolved against the config file.

use replica::config::ReplicaConfig;

use fabric::config::ConfigError;

/// A valid replica-side config.
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

fn with(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "test bug: {from:?} not in base");
    base.replacen(from, to, 1)
}

/// Expects validation to fail with exactly this "field: message" among its issues.
fn expect_issue(yaml: &str, expected: &str) {
    match ReplicaConfig::from_yaml_str(yaml) {
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
fn the_base_config_is_valid() {
    let c = ReplicaConfig::from_yaml_str(REPLICA).unwrap();
    assert_eq!(c.replica().unwrap().listen, "0.0.0.0:7471");
    assert_eq!(
        c.replica().unwrap().idle_session_ms,
        30_000,
        "an admitted writer silent for 30 s is taken for gone"
    );
}

#[test]
fn the_idle_session_bound_is_a_knob_with_a_floor() {
    let at = |ms: &str| {
        with(
            REPLICA,
            "  region:",
            &format!("  idle-session-ms: {ms}\n  region:"),
        )
    };
    let c = ReplicaConfig::from_yaml_str(&at("5000")).unwrap();
    assert_eq!(c.replica().unwrap().idle_session_ms, 5000);
    // Below a second it would cut live writers (they ask every second).
    expect_issue(
        &at("999"),
        "replica.idle-session-ms: must be 1000..=3600000, got 999",
    );
    expect_issue(
        &at("3600001"),
        "replica.idle-session-ms: must be 1000..=3600000, got 3600001",
    );
}

#[test]
fn replica_side_rules() {
    expect_issue(
        &with(REPLICA, "0.0.0.0:7471", "0.0.0.0:70000"),
        "replica.listen: port must be 1..=65535, got 70000",
    );
    expect_issue(
        &with(
            REPLICA,
            "  allow:\n    - name: host-a\n      key-file: /k/a.key\n",
            "  allow: []\n",
        ),
        "replica.allow: must list 1..=64 writers, got 0",
    );
    let dup = format!("{REPLICA}    - name: host-a\n      key-file: /k/b.key\n");
    expect_issue(
        &dup,
        "replica.allow[1].name: duplicate writer name \"host-a\"",
    );
    expect_issue(
        &with(REPLICA, "region: /dev/dax0.0", "region: \"\""),
        "replica.region: must not be empty",
    );
}

#[test]
fn unknown_replica_keys_are_errors() {
    let e = ReplicaConfig::from_yaml_str(&format!("{REPLICA}  regoin: /r\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("regoin"), "{e}");
}

#[test]
fn relative_paths_are_resolved_against_the_config() {
    let dir = std::env::temp_dir().join(format!("tg-cfg-replica-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("r.yaml");
    let yaml = with(
        &with(
            REPLICA,
            "epoch-file: /var/lib/tailguard/epoch",
            "epoch-file: epoch",
        ),
        "key-file: /k/a.key",
        "key-file: keys/a.key",
    );
    std::fs::write(&path, yaml).unwrap();
    let c = ReplicaConfig::from_yaml_file(&path).unwrap();
    let r = c.replica().unwrap();
    assert_eq!(r.epoch_file, dir.join("epoch"));
    assert_eq!(r.allow[0].key_file, dir.join("keys/a.key"));
    assert_eq!(r.region, std::path::PathBuf::from("/dev/dax0.0"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn metrics_listen_is_off_by_default_checked_and_apart_from_the_control_port() {
    let c = ReplicaConfig::from_yaml_str(REPLICA).unwrap();
    assert_eq!(c.replica().unwrap().metrics_listen, None);
    let on = format!("{REPLICA}  metrics-listen: 127.0.0.1:9471\n");
    let c = ReplicaConfig::from_yaml_str(&on).unwrap();
    assert_eq!(
        c.replica().unwrap().metrics_listen.as_deref(),
        Some("127.0.0.1:9471")
    );
    let bad = format!("{REPLICA}  metrics-listen: 0.0.0.0:0\n");
    match ReplicaConfig::from_yaml_str(&bad) {
        Err(ConfigError::Invalid { errors, .. }) => assert!(
            errors
                .0
                .iter()
                .any(|m| m.to_string().starts_with("replica.metrics-listen:")),
            "{errors:?}"
        ),
        other => panic!("port 0 accepted: {other:?}"),
    }
    expect_issue(
        &format!("{REPLICA}  metrics-listen: 0.0.0.0:7471\n"),
        "replica.metrics-listen: must differ from replica.listen (the control port)",
    );
}
