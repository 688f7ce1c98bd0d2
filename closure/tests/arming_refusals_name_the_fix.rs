//! What stops the closure from arming is reported with the setting or the
//! state at fault and what to do: no `closure:` section, an unreadable key,
//! no running host on the log.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use closure::options::ClosureOptions;
use closure::standby::wait_for_host;
use logcore::{CreateOptions, Log, Region, RegionKind};

const BASE: &str = "\
name: host-a
log:
  path: host.log
  size-bytes: 1048576
device:
  name: rxe0
replicas:
  - name: r0
    control: 127.0.0.1:7471
    key-file: host.key
";

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tg-arming-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_config_without_closure_section_is_refused() {
    let d = dir("no-section");
    let cfg = d.join("c.yaml");
    std::fs::write(&cfg, BASE).unwrap();
    let e = ClosureOptions::from_file(&cfg).unwrap_err().to_string();
    assert!(e.contains("no `closure:` section"), "{e}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_missing_closure_key_names_the_setting() {
    let d = dir("no-key");
    let cfg = d.join("c.yaml");
    std::fs::write(
        &cfg,
        format!("{BASE}closure:\n  name: host-a-closure\n  key-file: missing.key\n"),
    )
    .unwrap();
    let e = ClosureOptions::from_file(&cfg).unwrap_err().to_string();
    assert!(e.contains("closure.key-file"), "{e}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn options_carry_the_closure_identity_and_bounds() {
    let d = dir("ok");
    let cfg = d.join("c.yaml");
    std::fs::write(d.join("closure.key"), "ab".repeat(32)).unwrap();
    std::fs::set_permissions(
        d.join("closure.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{BASE}closure:\n  name: host-a-closure\n  key-file: closure.key\n  cores: [0]\n  \
             heartbeat-timeout-ms: 300\n  restart: [true]\n"
        ),
    )
    .unwrap();
    let o = ClosureOptions::from_file(&cfg).unwrap();
    assert_eq!(o.connect.writer.to_string(), "host-a-closure");
    assert_eq!(o.log_path, d.join("host.log"));
    assert_eq!(o.heartbeat_timeout, Duration::from_millis(300));
    assert_eq!(o.replicas.len(), 1);
    assert_eq!(o.restart.as_deref(), Some(&["true".to_owned()][..]));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn no_running_host_is_reported_with_the_log_state() {
    let d = dir("no-host");
    let path = d.join("host.log");
    let opts = CreateOptions {
        kind: RegionKind::File,
        ..CreateOptions::default()
    };
    drop(Log::create(&path, 1 << 20, &opts).unwrap()); // closed cleanly
    let region = Region::open(&path, RegionKind::File).unwrap();
    let e = wait_for_host(&region, &path, Duration::from_millis(50))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no running host"), "{e}");
    assert!(e.contains("clean-shutdown"), "{e}");
    assert!(e.contains("--wait-host-ms"), "{e}");
    std::fs::remove_dir_all(d).unwrap();
}
