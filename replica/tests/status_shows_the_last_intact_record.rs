//! `tg-replica status` (text and `--json`) on a region whose records end
//! before its recorded durable tail (a record zeroed by a power-off) shows
//! the durable tail the daemon would report, the end of the last intact
//! record, and names the recorded one; on an intact region it shows the
//! recorded tail and no damage. Host tier: status needs no RDMA device.

use std::path::Path;
use std::process::Command;

use logcore::{CreateOptions, Image, Log, RegionKind};

const REGION_LEN: u64 = 1 << 20;

fn config(dir: &Path) -> std::path::PathBuf {
    testkit::write_key(&dir.join("host-a.key"), 7);
    let yaml = format!(
        "log:\n  path: {dir}/unused.log\n  size-bytes: {REGION_LEN}\ndevice:\n  name: rxe0\n\
         persistence: apm\nreplica:\n  listen: 127.0.0.1:1\n  region: {dir}/replica.region\n\
         \x20 epoch-file: epoch\n  allow:\n    - name: host-a\n      key-file: host-a.key\n",
        dir = dir.display()
    );
    let cfg = dir.join("tailguard.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    cfg
}

#[test]
fn status_shows_the_last_intact_record() {
    let dir = testkit::scratch("status-intact-tail");
    let cfg = config(&dir);
    let region = dir.join("replica.region");
    let log = Log::create(
        &region,
        REGION_LEN,
        &CreateOptions {
            kind: RegionKind::File,
            ..CreateOptions::default()
        },
    )
    .unwrap();
    for i in 0..200u32 {
        log.append(&i.to_le_bytes().repeat(50)).unwrap();
    }
    let tail = log.persist_all().unwrap();
    drop(log);

    let st = testkit::replica_status(&cfg);
    assert_eq!(st["durable_tail"].as_u64(), Some(tail.pos), "{st}");
    assert_eq!(st["next_lsn"].as_u64(), Some(tail.lsn.0), "{st}");
    assert!(st["damage"].is_null(), "{st}");

    // Zero record 120 (LSN 121): records 121.. are lost for the replica.
    let mut bytes = std::fs::read(&region).unwrap();
    let img = Image::parse(&bytes).unwrap();
    let geometry = img.superblock().geometry;
    let r = img.scan().unwrap().nth(120).unwrap().unwrap();
    let (pos, lsn, end) = (r.pos, r.lsn, r.end());
    let off = geometry.region_offset(pos) as usize;
    bytes[off..off + (end - pos) as usize].fill(0);
    std::fs::write(&region, &bytes).unwrap();

    let st = testkit::replica_status(&cfg);
    assert_eq!(st["durable_tail"].as_u64(), Some(pos), "{st}");
    assert_eq!(st["next_lsn"].as_u64(), Some(lsn.0), "{st}");
    assert_eq!(st["records_in_ring"].as_u64(), Some(120), "{st}");
    let d = &st["damage"];
    assert_eq!(d["recorded_durable_tail"].as_u64(), Some(tail.pos), "{st}");
    assert_eq!(d["recorded_next_lsn"].as_u64(), Some(tail.lsn.0), "{st}");
    assert!(
        d["reason"].as_str().unwrap().contains("header is all zero"),
        "{st}"
    );

    let out = Command::new(testkit::bin("tg-replica"))
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("durable tail  {pos} (next LSN {})", lsn.0))
            && text.contains(&format!(
                "damaged       the control block records the durable tail at {}",
                tail.pos
            )),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
