//! The `tg-log` binary: create, stat, dump --jsonl [--payload], verify, and
//! verify's exit status 1 with a clear message on a corrupted record.

use std::process::Command;

use logcore::{Log, RegionKind};

fn tg_log(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tg-log"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn tg_log_cli() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cli.log");
    let p = path.to_str().unwrap();

    let (code, out, err) = tg_log(&[
        "create", p, "--size", "1M", "--kind", "file", "--epoch", "3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("kind=file") && out.contains("epoch=3"),
        "{out}"
    );
    let (code, out, _) = tg_log(&["stat", p]);
    assert!(out.contains("ring_capacity_bytes: 1044480"), "{out}");
    let small = dir.path().join("small.log");
    let (code2, out2, err2) = tg_log(&[
        "create",
        small.to_str().unwrap(),
        "--size",
        "1M",
        "--capacity",
        "64K",
    ]);
    assert_eq!(code2, 0, "{err2}");
    assert!(out2.contains("capacity_bytes=65536"), "{out2}");
    assert_eq!(code, 0);
    let (code, _, err) = tg_log(&["create", p, "--size", "1M"]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");

    let log = Log::open(&path, RegionKind::File).unwrap();
    log.append(b"hello").unwrap();
    let lsn = log.append(&[0xde, 0xad]).unwrap();
    log.persist_to(lsn).unwrap();
    drop(log);

    let (code, out, err) = tg_log(&["verify", p]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: 2 records"), "{out}");

    let (code, out, _) = tg_log(&["dump", p, "--jsonl", "--payload"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0]
        .starts_with("{\"lsn\":1,\"pos\":0,\"epoch\":3,\"kind\":\"data\",\"len\":5,\"crc\":"));
    assert!(
        lines[0].ends_with(",\"payload\":\"68656c6c6f\"}"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("\"lsn\":2,\"pos\":64,") && lines[1].ends_with("\"payload\":\"dead\"}")
    );
    let (_, out, _) = tg_log(&["dump", p, "--jsonl"]);
    assert!(!out.contains("payload"), "{out}");

    let (code, out, _) = tg_log(&["stat", p]);
    assert_eq!(code, 0);
    for want in [
        "state: clean-shutdown",
        "persisted_tail: pos 128 lsn 3",
        "records: 2",
        "epoch: created 3 current 3",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }

    // Flip a payload byte of LSN 1 (region offset 4096 + 32).
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096 + 32] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let (code, _, err) = tg_log(&["verify", p]);
    assert_eq!(code, 1);
    assert!(
        err.contains("corrupt record at position 0") && err.contains("CRC32C mismatch"),
        "{err}"
    );
    assert!(err.contains("restore this log from a replica"), "{err}");
    let (code, _, _) = tg_log(&["dump", p, "--jsonl"]);
    assert_eq!(code, 1);

    let (code, _, err) = tg_log(&["verify", "/nonexistent/x.log"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/x.log"), "{err}");
}
