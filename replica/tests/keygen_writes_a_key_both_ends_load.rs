//! `tg-replica keygen FILE` writes a private key file that the writer's
//! and the replica's key loading accept, and refuses to replace one.
//! Host tier: no device.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn keygen(file: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tg-replica"))
        .arg("keygen")
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn keygen_writes_a_loadable_private_key_and_never_replaces_one() {
    let dir = testkit::scratch("keygen-cli");
    let file = dir.join("host-a.key");
    let out = keygen(&file);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("wrote a new key to"),
        "{out:?}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = fabric::auth::PreSharedKey::load(&file).unwrap();
    let first = std::fs::read(&file).unwrap();

    let again = keygen(&file);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("exists: not replacing it"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), first, "the key was replaced");
    assert_eq!(
        fabric::auth::PreSharedKey::load(&file)
            .unwrap()
            .mac(&[b"x"]),
        key.mac(&[b"x"])
    );

    let missing = keygen(&dir.join("no-such-dir").join("k.key"));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot write key file"),
        "{missing:?}"
    );
}
