//! Pre-shared key files: hex or raw, at least 32 bytes, private to the
//! owner, never printed; HMAC helpers and nonces.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use fabric::auth::{
    random_nonce, AllowList, AllowListError, AllowedWriter, KeyError, PreSharedKey, MIN_KEY_LEN,
};
use fabric::wire::WriterName;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tg-keys-{tag}-{}", std::process::id()));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn file(&self, name: &str, content: &[u8], mode: u32) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn hex_and_raw_keys_load_and_agree() {
    let d = TempDir::new("load");
    let raw: Vec<u8> = (0u8..32).collect();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let a = PreSharedKey::load(d.file("hex.key", format!("{hex}\n").as_bytes(), 0o600)).unwrap();
    let b = PreSharedKey::load(d.file("raw.key", &raw, 0o400)).unwrap();
    let c = PreSharedKey::from_bytes(raw).unwrap();
    let msg: &[&[u8]] = &[b"nonce", b"transcript"];
    assert_eq!(a.mac(msg), c.mac(msg));
    assert_eq!(b.mac(msg), c.mac(msg));
    assert!(a.verify(msg, &c.mac(msg)));
}

#[test]
fn short_keys_are_refused_with_a_hint() {
    let d = TempDir::new("short");
    let p = d.file("short.key", "00112233".as_bytes(), 0o600);
    let e = PreSharedKey::load(&p).unwrap_err();
    assert!(
        matches!(
            e,
            KeyError::TooShort {
                len: 4,
                min: MIN_KEY_LEN,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("at least 32 are needed"), "{e}");
    assert!(e.to_string().contains("tg-replica keygen"), "{e}");
    assert!(matches!(
        PreSharedKey::from_bytes(vec![1; 31]),
        Err(KeyError::TooShort { len: 31, .. })
    ));
}

#[test]
fn group_or_world_accessible_key_files_are_refused() {
    let d = TempDir::new("mode");
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
        let p = d.file(&format!("k{mode:o}.key"), &[9; 32], mode);
        let e = PreSharedKey::load(&p).unwrap_err();
        assert!(
            matches!(e, KeyError::Permissions { .. }),
            "mode {mode:o}: {e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}

#[test]
fn oversized_and_missing_files_are_errors() {
    let d = TempDir::new("big");
    let p = d.file("big.key", &[1; 5000], 0o600);
    assert!(matches!(
        PreSharedKey::load(&p),
        Err(KeyError::TooLong { len: 5000, .. })
    ));
    let e = PreSharedKey::load(d.0.join("nope.key")).unwrap_err();
    assert!(
        matches!(e, KeyError::Read { .. }) && e.to_string().contains("nope.key"),
        "{e}"
    );
}

#[test]
fn debug_output_never_shows_the_key() {
    let k = PreSharedKey::from_bytes(b"super-secret-key-material-0123456789".to_vec()).unwrap();
    let text = format!("{k:?}");
    assert_eq!(text, "PreSharedKey(<redacted, 36 bytes>)");
}

#[test]
fn verify_rejects_wrong_tags_and_keys() {
    let k = PreSharedKey::from_bytes(vec![1; 32]).unwrap();
    let other = PreSharedKey::from_bytes(vec![2; 32]).unwrap();
    let tag = k.mac(&[b"a", b"b"]);
    assert!(k.verify(&[b"ab"], &tag), "parts are concatenated");
    assert!(!other.verify(&[b"a", b"b"], &tag));
    let mut bad = tag;
    bad[31] ^= 1;
    assert!(!k.verify(&[b"a", b"b"], &bad));
    assert!(
        !k.verify(&[b"a", b"b"], &tag[..16]),
        "truncated tags are refused"
    );
}

#[test]
fn nonces_are_fresh() {
    let a = random_nonce().unwrap();
    let b = random_nonce().unwrap();
    assert_ne!(a, b);
    assert_ne!(a, [0; 32]);
}

#[test]
fn allow_list_loads_from_config_entries_and_names_the_writer_on_error() {
    let d = TempDir::new("allow");
    let good = d.file("a.key", &[1; 32], 0o600);
    let open = d.file("b.key", &[2; 32], 0o644);
    let entry = |name: &str, key_file: &PathBuf| AllowedWriter {
        name: name.into(),
        key_file: key_file.clone(),
    };
    let list = AllowList::load(&[entry("host-a", &good)]).unwrap();
    assert_eq!(list.len(), 1);
    assert!(list.key(&WriterName::new("host-a").unwrap()).is_some());
    assert!(list.key(&WriterName::new("host-b").unwrap()).is_none());
    let e = AllowList::load(&[entry("host-a", &good), entry("host-b", &open)]).unwrap_err();
    assert!(
        matches!(&e, AllowListError::Key { writer, source: KeyError::Permissions { .. } } if writer == "host-b"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("allow-list key of writer \"host-b\": key file"),
        "{e}"
    );
}

#[test]
fn a_generated_key_is_written_private_and_loads_as_itself() {
    let d = TempDir::new("keygen");
    let p = d.0.join("new.key");
    let k = PreSharedKey::generate().unwrap();
    k.write_new(&p).unwrap();
    let mode = fs::metadata(&p).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let text = fs::read_to_string(&p).unwrap();
    assert_eq!(text.len(), MIN_KEY_LEN * 2 + 1, "one line of hex: {text:?}");
    assert!(text.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
    let loaded = PreSharedKey::load(&p).unwrap();
    // Same key: the same MAC over the same bytes.
    assert_eq!(loaded.mac(&[b"probe"]), k.mac(&[b"probe"]));
    // Two keys differ (32 random bytes colliding is not a flake).
    let other = PreSharedKey::generate().unwrap();
    assert_ne!(other.mac(&[b"probe"]), k.mac(&[b"probe"]));
}

#[test]
fn writing_a_key_never_replaces_a_file() {
    let d = TempDir::new("keygen-exists");
    let p = d.file("in-use.key", b"the key peers hold", 0o600);
    let e = PreSharedKey::generate().unwrap().write_new(&p).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
    assert_eq!(fs::read(&p).unwrap(), b"the key peers hold");
}
