//! Replica images for the host-tier tests: a plain-file region written with
//! logcore whose ring has wrapped (the head is past 0, padding at the ring
//! end), and the damage a power-off or a torn region leaves in it.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use logcore::{CreateOptions, Cursor, Geometry, Image, Log, RecordKind, RegionKind};

/// One record of the fixture: where it starts (position, LSN) and ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    pub(crate) start: Cursor,
    pub(crate) end: u64,
    pub(crate) kind: RecordKind,
}

#[derive(Debug)]
pub(crate) struct Fixture {
    pub(crate) dir: PathBuf,
    pub(crate) path: PathBuf,
    pub(crate) geometry: Geometry,
    pub(crate) uuid: [u8; 16],
    /// Every record from the head to the recorded tail, in order.
    pub(crate) records: Vec<At>,
    pub(crate) head: Cursor,
    pub(crate) tail: Cursor,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A `region_len`-byte region holding `n` records that went around the ring
/// at least once: each time it filled, the head moved to keep half a ring.
pub(crate) fn wrapped(name: &str, region_len: u64, n: u64) -> Fixture {
    let dir = testkit::scratch(name);
    let path = dir.join("replica.region");
    let opts = CreateOptions {
        kind: RegionKind::File,
        ..CreateOptions::default()
    };
    let log = Log::create(&path, region_len, &opts).unwrap();
    let capacity = log.geometry().capacity;
    let mut laps = 0;
    let mut ends = std::collections::VecDeque::new();
    // At least `n` records, then on until the history from the head
    // crosses the ring's end with records past it (bounded).
    let crossed = |log: &Log| {
        let (head, tail) = (log.head().pos, log.tail().pos);
        let lap_end = (head / capacity + 1) * capacity;
        tail > lap_end + capacity / 8
    };
    for i in 0..n * 10 {
        if i >= n && crossed(&log) {
            break;
        }
        let p = testkit::payload(0, i, 719);
        let a = match log.append_record(&p) {
            Ok(a) => a,
            Err(_) => {
                // Full: keep the last half ring of history, as a replica
                // does (replay/mod.rs, advance_head).
                let t = log.persist_all().unwrap();
                while ends.front().is_some_and(|&e| e < t.pos - capacity / 2) {
                    ends.pop_front();
                }
                log.advance_head(ends.pop_front().unwrap()).unwrap();
                laps += 1;
                log.append_record(&p).unwrap()
            }
        };
        ends.push_back(a.end);
    }
    log.persist_all().unwrap();
    drop(log);
    assert!(laps > 0, "the fixture's ring must have wrapped");
    let bytes = std::fs::read(&path).unwrap();
    let img = Image::parse(&bytes).unwrap();
    let c = *img.control();
    let records: Vec<At> = img
        .scan()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            At {
                start: Cursor {
                    pos: r.pos,
                    lsn: r.lsn,
                },
                end: r.end(),
                kind: r.kind,
            }
        })
        .collect();
    assert!(c.head.pos > 0, "the head moved");
    assert_eq!(records.last().unwrap().end, c.persisted.pos);
    assert!(
        records.iter().any(|r| r.kind == RecordKind::Padding),
        "a record wrapped at the ring end"
    );
    Fixture {
        dir,
        path,
        geometry: img.superblock().geometry,
        uuid: img.superblock().uuid,
        records,
        head: c.head,
        tail: c.persisted,
    }
}

impl Fixture {
    /// Writes `bytes` at logical ring position `pos` (within one lap).
    pub(crate) fn write_at(&self, pos: u64, bytes: &[u8]) {
        let off = self.geometry.region_offset(pos);
        assert!(self.geometry.ring_offset(pos) + bytes.len() as u64 <= self.geometry.capacity);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .unwrap();
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    }

    /// Zeroes record `i` entirely.
    pub(crate) fn zero_record(&self, i: usize) {
        let r = self.records[i];
        self.write_at(r.start.pos, &vec![0; (r.end - r.start.pos) as usize]);
    }

    /// Zeroes the whole ring (superblock and control block kept), as the
    /// power-off drill's `--break` does.
    pub(crate) fn zero_ring(&self) {
        self.write_at(0, &vec![0; self.geometry.capacity as usize]);
    }

    /// Flips one byte of record `i`'s payload.
    pub(crate) fn flip_payload_byte(&self, i: usize) {
        let r = self.records[i];
        let at = r.start.pos + logcore::HEADER_LEN as u64 + 3;
        assert!(at < r.end);
        let off = self.geometry.region_offset(at);
        let mut f = std::fs::File::open(&self.path).unwrap();
        f.seek(SeekFrom::Start(off)).unwrap();
        let mut b = [0u8];
        f.read_exact(&mut b).unwrap();
        self.write_at(at, &[b[0] ^ 0x5a]);
    }

    /// The image's bytes as they are now.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }

    /// A record of the middle of the image, past the ring's wrap point.
    pub(crate) fn middle(&self) -> usize {
        let wrap = self
            .records
            .iter()
            .position(|r| r.kind == RecordKind::Padding)
            .unwrap();
        let i = (wrap + 1 + self.records.len()) / 2;
        assert!(i > wrap && i + 1 < self.records.len());
        i
    }
}
