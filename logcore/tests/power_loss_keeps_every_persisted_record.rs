//! Power-loss model (after redb's crash_consistency): what is durable is the
//! image as of the last completed `persist_to`, plus any subset of the cache
//! lines written after it (the CPU may have evicted some, not others). For
//! many random histories and random subsets, recovery must return every
//! persisted record byte for byte, and beyond them only a prefix of the
//! records appended afterwards, each intact: never a mix, never a stale lap.

mod common;

use logcore::{Image, RecordKind};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn power_loss_keeps_every_persisted_record() {
    let seed = std::env::var("TG_POWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0074_676c_6f67_u64);
    let mut rng = Rng(seed);
    for iter in 0..150 {
        let (_d, path, log) = common::new_log(4096 + 16384);
        let mut persisted: Vec<(u64, Vec<u8>)> = Vec::new();
        // History: rounds of appends, persists and reclaims that lap the ring.
        let rounds = 1 + rng.next() % 12;
        for _ in 0..rounds {
            for _ in 0..1 + rng.next() % 8 {
                let p = common::payload(rng.next(), 700);
                let l = loop {
                    match log.append(&p) {
                        Ok(l) => break l,
                        Err(_) => {
                            let t = log.persist_all().unwrap();
                            log.advance_head(t.pos).unwrap();
                            persisted.clear();
                        }
                    }
                };
                persisted.push((l.0, p));
            }
            log.persist_all().unwrap();
        }
        let durable = std::fs::read(&path).unwrap();
        // After the last persist: more appends that never become durable.
        let mut after: Vec<(u64, Vec<u8>)> = Vec::new();
        for _ in 0..rng.next() % 6 {
            let p = common::payload(rng.next(), 700);
            if let Ok(l) = log.append(&p) {
                after.push((l.0, p));
            }
        }
        let written = std::fs::read(&path).unwrap();
        std::mem::forget(log);

        // Each 64-byte line that changed reached media or not, at random;
        // 1 in 4 iterations also tears lines at 8-byte granularity.
        let tear_words = rng.next().is_multiple_of(4);
        let mut img = durable.clone();
        for line in (0..img.len()).step_by(64) {
            let end = (line + 64).min(img.len());
            if durable[line..end] == written[line..end] {
                continue;
            }
            if tear_words {
                for w in (line..end).step_by(8) {
                    if rng.next().is_multiple_of(2) {
                        img[w..w + 8].copy_from_slice(&written[w..w + 8]);
                    }
                }
            } else if rng.next().is_multiple_of(2) {
                img[line..end].copy_from_slice(&written[line..end]);
            }
        }

        let image = Image::parse(&img).unwrap_or_else(|e| panic!("iter {iter}: {e}"));
        let recs: Vec<(u64, Vec<u8>)> = image
            .scan()
            .unwrap()
            .map(|r| r.unwrap_or_else(|e| panic!("iter {iter} seed {seed}: {e}")))
            .filter(|r| r.kind == RecordKind::Data)
            .map(|r| (r.lsn.0, r.payload.to_vec()))
            .collect();
        assert!(
            recs.len() >= persisted.len(),
            "iter {iter}: lost persisted records"
        );
        assert_eq!(
            &recs[..persisted.len()],
            &persisted[..],
            "iter {iter}: persisted records differ"
        );
        let extra = &recs[persisted.len()..];
        assert!(extra.len() <= after.len());
        assert_eq!(
            extra,
            &after[..extra.len()],
            "iter {iter}: beyond the tail only a prefix of later appends"
        );
    }
}
