//! Every example in `configs/` validates as the host and `tg-closure` read
//! it (the writer's part and the `closure` section), and its closure is the
//! one the example's replica admits (`replica/tests/config_examples.rs`
//! checks the allow-list side).

use std::path::PathBuf;

use closure::config::HostConfig;

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

#[test]
fn every_example_config_validates_with_its_closure_section() {
    let mut checked = 0;
    for entry in std::fs::read_dir(configs_dir()).expect("configs/ exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        if let Err(e) = HostConfig::from_yaml_file(&path) {
            panic!("{e}");
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} examples in configs/");
}

#[test]
fn roce_example_pins_the_closure_to_two_cores() {
    let c = HostConfig::from_yaml_file(configs_dir().join("roce-two-node.yaml")).unwrap();
    assert_eq!(c.closure.as_ref().unwrap().cores, vec![2, 3]);
}

#[test]
fn rxe_example_has_a_closure_on_the_allow_list() {
    let c = HostConfig::from_yaml_file(configs_dir().join("rxe-loopback.yaml")).unwrap();
    let closure = c.closure().unwrap();
    // The name the example's `replica.allow` lists (checked there).
    assert_eq!(closure.name.as_str(), "host-a-closure");
    assert_ne!(c.name.as_deref(), Some(closure.name.as_str()));
}
