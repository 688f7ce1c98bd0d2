//! `tg-bench load`: a host workload for drills and tests. Record `i`'s
//! payload is derived from its LSN and the seed, so a checker can verify any
//! record on any image; each commit that returns prints `committed LSN`.

use std::io::Write;
use std::time::{Duration, Instant};

use fabric::replicated::ReplicatedLog;

/// The payload of the record with LSN `lsn` under `seed`: 16 to 1039 bytes,
/// starting with the LSN and seed so a stray record is recognisable.
pub(crate) fn payload(seed: u64, lsn: u64) -> Vec<u8> {
    let mut x = (lsn ^ seed.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let len = 16 + (x >> 11) % 1024;
    let mut p = Vec::with_capacity(len as usize);
    p.extend_from_slice(&lsn.to_le_bytes());
    p.extend_from_slice(&seed.to_le_bytes());
    while (p.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p.push(x as u8);
    }
    p
}

pub(crate) fn run(
    rl: &ReplicatedLog,
    records: u64,
    rate: Option<f64>,
    seed: u64,
) -> Result<(), String> {
    let out = std::io::stdout();
    let mut out = out.lock();
    let start = Instant::now();
    for i in 0..records {
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / r);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let next = rl.log().tail().lsn.0;
        let a = rl
            .append(&payload(seed, next))
            .map_err(|e| format!("append: {e}"))?;
        debug_assert_eq!(a.lsn.0, next, "single appender: the LSN is the tail's");
        rl.commit(a.lsn)
            .map_err(|e| format!("commit of LSN {}: {e}", a.lsn.0))?;
        writeln!(out, "committed {}", a.lsn.0).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::payload;

    #[test]
    fn payloads_carry_their_lsn_and_differ() {
        let a = payload(7, 100);
        assert_eq!(&a[..8], &100u64.to_le_bytes());
        assert_eq!(&a[8..16], &7u64.to_le_bytes());
        assert!((16..=1039).contains(&a.len()));
        assert_ne!(payload(7, 101)[16..], a[16..]);
        assert_eq!(payload(7, 100), a, "deterministic");
    }
}
