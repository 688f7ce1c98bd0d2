//! Every example in `configs/` parses and validates as a writer reads it
//! (its `replica` and `closure` sections are checked by their crates'
//! `tests/config_examples.rs`).

use std::path::PathBuf;

use fabric::config::{CommitPolicy, Config, ConfigError, LinkLayerHint, ValidatedConfig};
use fabric::wire::PersistenceMode;

fn load(path: PathBuf) -> Result<ValidatedConfig, ConfigError> {
    Config::from_yaml_file(path)
}

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

#[test]
fn every_example_config_parses_and_validates() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(configs_dir()).expect("configs/ exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        if let Err(e) = load(path.clone()) {
            panic!("{e}");
        }
        checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    checked.sort();
    for expected in ["infiniband.yaml", "roce-two-node.yaml", "rxe-loopback.yaml"] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} missing from {checked:?}"
        );
    }
}

#[test]
fn rxe_loopback_describes_both_sides() {
    let c = load(configs_dir().join("rxe-loopback.yaml")).unwrap();
    assert_eq!(c.name.as_deref(), Some("host-a"));
    assert_eq!(c.device.name.as_deref(), Some("rxe0"));
    assert_eq!(c.device.link_layer, Some(LinkLayerHint::Roce));
    assert_eq!(c.device.gid_index, None);
    assert_eq!(c.persistence, PersistenceMode::Apm);
    assert_eq!(c.commit, CommitPolicy::Sync { acks: Some(1) });
    assert_eq!(c.required_acks(), Some(1));
    assert!(c.replica.is_some() && c.closure.is_some());
}

#[test]
fn infiniband_example_uses_gpspm_and_two_of_three() {
    let c = load(configs_dir().join("infiniband.yaml")).unwrap();
    assert_eq!(c.device.link_layer, Some(LinkLayerHint::Infiniband));
    assert_eq!(c.persistence, PersistenceMode::Gpspm);
    assert_eq!(c.replicas.len(), 3);
    assert_eq!(c.required_acks(), Some(2));
    assert_eq!(c.qp.path_mtu, 4096);
    assert!(c.replica.is_none());
}

#[test]
fn roce_example_selects_by_netdev_with_traffic_class() {
    let c = load(configs_dir().join("roce-two-node.yaml")).unwrap();
    assert_eq!(c.device.netdev.as_deref(), Some("eth1"));
    assert_eq!(c.device.traffic_class, Some(106));
    assert_eq!(c.qp_config().traffic_class, 106);
}
