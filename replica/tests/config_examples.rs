//! Every example in `configs/` validates as `tg-replica` reads it (the
//! writer's part and the `replica` section), and the replicas they describe
//! admit their writers and closures.

use std::path::PathBuf;

use replica::config::ReplicaConfig;

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

#[test]
fn every_example_config_validates_with_its_replica_section() {
    let mut checked = 0;
    for entry in std::fs::read_dir(configs_dir()).expect("configs/ exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        if let Err(e) = ReplicaConfig::from_yaml_file(&path) {
            panic!("{e}");
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} examples in configs/");
}

#[test]
fn rxe_loopback_serves_the_devdax_region_to_host_a() {
    let c = ReplicaConfig::from_yaml_file(configs_dir().join("rxe-loopback.yaml")).unwrap();
    let r = c.replica().unwrap();
    assert_eq!(r.allow[0].name, "host-a");
    assert_eq!(r.region, PathBuf::from("/dev/dax0.0"));
}

#[test]
fn infiniband_example_is_writer_only() {
    let c = ReplicaConfig::from_yaml_file(configs_dir().join("infiniband.yaml")).unwrap();
    assert!(c.replica().is_none());
}

#[test]
fn roce_example_admits_the_primary_its_closure_and_the_standby() {
    let c = ReplicaConfig::from_yaml_file(configs_dir().join("roce-two-node.yaml")).unwrap();
    // primary-a, its closure, and the standby primary-c.
    assert_eq!(c.replica().unwrap().allow.len(), 3);
}

#[test]
fn rxe_example_has_a_closure_on_the_allow_list() {
    let c = ReplicaConfig::from_yaml_file(configs_dir().join("rxe-loopback.yaml")).unwrap();
    // The closure's name in the example's `closure` section (checked in
    // closure/tests/config_examples.rs).
    assert!(c
        .replica()
        .unwrap()
        .allow
        .iter()
        .any(|a| a.name == "host-a-closure"));
}
